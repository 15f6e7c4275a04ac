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
as 0 (``soc_unknown``); int16 values wrap; a write to 2716 is a plain double on D-Bus, so
0 is a real 0 W setpoint. Settings registers are the same localsettings table the D-Bus
emulator uses (``victron_ess.settings_table``), and a :class:`victron_ess.DessDelegate` runs
the DESS windows; writes to persisted settings are counted (``flash_writes``) so tests can hold
the executor to a flash-write budget. ``old_firmware``: no register 5430 (before v1.0.96).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from datetime import datetime

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gx_emulator.victron_ess import DessDelegate, EssPlant, as_ess_plant, convert_setting

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
#: 2903 is read-only although inside a writable block
READ_ONLY = {2903}


def _u16(value: float) -> int:
    """A value as an unsigned register (int16 wraps like dbus-modbustcp's doubles)."""
    return int(round(value)) & 0xFFFF


#: unit-100 holding registers backed by a setting: register → (path, scale), reg = value × scale
SETTING_REGS = {
    2700: ("/Settings/CGwacs/AcPowerSetPoint", 1), 2900: ("/Settings/CGwacs/BatteryLife/State", 1),
    2901: ("/Settings/CGwacs/BatteryLife/MinimumSocLimit", 10),
    2902: ("/Settings/CGwacs/Hub4Mode", 1),
    5420: ("/Settings/DynamicEss/BatteryCapacity", 10), 5423: ("/Settings/DynamicEss/Mode", 1),
    5424: ("/Settings/DynamicEss/Schedule/0/AllowGridFeedIn", 1),
    5425: ("/Settings/DynamicEss/Schedule/0/Duration", 1),
    5426: ("/Settings/DynamicEss/Schedule/0/Restrictions", 1),
    5427: ("/Settings/DynamicEss/Schedule/0/Soc", 1),
    5430: ("/Settings/DynamicEss/Schedule/0/Strategy", 1),
}
SIGNED = {2700}


