"""``victron_dbus``: on the GX itself, over D-Bus (``com.victronenergy.*``).

Paths and signs from ``reference/victron.md`` §2-§3: telemetry from
``com.victronenergy.system`` (``/Dc/Battery/Power`` is **+ = charging**, converted here to
Helios' + = discharging; ``/Ac/Grid/L*/Power`` + = import), live CCL/DCL from the battery
service's ``/Info/MaxChargeCurrent`` / ``/Info/MaxDischargeCurrent`` (A, × battery voltage).

Modes (``mode:``), as for ``victron_modbus``:

``setpoint`` (default)
    ``com.victronenergy.hub4 /Overrides/Setpoint`` (volatile, W, + = import) refreshed every
    tick; release writes the *invalid* value (empty array), which removes the override and
    lets ESS follow its persisted ``AcPowerSetPoint``. Requires Dynamic ESS off.
``dess``
    Dynamic ESS local mode (4), schedule slot 0 (``/Settings/DynamicEss/Schedule/0/*``)
    written only when the window changes; Venus falls back to self-consumption by itself when
    the window ends. Release empties the slot.

Never written in the loop: ``/Settings/CGwacs/AcPowerSetPoint`` or any other persisted setting
except the DESS window (once per slot) and, once at start-up in ``dess`` mode, the DESS mode.
The D-Bus library is dbus-python on the GX (ships with Venus OS) or jeepney elsewhere
(see :mod:`executor.drivers._dbus`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from executor.config import opt
from executor.drivers import register
from executor.drivers._dbus import ServiceMissing, open_bus
from executor.drivers._victron import check_owner, dess_window
from executor.drivers.base import Measurement, Setpoint
from executor.errors import DriverError, DriverUnavailable

log = logging.getLogger("helios.executor.victron_dbus")

SYSTEM = "com.victronenergy.system"
SETTINGS = "com.victronenergy.settings"
HUB4 = "com.victronenergy.hub4"
OVERRIDE = "/Overrides/Setpoint"
DESS_MODE = "/Settings/DynamicEss/Mode"
HUB4_MODE = "/Settings/CGwacs/Hub4Mode"
SLOT0 = "/Settings/DynamicEss/Schedule/0/"


def _num(value, default: float = 0.0) -> float:
    """A D-Bus value as float; invalid (None) or non-numeric → ``default``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


