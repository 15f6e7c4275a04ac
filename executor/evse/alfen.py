"""``alfen``: an Alfen Eve (NG9xx) over Modbus-TCP, as the energy management system.

Needs Alfen's paid **Active Load Balancing** licence on the station, and in the Service
Installer app: "Data source = Energy Management System", Modbus TCP/IP EMS enabled, "Allow
reading", "Allow writing maximum currents" (../shared/reference/devices.md §2.5; docs/ev.md).

Socket registers (unit 1 = socket 1, 2 = socket 2; big-endian, FLOAT32 high word first):
1201-1205 Mode-3 state (string: ``A`` no car, ``B1``/``B2`` connected, ``C2``/``D2``
charging, ``E``/``F`` error), 1206-1207 the applied max current, 1208-1209 the remaining
validity time [s], **1210-1211 the max current setpoint** (R/W, one FC16 write), 1212-1213 the
safe current, 1215 phases (1/3, R/W), 344-345 the real power sum [W].

The station falls back to the safe current when 1210 is not re-written within the validity
time (default 60 s): a dead-man switch. :meth:`set_current` therefore writes 1210 on every
tick (the executor's interval is far below 60 s), and :meth:`release` writes the safe current
once and stops writing, so the station stays on its own default. "Stop" is a current below the
6 A minimum (0 A); the documentation has no start/stop register. Modbus connections idle for
60 s are closed by the station: the client reconnects on the next call.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from executor.configspec import opt
from executor.errors import DriverError, DriverUnavailable
from executor.evse import register
from executor.evse.base import ChargerConfig, ChargerState

log = logging.getLogger("helios.executor.evse.alfen")

REG_POWER = 344
REG_STATUS = 1201
REG_APPLIED = 1206
REG_VALIDITY = 1208
REG_SETPOINT = 1210
REG_SAFE = 1212
REG_PHASES = 1215
CHARGING = ("C2", "D2")
NO_CAR = ("A", "E", "F")


def f32_words(value: float) -> list[int]:
    """A FLOAT32 as two registers, high word first."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", float(value)))
    return [hi, lo]


def words_f32(words: list[int]) -> float:
    """Two registers (high word first) as a FLOAT32."""
    return struct.unpack(">f", struct.pack(">HH", words[0], words[1]))[0]


def mode3(words: list[int]) -> str:
    """The Mode-3 state string of 1201-1205 (two ASCII characters per register)."""
    raw = b"".join(struct.pack(">H", w) for w in words)
    return raw.split(b"\x00")[0].decode("ascii", "replace").strip()


@register("alfen")
class AlfenCharger:
    """One socket of an Alfen Eve, written as the station's EMS."""

    @dataclass(frozen=True)
    class Config(ChargerConfig):
        """``executor.ev_charger: {type: alfen, host: ..., ...}``."""

        host: str = opt("127.0.0.1", "The station's IP address (wired Ethernet)")
        port: int = opt(502, "Modbus-TCP port", ge=1, le=65535)
        socket: int = opt(1, "Socket (Modbus unit id 1 or 2)", ge=1, le=2)
        timeout_s: float = opt(3.0, "Modbus timeout", "s", gt=0)
        write_phases: bool = opt(False, "Write 1215 (1- or 3-phase charging) = phases at the "
                                 "first write (\"Allow 1- and 3-phased charging\" must be on)")

    def __init__(self, config: AlfenCharger.Config, *, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock
        self.client = ModbusTcpClient(config.host, port=config.port, timeout=config.timeout_s,
                                      retries=0)
        self._phases_written = False
        self._released = False
        self.writes = 0

    def _call(self, what: str, fn, *args, **kwargs):
        if not self.client.connected and not self.client.connect():
            raise DriverUnavailable(f"Alfen {self.config.host}:{self.config.port}: "
                                    "connection refused or timed out")
        try:
            resp = fn(*args, device_id=self.config.socket, **kwargs)
        except (ModbusException, OSError) as exc:
            self.client.close()
            raise DriverUnavailable(f"Alfen {what}: {exc}") from None
        if resp.isError():
            raise DriverError(f"Alfen {what}: Modbus exception "
                              f"{getattr(resp, 'exception_code', '?')}")
        return resp

    def _read(self, address: int, count: int) -> list[int]:
        resp = self._call(f"read {address}+{count}", self.client.read_holding_registers,
                          address, count=count)
        return list(resp.registers)

    def _write_current(self, amps: float) -> None:
        self._call(f"write {REG_SETPOINT}", self.client.write_registers, REG_SETPOINT,
                   f32_words(amps))
        self.writes += 1

    def read(self) -> ChargerState:
        """Mode-3 state, applied current and power."""
        status = mode3(self._read(REG_STATUS, 5))
        applied = words_f32(self._read(REG_APPLIED, 2))
        power = words_f32(self._read(REG_POWER, 2))
        return ChargerState(status=status, connected=status not in NO_CAR,
                            charging=status in CHARGING, power_w=power, current_a=applied)

    def validity_s(self) -> int:
        """Seconds left before the station falls back to its safe current."""
        hi, lo = self._read(REG_VALIDITY, 2)
        return (hi << 16) | lo

    def safe_current_a(self) -> float:
        """The Active Load Balancing safe current. [A]"""
        return words_f32(self._read(REG_SAFE, 2))

    def set_current(self, amps: float) -> None:
        """Write the max current (0 = stop); called every tick, it renews the validity time."""
        if self.config.write_phases and not self._phases_written:
            self._call(f"write {REG_PHASES}", self.client.write_register, REG_PHASES,
                       int(self.config.phases))
            self._phases_written = True
        self._write_current(amps)
        self._released = False

    def release(self) -> None:
        """Back to the station's own default: the safe current now, then no more writes."""
        if not self._released:
            self._write_current(self.safe_current_a())
            self._released = True

    def close(self) -> None:
        """Close the Modbus connection."""
        self.client.close()
