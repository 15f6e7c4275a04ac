"""Car-side charging control: start/stop (and amps) sent to the car's cloud API, for a charger
that cannot be controlled. Shared by :mod:`executor.evse.tesla` and
:mod:`executor.evse.kia_hyundai`; standard library only (urllib).

Every command is billed or rate-limited by the vendor, so a :class:`CarSide` charger

* sends a command **only on a change** of what it wants (on/off, or the amps by at least
  ``amps_step_a``), never to repeat itself every tick;
* leaves at least ``min_command_interval_s`` between two commands; a wanted change that comes
  sooner waits for a later tick (the follower calls every tick, so it is sent then);
* on HTTP 429 waits ``Retry-After`` (or ``min_command_interval_s`` × 10 without one) before
  the next command; on 401/403 stops commanding for ``auth_backoff_s`` (the token is wrong or
  expired: a :class:`DriverError` naming the key, logged once per back-off);
* never reads the car on a tick: :meth:`read` reports what was last commanded (the planner's
  vehicle provider reads the car, at its own cached rate).

Subclasses say how a command is made (:meth:`CarSide._command`) and what an asleep car
answers (:class:`Asleep`).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from executor.configspec import opt
from executor.errors import DriverError, DriverUnavailable
from executor.evse.base import ChargerConfig, ChargerState

log = logging.getLogger("helios.executor.evse.car")

#: bodies larger than this are refused
MAX_BODY_BYTES = 1 << 20


class HttpStatus(DriverUnavailable):
    """An HTTP error status from the car's API (``status``, ``retry_after_s``)."""

    def __init__(self, message: str, status: int, retry_after_s: float | None = None,
                 body: Any = None):
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s
        self.body = body


class Asleep(DriverUnavailable):
    """The car is asleep or offline (Tesla: HTTP 408 "vehicle unavailable")."""


def request(method: str, url: str, *, body: Any = None, headers: dict | None = None,
            timeout_s: float = 10.0, context: ssl.SSLContext | None = None) -> Any:
    """``method url`` with a JSON body; the decoded JSON answer.

    Raises
    ------
    HttpStatus
        An HTTP error status (its code, ``Retry-After`` and decoded body kept).
    DriverUnavailable
        Refused, timeout, TLS failure.
    DriverError
        The answer is not JSON.
    """
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=context) as resp:
            raw = resp.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        retry = exc.headers.get("Retry-After") if exc.headers else None
        try:
            retry_s = float(retry) if retry is not None else None
        except ValueError:
            retry_s = None
        try:
            payload = json.loads(exc.read(MAX_BODY_BYTES).decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            payload = None
        raise HttpStatus(f"{method} {url}: HTTP {exc.code} {exc.reason}", exc.code, retry_s,
                         payload) from None
    except urllib.error.URLError as exc:
        raise DriverUnavailable(f"{method} {url}: {exc.reason}") from None
    except (socket.timeout, TimeoutError):  # noqa: UP041 - distinct on Python 3.8 (GX)
        raise DriverUnavailable(f"{method} {url}: no answer within {timeout_s:g} s") from None
    except (OSError, ValueError) as exc:
        raise DriverUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    if len(raw) > MAX_BODY_BYTES:
        raise DriverError(f"{method} {url}: answer larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        raise DriverError(f"{method} {url}: not JSON ({raw[:60]!r})") from None


@dataclass(frozen=True)
class CarSideConfig(ChargerConfig):
    """Keys every car-side charger has (besides ``type`` and the vendor's own)."""

    base_url: str = opt("", "The car API's base URL")
    timeout_s: float = opt(10.0, "HTTP timeout", "s", gt=0)
    min_command_interval_s: float = opt(60.0, "Shortest time between two commands to the "
                                        "car (each is billed or rate-limited)", "s", ge=0)
    amps_step_a: float = opt(2.0, "Smallest change of the current worth a command", "A", ge=0)
    auth_backoff_s: float = opt(3600.0, "After a 401/403: no command for this long", "s",
                                ge=0)


class CarSide:
    """What a car-side charger shares: the wanted state, the command budget, the errors."""

    #: the ``executor.ev_charger`` key that holds the token (named in a 401's message)
    TOKEN_KEY = "executor.ev_charger.token"
    #: the car can be given a current (Tesla) or only started/stopped (Kia/Hyundai)
    SETS_AMPS = True

    def __init__(self, config: CarSideConfig, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.sent: tuple[bool, int] | None = None  # (charging, amps) last acknowledged
        self.last_command_at: datetime | None = None
        self.blocked_until: datetime | None = None  # 429 Retry-After or 401 back-off
        self.commands = 0
        self.released = False

    # -- what the follower calls

    def read(self) -> ChargerState:
        """What was last commanded (no call to the car: every call counts)."""
        if self.sent is None:
            return ChargerState("not commanded yet")
        on, amps = self.sent
        return ChargerState(f"commanded {'on' if on else 'off'}" + (f" {amps} A" if on else ""),
                            charging=on, current_a=float(amps) if on else 0.0)

    def set_current(self, amps: float) -> None:
        """Charge at ``amps`` (0 = stop); a command only when it changes and is allowed."""
        self.released = False
        want = (amps > 0, int(round(min(amps, self.config.max_current_a))) if amps > 0 else 0)
        self._want(want)

    def release(self) -> None:
        """Hand the car back to its own behaviour: charging at the full current when plugged
        in (what it does without Helios), once."""
        if self.released:
            return
        self._want((True, int(self.config.max_current_a)), any_interval=True)
        self.released = self.sent == (True, int(self.config.max_current_a))

    def close(self) -> None:
        """Nothing held open (one HTTP request per command)."""

    # -- the command budget

    def _same(self, want: tuple[bool, int]) -> bool:
        """``want`` needs no command: same on/off and (when amps count) within the step."""
        if self.sent is None:
            return False
        on, amps = self.sent
        if not want[0] or not on:
            return want[0] == on
        return not self.SETS_AMPS or want[1] == amps or abs(want[1] - amps) < \
            self.config.amps_step_a

    def _want(self, want: tuple[bool, int], any_interval: bool = False) -> None:
        if self._same(want):
            return
        now = self.clock()
        if self.blocked_until is not None and now < self.blocked_until:
            return  # 429 / 401: wait
        if (not any_interval and self.last_command_at is not None
                and (now - self.last_command_at).total_seconds()
                < self.config.min_command_interval_s):
            return  # too soon: a later tick sends it
        self.last_command_at = now
        try:
            self._send(want)
        except HttpStatus as exc:
            self._failed(exc, now)
            raise
        self.sent = want

    def _failed(self, exc: HttpStatus, now: datetime) -> None:
        from_ts = now.timestamp()
        if exc.status == 429:
            wait = (exc.retry_after_s if exc.retry_after_s is not None
                    else 10 * self.config.min_command_interval_s)
            self.blocked_until = datetime.fromtimestamp(from_ts + wait, tz=now.tzinfo)
            log.warning("ev car: rate-limited (429): no command for %.0f s", wait)
        elif exc.status in (401, 403):
            self.blocked_until = datetime.fromtimestamp(from_ts + self.config.auth_backoff_s,
                                                        tz=now.tzinfo)
            raise DriverError(f"{exc} — check {self.TOKEN_KEY} (no command for "
                              f"{self.config.auth_backoff_s:.0f} s)") from None

    def _send(self, want: tuple[bool, int]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
