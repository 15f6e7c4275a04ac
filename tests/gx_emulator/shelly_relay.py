"""An emulated Shelly relay on loopback HTTP: Gen1 (``/relay/N?turn=on|off``, ``/relay/N``)
or Gen2 RPC (``/rpc/Switch.Set?id=N&on=true|false``, ``/rpc/Switch.GetStatus?id=N``), with
faults a test sets: ``fault = "500"`` (every request answers HTTP 500), ``"garbage"``
(a body that is not JSON), ``"stuck"`` (Set is acknowledged but the output does not change),
and Gen1 HTTP Basic auth (``auth=(user, password)``: 401 without it)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class ShellyRelay:
    """The device; ``output[ch]`` is the contact now, ``requests`` every path asked."""

    def __init__(self, gen: int = 2, channels: int = 1, on: bool = False,
                 auth: tuple[str, str] | None = None):
        self.gen, self.auth = gen, auth
        self.output = [on] * channels
        self.fault: str | None = None
        self.requests: list[str] = []
        self.switches = 0  # how often the contact actually changed
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _switch(self, ch: int, on: bool) -> None:
        if self.fault != "stuck" and self.output[ch] != on:
            self.output[ch] = on
            self.switches += 1

    def answer(self, path: str, headers) -> tuple[int, bytes]:
        """(status, body) for one GET."""
        with self._lock:
            self.requests.append(path)
            if self.fault == "500":
                return 500, b'{"code": -104, "message": "internal error"}'
            if self.fault == "garbage":
                return 200, b"<html>not json</html>"
            if self.auth is not None:
                token = base64.b64encode(":".join(self.auth).encode()).decode()
                if headers.get("Authorization") != f"Basic {token}":
                    return 401, b"401 Unauthorized"
            url = urlsplit(path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if self.gen >= 2:
                return self._rpc(url.path, query)
            return self._gen1(url.path, query)

    def _rpc(self, path: str, query: dict) -> tuple[int, bytes]:
        try:
            ch = int(query.get("id", "0"))
            self.output[ch]
        except (ValueError, IndexError):
            return 500, b'{"code": -105, "message": "Argument \'id\', value not found!"}'
        if path == "/rpc/Switch.Set":
            if query.get("on") not in ("true", "false"):
                return 500, b'{"code": -103, "message": "Missing required argument \'on\'!"}'
            was = self.output[ch]
            self._switch(ch, query["on"] == "true")
            return 200, json.dumps({"was_on": was}).encode()
        if path == "/rpc/Switch.GetStatus":
            return 200, json.dumps({"id": ch, "source": "http", "output": self.output[ch],
                                    "apower": 3000.0 if self.output[ch] else 0.0,
                                    "voltage": 230.1}).encode()
        return 404, b'{"code": 404, "message": "No handler for ' + path.encode() + b'"}'

    def _gen1(self, path: str, query: dict) -> tuple[int, bytes]:
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "relay" or not parts[1].isdigit() \
                or int(parts[1]) >= len(self.output):
            return 404, b"Not Found"
        ch = int(parts[1])
        turn = query.get("turn")
        if turn is not None:
            if turn not in ("on", "off", "toggle"):
                return 400, b"Bad turn!"
            self._switch(ch, not self.output[ch] if turn == "toggle" else turn == "on")
        return 200, json.dumps({"ison": self.output[ch], "has_timer": False,
                                "timer_remaining": 0, "source": "http"}).encode()

    def start(self) -> ShellyRelay:
        """Serve on 127.0.0.1 at a free port (a daemon thread)."""
        device = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                status, body = device.answer(self.path, self.headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="shelly-relay").start()
        return self

    def stop(self) -> None:
        """Stop serving (later requests are refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> ShellyRelay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
