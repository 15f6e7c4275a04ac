"""``victron_modbus``: a Victron GX over Modbus-TCP (remote host), with pymodbus 3.

Register facts from ``reference/victron.md`` §4 (Victron's ``attributes.csv``): unit **100**
for system/settings/hub4; int32 is **high word first**; ``register = value × scale``; an
invalid D-Bus value **reads as 0**, so a SoC of 0 with a battery voltage of 0 means "unknown".

Control modes (``mode:``):

``setpoint`` (default)
    Writes the volatile grid-setpoint override **2716-2717** (int32, W, + = import) every
    tick; release writes 0, which clears the override on current firmware (victron.md §5, §8
    q2: the GX then follows the user's persisted ``AcPowerSetPoint``). Needs Venus ≥ 3.50 and
    Dynamic ESS off (mode 0) — checked at start-up.
``dess``
    Dynamic ESS in local mode (4): the current slot is written to schedule **slot 0**
    (5424-5429: AllowGridFeedIn, Duration, Restrictions, Soc, Start int32) only when it
    changes — about once per plan slot, because these are flash-backed settings. When the
    window ends and nothing new arrives, Venus falls back to self-consumption by itself (the
    dead-man switch). Release clears the slot (``Duration = 0``).

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
from executor.drivers._victron import check_owner, dess_window
from executor.drivers.base import Measurement, Setpoint
from executor.errors import DriverError, DriverUnavailable

log = logging.getLogger("helios.executor.victron_modbus")

REG_PV_AC = 808          # 808-816 uint16 W: PV on output, on grid, on genset, L1-3
REG_CONSUMPTION = 817    # 817-819 uint16 W
REG_GRID = 820           # 820-822 int16 W, + = import
REG_BATTERY = 840        # V ×10 uint16, A ×10 int16, W int16 (+ = charge), SoC % uint16
REG_PV_DC = 850          # uint16 W
REG_OVERRIDE = 2716      # int32 W, hub4 /Overrides/Setpoint (volatile)
REG_HUB4MODE = 2902      # 1/2 ESS, 3 external control
REG_DESS_MODE = 5423     # 0 off, 1 VRM auto, 4 local ("Node-RED")
REG_DESS_SLOT0 = 5424    # AllowGridFeedIn, Duration, Restrictions, Soc, Start (int32)
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
        mode: str = opt("setpoint", "setpoint: override 2716 every tick; dess: Dynamic ESS "
                        "local window in slot 0", kind=str, choices=("setpoint", "dess"))
        timeout_s: float = opt(2.0, "Per-request timeout", "s", gt=0)
        backoff_max_s: float = opt(60.0, "Longest wait between reconnect attempts", "s", gt=0)

    def __init__(self, config: VictronModbusDriver.Config, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.client = ModbusTcpClient(config.host, port=config.port, timeout=config.timeout_s,
                                      retries=0)
        self._failures = 0
        self._retry_at: datetime | None = None
        self._released = False
        self._window: tuple | None = None
        self._down_logged = False

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
        return Measurement(
            at=now, soc_pct=soc,
            battery_power_w=-float(s16(bat[2])),     # Victron + = charging → Helios + = discharge
            grid_power_w=float(sum(s16(r) for r in ac[12:15])),
            pv_power_w=float(sum(ac[0:9]) + pv_dc),
            load_power_w=float(sum(ac[9:12])),
            max_charge_w=max_charge_w, max_discharge_w=max_discharge_w,
        )

    def check_ownership(self, take_over: bool = True) -> None:
        """Refuse to run when another controller owns the ESS; take DESS local mode if asked
        (``take_over=False``: only check, write nothing — ``--dry-run`` and ``status``).

        Raises
        ------
        ForeignControllerError
            Dynamic ESS in VRM mode (1), or owned by another local program in setpoint mode,
            or ESS in external-control mode (Hub4Mode 3).
        """
        hub4 = self._read(REG_HUB4MODE, 1)[0]
        try:
            mode = self._read(REG_DESS_MODE, 1)[0]
        except DriverUnavailable:
            raise
        except DriverError:
            mode = 0  # firmware without Dynamic ESS registers: nothing to fight with
        if check_owner(hub4, mode, self.config.mode, "the grid-setpoint override") and take_over:
            log.warning("switching Dynamic ESS to local mode 4 (one settings write)")
            self._write(REG_DESS_MODE, [4])

    def apply(self, setpoint: Setpoint) -> None:
        """Send the setpoint (override every tick, or the DESS window when it changes)."""
        if self.config.mode == "setpoint":
            self._write(REG_OVERRIDE, int32_words(setpoint.grid_power_w))
            self._released = False
            return
        start, duration, soc, allow_feed_in = dess_window(setpoint)
        window = (allow_feed_in, min(duration, 65535), 0, int(round(soc)), *int32_words(start))
        if window != self._window:
            self._write(REG_DESS_SLOT0, list(window))
            self._window = window
        self._released = False

    def release(self) -> None:
        """Hand control back (override cleared / DESS slot emptied); no-op when done."""
        if self._released:
            return
        if self.config.mode == "setpoint":
            self._write(REG_OVERRIDE, int32_words(0))
        else:
            self._write(REG_DESS_SLOT0, [0, 0, 0, 0, 0, 0])
            self._window = None
        self._released = True

    def close(self) -> None:
        """Close the TCP connection."""
        self.client.close()


_EXCEPTIONS = {1: "illegal function", 2: "illegal data address: unmapped or read-only",
               3: "illegal value", 10: "gateway path unavailable: service missing or value "
               "refused", 11: "gateway target failed to respond: unit id"}
