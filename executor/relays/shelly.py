"""``shelly``: a Shelly relay (Plus/Pro 1, 1PM, 2PM…, or a Gen1 Shelly 1 / 1PM / 2.5) over HTTP.

``gen: 2`` (Gen2+ RPC over HTTP GET)
    ``GET <url>/rpc/Switch.Set?id=<channel>&on=true|false`` → ``{"was_on": bool}``;
    ``GET <url>/rpc/Switch.GetStatus?id=<channel>`` → ``{"id": 0, "output": bool, ...}``.
    Gen2 authentication is SHA-256 digest, which ``urllib`` cannot do: leave it off on a
    relay used here (as for the Shelly meters, ``executor/drivers/_meters.py``).
``gen: 1``
    ``GET <url>/relay/<channel>?turn=on|off`` and ``GET <url>/relay/<channel>`` →
    ``{"ison": bool, ...}``; optional HTTP Basic auth.

Every answer is checked: an HTTP error status, a body that is not JSON or lacks the field,
or a switch that reports the other state after ``Set`` is a :class:`DriverError` naming the
URL (credentials never appear). Standard library only (``executor/drivers/_http.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from executor.configspec import opt
from executor.drivers._http import basic_auth, field, request_json
from executor.errors import DriverError
from executor.relays import register
from executor.relays.base import RelayConfig


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise DriverError(f"{what}: expected true or false, got {value!r}")
    return value


@register("shelly")
class ShellyRelay:
    """One switch channel of a Shelly."""

    @dataclass(frozen=True)
    class Config(RelayConfig):
        """``executor.relays: [{type: shelly, device: ..., url: http://192.168.1.40}]``."""

        url: str = opt("", "The Shelly's base URL (http://<address>); required")
        gen: int = opt(2, "Shelly generation: 1 (/relay/N?turn=) or 2 and later (RPC "
                       "Switch.Set / Switch.GetStatus)", ge=1, le=4)
        channel: int = opt(0, "The switch id / relay index", ge=0, le=3)
        username: str | None = opt(None, "Gen 1: HTTP Basic user (when auth is on)")
        password: str | None = opt(None, "Gen 1: HTTP Basic password", secret=True)
        timeout_s: float = opt(2.0, "HTTP timeout", "s", gt=0)

    @staticmethod
    def check(config: ShellyRelay.Config) -> list[tuple[str, str, str]]:
        """Problems across keys: (key, expected, found)."""
        if not config.url.startswith(("http://", "https://")):
            return [("url", "an http:// or https:// URL of the Shelly", repr(config.url))]
        return []

    def __init__(self, config: ShellyRelay.Config, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.base = config.url.rstrip("/")
        self.headers: dict = {}
        if config.gen == 1 and config.username:
            self.headers["Authorization"] = basic_auth(config.username, config.password or "")

    def describe(self) -> str:
        """Short name for the log (no credentials: they are never in the URL)."""
        return f"shelly gen {self.config.gen} {self.base} #{self.config.channel}"

    def _get(self, path: str):
        return request_json(self.base + path, headers=self.headers,
                            timeout_s=self.config.timeout_s)

    def _status_path(self) -> str:
        ch = self.config.channel
        return f"/rpc/Switch.GetStatus?id={ch}" if self.config.gen >= 2 else f"/relay/{ch}"

    def _state(self, payload, path: str) -> bool:
        key = "output" if self.config.gen >= 2 else "ison"
        try:
            return _flag(field(payload, key), f"{self.base}{path} {key}")
        except DriverError as exc:
            raise DriverError(f"{self.base}{path}: {exc}") from None

    def read(self) -> bool:
        """The switch output now (Gen2+ also keeps the meter's ``apower``: :meth:`power_w`)."""
        path = self._status_path()
        payload = self._get(path)
        if self.config.gen >= 2 and isinstance(payload, dict):
            power = payload.get("apower")
            ok = isinstance(power, (int, float)) and not isinstance(power, bool)
            self._apower_w = float(power) if ok and math.isfinite(power) else None
        return self._state(payload, path)

    def power_w(self) -> float | None:
        """The load's power at the last :meth:`read` (Gen2+ ``apower``; None: unmeasured)."""
        return getattr(self, "_apower_w", None)

    def set(self, on: bool) -> None:
        """Switch on or off, then check the device reports that state."""
        ch = self.config.channel
        if self.config.gen >= 2:
            path = f"/rpc/Switch.Set?id={ch}&on={'true' if on else 'false'}"
            answer = self._get(path)
            if not isinstance(answer, dict) or "was_on" not in answer:
                raise DriverError(f"{self.base}{path}: unexpected answer {answer!r:.60}")
            state = self.read()
        else:
            path = f"/relay/{ch}?turn={'on' if on else 'off'}"
            state = self._state(self._get(path), path)
        if state != on:
            raise DriverError(f"{self.base}: switched {'on' if on else 'off'} but it reports "
                              f"{'on' if state else 'off'}")

    def close(self) -> None:
        """Nothing held open (one HTTP request per call)."""
