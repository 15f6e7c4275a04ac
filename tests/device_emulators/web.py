"""HTTP devices on a real loopback server: a HomeWizard P1 meter (API v1 and v2), Shelly
meters (Gen1 ``/status``, Gen2 RPC ``EM.GetStatus``), from ``reference/devices.md`` §2.1, §2.4.

Every device answers ``handle(method, path, query, headers, body) -> (status, body)``; a
``faults`` list is consumed one per request: ``"500"`` (HTTP 500), ``"garbage"`` (not JSON),
``"missing"`` (the power field left out, as the P1 does for absent values), ``"wrong_type"``
(the power as a string), ``"slow"`` (answers after ``slow_s``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class DeviceServer:
    """Serves one device object on 127.0.0.1 (``url``); ``start()`` / ``stop()``."""

    def __init__(self, device):
        self.device = device
        device_ref = device

        class Handler(BaseHTTPRequestHandler):
            def _any(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, *more = device_ref.serve(
                    method, parts.path, parse_qs(parts.query), self.headers, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (more[0] if more else {}).items():  # e.g. Retry-After
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                self._any("GET")

            def do_POST(self):  # noqa: N802
                self._any("POST")

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self) -> DeviceServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FaultyDevice:
    """Fault injection shared by the emulated devices."""

    slow_s = 3.0

    def __init__(self):
        self.faults: list = []
        self.requests: list = []  # (method, path, query, body)

    def serve(self, method, path, query, headers, body):
        self.requests.append((method, path, query, body))
        fault = self.faults.pop(0) if self.faults else None
        if fault == "500":
            return 500, {"error": "internal"}
        if fault == "garbage":
            return 200, b"<html>oops"
        if fault == "slow":
            time.sleep(self.slow_s)
        return self.handle(method, path, query, headers, body, fault)

    def handle(self, method, path, query, headers, body, fault):  # pragma: no cover
        raise NotImplementedError


class P1Meter(FaultyDevice):
    """HomeWizard HWE-P1: ``/api``, v1 ``/api/v1/data``, v2 ``/api/measurement`` (bearer)."""

    def __init__(self, home, token: str = "0123456789ABCDEF0123456789ABCDEF"):
        super().__init__()
        self.home = home
        self.token = token

    def handle(self, method, path, query, headers, body, fault):
        power = round(self.home.grid_w())
        value = "oops" if fault == "wrong_type" else power
        if path == "/api":
            return 200, {"product_type": "HWE-P1", "product_name": "P1 Meter",
                         "serial": "3c39e7aabbcc", "firmware_version": "5.18",
                         "api_version": "v1"}
        if path == "/api/v1/data":
            data = {"smr_version": 50, "meter_model": "ISKRA  2M550T-101", "wifi_strength": 100,
                    "total_power_import_t1_kwh": 10830.511, "active_power_l1_w": value}
            if fault != "missing":
                data["active_power_w"] = value
            return 200, data
        if path == "/api/measurement":
            if headers.get("Authorization") != f"Bearer {self.token}":
                return 401, {"error": "user:unauthorized"}
            if headers.get("X-Api-Version") != "2":
                return 400, {"error": "request:api-version-not-supported"}
            data = {"protocol_version": 50, "meter_model": "ISKRA  2M550T-101",
                    "power_l1_w": value, "timestamp": "2026-06-01T00:00:00"}
            if fault != "missing":
                data["power_w"] = value
            return 200, data
        return 404, {"error": "request:not-found"}


class ShellyMeter(FaultyDevice):
    """Shelly EM/3EM Gen1 (``/status``) or Gen2+ (``/rpc/EM.GetStatus``). ``reversed``: the
    clamp is mounted against the arrow, so import reads negative."""

    def __init__(self, home, gen: int = 1, phases: int = 3, reversed_clamp: bool = False):
        super().__init__()
        self.home = home
        self.gen = gen
        self.phases = phases
        self.reversed_clamp = reversed_clamp

    def _phases(self) -> list:
        total = self.home.grid_w() * (-1 if self.reversed_clamp else 1)
        return [round(total / self.phases, 2)] * self.phases

    def handle(self, method, path, query, headers, body, fault):
        phases = self._phases()
        if self.gen == 1 and path == "/status":
            emeters = [{"power": ("oops" if fault == "wrong_type" else p), "pf": 0.9,
                        "current": abs(p) / 230, "voltage": 230.0, "is_valid": True,
                        "total": 1000.0, "total_returned": 10.0} for p in phases]
            if fault == "missing":
                del emeters[0]["power"]
            data = {"emeters": emeters}
            if self.phases == 3:
                data["total_power"] = round(sum(phases), 2)
                if fault in ("missing", "wrong_type"):
                    data.pop("total_power")
            return 200, data
        if self.gen >= 2 and path == "/rpc/EM.GetStatus":
            data = {"id": 0, "a_act_power": phases[0], "b_act_power": phases[1 % len(phases)],
                    "c_act_power": phases[2 % len(phases)], "a_current": 1.0,
                    "total_current": 3.0, "total_aprt_power": abs(sum(phases)),
                    "total_act_power": "oops" if fault == "wrong_type" else round(sum(phases), 2)}
            if fault == "missing":
                data.pop("total_act_power")
            return 200, data
        if self.gen >= 2 and path == "/rpc/EM1.GetStatus":
            return 200, {"id": 0, "act_power": round(sum(phases), 2), "voltage": 230.0}
        return 404, {"code": 404, "message": "Not found"}
