"""``victron_dbus``: on the GX itself, over D-Bus (``com.victronenergy.*``).

Paths and signs from ``reference/victron.md`` §2-§3: telemetry from
``com.victronenergy.system`` (``/Dc/Battery/Power`` is **+ = charging**, converted here to
Helios' + = discharging; ``/Ac/Grid/L*/Power`` + = import), live CCL/DCL from the BMS that
systemcalc uses (``/ActiveBmsService``), ``/Info/MaxChargeCurrent`` / ``MaxDischargeCurrent``
(A, × battery voltage).

Modes (``mode:``):

``setpoint`` (default)
    ``com.victronenergy.hub4 /Overrides/Setpoint`` (volatile, W, + = import) refreshed every
    tick; release writes the *invalid* value (empty array), which removes the override and
    lets ESS follow its persisted ``AcPowerSetPoint`` — exactly what systemcalc itself does.
    Requires Dynamic ESS off (mode 0; a legacy 2/3 is switched to 0). No fail-safe of its
    own: the override has no timeout, so this mode is for the GX itself (daemontools restarts
    a dead executor within seconds, and it releases at start-up).
``dess``
    Dynamic ESS local mode (4): each tick's intent becomes a window that ends
    ``dess_window_s`` after the tick and is renewed every tick (one ``Duration`` write): slot 0
    up to the plan slot's end, the rest written ahead into slot 1,
    so Venus is back in its own self-consumption ``dess_window_s`` + 5 s after the executor
    dies. The DESS limits are kept at the configured and live battery limits, every window
    field is written (``Flags`` 0), slots 1-47 are cleared at start-up, and every tick checks
    that DESS follows the window (:mod:`executor.drivers._victron`). Release empties slot 0;
    shutdown (SIGTERM, ``--once``) also puts the DESS mode back to what it was.

Persisted settings written: in ``dess`` mode the DESS window (start once per slot, duration
every tick), the four DESS limits (when they change), the DESS mode (start-up and shutdown),
stale slots 1-47 (once) and, when unset or higher than Helios' limits, ESS's own
``MaxDischargePower`` and DVCC's ``MaxChargeCurrent`` (start-up; restored on exit). Never
``/Settings/CGwacs/AcPowerSetPoint``.
The D-Bus library is dbus-python on the GX (ships with Venus OS) or jeepney elsewhere
(see :mod:`executor.drivers._dbus`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from executor.config import opt
from executor.drivers import register
from executor.drivers._dbus import ServiceMissing, open_bus
from executor.drivers._victron import (
    DESS_GRACE_S,
    DESS_LOCAL,
    DESS_OFF,
    DessWindow,
    check_capacity,
    check_owner,
    dess_limits,
    dess_status_problem,
    dess_window,
    held_target,
    intent_of,
    limit_defaults,
    limits_to_write,
)
from executor.drivers.base import Measurement, Setpoint
from executor.errors import DriverError, DriverUnavailable, ForeignControllerError

log = logging.getLogger("helios.executor.victron_dbus")

SYSTEM = "com.victronenergy.system"
SETTINGS = "com.victronenergy.settings"
HUB4 = "com.victronenergy.hub4"
OVERRIDE = "/Overrides/Setpoint"
DESS_MODE = "/Settings/DynamicEss/Mode"
HUB4_MODE = "/Settings/CGwacs/Hub4Mode"
DESS = "/Settings/DynamicEss/"
SLOT = DESS + "Schedule/{}/"
SLOT0 = SLOT.format(0)
BATTERY_LIFE = "/Settings/CGwacs/BatteryLife/State"
ESS_MAX_DISCHARGE = "/Settings/CGwacs/MaxDischargePower"  # W, -1 = inverter limit
DVCC_MAX_CHARGE_CURRENT = "/Settings/SystemSetup/MaxChargeCurrent"  # A, -1 = none
DVCC = "/Settings/Services/Bol"
#: Venus 3.80 (venus-dynamicess) publishes the DESS status on its own service
DESS_SERVICE = "com.victronenergy.dynamicess"
NUM_SCHEDULES = 48
#: a DESS mode write that Helios makes persists until it writes the old value back


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
                        "Dynamic ESS local windows in slot 0, renewed every tick", kind=str,
                        choices=("setpoint", "dess"))
        bus: str = opt("system", "system (on the GX), session, or a D-Bus address "
                       "(unix:path=...)", kind=str)
        library: str = opt("auto", "auto (dbus-python if installed, else jeepney), "
                           "dbus-python or jeepney", kind=str,
                           choices=("auto", "dbus-python", "jeepney"))
        battery_service: str | None = opt(
            None, "BMS service for live CCL/DCL, e.g. com.victronenergy.battery.socketcan_can0 "
            "(default: system /ActiveBmsService, else the first com.victronenergy.battery.*)",
            kind=str, optional=True)
        timeout_s: float = opt(2.0, "Per-call timeout", "s", gt=0)
        backoff_max_s: float = opt(60.0, "Longest wait between reconnect attempts", "s", gt=0)
        dess_window_s: float = opt(45.0, "dess: each window ends this long after the tick that "
                                   "wrote it (GX back in self-consumption this + 5 s after "
                                   "the executor dies); must exceed the tick", "s", ge=15,
                                   le=600)
        max_charge_w: float = opt(5000.0, "dess: DESS battery charge limit (default "
                                  "executor.limits.max_charge_w; live CCL lowers it)", "W", ge=0)
        max_discharge_w: float = opt(5000.0, "dess: DESS battery discharge limit (default "
                                     "executor.limits.max_discharge_w; live DCL lowers it)",
                                     "W", ge=0)
        max_import_w: float = opt(17000.0, "dess: DESS grid import limit (default "
                                  "executor.limits.max_import_w)", "W", ge=0)
        max_export_w: float = opt(10000.0, "dess: DESS grid export limit (default "
                                  "executor.limits.max_export_w; 0 when export is disabled)",
                                  "W", ge=0)

    @staticmethod
    def config_defaults(limits) -> dict:
        """The DESS limits default to the executor's limits."""
        return limit_defaults(limits)

    def __init__(self, config: VictronDbusDriver.Config, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.bus = None
        self._failures = 0
        self._retry_at: datetime | None = None
        self._battery_service: str | None = config.battery_service
        self._released = False
        self._system: dict = {}
        self._last: Measurement | None = None
        self._window: DessWindow | None = None  # the window as a whole (slots 0 + 1)
        self._written: dict = {}  # schedule slot -> the DessWindow written there
        self._window_changed_at: datetime | None = None
        self._fault: str | None = None
        self._fault_until: datetime | None = None
        self._restore_mode: int | None = None
        self._restore: list = []  # (setting, value) Helios changed, put back on exit

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
        self._released, self._window, self._written = False, None, {}
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

    def _get(self, service: str, path: str):
        return self._do(lambda bus: bus.get_value(service, path))

    def _set(self, service: str, path: str, value) -> None:
        code = self._do(lambda bus: bus.set_value(service, path, value))
        if code != 0:
            raise DriverError(f"{service}{path}: SetValue({value!r}) refused (code {code})")

    def _setting(self, path: str):
        """A setting's value, None when it does not exist (older firmware)."""
        try:
            return self._get(SETTINGS, path)
        except ServiceMissing:
            raise
        except DriverUnavailable:
            raise
        except DriverError:
            return None

    # --- Driver ------------------------------------------------------------------------

    def _find_battery(self, bus) -> str | None:
        if self._battery_service is None:
            active = self._system.get("/ActiveBmsService")
            if isinstance(active, str) and active.startswith("com.victronenergy.battery."):
                return active  # what systemcalc uses, looked up again every tick
            names = sorted(n for n in bus.list_names()
                           if n.startswith("com.victronenergy.battery."))
            return names[0] if names else None
        return self._battery_service or None

    def read(self) -> Measurement:
        """System telemetry (+ live CCL/DCL from the battery service when there is one)."""
        now = self.clock()
        try:
            v = self._do(lambda bus: bus.get_items(SYSTEM))
        except ServiceMissing as exc:
            raise DriverUnavailable(f"systemcalc not on the bus ({exc})") from None
        self._system = v
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
                pass  # looked up again next tick
            else:
                ccl, dcl = b.get("/Info/MaxChargeCurrent"), b.get("/Info/MaxDischargeCurrent")
                if ccl is not None:
                    max_charge_w = _num(ccl) * volts
                if dcl is not None:
                    max_discharge_w = _num(dcl) * volts
        self._last = Measurement(
            at=now, soc_pct=soc,
            battery_power_w=-_num(v.get("/Dc/Battery/Power")),  # Victron + = charging
            grid_power_w=grid, pv_power_w=pv, load_power_w=load,
            max_charge_w=max_charge_w, max_discharge_w=max_discharge_w,
        )
        return self._last

    def check_ownership(self, take_over: bool = True) -> None:
        """Refuse to run when another controller owns the ESS or DESS could not act; in
        ``dess`` mode take DESS local mode, clear stale slots and write the DESS limits
        (``take_over=False``: only check, write nothing — ``--dry-run`` and ``status``).

        Raises
        ------
        ForeignControllerError
            Dynamic ESS in VRM mode (1); DESS local while mode is ``setpoint``; ESS in
            external control (Hub4Mode 3); ``dess`` with "keep batteries charged", DESS
            battery capacity 0, or DVCC off (then DESS cannot limit its charge rate).
        """
        hub4 = int(_num(self._get(SETTINGS, HUB4_MODE)))
        mode = self._setting(DESS_MODE)
        if mode is None:
            if self.config.mode == "dess":
                raise ForeignControllerError("this GX has no Dynamic ESS settings "
                                             "(Venus OS < 3.10?): use mode: setpoint")
            mode = 0  # firmware without Dynamic ESS: nothing to fight with
        mode = int(_num(mode))
        life = self._setting(BATTERY_LIFE)
        action = check_owner(hub4, mode, self.config.mode, OVERRIDE,
                             None if life is None else int(_num(life)))
        if self.config.mode == "dess":
            check_capacity(self._setting(DESS + "BatteryCapacity"))
            if not _num(self._setting(DVCC)):
                raise ForeignControllerError(
                    "DVCC is off (Settings/Services/Bol = 0): Dynamic ESS passes its charge "
                    "rate to the Multi only through DVCC, so it could not hold the charge "
                    "limit; turn DVCC on or use mode: setpoint")
        if not take_over:
            return
        if action == "off":
            log.warning("Dynamic ESS mode %d (legacy 2/3 run DESS on Venus 3.80): switching it "
                        "off (mode 0)", mode)
            self._set(SETTINGS, DESS_MODE, DESS_OFF)
        if self.config.mode != "dess":
            return
        self._clear_slots()
        self._keep_limits(None)
        self._cap_ess_limits()
        if action == "restart":
            log.warning("Dynamic ESS mode %d: writing 0 then 4 (2/3 -> 4 directly leaves "
                        "systemcalc's DESS off until it restarts)", mode)
            self._set(SETTINGS, DESS_MODE, DESS_OFF)
        if action in ("local", "restart"):
            log.warning("switching Dynamic ESS to local mode 4 (restored to 0 on exit)")
            self._set(SETTINGS, DESS_MODE, DESS_LOCAL)
            self._restore_mode = DESS_OFF

    def _cap_ess_limits(self) -> None:
        """Cap ESS's own limits at the configured battery limits, restored on exit.

        In its self-consumption states DESS writes ``MaxDischargePower = -1`` ("ESS's own
        limit": ``/Settings/CGwacs/MaxDischargePower``) and leaves the charge current to DVCC
        (``/Settings/SystemSetup/MaxChargeCurrent`` and the BMS's CCL), which DVCC also applies
        for the second before it takes up a new DESS charge rate. Unset (-1) or higher
        values would let the battery move faster than Helios' limits.
        """
        volts = _num(self._system.get("/Dc/Battery/Voltage")) or _num(
            self._get(SYSTEM, "/Dc/Battery/Voltage"))
        caps = [(ESS_MAX_DISCHARGE, float(self.config.max_discharge_w))]
        if volts > 0:
            caps.append((DVCC_MAX_CHARGE_CURRENT,
                         float(int(self.config.max_charge_w / volts))))
        else:
            log.warning("battery voltage unknown: DVCC charge current not capped")
        for path, cap in caps:
            have = self._setting(path)
            if have is None:
                continue
            have = _num(have, -1.0)
            if have < 0 or have > cap:
                log.warning("%s: %s -> %s (Helios' battery limit; restored on exit)", path,
                            have, cap)
                self._remember(path, have)
                self._set(SETTINGS, path, cap)

    def _clear_slots(self) -> None:
        """Empty every schedule slot that holds a window (slots 1-47 would otherwise take
        over after a release; slot 0 gets Helios' first window)."""
        for n in range(NUM_SCHEDULES):
            base = SLOT.format(n)
            if _num(self._setting(base + "Start")) > 0:
                log.warning("clearing stale Dynamic ESS schedule slot %d", n)
                self._set(SETTINGS, base + "Start", 0)
                self._set(SETTINGS, base + "Duration", 0)

    def _keep_limits(self, m: Measurement | None, setpoint: Setpoint | None = None) -> None:
        """Write the DESS limits that differ from the wanted ones (kW settings)."""
        c = self.config
        wanted, hard = dess_limits(
            c.max_charge_w, c.max_discharge_w, c.max_import_w, c.max_export_w,
            c.max_export_w > 0, m.max_charge_w if m else None, m.max_discharge_w if m else None,
            intent_of(setpoint) if setpoint else None,
            setpoint.battery_power_w if setpoint else None)
        current = {name: self._setting(DESS + name) for name in wanted.as_settings()}
        for name, value in limits_to_write(current, wanted, hard).items():
            log.info("Dynamic ESS %s: %s -> %.1f kW", name, current.get(name), value)
            self._remember(DESS + name, current.get(name))
            self._set(SETTINGS, DESS + name, float(value))

    def _remember(self, path: str, value) -> None:
        """Note a setting's value before Helios first changes it (put back on exit)."""
        if value is not None and all(p != path for p, _ in self._restore):
            self._restore.append((path, value))

    def _dess_status(self) -> dict:
        """``Active``, ``ErrorCode``, ``ReactiveStrategy``, ``TargetSoc``, ``WindowSlot``,
        ``WorkingSocPrecision`` from systemcalc (or the 3.80 dynamicess service)."""
        keys = ("Active", "ErrorCode", "ReactiveStrategy", "TargetSoc", "WindowSlot",
                "WorkingSocPrecision")
        if "/DynamicEss/Active" in self._system:
            return {k: self._system.get("/DynamicEss/" + k) for k in keys}
        try:
            items = self._do(lambda bus: bus.get_items(DESS_SERVICE))
        except ServiceMissing:
            return {}
        return {k: items.get("/" + k) for k in keys}

    def apply(self, setpoint: Setpoint) -> None:
        """Send the setpoint (override every tick, or the DESS window, renewed every tick)."""
        if self.config.mode == "setpoint":
            self._set(HUB4, OVERRIDE, float(setpoint.grid_power_w))
            self._released = False
            return
        now = self.clock()
        if self._fault is not None and self._fault_until is not None and now < self._fault_until:
            raise DriverError(self._fault)
        self._fault = None
        mode = int(_num(self._setting(DESS_MODE)))
        if mode != DESS_LOCAL:
            self._window = None
            if mode == 1:
                raise ForeignControllerError("Dynamic ESS was switched to VRM mode (1) on the "
                                             "GX: VRM owns the battery now")
            self._fail(now, f"Dynamic ESS mode is {mode} on the GX, not 4 (local): switched "
                       "off by the user? Helios does not switch it back while running")
        capacity = self._setting(DESS + "BatteryCapacity")
        if not _num(capacity) > 0:
            self._fail(now, f"Dynamic ESS battery capacity is {capacity}: DESS ignores every "
                       "window (error 5); set it on the GX")
        m = self._last
        self._keep_limits(m, setpoint)
        status = self._dess_status()
        precision = int(_num(status.get("WorkingSocPrecision"), 0.0))
        old = self._window
        if old is not None and old.end <= now.timestamp():
            log.warning("the last Dynamic ESS window ran out %.0f s before this tick: "
                        "dess_window_s (%.0f s) must exceed the tick interval",
                        now.timestamp() - old.end, self.config.dess_window_s)
            old = self._window = None  # written afresh (Start last), checked after the grace
            self._written = {}
        held = held_target(old, setpoint)
        w = dess_window(setpoint, now, m.soc_pct if m else None, precision,
                        self.config.dess_window_s, self.config.max_export_w > 0, held)
        if old is not None and self._window_changed_at is not None \
                and old.fields() == w.fields() \
                and (now - self._window_changed_at).total_seconds() >= DESS_GRACE_S:
            problem = dess_status_problem(status.get("Active"), status.get("ErrorCode"),
                                          status.get("ReactiveStrategy"),
                                          status.get("TargetSoc"), old,
                                          status.get("WindowSlot"))
            if problem is not None:
                self._fail(now, problem)
        self._write_window(w, int(setpoint.window_end.timestamp()))
        if old is None or old.fields() != w.fields():
            self._window_changed_at = now
        self._released = False

    def _fail(self, now: datetime, problem: str) -> None:
        """Remember why DESS cannot be used (retried after a minute) and raise it."""
        self._fault, self._fault_until = problem, now + timedelta(seconds=60)
        raise DriverError(problem)

    def _write_window(self, w: DessWindow, slot_end: int) -> None:
        """Write ``w`` as slot 0 up to the plan slot's end and, past it, its continuation in
        slot 1, so DESS computes its rate to the real slot end and still never runs out of a
        window before the next tick writes the next slot's (then slot 1 is emptied)."""
        w0 = DessWindow(w.start, max(min(w.end, slot_end) - w.start, 1), *w.fields()[1:])
        w1 = DessWindow(slot_end, w.end - slot_end, *w.fields()[1:]) if w.end > slot_end \
            else None
        self._window = None  # unknown until every field is written
        self._put(0, w0)
        if w1 is not None:
            self._put(1, w1)
        elif self._written.get(1) is not None:
            self._set(SETTINGS, SLOT.format(1) + "Start", 0)
            self._set(SETTINGS, SLOT.format(1) + "Duration", 0)
            self._written[1] = None
        self._window = w

    def _put(self, n: int, w: DessWindow) -> None:
        base = SLOT.format(n)
        have = self._written.get(n)
        if have is not None and have.fields() == w.fields():
            if w.duration != have.duration:  # renewal: only the duration moves
                self._set(SETTINGS, base + "Duration", w.duration)
            self._written[n] = w
            return
        rest = [("TargetSoc", float(w.target_soc)), ("Soc", int(round(w.target_soc))),
                ("Strategy", w.strategy), ("Restrictions", w.restrictions),
                ("AllowGridFeedIn", w.allow_feed_in), ("Flags", w.flags)]
        if have is not None:
            # replacing a live window: Start first, so the slot never stops covering now
            writes = [("Start", w.start), ("Duration", w.duration)] + rest
        else:  # a new window becomes live only once complete: Start last
            writes = [("Duration", w.duration)] + rest + [("Start", w.start)]
        self._written[n] = None
        for path, value in writes:
            self._set(SETTINGS, base + path, value)
        self._written[n] = w

    def release(self) -> None:
        """Hand control back (override invalidated / DESS slot 0 emptied); no-op when done."""
        if self._released:
            return
        if self.config.mode == "setpoint":
            self._set(HUB4, OVERRIDE, None)
        else:
            self._window = self._window_changed_at = None
            for n in (0, 1):
                if n == 0 or self._written.get(1) is not None:
                    self._set(SETTINGS, SLOT.format(n) + "Start", 0)
                    self._set(SETTINGS, SLOT.format(n) + "Duration", 0)
            self._written = {}
        self._released = True

    def close(self) -> None:
        """Put back the DESS mode and ESS limits Helios changed, then close the connection."""
        while self._restore and self.bus is not None:
            path, value = self._restore.pop()
            try:
                self._set(SETTINGS, path, value)
            except DriverError as exc:
                log.warning("could not restore %s: %s", path, exc)
        if self._restore_mode is not None and self.bus is not None:
            try:
                self._set(SETTINGS, DESS_MODE, self._restore_mode)
                log.warning("Dynamic ESS mode restored to %d", self._restore_mode)
                self._restore_mode = None
            except DriverError as exc:
                log.warning("could not restore the Dynamic ESS mode: %s", exc)
        if self.bus is not None:
            self.bus.close()
            self.bus = None
