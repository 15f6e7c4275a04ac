"""An emulated Alfen Eve socket: a real pymodbus TCP server on 127.0.0.1 (unit 1).

Registers as the Alfen NG9xx Modbus document gives them (../shared/reference/devices.md §2.5):
344-345 real power sum (FLOAT32, W), 1201-1205 the Mode-3 state string, 1206-1207 the applied
max current, 1208-1209 the remaining validity time (u32, s), 1210-1211 the max current
setpoint (R/W, FLOAT32, only as one 2-register write), 1212-1213 the safe current, 1215 phases.

The validity time is honoured on the injected clock: a setpoint not re-written within
``validity_s`` falls back to the safe current. The car draws the applied current when it is at
least 6 A (state ``C2``), else waits (``B2``); without a car the state is ``A``.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable
from datetime import datetime

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gx_emulator.modbus_gx import _free_port

UNIT = 1


def _f32(value: float) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">f", float(value))))


class AlfenEve:
    """The emulated socket; ``port`` is set once started. ``writes``: accepted setpoints."""

    def __init__(self, clock: Callable[[], datetime], safe_current_a: float = 6.0,
                 validity_s: int = 60, phases: int = 3, car: bool = True, port: int = 0):
        self.clock = clock
        self.safe_current_a = safe_current_a
        self.validity_s = validity_s
        self.phases = phases
        self.car = car
        self.port = port or _free_port()
        self.setpoint_a: float | None = None  # None: never written since boot
        self.written_at: datetime | None = None
        self.writes: list[tuple[datetime, float]] = []
        self.refused = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- the station's behaviour ---------------------------------------------------------

    def remaining_s(self) -> int:
        """Seconds before the setpoint expires (0: on the safe current)."""
        if self.written_at is None:
            return 0
        left = self.validity_s - (self.clock() - self.written_at).total_seconds()
        return max(0, int(left))

    def applied_a(self) -> float:
        """The current in force: the setpoint while valid, else the safe current. [A]"""
        if self.setpoint_a is None or self.remaining_s() <= 0:
            return self.safe_current_a
        return self.setpoint_a

    def state(self) -> str:
        """Mode-3 state."""
        if not self.car:
            return "A"
        return "C2" if self.applied_a() >= 6.0 else "B2"

    def power_w(self) -> float:
        """What the car draws. [W]"""
        return self.applied_a() * 230.0 * self.phases if self.state() == "C2" else 0.0

    def registers(self) -> dict[int, int]:
        """Every readable register now."""
        text = self.state().encode("ascii").ljust(10, b"\x00")
        status = struct.unpack(">5H", text)
        remaining = self.remaining_s()
        regs = {1200: 1, 1214: 1, 1215: self.phases}
        regs.update(dict(zip(range(344, 346), _f32(self.power_w()), strict=True)))
        regs.update(dict(zip(range(1201, 1206), status, strict=True)))
        regs.update(dict(zip(range(1206, 1208), _f32(self.applied_a()), strict=True)))
        regs.update({1208: remaining >> 16, 1209: remaining & 0xFFFF})
        regs.update(dict(zip(range(1210, 1212), _f32(self.setpoint_a or 0.0), strict=True)))
        regs.update(dict(zip(range(1212, 1214), _f32(self.safe_current_a), strict=True)))
        return regs

    async def _action(self, function_code, start_address, address, count, registers,
                      set_values):
        with self._lock:
            if set_values is None:
                for a, value in self.registers().items():
                    if start_address <= a < start_address + len(registers):
                        registers[a - start_address] = value
                return None
            values = list(set_values)
            if address == 1215 and len(values) == 1 and values[0] in (1, 3):
                self.phases = values[0]
                return None
            if address != 1210 or len(values) != 2:
                self.refused += 1  # a FLOAT32 must be written whole, in one request
                return ExcCodes.ILLEGAL_ADDRESS
            amps = struct.unpack(">f", struct.pack(">HH", *values))[0]
            self.setpoint_a, self.written_at = amps, self.clock()
            self.writes.append((self.written_at, amps))
            return None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> AlfenEve:
        """Serve on 127.0.0.1:``port`` in a background thread."""
        ready = threading.Event()
        errors: list = []
        simdata = [SimData(344, 2, 0, DataType.UINT16, readonly=True),
                   SimData(1200, 16, 0, DataType.UINT16, readonly=False)]

        async def serve():
            try:
                self._server = ModbusTcpServer(
                    [SimDevice(UNIT, simdata=simdata, action=self._action)],
                    address=("127.0.0.1", self.port))
                await self._server.serve_forever(background=True)
            except Exception as exc:  # reported to the starting thread
                errors.append(exc)
            finally:
                ready.set()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="alfen-eve")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        if not ready.wait(10) or errors:
            self.stop()
            raise RuntimeError(f"emulated Alfen did not start: {errors}")
        return self

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._loop is None:
            return
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(10)
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> AlfenEve:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
