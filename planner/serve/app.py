"""``helios serve``: the pages and the JSON API over one :class:`Home`, on the standard
library's ``ThreadingHTTPServer``.

Routes (``GET`` never changes anything)::

    GET  /                 live page (polls /api/status every few seconds) + pause/resume
    GET  /plan             the newest plan: the report's charts and what happens next
    GET  /history          planned vs actual SoC, cost per day, realised savings
    GET  /api/status       now: price, PV, load, SoC, grid, current slot, pause, problems
    GET  /api/schedule     the current schedule.json, byte for byte (ETag / 304)
    GET  /api/plans        the newest plans (?limit=1..500, default 20)
    GET  /api/savings      realised savings per local day (?days=1..366, default 7)
    POST /api/pause        {"until": "2h" | "2026-05-01T18:00:00Z" | "forever"}   token
    POST /api/resume       {}                                                      token
    GET  /api/overrides    the manual overrides not over yet (who, when, why)
    POST /api/overrides    {"kind": "hold", "from": "now", "for": "2h", ...}           token
    DELETE /api/overrides/<id>                                                     token

:class:`App` turns a request (method, path, headers, body) into a :class:`Response` without
any socket, so the security rules (:mod:`planner.serve.security`) are one function; the
handler class only moves bytes. Every answer carries a strict Content-Security-Policy (scripts
only with this response's nonce, connections only to this origin), ``nosniff``,
``no-referrer`` and no framing; API answers are ``no-store``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata, resources
from urllib.parse import parse_qs, urlsplit

import jinja2
from markupsafe import Markup

from executor import pause
from executor.schedule import format_utc
from planner.core.errors import HeliosError, StorageError
from planner.report import html as report_html
from planner.serve import controls, data, savings, security
from planner.serve.data import Home

log = logging.getLogger("helios.serve")

#: the largest request body accepted [bytes]
MAX_BODY_BYTES = 16 * 1024
#: ``DELETE /api/overrides/<id>`` clears override ``id``
OVERRIDE_PREFIX = "/api/overrides/"


def utc_now() -> datetime:
    """The wall clock. [UTC, aware]"""
    return datetime.now(timezone.utc)


@dataclass
class Response:
    """One HTTP answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """An answer with a status and a one-line message (``{"error": message}``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _vendor(name: str) -> str:
    return resources.files("planner.report").joinpath("templates", "vendor", name) \
        .read_text("utf-8")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("planner.serve", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["eur"] = lambda x: f"{round(float(x), 2) + 0.0:,.2f}"
    return env


def _version() -> str:
    try:
        return metadata.version("helios-ems")
    except metadata.PackageNotFoundError:  # a checkout without an install
        return "dev"


def _json(doc: object, status: int = 200) -> Response:
    return Response(status, json.dumps(doc, allow_nan=False, default=str).encode("utf-8"))


def _clean(x: object) -> object:
    """NaN/inf → None, recursively (JSON has neither)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _int_param(query: dict[str, list[str]], name: str, default: int, lo: int, hi: int) -> int:
    values = query.get(name)
    if not values:
        return default
    text = values[-1].strip()
    if not text.lstrip("-").isdigit() or not lo <= int(text) <= hi:
        raise HttpError(400, f"{name}: expected a whole number from {lo} to {hi}, "
                             f"got {text[:40]!r}")
    return int(text)


