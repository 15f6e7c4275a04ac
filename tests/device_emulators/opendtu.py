"""An OpenDTU gateway with Hoymiles inverters fed from one battery (DC side), from the OpenDTU
Web API (``reference/devices.md`` §2.3, tbnobody/OpenDTU ``WebApi_limit.cpp``,
``WebApi_power.cpp``, ``WebApi_ws_live.cpp``).

Write endpoints need HTTP Basic ``admin:<password>`` (401 otherwise) and a form field
``data=<JSON>``; ``limit_type`` must be one of the firmware's four codes (``firmware``
``v25.9.11`` and later: 0-3, before: 0, 1, 256, 257), ``limit_value`` ≤ 2250, ``power`` a JSON
boolean; errors answer HTTP 200 with ``{"type": "warning"}`` as OpenDTU does. A limit takes
effect at the next physics step (OpenDTU sends it to the inverter asynchronously). Persistent
limit types are counted in ``eeprom_writes``. The battery's SoC is served at ``/test/battery``
(the battery monitor, not OpenDTU).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

from device_emulators.home import Battery
from device_emulators.web import FaultyDevice


class Hoymiles:
    """One inverter: output = its limit while on and the battery can deliver."""

    def __init__(self, serial: str, max_w: float = 800.0, ambient_c: float = 25.0):
        self.serial = serial
        self.max_w = max_w
        self.on = True
        self.limit_w = max_w  # the persistent limit it boots with
        self.pending_w: float | None = None
        self.reachable = True
        self.ambient_c = ambient_c
        self.power_w = 0.0

    @property
    def temp_c(self) -> float:
        return self.ambient_c + 40.0 * self.power_w / self.max_w


class OpenDtuGateway(FaultyDevice):
    """OpenDTU + inverters + the battery they run on; a device of the home (``power_w``)."""

    def __init__(self, serials=("114190641177", "114190641178"), soc_pct: float = 60.0,
                 capacity_wh: float = 10000.0, password: str = "openDTU42",
                 firmware: str = "v25.9.11", cutoff_soc_pct: float = 5.0):
        super().__init__()
        self.inverters = {s: Hoymiles(s) for s in serials}
        self.battery = Battery(soc_pct, capacity_wh, 10000.0, 10000.0,
                               min_soc_pct=cutoff_soc_pct, ramp_w_per_s=1e9)
        self.password = password
        self.firmware = firmware
        self.dc_pv_w = 0.0
        self.eeprom_writes = 0
        self.commands: list = []  # (path, data) of accepted writes

    @property
    def limit_types(self) -> set:
        new = tuple(int(x) for x in self.firmware.lstrip("v").split(".")) >= (25, 9, 11)
        return {0, 1, 2, 3} if new else {0, 1, 256, 257}

    @property
    def power_w(self) -> float:
        return sum(i.power_w for i in self.inverters.values())

    def step(self, dt_s: float, home) -> None:
        can = self.battery.soc_pct > self.battery.limits.min_kwh / (
            self.battery.capacity_wh / 1000) * 100 + 1e-6
        for inv in self.inverters.values():
            if inv.pending_w is not None:
                inv.limit_w, inv.pending_w = inv.pending_w, None
            inv.power_w = min(inv.limit_w, inv.max_w) if inv.on and inv.reachable and can else 0.0
        self.battery.command_w = self.power_w / 0.96 - self.dc_pv_w
        self.battery.step(dt_s)

    # --- API ------------------------------------------------------------------------------

    def _entry(self, inv: Hoymiles, detail: bool) -> dict:
        entry = {"serial": inv.serial, "name": f"HM {inv.serial[-2:]}", "order": 0,
                 "data_age": 1, "data_age_ms": 1000, "poll_enabled": True,
                 "reachable": inv.reachable, "producing": inv.power_w > 0,
                 "limit_relative": round(inv.limit_w / inv.max_w * 100, 1),
                 "limit_absolute": inv.limit_w, "radio_stats": {}}
        if detail and inv.reachable:
            entry["AC"] = {"0": {"Power": {"v": round(inv.power_w, 1), "u": "W", "d": 1},
                                 "Voltage": {"v": 230.0, "u": "V", "d": 1}}}
            entry["DC"] = {"0": {"Power": {"v": round(inv.power_w / 0.96, 1), "u": "W"}}}
            entry["INV"] = {"0": {"Temperature": {"v": round(inv.temp_c, 1), "u": "°C"}}}
        return entry

    def _warning(self, message: str, code: int = 1002):
        return 200, {"type": "warning", "message": message, "code": code}

    def handle(self, method, path, query, headers, body, fault):
        if path == "/test/battery":
            return 200, {"soc": round(self.battery.soc_pct, 1)}
        if path == "/api/system/status":
            return 200, {"hostname": "OpenDTU-07F614", "git_hash": self.firmware,
                         "config_version": "0.1.24", "pioenv": "generic_esp32"}
        if path == "/api/livedata/status" and method == "GET":
            if "inv" in query:
                inv = self.inverters.get(query["inv"][0])
                entries = [] if inv is None else [self._entry(inv, True)]
                if fault == "missing" and entries:
                    entries[0].pop("AC", None)
                if fault == "wrong_type" and entries and "AC" in entries[0]:
                    entries[0]["AC"]["0"]["Power"]["v"] = "n/a"
            else:
                entries = [self._entry(i, False) for i in self.inverters.values()]
            return 200, {"inverters": entries,
                         "total": {"Power": {"v": round(self.power_w, 1), "u": "W", "d": 1}},
                         "hints": {"time_sync": False, "radio_problem": False,
                                   "default_password": self.password == "openDTU42"}}
        if path == "/api/limit/status":
            return 200, {s: {"limit_relative": round(i.limit_w / i.max_w * 100, 1),
                             "max_power": i.max_w, "limit_set_status": "Ok"}
                         for s, i in self.inverters.items()}
        if method == "POST" and path in ("/api/limit/config", "/api/power/config"):
            token = base64.b64encode(f"admin:{self.password}".encode()).decode()
            if headers.get("Authorization") != f"Basic {token}":
                return 401, {"type": "warning", "message": "Unauthorized"}
            form = parse_qs(body.decode())
            if "data" not in form:
                return self._warning("No values found!")
            try:
                data = json.loads(form["data"][0])
            except ValueError:
                return self._warning("Failed to parse data!")
            inv = self.inverters.get(str(data.get("serial")))
            if path == "/api/limit/config":
                return self._limit(data, inv)
            return self._power(data, inv)
        return 404, {"message": "not found"}

    def _limit(self, data: dict, inv: Hoymiles | None):
        if not all(k in data for k in ("serial", "limit_type", "limit_value")):
            return self._warning("Values are missing!")
        value, kind = data["limit_value"], data["limit_type"]
        if not isinstance(value, (int, float)) or value > 2250:
            return self._warning("Limit must between 0 and 2250!")
        if kind not in self.limit_types:
            return self._warning("Invalid type specified!")
        if inv is None:
            return self._warning("Invalid inverter specified!")
        if kind not in (0, 1):
            self.eeprom_writes += 1
        relative = kind in (1, 3, 257)
        inv.pending_w = min(value / 100 * inv.max_w if relative else float(value), inv.max_w)
        self.commands.append(("limit", data))
        return 200, {"type": "success", "message": "Settings saved!", "code": 1001}

    def _power(self, data: dict, inv: Hoymiles | None):
        if not isinstance(data.get("power"), bool) or "serial" not in data:
            return self._warning("Values are missing!")
        if inv is None:
            return self._warning("Invalid inverter specified!")
        inv.on = data["power"]
        self.commands.append(("power", data))
        return 200, {"type": "success", "message": "Settings saved!", "code": 1001}
