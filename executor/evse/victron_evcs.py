"""``victron_evcs``: the Victron EV Charging Station on the GX's D-Bus.

Service ``com.victronenergy.evcharger.<x>`` (found on the bus, or ``service:``):
``/Mode`` 0 = Manual, 1 = Auto (solar surplus), 2 = Scheduled; ``/StartStop`` 0/1 (manual
mode only); ``/SetCurrent`` the manual-mode current [A]; ``/MaxCurrent`` [A]; ``/Status``
0 disconnected, 1 connected, 2 charging, 3 charged, 4 waiting for sun, … 8-14 faults;
``/Ac/Power`` [W] (../shared/reference/devices.md §2.5). The same paths are published by the
community Alfen bridge ``victron-alfen-charger``, so an Alfen behind a GX works here too.

Following the plan puts the station in Manual mode (the mode and start/stop it was in are
remembered), writes ``/SetCurrent`` (capped by ``/MaxCurrent``) and ``/StartStop``; only
changed values are written (D-Bus values stay; there is no validity time). :meth:`release`
gives the station back the mode and start/stop it had, so a stale plan returns it to the
owner's own setting (Auto = solar surplus, Scheduled…), or ``on_stale: stop`` stops it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from executor.configspec import opt
from executor.drivers._dbus import open_bus
from executor.errors import DriverError, DriverUnavailable
from executor.evse import register
from executor.evse.base import ChargerConfig, ChargerState

log = logging.getLogger("helios.executor.evse.victron")

PREFIX = "com.victronenergy.evcharger."
MODE_MANUAL = 0
STATUS = {0: "disconnected", 1: "connected", 2: "charging", 3: "charged",
          4: "waiting for sun", 5: "waiting for RFID", 6: "waiting for start", 7: "low SoC",
          20: "charging limit", 21: "start charging", 22: "switching to 3 phase",
          23: "switching to 1 phase", 24: "stop charging"}


@register("victron_evcs")
class VictronEvcs:
    """The charging station as a D-Bus service of the GX."""

    @dataclass(frozen=True)
    class Config(ChargerConfig):
        """``executor.ev_charger: {type: victron_evcs, ...}``."""

        bus: str = opt("SYSTEM", "D-Bus address (SYSTEM on the GX, or unix:path=...)")
        service: str | None = opt(None, "The evcharger service name (default: the first "
                                  "com.victronenergy.evcharger.* on the bus)")
        library: str = opt("auto", "D-Bus library", choices=("auto", "dbus-python", "jeepney"))
        timeout_s: float = opt(2.0, "D-Bus call timeout", "s", gt=0)

    def __init__(self, config: VictronEvcs.Config, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.bus = None
        self._service = config.service
        self._saved: tuple[int, int] | None = None  # (Mode, StartStop) before we took over

    def _connect(self):
        if self.bus is None:
            self.bus = open_bus(self.config.library, self.config.bus, self.config.timeout_s)
        return self.bus

    @property
    def service(self) -> str:
        """The evcharger service (looked up on the bus once)."""
        if self._service is None:
            names = sorted(n for n in self._connect().list_names() if n.startswith(PREFIX))
            if not names:
                raise DriverUnavailable(f"no {PREFIX}* service on the bus")
            self._service = names[0]
        return self._service

    def _items(self) -> dict:
        try:
            return self._connect().get_items(self.service)
        except DriverUnavailable:
            self._drop()
            raise

    def _set(self, path: str, value) -> None:
        code = self._connect().set_value(self.service, path, value)
        if code != 0:
            raise DriverError(f"{self.service}{path}: SetValue({value!r}) refused (code {code})")

    def _drop(self) -> None:
        if self.bus is not None:
            self.bus.close()
        self.bus = None
        if self.config.service is None:
            self._service = None

    def read(self) -> ChargerState:
        """Status, power and the current in force."""
        v = self._items()
        code = v.get("/Status")
        status = STATUS.get(code, f"fault {code}" if isinstance(code, int) else "unknown")
        return ChargerState(status=status,
                            connected=None if code is None else code != 0,
                            charging=None if code is None else code == 2,
                            power_w=v.get("/Ac/Power"), current_a=v.get("/SetCurrent"))

    def set_current(self, amps: float) -> None:
        """Manual mode, ``/SetCurrent`` = ``amps`` and start, or stop at 0."""
        v = self._items()
        if self._saved is None:
            self._saved = (int(v.get("/Mode") or 0), int(v.get("/StartStop") or 0))
            log.info("ev charger %s: taking over (mode %s, start/stop %s)", self.service,
                     *self._saved)
        if v.get("/Mode") != MODE_MANUAL:
            self._set("/Mode", MODE_MANUAL)
        if amps > 0:
            top = v.get("/MaxCurrent")
            amps = min(amps, float(top)) if isinstance(top, (int, float)) and top > 0 else amps
            if v.get("/SetCurrent") != amps:
                self._set("/SetCurrent", float(amps))
            if v.get("/StartStop") != 1:
                self._set("/StartStop", 1)
        elif v.get("/StartStop") != 0:
            self._set("/StartStop", 0)

    def release(self) -> None:
        """Give the station back the mode and start/stop it had before."""
        if self._saved is None:
            return
        mode, start = self._saved
        v = self._items()
        if v.get("/Mode") != mode:
            self._set("/Mode", mode)
        if v.get("/StartStop") != start:
            self._set("/StartStop", start)
        log.info("ev charger %s: released (mode %s, start/stop %s)", self.service, mode, start)
        self._saved = None

    def close(self) -> None:
        """Close the D-Bus connection."""
        self._drop()