class App:
    """The web app of one home.

    Parameters
    ----------
    home : Home
        Paths and history of the installation.
    token : security.Token
        Required (header) for every state change.
    port : int
        The port this server listens on (``Host`` header check).
    allowed_hosts : iterable of str
        Host names besides IP literals and ``localhost`` (e.g. ``helios.local``).
    poll_s : float
        How often the live page asks for /api/status. [s]
    clock : callable
        ``clock() -> datetime`` (aware UTC).
    demo : bool
        Shown in the footer.
    """

    def __init__(self, home: Home, token: security.Token, port: int = 0,
                 allowed_hosts: tuple[str, ...] = (), poll_s: float = 3.0,
                 clock: Callable[[], datetime] = utc_now, demo: bool = False):
        self.home = home
        self.token = token
        self.port = port
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.poll_s = poll_s
        self.clock = clock
        self.demo = demo
        self.env = _env()
        self.version = _version()
        self.uplot = {"uplot_js": Markup(_vendor("uPlot.iife.min.js")),
                      "uplot_css": Markup(_vendor("uPlot.min.css")),
                      "uplot_license": _vendor("uPlot.LICENSE")}
        self.get_routes = {"/": self.page_live, "/plan": self.page_plan,
                           "/history": self.page_history, "/api/status": self.api_status,
                           "/api/schedule": self.api_schedule, "/api/plans": self.api_plans,
                           "/api/savings": self.api_savings}
        self.get_routes["/api/overrides"] = self.api_overrides
        self.post_routes = {"/api/pause": self.api_pause, "/api/resume": self.api_resume,
                            "/api/overrides": self.api_override_add}

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers, body: bytes = b"") -> Response:
        """Answer one request (never raises)."""
        nonce = secrets.token_urlsafe(16)
        try:
            response = self._dispatch(method, target, headers, body, nonce)
        except HttpError as exc:
            response = _json({"error": exc.message}, exc.status)
            response.headers.update(exc.headers)
        except Exception:  # a bug: logged here, never shown (no traceback to a browser)
            log.exception("%s %s failed", method, target[:200])
            response = _json({"error": "internal error (see the server log)"}, 500)
        response.headers.update(self._security_headers(nonce, response))
        return response

    def error(self, status: int, message: str) -> Response:
        """An error answer with the usual headers (for the handler's own checks)."""
        response = _json({"error": message}, status)
        response.headers.update(self._security_headers(secrets.token_urlsafe(16), response))
        return response

    @staticmethod
    def _security_headers(nonce: str, response: Response) -> dict[str, str]:
        out = {
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
                "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                "form-action 'self'; frame-ancestors 'none'"),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        if response.content_type.startswith("application/json"):
            out.setdefault("Cache-Control", "no-store")
        else:
            out["Cache-Control"] = "no-store"
        return out

    def _dispatch(self, method: str, target: str, headers, body: bytes, nonce: str) -> Response:
        host = headers.get("Host")
        if not security.host_allowed(host, self.port, self.allowed_hosts):
            raise HttpError(403, "Host header not allowed: use an IP address, localhost, or a "
                                 "name given with --allow-host")
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        query = parse_qs(url.query, keep_blank_values=True)
        if method in ("GET", "HEAD"):
            route = self.get_routes.get(path)
            if route is None:
                if path in self.post_routes:
                    raise HttpError(405, f"{path}: use POST", {"Allow": "POST"})
                raise HttpError(404, f"no such page: {path}")
            return route(query, headers, nonce)
        if method in ("POST", "DELETE"):
            if method == "DELETE":
                route = self.api_override_clear if path.startswith(OVERRIDE_PREFIX) else None
                if route is None:
                    raise HttpError(405, f"method DELETE not allowed on {path}",
                                    {"Allow": "GET, HEAD, POST"})
            else:
                route = self.post_routes.get(path)
            if route is None:
                if path in self.get_routes:
                    raise HttpError(405, f"{path}: read-only (GET)", {"Allow": "GET, HEAD"})
                raise HttpError(404, f"no such endpoint: {path}")
            if not security.same_origin(headers, host or ""):
                raise HttpError(403, "cross-origin request refused")
            offered = security.offered_token(headers)
            if not offered:
                raise HttpError(401, "token required: send 'Authorization: Bearer <token>'",
                                {"WWW-Authenticate": 'Bearer realm="helios"'})
            if not self.token.matches(offered):
                raise HttpError(403, "wrong token")
            if method == "DELETE":
                return route(path[len(OVERRIDE_PREFIX):])
            return route(self._body(headers, body))
        raise HttpError(405, f"method {method} not allowed", {"Allow": "GET, HEAD, POST"})

    @staticmethod
    def _body(headers, body: bytes) -> dict:
        """The request body as a mapping: JSON object or form-encoded."""
        kind = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not body.strip():
            return {}
        if kind == "application/x-www-form-urlencoded":
            return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if kind not in ("application/json", ""):
            raise HttpError(415, f"Content-Type: expected application/json, got {kind!r}")
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "body: expected a JSON object") from None
        if not isinstance(doc, dict):
            raise HttpError(400, "body: expected a JSON object")
        return doc

    # -- API -----------------------------------------------------------------------------------
    def api_status(self, query, headers, nonce) -> Response:
        return _json(_clean(data.status(self.home, self.clock())))

    def api_schedule(self, query, headers, nonce) -> Response:
        raw = self.home.schedule_bytes()
        if raw is None:
            raise HttpError(404, "no schedule.json yet (run `helios plan`)")
        etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
        if headers.get("If-None-Match") == etag:
            return Response(304, b"", headers={"ETag": etag})
        return Response(200, raw, headers={"ETag": etag})

    def _history(self) -> data.History:
        problem = self.home.history.problem()
        if problem:
            raise HttpError(503, problem)
        return self.home.history

    def api_plans(self, query, headers, nonce) -> Response:
        limit = _int_param(query, "limit", 20, 1, 500)
        try:
            return _json(_clean({"plans": self._history().plans(limit)}))
        except StorageError as exc:
            raise HttpError(503, str(exc)) from None

    def api_savings(self, query, headers, nonce) -> Response:
        days = _int_param(query, "days", 7, 1, 366)
        try:
            return _json(_clean(savings.realised(self.home, self.clock(), days)))
        except StorageError as exc:
            raise HttpError(503, str(exc)) from None

    def api_pause(self, body: dict) -> Response:
        text = body.get("until", "1h")
        if not isinstance(text, str) or not text.strip() or len(text) > 64:
            raise HttpError(400, "until: expected a duration like 30m/2h/1d, an ISO 8601 time "
                                 "with offset, or 'forever'")
        now = self.clock()
        try:
            until = pause.parse_until(text, now)
        except ValueError as exc:
            raise HttpError(400, str(exc).replace("--until", "until", 1)) from None
        if until <= now:
            raise HttpError(400, f"until: must be in the future, got {text!r}")
        pause.pause(self.home.pause_path, until)
        log.warning("paused until %s (from the web app)", format_utc(until))
        return _json({"message": "paused until resumed" if until >= pause.FOREVER
                      else f"paused until {format_utc(until)}",
                      "status": _clean(data.status(self.home, now))})

    def api_resume(self, body: dict) -> Response:
        was = pause.resume(self.home.pause_path)
        log.warning("resumed (from the web app)")
        return _json({"message": "resumed" if was else "was not paused",
                      "status": _clean(data.status(self.home, self.clock()))})

    def api_overrides(self, query, headers, nonce) -> Response:
        return _json({"overrides": _clean(controls.listing(self.home, self.clock()))})

    def _override_answer(self, message: str, now: datetime) -> Response:
        return _json({"message": message,
                      "overrides": _clean(controls.listing(self.home, now)),
                      "status": _clean(data.status(self.home, now))})

    def api_override_add(self, body: dict) -> Response:
        now = self.clock()
        try:
            o = controls.add(self.home, body, now)
        except controls.ControlError as exc:
            raise HttpError(400, str(exc)) from None
        except HeliosError as exc:  # storage disabled or the database failing
            raise HttpError(503, str(exc)) from None
        log.warning("override #%s added (from the web app): %s", o.id, o.describe())
        return self._override_answer(f"override #{o.id} added: {o.describe()}", now)

    def api_override_clear(self, ident: str) -> Response:
        if not ident.isdigit() or len(ident) > 9:
            raise HttpError(400, f"id: expected a whole number, got {ident[:20]!r}")
        now = self.clock()
        try:
            count = controls.clear(self.home, int(ident), now)
        except HeliosError as exc:
            raise HttpError(503, str(exc)) from None
        if not count:
            raise HttpError(404, f"id: no override #{ident} to clear")
        log.warning("override #%s cleared (from the web app)", ident)
        return self._override_answer(f"override #{ident} cleared", now)

    # -- pages ---------------------------------------------------------------------------------
    def _page(self, template: str, nonce: str, **ctx) -> Response:
        base = {"nonce": nonce, "version": self.version, "tz_name": str(self.home.tz),
                "demo": self.demo, "uplot_js": "", "uplot_css": "", "uplot_license": ""}
        html = self.env.get_template(template).render(**{**base, **ctx})
        return Response(200, html.encode("utf-8"), "text/html; charset=utf-8")

    def page_live(self, query, headers, nonce) -> Response:
        return self._page("live.html.j2", nonce, page="live", title="live",
                          status=_clean(data.status(self.home, self.clock())),
                          poll_ms=int(self.poll_s * 1000))

    def page_plan(self, query, headers, nonce) -> Response:
        problem = self.home.history.problem()
        ctx: dict = {"page": "plan", "title": "plan", "problem": problem, "plan_id": None}
        if problem is None:
            try:
                record = self.home.history.newest()
            except StorageError as exc:
                ctx["problem"] = str(exc)
            else:
                rep = report_html.context(record)
                plan, _ = self.home.schedule()
                ctx.update(
                    plan_id=record.plan_id, run=rep["run"], window=rep["window"],
                    generated=rep["generated"], savings_self=rep["savings_self"],
                    savings_none=rep["savings_none"], chart_data=_clean(rep["chart_data"]),
                    next=data.next_sentence(plan, self.clock(), self.home.tz)
                    if plan is not None else None, **self.uplot)
        return self._page("plan.html.j2", nonce, **ctx)

    def page_history(self, query, headers, nonce) -> Response:
        days = _int_param(query, "days", 7, 1, 366)
        problem = self.home.history.problem()
        ctx: dict = {"page": "history", "title": "history", "problem": problem, "days": days}
        if problem is None:
            try:
                s = savings.realised(self.home, self.clock(), days)
            except StorageError as exc:
                ctx["problem"] = str(exc)
            else:
                ctx.update(s=s, chart_data={"tz": str(self.home.tz), **s["soc"]}, **self.uplot)
        return self._page("history.html.j2", nonce, **ctx)


