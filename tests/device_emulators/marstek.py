"""Marstek Venus units over real UDP sockets on 127.0.0.1, from the Open API rev 1.0
(``reference/devices.md`` §2.2).

Each :class:`MarstekUnit` is a battery in the :class:`~device_emulators.home.Home` and a UDP
server on its own port answering ``ES.GetStatus``, ``ES.GetMode``, ``Bat.GetStatus``,
``ES.SetMode`` (Auto / AI / Manual / Passive) and ``Marstek.GetDevice``; unknown methods get
JSON-RPC error -32601, bad parameters -32602. Modes as the vendor describes them: ``Auto``
follows the home's meter (its CT) on its own; ``Passive`` holds ``power`` (+ = discharge) for
``cd_time`` seconds of home time, then — undocumented, inferred — falls back to the mode it was
in before. Faults for the tests: ``alive = False`` (no answers), ``powered = False`` (dead:
no answers, no power), ``delay_s`` (every answer late), and one-shot ``faults`` consumed per
request: ``drop``, ``garbage`` (a non-JSON datagram instead of the answer), ``wrong_id`` (the
id of the request sent just before it, i.e. another unit's), ``error``, ``missing_soc``,
``string_soc``, ``set_false``.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from device_emulators.home import Battery


class MarstekUnit:
    """One Venus unit: battery physics + UDP server (``start()`` / ``stop()``)."""

    def __init__(self, soc_pct: float = 50.0, capacity_wh: float = 5120.0,
                 max_w: float = 2500.0, min_soc_pct: float = 11.0, name: str = "VenusE",
                 ramp_w_per_s: float = 1000.0):
        self.battery = Battery(soc_pct, capacity_wh, max_w, max_w, min_soc_pct,
                               ramp_w_per_s=ramp_w_per_s)
        self.max_w = max_w
        self.min_soc_pct = min_soc_pct
        self.src = f"{name}-{id(self) & 0xFFFFFF:06x}"
        self.mode = "Auto"
        self.mode_before_passive = "Auto"
        self.passive_w = 0.0
        self.passive_left_s = 0.0
        self.alive = True
        self.powered = True
        self.delay_s = 0.0
        self.faults: list = []
        self.requests: list = []  # (id, method, params)
        self.arrivals_s: list = []  # monotonic arrival time of each request
        self.overlaps = 0  # requests received while an answer was still pending
        self._pending = 0
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.port = 0

    # --- physics --------------------------------------------------------------------------

    @property
    def power_w(self) -> float:
        """AC power into the home bus, + = discharge. [W]"""
        return self.battery.power_w if self.powered else 0.0

    @property
    def soc_pct(self) -> float:
        return self.battery.soc_pct

    def step(self, dt_s: float, home) -> None:
        """One physics step: follow the mode, then the battery moves."""
        if not self.powered:
            self.battery.command_w = 0.0
            self.battery.power_w = 0.0
            return
        with self._lock:
            if self.mode == "Passive":
                self.passive_left_s -= dt_s
                if self.passive_left_s <= 0:
                    self.mode = self.mode_before_passive
            if self.mode == "Passive":
                command = self.passive_w
            elif self.mode in ("Auto", "AI"):
                auto = [d for d in home.devices
                        if isinstance(d, MarstekUnit) and d.powered and d.mode in ("Auto", "AI")]
                command = self.battery.power_w + home.grid_w() / max(len(auto), 1)
            else:  # Manual without a time window that covers now
                command = 0.0
        self.battery.command_w = max(-self.max_w, min(self.max_w, command))
        self.battery.step(dt_s)

    # --- API ------------------------------------------------------------------------------

    def _es_status(self) -> dict:
        soc = round(self.battery.soc_pct)
        power = round(self.power_w)
        return {"id": 0, "bat_soc": soc, "bat_cap": self.battery.capacity_wh, "pv_power": 0,
                "ongrid_power": power, "offgrid_power": 0, "bat_power": -power,
                "total_pv_energy": 0, "total_grid_output_energy": 0,
                "total_grid_input_energy": 0, "total_load_energy": 0}

    def _bat_status(self) -> dict:
        soc = self.battery.soc_pct
        cap = self.battery.capacity_wh
        return {"id": 0, "soc": round(soc), "charg_flag": soc < 100.0,
                "dischrg_flag": soc > self.min_soc_pct, "bat_temp": 25.0,
                "bat_capacity": round(soc / 100 * cap), "rated_capacity": cap}

    def _set_mode(self, params: dict) -> dict | tuple:
        config = params.get("config") if isinstance(params, dict) else None
        mode = config.get("mode") if isinstance(config, dict) else None
        if mode in ("Auto", "AI"):
            cfg = config.get(f"{mode.lower()}_cfg")
            if not isinstance(cfg, dict) or cfg.get("enable") != 1:
                return -32602, "Invalid params"
            self.mode = mode
        elif mode == "Manual":
            if not isinstance(config.get("manual_cfg"), dict):
                return -32602, "Invalid params"
            self.mode = "Manual"
        elif mode == "Passive":
            cfg = config.get("passive_cfg")
            ok = isinstance(cfg, dict) and all(
                isinstance(cfg.get(k), (int, float)) and not isinstance(cfg.get(k), bool)
                for k in ("power", "cd_time"))
            if not ok:
                return -32602, "Invalid params"
            if self.mode != "Passive":
                self.mode_before_passive = self.mode
            self.mode = "Passive"
            self.passive_w = max(-self.max_w, min(self.max_w, float(cfg["power"])))
            self.passive_left_s = float(cfg["cd_time"])
        else:
            return -32602, "Invalid params"
        return {"set_result": True}

    def handle(self, request: dict, fault: str | None) -> dict | None:
        """The answer to one request (None: no answer)."""
        rid, method, params = request.get("id"), request.get("method"), request.get("params")
        with self._lock:
            if method == "ES.GetStatus":
                result = self._es_status()
                if fault == "missing_soc":
                    del result["bat_soc"]
                elif fault == "string_soc":
                    result["bat_soc"] = "n/a"
            elif method == "Bat.GetStatus":
                result = self._bat_status()
            elif method == "ES.GetMode":
                result = {"id": 0, "mode": self.mode, "ongrid_power": round(self.power_w),
                          "offgrid_power": 0, "bat_soc": round(self.battery.soc_pct)}
            elif method == "ES.SetMode":
                result = {"set_result": False} if fault == "set_false" else self._set_mode(params)
            elif method == "Marstek.GetDevice":
                result = {"device": "VenusE", "ver": 111, "ble_mac": "0", "wifi_mac": "0",
                          "wifi_name": "test", "ip": "127.0.0.1"}
            else:
                result = (-32601, "Method not found")
        if fault == "error":
            result = (-32603, "Internal error")
        if fault == "wrong_id" and isinstance(rid, int):
            rid = rid - 1
        if isinstance(result, tuple):
            return {"id": rid, "src": self.src,
                    "error": {"code": result[0], "message": result[1]}}
        return {"id": rid, "src": self.src, "result": result}

    # --- UDP server -----------------------------------------------------------------------

    def start(self) -> MarstekUnit:
        """Listen on 127.0.0.1 (a free port, see ``port``)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.05)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.alive or not self.powered:
                continue
            try:
                request = json.loads(data.decode())
            except ValueError:
                continue  # the unit ignores what it cannot parse
            if not isinstance(request, dict):
                continue
            self.requests.append((request.get("id"), request.get("method"),
                                  request.get("params")))
            self.arrivals_s.append(time.monotonic())
            fault = self.faults.pop(0) if self.faults else None
            if fault == "drop":
                continue
            if fault == "garbage":
                self._send(b"\x00\xffnot json{", addr, self.delay_s)
                continue
            answer = self.handle(request, fault)
            if answer is not None:
                self._send(json.dumps(answer).encode(), addr, self.delay_s)

    def _send(self, payload: bytes, addr, delay_s: float) -> None:
        with self._lock:
            if self._pending:
                self.overlaps += 1
            self._pending += 1

        def send():
            try:
                self._sock.sendto(payload, addr)
            except OSError:
                pass
            with self._lock:
                self._pending -= 1

        if delay_s > 0:
            threading.Timer(delay_s, send).start()
        else:
            send()
