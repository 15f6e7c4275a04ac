"""An emulated GX Modbus-TCP server (``dbus-modbustcp``) on 127.0.0.1, driven by a plant.

A real ``pymodbus`` server (ephemeral port) with two unit IDs, as on a GX
(``reference/victron.md`` §4):

* unit **100** — ``system``, ``settings`` and ``hub4``: telemetry 808-826, 840-844, 850-851,
  control 2700 (persisted setpoint), 2716-2717 (volatile override, int32 high word first),
  2900-2903 (BatteryLife/MinSoC ×10/Hub4Mode), Dynamic ESS 5400-5407 (status) and
  5420-5430 (settings, schedule slot 0 with ``Start`` as int32 at 5428-5429, ``Strategy``
  at 5430);
* unit **225** — a CAN-bus BMS: SoC ×10 at 266, CVL/CCL/DCL ×10 at 305/307/308.

Victron behaviour reproduced: FC3 and FC4 read the same map; unmapped addresses and writes to
read-only registers → exception 02; a settings write out of range → 0x0A (Gateway Path
Unavailable, the localsettings refusal); a missing service → 0x0A; an invalid D-Bus value reads
as 0 (``soc_unknown``); int16 values wrap. Writes to persisted settings are counted
(``flash_writes``) so tests can hold the executor to a flash-write budget.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from executor.drivers.simulated import DessWindow, Plant

SYSTEM_UNIT = 100
BATTERY_UNIT = 225

#: (address, count, read-only) blocks of unit 100; everything else is unmapped (exception 02)
SYSTEM_BLOCKS = (
    (808, 19, True),     # PV on output/grid/genset L1-3 (808-816), consumption (817-819),
                         # grid L1-3 (820-822), genset (823-825), active input source (826)
    (840, 5, True),      # battery V ×10, A ×10, W (+ charge), SoC %, state
    (850, 2, True),      # DC PV W, DC PV A ×10
    (2700, 1, False),    # /Settings/CGwacs/AcPowerSetPoint (flash!)
    (2716, 2, False),    # hub4 /Overrides/Setpoint int32 (volatile)
    (2900, 4, False),    # BatteryLife state, MinimumSocLimit ×10, Hub4Mode, SocLimit (RO)
    (5400, 8, True),     # /DynamicEss/* status
    (5420, 11, False),   # DESS settings + schedule slot 0
)
#: writable settings registers backed by flash (localsettings), with their (min, max) in
#: register units; 2903 is read-only although inside a writable block
SETTINGS_RANGES = {2700: (-32768, 32767), 2900: (0, 12), 2901: (0, 1000), 2902: (1, 3),
                   5420: (0, 10000), 5421: (0, 12), 5422: (0, 99), 5423: (0, 4),
                   5424: (0, 1), 5425: (0, 65535), 5426: (0, 3), 5427: (0, 100),
                   5428: (0, 65535), 5429: (0, 65535), 5430: (0, 3)}
READ_ONLY = {2903}


def _u16(value: float) -> int:
    """A value as an unsigned register (int16 wraps like dbus-modbustcp's doubles)."""
    return int(round(value)) & 0xFFFF


class ModbusGx:
    """The emulator. Use as a context manager; ``port`` is set once started.

    Parameters
    ----------
    plant : Plant
        The physics the registers expose and the writes act on.
    clock : callable
        ``clock() -> datetime`` (aware UTC): the plant advances to it on every request.
    """

    def __init__(self, plant: Plant, clock: Callable[[], datetime], port: int = 0):
        self.plant = plant
        self.clock = clock
        self.port = port or _free_port()
        self.regs: dict = {}
        self.flash_writes = 0
        self.override_writes = 0
        self.soc_unknown = False
        self.battery_missing = False
        self.dess_mode = 0
        self.hub4_mode = 1
        self.min_soc_x10 = int(plant.min_soc_pct * 10)
        self.dess_slot = {5424: 1, 5425: 0, 5426: 0, 5427: 0, 5428: 0, 5429: 0, 5430: 0}
        self.override_w: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- register contents -------------------------------------------------------------------

    def _refresh(self) -> dict:
        """Telemetry registers from the plant at the current fake time."""
        p = self.plant
        p.advance(self.clock())
        v = {}
        for a in range(808, 827):
            v[a] = 0
        v[811] = _u16(p.pv_power_w)          # AC PV on grid, L1
        v[817] = _u16(p.load_power_w)        # consumption L1
        v[820] = _u16(p.grid_power_w)        # grid L1, + import (int16)
        v[826] = 1                           # active input: grid
        volts = 0.0 if self.soc_unknown else 52.0
        v[840] = _u16(volts * 10)
        battery_charge_w = -p.battery_power_w  # Victron: + = charging
        v[841] = _u16(battery_charge_w / volts * 10) if volts else 0
        v[842] = _u16(battery_charge_w)
        v[843] = 0 if self.soc_unknown else _u16(p.soc_pct)  # integer %
        v[844] = 1 if battery_charge_w > 0 else (2 if battery_charge_w < 0 else 0)
        v[850] = v[851] = 0
        v[2700] = 0
        ov = self.override_w or 0
        v[2716], v[2717] = (ov >> 16) & 0xFFFF, ov & 0xFFFF
        v[2900], v[2901], v[2902], v[2903] = 1, self.min_soc_x10, self.hub4_mode, self.min_soc_x10
        window = p.window is not None and p.window.start <= p.now < p.window.end
        v.update({5400: int(window and self.dess_mode in (1, 4)), 5401: 1, 5402: 1, 5403: 0,
                  5404: 0 if window or self.dess_mode == 0 else 3, 5405: 0, 5406: 0,
                  5407: _u16(p.window.target_soc_pct) if window else 0})
        v.update({5420: 100, 5421: 2, 5422: 14, 5423: self.dess_mode})
        v.update(self.dess_slot)
        return v

    def battery_registers(self) -> dict:
        """Unit 225 (the BMS): SoC ×10, CVL/CCL/DCL ×10 (A); 0 when the value is invalid."""
        p = self.plant
        volts = 52.0
        ccl = p.bms_max_charge_w / volts if p.bms_max_charge_w is not None else 0.0
        dcl = p.bms_max_discharge_w / volts if p.bms_max_discharge_w is not None else 0.0
        return {266: 0 if self.soc_unknown else _u16(p.soc_pct * 10), 305: 568, 306: 0,
                307: _u16(ccl * 10), 308: _u16(dcl * 10)}

    # --- the pymodbus action hooks -----------------------------------------------------------

    async def _system_action(self, function_code, start_address, address, count, registers,
                             set_values):
        with self._lock:
            if set_values is None:  # read: refresh the telemetry snapshot
                for a, value in self._refresh().items():
                    registers[a - start_address] = value
                return None
            return self._write(address, list(set_values), registers, start_address)

    def _write(self, address: int, values: list, registers: list, start_address: int):
        span = range(address, address + len(values))
        if any(a in READ_ONLY for a in span):
            return ExcCodes.ILLEGAL_ADDRESS
        for a, raw in zip(span, values, strict=True):
            if a in SETTINGS_RANGES:
                lo, hi = SETTINGS_RANGES[a]
                signed = raw - 0x10000 if raw >= 0x8000 and lo < 0 else raw
                if not lo <= signed <= hi:
                    return ExcCodes.GATEWAY_PATH_UNAVIABLE  # localsettings refuses, no clamp
        now = self.clock()
        self.plant.advance(now)
        for a, raw in zip(span, values, strict=True):
            if a in SETTINGS_RANGES:
                self.flash_writes += 1
            if a == 2901:
                self.min_soc_x10 = raw
                self.plant.min_soc_pct = raw / 10.0
            elif a == 2902:
                self.hub4_mode = raw
            elif a == 5423:
                self.dess_mode = raw
            elif a in self.dess_slot:
                self.dess_slot[a] = raw
        if 2716 in span or 2717 in span:
            regs = {a: registers[a - start_address] for a in (2716, 2717)}
            regs.update(dict(zip(span, values, strict=True)))
            value = (regs[2716] << 16) | regs[2717]
            value = value - (1 << 32) if value & 0x80000000 else value
            self.override_writes += 1
            # "0 clears" (evcc; victron.md §8 q2): 0 = no override → AcPowerSetPoint (0)
            self.override_w = value or None
            self.plant.grid_setpoint_w = float(value) if value else None
        if any(a in self.dess_slot for a in span):
            self._sync_window()
        return None

    def _sync_window(self) -> None:
        s = self.dess_slot
        start = (s[5428] << 16) | s[5429]
        if self.dess_mode in (1, 4) and start > 0 and s[5425] > 0:
            t0 = datetime.fromtimestamp(start, tz=timezone.utc)
            self.plant.window = DessWindow(t0, t0 + timedelta(seconds=s[5425]), float(s[5427]))
        else:
            self.plant.window = None

    async def _battery_action(self, function_code, start_address, address, count, registers,
                              set_values):
        with self._lock:
            if self.battery_missing:
                return ExcCodes.GATEWAY_PATH_UNAVIABLE
            if set_values is not None:
                return ExcCodes.ILLEGAL_ADDRESS
            for a, value in self.battery_registers().items():
                registers[a - start_address] = value
            return None

    # --- lifecycle -------------------------------------------------------------------------

    def _devices(self) -> list:
        system = [SimData(a, n, 0, DataType.UINT16, readonly=ro) for a, n, ro in SYSTEM_BLOCKS]
        battery = [SimData(266, 1, 0, DataType.UINT16, readonly=True),
                   SimData(305, 4, 0, DataType.UINT16, readonly=True)]
        return [SimDevice(SYSTEM_UNIT, simdata=system, action=self._system_action),
                SimDevice(BATTERY_UNIT, simdata=battery, action=self._battery_action)]

    def start(self) -> ModbusGx:
        """Start serving on 127.0.0.1:``port`` in a background thread."""
        ready = threading.Event()
        errors: list = []

        async def serve():
            try:
                self._server = ModbusTcpServer(self._devices(), address=("127.0.0.1", self.port))
                await self._server.serve_forever(background=True)
            except Exception as exc:  # reported to the starting thread
                errors.append(exc)
            finally:
                ready.set()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="modbus-gx")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        if not ready.wait(10) or errors:
            self.stop()
            raise RuntimeError(f"emulated GX did not start: {errors}")
        return self

    def stop(self) -> None:
        """Stop serving (clients see the connection drop) and end the thread."""
        if self._loop is None:
            return
        if self._server is not None:
            fut = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            fut.result(10)
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> ModbusGx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