# ---------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    """Moves bytes between a socket and :meth:`App.handle`."""

    server_version = "helios-serve"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    app: App  # set on the subclass made by make_server

    def _run(self, method: str) -> None:
        length_text = self.headers.get("Content-Length") or "0"
        body = b""
        if not length_text.isdigit():
            response = self.app.error(400, "Content-Length: expected a number")
            self.close_connection = True
        elif int(length_text) > MAX_BODY_BYTES:
            response = self.app.error(413, f"body: at most {MAX_BODY_BYTES} bytes")
            self.close_connection = True
        else:
            body = self.rfile.read(int(length_text)) if int(length_text) else b""
            response = self.app.handle(method, self.path, self.headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if method != "HEAD" and response.status != 304:
            self.wfile.write(response.body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._run("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._run("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._run("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._run("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._run("DELETE")

    def do_OPTIONS(self) -> None:  # noqa: N802 - no CORS preflight is ever granted
        self._run("OPTIONS")

    def do_PATCH(self) -> None:  # noqa: N802
        self._run("PATCH")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's name
        log.debug("%s %s", self.address_string(), format % args)


def make_server(app: App, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A threading HTTP server for ``app`` (``port=0``: a free port; ``app.port`` is set)."""
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    app.port = server.server_address[1]
    return server


__all__ = ["App", "Handler", "HttpError", "Response", "make_server"]
