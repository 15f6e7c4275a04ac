"""Logging for the CLI: one stderr handler whose filter redacts every configured secret
(issue 4; STYLE §3.7 item 8).

:class:`RedactingFilter` replaces each value read through ``!secret`` (``cfg.secret_values``)
by ``***`` in the formatted message, its arguments and any traceback text, so a token cannot
leak through a debug line of ``urllib3`` (which logs request URLs, e.g. ENTSO-E's
``securityToken=``), a provider or an exception. It is attached to every handler of the root
logger (filters on a logger do not see records propagated from child loggers).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable

MASK = "***"


class RedactingFilter(logging.Filter):
    """Redact secret strings in log records (message, args and exception text)."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        # longest first, so a secret containing another is replaced whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for s in self.secrets:
            text = text.replace(s, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        record.exc_info = None if record.exc_text else record.exc_info
        return True


def install_filter(secrets: Iterable[str], logger: logging.Logger | None = None
                   ) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of ``logger`` (default: root)."""
    logger = logger or logging.getLogger()
    filt = RedactingFilter(secrets)
    for handler in logger.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(filt)
    return filt


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (click's test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(cfg=None, level: str | None = None) -> None:
    """Configure stderr logging (level from ``$HELIOS_LOG_LEVEL``, default WARNING) and
    install the redaction filter for ``cfg.secret_values``."""
    root = logging.getLogger()
    level = (level or os.environ.get("HELIOS_LOG_LEVEL") or "WARNING").upper()
    if not any(getattr(h, "_helios", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                               "%(message)s"))
        handler._helios = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    install_filter(getattr(cfg, "secret_values", ()) if cfg is not None else ())
