"""A loopback HTTP server replaying recorded payloads (no test reaches the internet).

``serve(routes)`` starts ``http.server`` on 127.0.0.1 (a free port) in a thread and yields its
base URL. ``routes`` maps a path, optionally with query parameters that must match
(``"/api/DayAheadPriceIndices?date=2023-10-29"``), to a list of :class:`Reply`; each request
takes the next reply, the last one repeats. Every request is recorded in ``server.requests``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

RECORDED = Path(__file__).resolve().parents[2] / "data" / "recorded"


@dataclass
class Reply:
    """One canned answer."""

    status: int = 200
    body: bytes | str = b""
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"


def recorded(provider: str, name: str, status: int = 200, **kw) -> Reply:
    """A reply whose body is ``tests/data/recorded/<provider>/<name>``."""
    path = RECORDED / provider / name
    ctype = "application/xml" if name.endswith(".xml") else "application/json"
    return Reply(status, path.read_bytes(), content_type=ctype, **kw)


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # client gave up (timeout tests)
        pass


@contextlib.contextmanager
def serve(routes: dict[str, list[Reply] | Reply]):
    """Run the server; yields an object with ``url`` and ``requests``."""
    table = []
    for key, replies in routes.items():
        parts = urlsplit(key)
        want = {k: v[0] for k, v in parse_qs(parts.query).items()}
        table.append((parts.path, want, list(replies) if isinstance(replies, list)
                      else [replies]))
    seen: list[Seen] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                seen.append(Seen(self.command, parts.path, query, dict(self.headers), body))
                match = next((r for p, w, r in table if p == parts.path
                              and all(query.get(k) == v for k, v in w.items())), None)
                if match is None:
                    reply = Reply(404, b'{"error": "no such recorded route"}')
                else:
                    reply = match.pop(0) if len(match) > 1 else match[0]
            if reply.delay_s:
                time.sleep(reply.delay_s)
            data = reply.body.encode() if isinstance(reply.body, str) else reply.body
            self.send_response(reply.status)
            if reply.status != 204:
                self.send_header("Content-Type", reply.content_type)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data)

        do_GET = do_POST = _handle

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()

    class Handle:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        requests = seen

    try:
        yield Handle
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