@register("victron_dbus")
class VictronDbusDriver:
    """Victron GX over D-Bus (see the module docstring)."""

    @dataclass(frozen=True)
    class Config:
        """Options of ``driver: {type: victron_dbus, ...}``."""

        mode: str = opt("setpoint", "setpoint: hub4 /Overrides/Setpoint every tick; dess: "
                        "Dynamic ESS local window in slot 0", kind=str,
                        choices=("setpoint", "dess"))
        bus: str = opt("system", "system (on the GX), session, or a D-Bus address "
                       "(unix:path=...)", kind=str)
        library: str = opt("auto", "auto (dbus-python if installed, else jeepney), "
                           "dbus-python or jeepney", kind=str,
                           choices=("auto", "dbus-python", "jeepney"))
        battery_service: str | None = opt(
            None, "BMS service for live CCL/DCL, e.g. com.victronenergy.battery.socketcan_can0 "
            "(default: the first com.victronenergy.battery.* on the bus)", kind=str,
            optional=True)
        timeout_s: float = opt(2.0, "Per-call timeout", "s", gt=0)
        backoff_max_s: float = opt(60.0, "Longest wait between reconnect attempts", "s", gt=0)

    def __init__(self, config: VictronDbusDriver.Config, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.bus = None
        self._failures = 0
        self._retry_at: datetime | None = None
        self._battery_service: str | None = config.battery_service
        self._released = False
        self._window: tuple | None = None
        self._target_soc_supported = True

    # --- connection ----------------------------------------------------------------------

    @property
    def _address(self) -> str:
        b = self.config.bus
        return {"system": "SYSTEM", "session": "SESSION"}.get(b, b)

    def _connect(self):
        if self.bus is not None:
            return self.bus
        now = self.clock()
        if self._retry_at is not None and now < self._retry_at:
            raise DriverUnavailable(f"D-Bus unreachable; next attempt in "
                                    f"{(self._retry_at - now).total_seconds():.0f} s")
        try:
            self.bus = open_bus(self.config.library, self._address, self.config.timeout_s)
        except DriverUnavailable:
            self._backoff()
            raise
        if self._failures:
            log.warning("D-Bus reachable again after %d failed attempt(s)", self._failures)
        self._failures, self._retry_at = 0, None
        self._released, self._window = False, None
        return self.bus

    def _backoff(self) -> None:
        self._failures += 1
        delay = min(2.0 ** (self._failures - 1), self.config.backoff_max_s)
        self._retry_at = self.clock() + timedelta(seconds=delay)
        if self._failures == 1:
            log.warning("D-Bus connection lost; retrying with back-off up to %.0f s",
                        self.config.backoff_max_s)

    def _do(self, fn, *args):
        bus = self._connect()
        try:
            return fn(bus, *args)
        except DriverUnavailable:
            try:
                bus.close()
            finally:
                self.bus = None
            self._backoff()
            raise

    def _set(self, service: str, path: str, value) -> None:
        code = self._do(lambda bus: bus.set_value(service, path, value))
        if code != 0:
            raise DriverError(f"{service}{path}: SetValue({value!r}) refused (code {code})")

    # --- Driver ------------------------------------------------------------------------

    def _find_battery(self, bus) -> str | None:
        if self._battery_service is None:
            names = sorted(n for n in bus.list_names()
                           if n.startswith("com.victronenergy.battery."))
            self._battery_service = names[0] if names else ""
        return self._battery_service or None

    def read(self) -> Measurement:
        """System telemetry (+ live CCL/DCL from the battery service when there is one)."""
        now = self.clock()
        try:
            v = self._do(lambda bus: bus.get_items(SYSTEM))
        except ServiceMissing as exc:
            raise DriverUnavailable(f"systemcalc not on the bus ({exc})") from None
        soc = v.get("/Dc/Battery/Soc")
        soc = None if soc is None or isinstance(soc, bool) else float(soc)
        volts = _num(v.get("/Dc/Battery/Voltage"))
        grid = sum(_num(v.get(f"/Ac/Grid/L{i}/Power")) for i in (1, 2, 3))
        pv = _num(v.get("/Dc/Pv/Power")) + sum(
            _num(v.get(f"/Ac/{where}/L{i}/Power"))
            for where in ("PvOnGrid", "PvOnOutput", "PvOnGenset") for i in (1, 2, 3))
        load = sum(_num(v.get(f"/Ac/Consumption/L{i}/Power")) for i in (1, 2, 3))
        max_charge_w = max_discharge_w = None
        battery = self._do(self._find_battery)
        if battery and volts > 0:
            try:
                b = self._do(lambda bus: bus.get_items(battery))
            except ServiceMissing:
                self._battery_service = None  # look again next tick
            else:
                ccl, dcl = b.get("/Info/MaxChargeCurrent"), b.get("/Info/MaxDischargeCurrent")
                if ccl is not None:
                    max_charge_w = _num(ccl) * volts
                if dcl is not None:
                    max_discharge_w = _num(dcl) * volts
        return Measurement(
            at=now, soc_pct=soc,
            battery_power_w=-_num(v.get("/Dc/Battery/Power")),  # Victron + = charging
            grid_power_w=grid, pv_power_w=pv, load_power_w=load,
            max_charge_w=max_charge_w, max_discharge_w=max_discharge_w,
        )

    def check_ownership(self, take_over: bool = True) -> None:
        """Refuse to run when another controller owns the ESS; take DESS local mode if asked
        (``take_over=False``: only check, write nothing — ``--dry-run`` and ``status``).

        Raises
        ------
        ForeignControllerError
            Dynamic ESS in VRM mode (1); DESS on while mode is ``setpoint``; ESS in external
            control (Hub4Mode 3).
        """
        hub4 = self._do(lambda bus: bus.get_value(SETTINGS, HUB4_MODE))
        try:
            mode = int(_num(self._do(lambda bus: bus.get_value(SETTINGS, DESS_MODE))))
        except ServiceMissing:
            raise
        except DriverError:
            mode = 0  # firmware without Dynamic ESS: nothing to fight with
        if check_owner(int(_num(hub4)), mode, self.config.mode, OVERRIDE) and take_over:
            log.warning("switching Dynamic ESS to local mode 4 (one settings write)")
            self._set(SETTINGS, DESS_MODE, 4)

    def apply(self, setpoint: Setpoint) -> None:
        """Send the setpoint (override every tick, or the DESS window when it changes)."""
        if self.config.mode == "setpoint":
            self._set(HUB4, OVERRIDE, float(setpoint.grid_power_w))
            self._released = False
            return
        start, duration, soc, feed_in = dess_window(setpoint)
        soc = round(soc, 1)
        window = (start, duration, soc, feed_in)
        if window != self._window:
            # Start last: a window only becomes active once it has its duration and target.
            # TargetSoc (decimal, Venus >= 3.70) wins over the integer Soc when > 0.
            writes = [("Duration", duration), ("Soc", int(round(soc))), ("Strategy", 0),
                      ("Restrictions", 0), ("AllowGridFeedIn", feed_in)]
            if self._target_soc_supported:
                writes.append(("TargetSoc", soc))
            for path, value in writes + [("Start", start)]:
                try:
                    self._set(SETTINGS, SLOT0 + path, value)
                except DriverError:
                    if path != "TargetSoc" or isinstance(sys.exc_info()[1], DriverUnavailable):
                        raise
                    log.info("no Schedule/0/TargetSoc on this firmware: integer Soc only")
                    self._target_soc_supported = False
            self._window = window
        self._released = False

    def release(self) -> None:
        """Hand control back (override invalidated / DESS slot 0 emptied); no-op when done."""
        if self._released:
            return
        if self.config.mode == "setpoint":
            self._set(HUB4, OVERRIDE, None)
        else:
            self._set(SETTINGS, SLOT0 + "Start", 0)
            self._set(SETTINGS, SLOT0 + "Duration", 0)
            self._window = None
        self._released = True

    def close(self) -> None:
        """Close the bus connection."""
        if self.bus is not None:
            self.bus.close()
            self.bus = None
