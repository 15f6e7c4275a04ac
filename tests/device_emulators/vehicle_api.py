"""The cars' cloud APIs on a loopback server, for car-side charging control: Tesla's Fleet API
command endpoints (behind the signed-command proxy; also ``GET /api/1/vehicles/{vin}`` and
``vehicle_data``) and Kia Connect EU's ``control/charge``,
answering with the payloads in ``tests/data/recorded/{tesla,kia_hyundai}/``.

``faults`` (one consumed per request): ``"401"``, ``"429"`` (with ``Retry-After:
retry_after_s``), ``"408"`` (asleep, once), ``"500"``, ``"F"`` (Kia ``retCode: F``), ``"4004"``
(Kia duplicate request). ``asleep = True`` keeps the Tesla answering 408 until ``wake_up``.
"""

from __future__ import annotations

import json
from pathlib import Path

RECORDED = Path(__file__).parents[1] / "data" / "recorded"


def _load(kind: str, name: str):
    return json.loads((RECORDED / kind / name).read_text())


class FleetApi:
    """A Tesla behind the proxy: charging on/off, the amps, asleep or awake."""

    def __init__(self, vin: str = "5YJ3E7EB0KF000000", token: str = "tok"):
        self.vin, self.token = vin, token
        self.faults: list[str] = []
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, body)
        self.asleep = False
        self.charging = False
        self.amps = 16
        self.retry_after_s = 120

    def serve(self, method, path, query, headers, body):
        data = json.loads(body) if body else {}
        self.requests.append((method, path, data))
        fault = self.faults.pop(0) if self.faults else None
        if fault == "401" or headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _load("tesla", "unauthorized_401.json")
        if fault == "429":
            return 429, _load("tesla", "rate_limited_429.json"), {
                "Retry-After": str(self.retry_after_s)}
        if fault == "500":
            return 500, {"error": "internal"}
        if path == f"/api/1/vehicles/{self.vin}" and method == "GET":  # never wakes it
            return 200, {"response": {"vin": self.vin, "state":
                                      "asleep" if self.asleep else "online"}}
        prefix = f"/api/1/vehicles/{self.vin}/"
        if not path.startswith(prefix):
            return 404, {"response": None, "error": "not_found"}
        tail = path[len(prefix):]
        if tail == "vehicle_data" and method == "GET":
            if fault == "408" or self.asleep:
                return 408, _load("tesla", "asleep_408.json")
            return 200, _load("tesla", "vehicle_data_charging.json")
        if tail == "wake_up":
            self.asleep = False
            return 200, {"response": {"state": "online", "vin": self.vin}}
        if fault == "408" or self.asleep:
            return 408, _load("tesla", "asleep_408.json")
        if tail == "command/charge_start":
            if self.charging:
                return 200, _load("tesla", "command_is_charging.json")
            self.charging = True
        elif tail == "command/charge_stop":
            self.charging = False
        elif tail == "command/set_charging_amps":
            self.amps = int(data["charging_amps"])
        else:
            return 404, {"response": None, "error": "not_found"}
        return 200, _load("tesla", "command_ok.json")

    def commands(self) -> list[str]:
        """The command paths received, in order (``charge_start``, ``set_charging_amps=7``…)."""
        out = []
        for method, path, body in self.requests:
            if method == "GET":
                continue
            name = path.rsplit("/", 1)[-1]
            out.append(f"{name}={body['charging_amps']}" if "charging_amps" in body else name)
        return out


class KiaConnect:
    """A Kia/Hyundai on the EU cloud: charging started or stopped."""

    def __init__(self, vehicle_id: str = "veh-0001", token: str = "Bearer kia"):
        self.vehicle_id, self.token = vehicle_id, token
        self.faults: list[str] = []
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.charging = False

    def serve(self, method, path, query, headers, body):
        data = json.loads(body) if body else {}
        self.requests.append((method, path, data, dict(headers)))
        fault = self.faults.pop(0) if self.faults else None
        if fault == "401" or headers.get("Authorization") != self.token:
            return 401, {"retCode": "F", "resCode": "4001", "resMsg": "unauthorized"}
        if fault == "429":
            return 429, {"retCode": "F", "resCode": "4029", "resMsg": "too many"}, {
                "Retry-After": "300"}
        if fault == "F":
            return 200, {"retCode": "F", "resCode": "9999", "resMsg": "vehicle not ready"}
        if fault == "4004":
            return 200, _load("kia_hyundai", "error_4004.json")
        if path == f"/api/v1/spa/vehicles/{self.vehicle_id}/status/latest" and method == "GET":
            return 200, _load("kia_hyundai", "status_latest_charging.json")
        if path != f"/api/v1/spa/vehicles/{self.vehicle_id}/control/charge" or method != "POST":
            return 404, {"retCode": "F", "resCode": "4040", "resMsg": "not found"}
        self.charging = data.get("action") == "start"
        return 200, _load("kia_hyundai", "control_ok.json")
