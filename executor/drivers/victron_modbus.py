"""``victron_modbus``: a Victron GX over Modbus-TCP (remote host), with pymodbus 3.

Register facts from ``reference/victron.md`` §4 (Victron's ``attributes.csv``): unit **100**
for system/settings/hub4; int32 is **high word first**; ``register = value × scale``; an
invalid D-Bus value **reads as 0**, so a SoC of 0 with a battery voltage of 0 means "unknown".

Control modes (``mode:``):

``dess`` (default: the only mode with a fail-safe on the GX side)
    Dynamic ESS in local mode (4): each tick's intent becomes a window in schedule **slot 0**
    (5424-5429: AllowGridFeedIn, Duration, Restrictions, Soc, Start int32; 5430 Strategy on
    dbus_modbustcp ≥ v1.0.96) that ends ``dess_window_s`` after the tick and is renewed every
    tick (one ``Duration`` write). If this host dies, the window runs out and Venus is back in
    its own self-consumption within ``dess_window_s`` + 5 s. Over Modbus only slot 0 exists,
    ``TargetSoc``/``Flags`` and the DESS limits have no register: the driver reads back what
    DESS does (5400 Active, 5404 ErrorCode, 5406 Strategy, 5407 TargetSoc, 5403 ChargeRate)
    and releases with a clear message when DESS works to another target (a stale decimal
    ``TargetSoc`` wins over ``Soc``) or at a rate above the battery limits (set the DESS
    limits on the GX, or use ``victron_dbus``). Release clears slot 0; shutdown also puts the
    DESS mode back.
``setpoint``
    Writes the volatile grid-setpoint override **2716-2717** (int32, W, + = import) every
    tick. A Modbus write reaches D-Bus as a plain double, so 0 is a real 0 W setpoint, not "no
    override": release writes the user's ``AcPowerSetPoint`` (2700) there and then pulses
    DESS mode 4 → 0, which makes systemcalc write the *invalid* override within 5 s (its
    ``deactivate``), so control really goes back. **No fail-safe**: if this host dies, the
    GX holds the last setpoint until hub4control restarts. Needs Venus ≥ 3.50 and Dynamic ESS
    off (a legacy 2/3 is switched to 0).

The driver never writes ``AcPowerSetPoint`` (2700/2703). Connection errors close the socket
and retry with exponential back-off (1 s … ``backoff_max_s``) measured on the injected clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from executor.config import opt
from executor.drivers import register
from executor.drivers._victron import (
    DESS_GRACE_S,
    DESS_LOCAL,
    DESS_OFF,
    TARGETSOC,
    DessWindow,
    check_capacity,
    check_owner,
    dess_status_problem,
    dess_window,
    held_target,
    intent_of,
    limit_defaults,
)
from executor.drivers.base import Measurement, Setpoint
from executor.errors import DriverError, DriverUnavailable, ForeignControllerError

log = logging.getLogger("helios.executor.victron_modbus")

REG_PV_AC = 808          # 808-816 uint16 W: PV on output, on grid, on genset, L1-3
REG_CONSUMPTION = 817    # 817-819 uint16 W
REG_GRID = 820           # 820-822 int16 W, + = import
REG_BATTERY = 840        # V ×10 uint16, A ×10 int16, W int16 (+ = charge), SoC % uint16
REG_PV_DC = 850          # uint16 W
REG_AC_SETPOINT = 2700   # int16 W, /Settings/CGwacs/AcPowerSetPoint (persisted: read only)
REG_OVERRIDE = 2716      # int32 W, hub4 /Overrides/Setpoint (volatile)
REG_BATTERY_LIFE = 2900  # BatteryLife state (9 = keep charged)
REG_HUB4MODE = 2902      # 1/2 ESS, 3 external control
REG_DESS_STATUS = 5400   # Active, AllowGridFeedIn, Available, ChargeRate/10, ErrorCode,
                         # Restrictions, Strategy, TargetSoc (integer %)
REG_DESS_CAPACITY = 5420  # BatteryCapacity ×10 kWh
REG_DESS_MODE = 5423     # 0 off, 1 VRM auto, 4 local ("Node-RED")
REG_DESS_SLOT0 = 5424    # AllowGridFeedIn, Duration, Restrictions, Soc, Start (int32)
REG_DESS_STRATEGY = 5430  # Schedule/0/Strategy since dbus_modbustcp v1.0.96 (5429 before,
                          # overlapping Start's low word: never written there)
BAT_SOC = 266            # battery unit: SoC ×10
BAT_CCL = 307            # battery unit: CCL ×10 A, then DCL ×10 A at 308



def s16(raw: int) -> int:
    """Unsigned register → int16."""
    return raw - 0x10000 if raw & 0x8000 else raw


def int32_words(value: int) -> list:
    """int32 → two registers, high word first (Victron's word order)."""
    value &= 0xFFFFFFFF
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def words_int32(words: list) -> int:
    """Two registers, high word first → int32."""
    value = (words[0] << 16) | words[1]
    return value - (1 << 32) if value & 0x80000000 else value


@register("victron_modbus")
class VictronModbusDriver:
    """Victron GX over Modbus-TCP (see the module docstring)."""

    @dataclass(frozen=True)
    class Config:
        """Options of ``driver: {type: victron_modbus, ...}``."""

        host: str = opt(help="GX address (Settings → Integrations → Modbus TCP server on)",
                        kind=str)
        port: int = opt(502, "TCP port", kind=int, ge=1, le=65535)
        unit_id: int = opt(100, "Unit ID of system/settings/hub4", kind=int, ge=0, le=255)
        battery_unit_id: int | None = opt(
            None, "Unit ID of the BMS (Modbus TCP server → Available services) for SoC at 0.1 %"
            " and live CCL/DCL; none = system values only", kind=int, ge=0, le=255,
            optional=True)
        mode: str = opt("dess", "dess: Dynamic ESS local windows in slot 0, renewed every "
                        "tick (fail-safe); setpoint: override 2716 every tick (no fail-safe)",
                        kind=str, choices=("setpoint", "dess"))
        timeout_s: float = opt(2.0, "Per-request timeout", "s", gt=0)
        backoff_max_s: float = opt(60.0, "Longest wait between reconnect attempts", "s", gt=0)
        dess_window_s: float = opt(45.0, "dess: each window ends this long after the tick that "
                                   "wrote it (GX back in self-consumption this + 5 s after "
                                   "the executor dies); must exceed the tick", "s", ge=15,
                                   le=600)
        max_charge_w: float = opt(5000.0, "dess: highest DESS charge rate accepted (default "
                                  "executor.limits.max_charge_w; live CCL lowers it)", "W", ge=0)
        max_discharge_w: float = opt(5000.0, "dess: highest DESS discharge rate accepted "
                                     "(default executor.limits.max_discharge_w; live DCL "
                                     "lowers it)", "W", ge=0)
        max_import_w: float = opt(17000.0, "dess: grid import limit (default "
                                  "executor.limits.max_import_w)", "W", ge=0)
        max_export_w: float = opt(10000.0, "dess: grid export limit (default "
                                  "executor.limits.max_export_w; 0 = no feed-in)", "W", ge=0)

    @staticmethod
    def config_defaults(limits) -> dict:
        """The DESS limits default to the executor's limits."""
        return limit_defaults(limits)

    def __init__(self, config: VictronModbusDriver.Config, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.client = ModbusTcpClient(config.host, port=config.port, timeout=config.timeout_s,
                                      retries=0)
        self._failures = 0
        self._retry_at: datetime | None = None
        self._released = False
        self._window: DessWindow | None = None
        self._window_changed_at: datetime | None = None
        self._down_logged = False
        self._last: Measurement | None = None
        self._strategy_reg: bool | None = None  # 5430 exists (None = not probed yet)
        self._restore_mode: int | None = None
        self._fault: str | None = None
        self._fault_until: datetime | None = None

    # --- connection ----------------------------------------------------------------------

    def _ensure_connected(self) -> None:
        now = self.clock()
        if self.client.connected:
            return
        if self._retry_at is not None and now < self._retry_at:
            wait = (self._retry_at - now).total_seconds()
            raise DriverUnavailable(f"GX {self.config.host}:{self.config.port} unreachable; "
                                    f"next attempt in {wait:.0f} s")
        if not self.client.connect():
            self._failed("connection refused or timed out")
        if self._failures:
            log.warning("GX %s:%d reachable again after %d failed attempt(s)",
                        self.config.host, self.config.port, self._failures)
        self._failures, self._retry_at, self._down_logged = 0, None, False
        self._released, self._window = False, None  # GX state unknown after a reconnect
        self._window_changed_at = None

    def _failed(self, why: str) -> None:
        self.client.close()
        self._failures += 1
        delay = min(2.0 ** (self._failures - 1), self.config.backoff_max_s)
        self._retry_at = self.clock() + timedelta(seconds=delay)
        if not self._down_logged:
            log.warning("GX %s:%d: %s; retrying with back-off up to %.0f s",
                        self.config.host, self.config.port, why, self.config.backoff_max_s)
            self._down_logged = True
        raise DriverUnavailable(f"GX {self.config.host}:{self.config.port}: {why}")

    def _call(self, what: str, fn, *args, **kwargs):
        self._ensure_connected()
        try:
            resp = fn(*args, **kwargs)
        except ModbusException as exc:
            self._failed(f"{what}: {exc}")
        except OSError as exc:
            self._failed(f"{what}: {exc}")
        if resp.isError():
            code = getattr(resp, "exception_code", None)
            raise DriverError(f"{what}: Modbus exception {code} ("
                              f"{_EXCEPTIONS.get(code, 'unknown')})")
        return resp

    def _read(self, address: int, count: int, unit: int | None = None) -> list:
        unit = self.config.unit_id if unit is None else unit
        resp = self._call(f"read {address}+{count} unit {unit}", self.client.read_holding_registers,
                          address, count=count, device_id=unit)
        return list(resp.registers)

    def _write(self, address: int, values: list) -> None:
        self._call(f"write {address}", self.client.write_registers, address, values,
                   device_id=self.config.unit_id)

    # --- Driver ------------------------------------------------------------------------

    def read(self) -> Measurement:
        """Grid, PV, load, battery, SoC (and CCL/DCL from the BMS unit when configured)."""
        now = self.clock()
        ac = self._read(REG_PV_AC, 15)           # 808-822 (contiguous, safe on old firmware)
        bat = self._read(REG_BATTERY, 4)         # 840-843
        pv_dc = self._read(REG_PV_DC, 1)[0]
        volts = bat[0] / 10.0
        soc: float | None = float(bat[3])
        if soc == 0 and volts == 0:
            soc = None  # "0 means unknown": no battery service / invalid value
        max_charge_w = max_discharge_w = None
        if self.config.battery_unit_id is not None:
            try:
                b_soc = self._read(BAT_SOC, 1, self.config.battery_unit_id)[0]
                ccl, dcl = self._read(BAT_CCL, 2, self.config.battery_unit_id)
            except DriverUnavailable:
                raise
            except DriverError as exc:  # BMS service missing (0x0A): system values only
                log.debug("battery unit %s: %s", self.config.battery_unit_id, exc)
            else:
                if b_soc > 0:  # 0.1 % resolution; 0 = invalid, keep the system value
                    soc = b_soc / 10.0
                if volts > 0 and (ccl or dcl):  # both 0 with no voltage = invalid, not "stop"
                    max_charge_w = ccl / 10.0 * volts
                    max_discharge_w = dcl / 10.0 * volts
        self._last = Measurement(
            at=now, soc_pct=soc,
            battery_power_w=-float(s16(bat[2])),     # Victron + = charging → Helios + = discharge
            grid_power_w=float(sum(s16(r) for r in ac[12:15])),
            pv_power_w=float(sum(ac[0:9]) + pv_dc),
            load_power_w=float(sum(ac[9:12])),
            max_charge_w=max_charge_w, max_discharge_w=max_discharge_w,
        )
        return self._last

    def _probe_strategy(self) -> bool:
        """Whether register 5430 (``Schedule/0/Strategy``) exists on this GX."""
        if self._strategy_reg is None:
            try:
                self._read(REG_DESS_STRATEGY, 1)
                self._strategy_reg = True
            except DriverUnavailable:
                raise
            except DriverError:
                self._strategy_reg = False
                log.warning("no register 5430 (dbus_modbustcp < v1.0.96): the window strategy "
                            "cannot be set; only target-SoC windows are written")
        return self._strategy_reg

    def check_ownership(self, take_over: bool = True) -> None:
        """Refuse to run when another controller owns the ESS or DESS could not act; in
        ``dess`` mode take DESS local mode and empty slot 0 (``take_over=False``: only check,
        write nothing — ``--dry-run`` and ``status``).

        Raises
        ------
        ForeignControllerError
            Dynamic ESS in VRM mode (1), or local (4) in setpoint mode, ESS in external
            control (Hub4Mode 3); ``dess`` with "keep batteries charged" or battery capacity 0.
        """
        hub4 = self._read(REG_HUB4MODE, 1)[0]
        life = self._read(REG_BATTERY_LIFE, 1)[0]
        try:
            mode = self._read(REG_DESS_MODE, 1)[0]
        except DriverUnavailable:
            raise
        except DriverError:
            if self.config.mode == "dess":
                raise ForeignControllerError("this GX has no Dynamic ESS registers "
                                             "(Venus OS < 3.50?): use mode: setpoint") from None
            mode = 0  # firmware without Dynamic ESS registers: nothing to fight with
        action = check_owner(hub4, mode, self.config.mode, "the grid-setpoint override", life)
        if self.config.mode == "dess":
            check_capacity(self._read(REG_DESS_CAPACITY, 1)[0] / 10.0)
            self._probe_strategy()
        if not take_over:
            return
        if action == "off":
            log.warning("Dynamic ESS mode %d (legacy 2/3 run DESS on Venus 3.80): switching it "
                        "off (mode 0)", mode)
            self._write(REG_DESS_MODE, [DESS_OFF])
        if self.config.mode != "dess":
            return
        self._write(REG_DESS_SLOT0, [0, 0, 0, 0, 0, 0])  # no stale window when DESS starts
        if action == "restart":
            log.warning("Dynamic ESS mode %d: writing 0 then 4 (2/3 -> 4 directly leaves "
                        "systemcalc's DESS off until it restarts)", mode)
            self._write(REG_DESS_MODE, [DESS_OFF])
        if action in ("local", "restart"):
            log.warning("switching Dynamic ESS to local mode 4 (restored to 0 on exit)")
            self._write(REG_DESS_MODE, [DESS_LOCAL])
            self._restore_mode = DESS_OFF

    def apply(self, setpoint: Setpoint) -> None:
        """Send the setpoint (override every tick, or the DESS window, renewed every tick)."""
        if self.config.mode == "setpoint":
            self._write(REG_OVERRIDE, int32_words(setpoint.grid_power_w))
            self._released = False
            return
        now = self.clock()
        if self._fault is not None and self._fault_until is not None and now < self._fault_until:
            raise DriverError(self._fault)
        self._fault = None
        mode = self._read(REG_DESS_MODE, 1)[0]
        if mode != DESS_LOCAL:
            self._window = None
            if mode == 1:
                raise ForeignControllerError("Dynamic ESS was switched to VRM mode (1) on the "
                                             "GX: VRM owns the battery now")
            self._fail(now, f"Dynamic ESS mode is {mode} on the GX, not 4 (local): switched "
                       "off by the user? Helios does not switch it back while running")
        capacity = self._read(REG_DESS_CAPACITY, 1)[0] / 10.0
        if not capacity > 0:
            self._fail(now, f"Dynamic ESS battery capacity is {capacity}: DESS ignores every "
                       "window (error 5); set it on the GX")
        strategy_ok = self._probe_strategy()
        m = self._last
        old = self._window
        if old is not None and old.end <= now.timestamp():
            log.warning("the last Dynamic ESS window ran out %.0f s before this tick: "
                        "dess_window_s (%.0f s) must exceed the tick interval",
                        now.timestamp() - old.end, self.config.dess_window_s)
            old = self._window = None  # written afresh (Start last), checked after the grace
        w = dess_window(setpoint, now, m.soc_pct if m else None, 0, self.config.dess_window_s,
                        self.config.max_export_w > 0, held_target(old, setpoint))
        if not strategy_ok:
            if intent_of(setpoint) == "self_consume":
                self.release()  # no window = DESS's own plain self-consumption
                self._released = False
                return
            w = DessWindow(w.start, w.duration, w.target_soc, TARGETSOC, w.restrictions,
                           w.allow_feed_in)
        if old is not None and self._window_changed_at is not None \
                and old.fields() == w.fields() \
                and (now - self._window_changed_at).total_seconds() >= DESS_GRACE_S:
            self._check_dess(now, old, strategy_ok)
        self._write_window(w, old, strategy_ok)
        if old is None or old.fields() != w.fields():
            self._window_changed_at = now
        self._released = False

    def _check_dess(self, now: datetime, w: DessWindow, strategy_ok: bool) -> None:
        """Read back what DESS does with the window; raise (and remember) a mismatch."""
        st = self._read(REG_DESS_STATUS, 8)
        problem = dess_status_problem(st[0], st[4], None, st[7], w)
        if problem is None and st[6] != w.strategy:
            problem = (f"Dynamic ESS runs slot 0 with strategy {st[6]}, Helios needs "
                       f"{w.strategy}" + ("" if strategy_ok else " (no register 5430 on this "
                                          "GX: clear the strategy left by VRM, or use "
                                          "victron_dbus)"))
        rate = s16(st[3]) * 10.0
        # against the configured limits: a live CCL/DCL below them is enforced by the BMS
        # and DVCC themselves, whatever rate DESS computes
        charge, discharge = self.config.max_charge_w, self.config.max_discharge_w
        if problem is None and (rate > charge + 100 or -rate > discharge + 100):
            problem = (f"Dynamic ESS computes a battery rate of {rate:+.0f} W, beyond the "
                       f"limits ({charge:.0f} W charge / {discharge:.0f} W discharge): set the "
                       "Dynamic ESS battery charge/discharge limits on the GX (they have no "
                       "Modbus register) or use victron_dbus")
        if problem is not None:
            self._fail(now, problem)

    def _fail(self, now: datetime, problem: str) -> None:
        """Remember why DESS cannot be used (retried after a minute) and raise it."""
        self._fault, self._fault_until = problem, now + timedelta(seconds=60)
        raise DriverError(problem)

    def _write_window(self, w: DessWindow, old: DessWindow | None, strategy_ok: bool) -> None:
        duration = min(w.duration, 65535)
        if old is not None and old.fields() == w.fields():
            if w.end > old.end:  # renewal: only the duration moves
                self._write(REG_DESS_SLOT0 + 1, [duration])
                self._window = w
            return
        self._window = None  # unknown until written
        if strategy_ok:
            self._write(REG_DESS_STRATEGY, [w.strategy])
        fields = [w.allow_feed_in, duration, w.restrictions, int(round(w.target_soc))]
        if old is not None:  # replacing a live window: Start first, so now stays covered
            self._write(REG_DESS_SLOT0 + 4, int32_words(w.start))
            self._write(REG_DESS_SLOT0, fields)
        else:  # one FC16: dbus_modbustcp sets the items in address order, Start (5428) last
            self._write(REG_DESS_SLOT0, fields + int32_words(w.start))
        self._window = w

    def release(self) -> None:
        """Hand control back (override removed / DESS slot emptied); no-op when done."""
        if self._released:
            return
        if self.config.mode == "setpoint":
            # 0 would be a real 0 W: hold the user's own setpoint at once, then let systemcalc
            # invalidate the override (a DESS 4 -> 0 pulse makes its next tick deactivate)
            user = s16(self._read(REG_AC_SETPOINT, 1)[0])
            self._write(REG_OVERRIDE, int32_words(user))
            if self._read(REG_DESS_MODE, 1)[0] == DESS_OFF:
                self._write(REG_DESS_MODE, [DESS_LOCAL])
                self._write(REG_DESS_MODE, [DESS_OFF])
        else:
            self._window = self._window_changed_at = None
            self._write(REG_DESS_SLOT0, [0, 0, 0, 0, 0, 0])
        self._released = True

    def close(self) -> None:
        """Put the DESS mode back if Helios changed it, then close the TCP connection."""
        if self._restore_mode is not None and self.client.connected:
            try:
                self._write(REG_DESS_MODE, [self._restore_mode])
                log.warning("Dynamic ESS mode restored to %d", self._restore_mode)
                self._restore_mode = None
            except DriverError as exc:
                log.warning("could not restore the Dynamic ESS mode: %s", exc)
        self.client.close()


_EXCEPTIONS = {1: "illegal function", 2: "illegal data address: unmapped or read-only",
               3: "illegal value", 10: "gateway path unavailable: service missing or value "
               "refused", 11: "gateway target failed to respond: unit id"}