class ModbusGx:
    """The emulator. Use as a context manager; ``port`` is set once started.

    Parameters
    ----------
    plant : EssPlant
        The physics the registers expose and the hub4 overrides act on; a
        :class:`gx_emulator.victron_ess.DessDelegate` runs the DESS windows on it.
    clock : callable
        ``clock() -> datetime`` (aware UTC): the plant advances to it on every request.
    old_firmware : bool
        dbus_modbustcp before v1.0.96: no register 5430 (``Schedule/0/Strategy``).
    """

    def __init__(self, plant: EssPlant, clock: Callable[[], datetime], port: int = 0,
                 old_firmware: bool = False):
        self.plant = plant = as_ess_plant(plant)
        self.clock = clock
        self.port = port or _free_port()
        self.settings = plant.settings
        self.old_firmware = old_firmware
        self.flash_writes = 0
        self.override_writes = 0
        self.writes_by_path: dict = {}
        self.soc_unknown = False
        self.battery_missing = False
        self.dess = plant.delegate or DessDelegate(plant)
        self.dess.soc_reported = lambda: None if self.soc_unknown else round(plant.soc_pct, 1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def override_w(self) -> float | None:
        """hub4 ``/Overrides/Setpoint`` (None = invalid)."""
        return self.plant.setpoint

    @property
    def dess_mode(self) -> int:
        return self.settings["/Settings/DynamicEss/Mode"][0]

    @dess_mode.setter
    def dess_mode(self, value: int) -> None:
        self.settings["/Settings/DynamicEss/Mode"][0] = value

    @property
    def hub4_mode(self) -> int:
        return self.settings["/Settings/CGwacs/Hub4Mode"][0]

    @hub4_mode.setter
    def hub4_mode(self, value: int) -> None:
        self.settings["/Settings/CGwacs/Hub4Mode"][0] = value

    def slot0(self) -> dict:
        """Schedule slot 0 as settings values."""
        base = "/Settings/DynamicEss/Schedule/0/"
        return {k: self.settings[base + k][0] for k in (
            "Start", "Duration", "Soc", "TargetSoc", "Strategy", "Restrictions",
            "AllowGridFeedIn", "Flags")}

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
        volts = 0.0 if self.soc_unknown else p.volts
        v[840] = _u16(volts * 10)
        battery_charge_w = -p.battery_power_w  # Victron: + = charging
        v[841] = _u16(battery_charge_w / volts * 10) if volts else 0
        v[842] = _u16(battery_charge_w)
        v[843] = 0 if self.soc_unknown else _u16(p.soc_pct)  # integer %
        v[844] = 1 if battery_charge_w > 0 else (2 if battery_charge_w < 0 else 0)
        v[850] = v[851] = 0
        for reg, (path, scale) in SETTING_REGS.items():
            if reg == 5430 and self.old_firmware:
                continue
            v[reg] = _u16(self.settings[path][0] * scale)
        v[2903] = v[2901]
        ov = int(round(p.setpoint or 0))
        v[2716], v[2717] = (ov >> 16) & 0xFFFF, ov & 0xFFFF
        st = self.dess.status

        def n(x):
            return 0 if x is None else x  # invalid reads as 0

        v.update({5400: _u16(n(st["Active"])), 5401: _u16(n(st["AllowGridFeedIn"])),
                  5402: _u16(n(st["Available"])), 5403: _u16(n(st["ChargeRate"]) / 10.0),
                  5404: _u16(n(st["ErrorCode"])), 5405: _u16(n(st["Restrictions"])),
                  5406: _u16(n(st["Strategy"])), 5407: _u16(n(st["TargetSoc"]))})
        v.update({5421: 2, 5422: 14})
        start = int(self.settings["/Settings/DynamicEss/Schedule/0/Start"][0])
        v[5428], v[5429] = (start >> 16) & 0xFFFF, start & 0xFFFF
        return v

    def battery_registers(self) -> dict:
        """Unit 225 (the BMS): SoC ×10, CVL/CCL/DCL ×10 (A); 0 when the value is invalid."""
        p = self.plant
        ccl = p.bms_max_charge_w / p.volts if p.bms_max_charge_w is not None else 0.0
        dcl = p.bms_max_discharge_w / p.volts if p.bms_max_discharge_w is not None else 0.0
        return {266: 0 if self.soc_unknown else _u16(p.soc_pct * 10), 305: 568, 306: 0,
                307: _u16(ccl * 10), 308: _u16(dcl * 10)}

    # --- the pymodbus action hooks -----------------------------------------------------------

    async def _system_action(self, function_code, start_address, address, count, registers,
                             set_values):
        with self._lock:
            span = range(address, address + count)
            if self.old_firmware and 5430 in span:
                return ExcCodes.ILLEGAL_ADDRESS
            if set_values is None:  # read: refresh the telemetry snapshot
                for a, value in self._refresh().items():
                    if start_address <= a < start_address + len(registers):
                        registers[a - start_address] = value
                return None
            return self._write(address, list(set_values), registers, start_address)

    def _setting(self, path: str, value) -> bool:
        """One SetValue on localsettings, as dbus_modbustcp sends it; False = refused."""
        entry = self.settings[path]
        new = convert_setting(entry, value)
        if new is None:
            return False
        old = entry[0]
        if new != old:  # localsettings stores (and saves) only a changed value
            self.flash_writes += 1
            self.writes_by_path[path] = self.writes_by_path.get(path, 0) + 1
            entry[0] = new
            self.dess.settings_changed(path, old, new)
        return True

    def _write(self, address: int, values: list, registers: list, start_address: int):
        span = range(address, address + len(values))
        if any(a in READ_ONLY for a in span):
            return ExcCodes.ILLEGAL_ADDRESS
        self.plant.advance(self.clock())
        regs = dict(zip(span, values, strict=True))
        # dbus_modbustcp splits a multi-register write into one SetValue per item, in address
        # order; an int32 item (Start 5428-5429, override 2716-2717) needs both words
        for a in span:
            raw = regs[a]
            if a in SETTING_REGS:
                path, scale = SETTING_REGS[a]
                signed = raw - 0x10000 if a in SIGNED and raw >= 0x8000 else raw
                if not self._setting(path, signed / scale if scale != 1 else signed):
                    return ExcCodes.GATEWAY_PATH_UNAVIABLE
            elif a == 5428:
                if 5429 not in regs:
                    return ExcCodes.ILLEGAL_ADDRESS
                start = (raw << 16) | regs[5429]
                if not self._setting("/Settings/DynamicEss/Schedule/0/Start", start):
                    return ExcCodes.GATEWAY_PATH_UNAVIABLE
            elif a == 2716:
                if 2717 not in regs:
                    return ExcCodes.ILLEGAL_ADDRESS
                value = (raw << 16) | regs[2717]
                value = value - (1 << 32) if value & 0x80000000 else value
                self.override_writes += 1
                # dbus_modbustcp sends a plain double: 0 is a real 0 W setpoint, not "no
                # override" (Modbus cannot write the invalid value; devices.md M9)
                self.plant.setpoint = float(value)
        return None

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
