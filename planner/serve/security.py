"""The web app's security model: one token for anything that changes state, and request checks.

* **Token.** ``serve_token`` in ``secrets.yaml`` (beside the config) when it is there, else a
  token file (``helios-serve.token`` in the executor's state directory, or ``--token-file``)
  created at first start with 32 random bytes (``secrets.token_urlsafe``), mode 0600. The
  token is accepted only in a request header (``Authorization: Bearer <token>`` or
  ``X-Helios-Token``), compared in constant time, never in a URL, a page or a response.
* **CSRF.** A state change is a ``POST`` with the token header and a JSON body; a browser
  cannot add a custom header to a cross-site request without a CORS preflight, which this
  server never grants. On top of that a ``POST`` whose ``Origin`` is not this server's origin,
  or that a browser marks ``Sec-Fetch-Site: cross-site``, is refused (403). ``GET`` never
  changes anything.
* **DNS rebinding.** The ``Host`` header must name this server: an IP literal, ``localhost``,
  or a name given with ``--allow-host``; anything else is refused (421/403) before routing.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from executor.configfile import DocumentError, read_document
from planner.core.errors import ConfigError, ConfigProblem

#: the name looked up in secrets.yaml
SECRET_NAME = "serve_token"
#: default token file name (in the executor's state directory)
TOKEN_FILE = "helios-serve.token"
#: shortest token accepted from secrets.yaml [characters]
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class Token:
    """The API token and where it came from (the value is never shown: ``repr`` hides it)."""

    value: str
    origin: str
    created: bool = False

    def __repr__(self) -> str:
        return f"Token(origin={self.origin!r}, created={self.created})"

    def matches(self, offered: str | None) -> bool:
        """Constant-time comparison with a token offered by a client."""
        if not offered:
            return False
        return hmac.compare_digest(offered.encode("utf-8"), self.value.encode("utf-8"))


def load_token(config_dir: str | os.PathLike, token_file: str | os.PathLike) -> Token:
    """The token: ``serve_token`` from secrets.yaml, else ``token_file`` (created if missing).

    Raises
    ------
    ConfigError
        ``serve_token`` shorter than :data:`MIN_TOKEN_CHARS`, or an unreadable token file.
    """
    secrets_path = next((p for p in (Path(config_dir) / n for n in ("secrets.yaml",
                                                                    "secrets.json"))
                         if p.exists()), None)
    doc = None
    if secrets_path is not None:
        try:
            doc = read_document(secrets_path)
        except DocumentError as exc:
            raise ConfigError(exc.problem) from None
    if isinstance(doc, dict) and SECRET_NAME in doc:
        value = str(doc[SECRET_NAME]).strip()
        if len(value) < MIN_TOKEN_CHARS:
            raise ConfigError(ConfigProblem(
                f"{secrets_path}: {SECRET_NAME}", f"a token of at least {MIN_TOKEN_CHARS} "
                "characters", f"{len(value)} characters"))
        return Token(value, f"{secrets_path} ({SECRET_NAME})")
    path = Path(token_file)
    try:
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= MIN_TOKEN_CHARS:
            return Token(value, str(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(ConfigProblem("--token-file", "a readable token file",
                                        f"{path}: {exc.strerror or exc}")) from None
    value = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value + "\n")
    except OSError as exc:
        raise ConfigError(ConfigProblem("--token-file", "a writable place for the token",
                                        f"{path}: {exc.strerror or exc}")) from None
    return Token(value, str(path), created=True)


def offered_token(headers) -> str | None:
    """The token a request carries (``Authorization: Bearer`` or ``X-Helios-Token``)."""
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    value = headers.get("X-Helios-Token")
    return value.strip() if value else None


def split_host(host: str) -> tuple[str, int | None]:
    """``Host`` header → (name, port); IPv6 literals keep no brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":") if host.count(":") <= 1 else (host, "", "")
    return name, int(port) if port.isdigit() else None


def host_allowed(host: str | None, port: int, allowed: frozenset[str]) -> bool:
    """Whether a ``Host`` header names this server (IP literal, localhost or allowed name,
    and our port); a rebinding attacker's domain name is none of these."""
    if not host:
        return False
    name, got_port = split_host(host)
    if got_port not in (None, port):
        return False
    if name in ("localhost", *allowed):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def same_origin(headers, host: str) -> bool:
    """A ``POST`` may change state only from this server's own pages (or a non-browser
    client, which sends no ``Origin``): ``Origin`` must be ``http://<Host>``."""
    origin = headers.get("Origin")
    if origin is not None and origin.rstrip("/").lower() != f"http://{host.lower()}":
        return False
    return headers.get("Sec-Fetch-Site", "same-origin").lower() != "cross-site"
