"""``gx_relay``: a relay of the Victron GX (Cerbo GX: relay 0 and 1) on its D-Bus.

``com.victronenergy.system /Relay/<N>/State`` (0 open, 1 closed; writable), published by
dbus-systemcalc-py's ``RelayState`` delegate. The GX acts on it only when the relay's
function is *Manual* (``com.victronenergy.settings /Settings/Relay/Function`` for relay 0,
``/Settings/Relay/<N>/Function`` for the others; 2 = manual, 0 = alarm, 1 = generator…):
another function is reported as an error naming the setting, and nothing is written. The
settings service missing (an emulator, an old GX) skips that check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from executor.configspec import opt
from executor.drivers._dbus import ServiceMissing, open_bus
from executor.errors import DriverError, DriverUnavailable
from executor.relays import register
from executor.relays.base import RelayConfig

SYSTEM = "com.victronenergy.system"
SETTINGS = "com.victronenergy.settings"
FUNCTION_MANUAL = 2


def function_path(relay: int) -> str:
    """The settings path of a relay's function (relay 0 has no index, as on Venus OS)."""
    return "/Settings/Relay/Function" if relay == 0 else f"/Settings/Relay/{relay}/Function"


@register("gx_relay")
class GxRelay:
    """One GX relay over D-Bus (dbus-python on the GX, jeepney elsewhere)."""

    @dataclass(frozen=True)
    class Config(RelayConfig):
        """``executor.relays: [{type: gx_relay, device: ..., relay: 0}]``."""

        relay: int = opt(0, "Relay number (Cerbo GX: 0 or 1)", ge=0, le=7)
        bus: str = opt("SYSTEM", "D-Bus address (SYSTEM on the GX, or unix:path=...)")
        library: str = opt("auto", "D-Bus library", choices=("auto", "dbus-python", "jeepney"))
        timeout_s: float = opt(2.0, "D-Bus call timeout", "s", gt=0)

    def __init__(self, config: GxRelay.Config, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.bus = None
        self.path = f"/Relay/{config.relay}/State"
        self._checked = False

    def describe(self) -> str:
        """Short name for the log."""
        return f"gx_relay {self.config.relay}"

    def _connect(self):
        if self.bus is None:
            try:
                self.bus = open_bus(self.config.library, self.config.bus, self.config.timeout_s)
            except ImportError as exc:  # a log line each tick, not a traceback
                raise DriverUnavailable(f"D-Bus library missing ({exc.name or exc})") from None
        return self.bus

    def _call(self, fn, *args):
        try:
            return fn(self._connect(), *args)
        except (DriverUnavailable, ServiceMissing):
            self.close()  # reconnect on the next call
            raise

    def _check_function(self) -> None:
        if self._checked:
            return
        path = function_path(self.config.relay)
        try:
            function = self._call(lambda bus: bus.get_value(SETTINGS, path))
        except ServiceMissing:
            function = None  # no settings service: nothing to check
        if function is not None and function != FUNCTION_MANUAL:
            raise DriverError(f"{SETTINGS}{path} is {function!r}, not {FUNCTION_MANUAL} "
                              "(manual): set the relay's function to Manual on the GX")
        self._checked = True

    def read(self) -> bool | None:
        """The relay state (None: invalid)."""
        value = self._call(lambda bus: bus.get_value(SYSTEM, self.path))
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DriverError(f"{SYSTEM}{self.path}: expected 0 or 1, got {value!r}")
        return bool(value)

    def set(self, on: bool) -> None:
        """Close (``on``) or open the relay."""
        self._check_function()
        code = self._call(lambda bus: bus.set_value(SYSTEM, self.path, 1 if on else 0))
        if code != 0:
            raise DriverError(f"{SYSTEM}{self.path}: SetValue({int(on)}) refused (code {code})")

    def close(self) -> None:
        """Close the D-Bus connection."""
        if self.bus is not None:
            try:
                self.bus.close()
            finally:
                self.bus = None
