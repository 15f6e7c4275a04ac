"""Prometheus metrics of a simulation: text exposition format 0.0.4 over HTTP (stdlib).

:class:`Metrics` holds named gauges and counters (``helios_sim_*``, units in the names) under
a lock; the simulation loop sets them, :class:`MetricsServer` (a ``ThreadingHTTPServer`` in a
daemon thread) answers ``GET /metrics`` with :meth:`Metrics.exposition`::

    # HELP helios_sim_soc_pct Battery state of charge
    # TYPE helios_sim_soc_pct gauge
    helios_sim_soc_pct 63.2

Why not ``prometheus_client``: it is not installed here and would be a new dependency for
about 60 lines of a fixed, simple text format with a dozen unlabelled series (one process,
no multiprocess mode, no histograms); the project's other HTTP endpoint (``helios serve``)
is stdlib for the same reason (no new dependency on a Pi). Its default registry is also
process-global, which a test that runs several simulations would have to work around.
"""

from __future__ import annotations

import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: name -> (type, help); the order of the exposition
SERIES = {
    "helios_sim_time_seconds": ("gauge", "Simulated time, Unix seconds"),
    "helios_sim_soc_pct": ("gauge", "Battery state of charge [%]"),
    "helios_sim_grid_w": ("gauge", "Grid power at the meter, + import [W]"),
    "helios_sim_battery_w": ("gauge", "Battery power, + discharge [W]"),
    "helios_sim_pv_w": ("gauge", "PV power [W]"),
    "helios_sim_load_w": ("gauge", "House load incl. appliances [W]"),
    "helios_sim_price_eur_per_kwh": ("gauge", "Buy price now [EUR/kWh]"),
    "helios_sim_plan_age_seconds": ("gauge", "Age of the plan the executor follows [s]"),
    "helios_sim_outage_active": ("gauge", "1 while the grid is down"),
    "helios_sim_cost_eur": ("gauge", "Grid bill so far (import - export) [EUR]"),
    "helios_sim_unserved_kwh": ("gauge", "Load not served so far [kWh]"),
    "helios_sim_speed_ratio": ("gauge", "Simulated seconds per wall-clock second"),
    "helios_sim_plans_total": ("counter", "Plans made (schedule.json written)"),
    "helios_sim_plan_failures_total": ("counter", "Planner runs that failed (file kept)"),
    "helios_sim_plan_fallbacks_total": ("counter", "Plans made on a degraded input"),
    "helios_sim_executor_ticks_total": ("counter", "Executor ticks"),
    "helios_sim_executor_fallbacks_total": ("counter",
                                            "Executor ticks that released control"),
    "helios_sim_measurements_total": ("counter", "Measurement rows stored in SQL"),
}


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Metrics:
    """The current value of every series in :data:`SERIES` (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._values = {name: 0.0 for name in SERIES}

    def set(self, **values: float) -> None:
        """Set gauges (or counters to a total) by name without the ``helios_sim_`` prefix."""
        with self._lock:
            for key, value in values.items():
                name = "helios_sim_" + key
                if name not in self._values:
                    raise KeyError(f"unknown metric {name}")
                self._values[name] = float(value)

    def inc(self, key: str, by: float = 1.0) -> None:
        """Add to a counter."""
        with self._lock:
            self._values["helios_sim_" + key] += by

    def get(self, key: str) -> float:
        with self._lock:
            return self._values["helios_sim_" + key]

    def exposition(self) -> str:
        """The text exposition format 0.0.4 (one HELP, TYPE and sample line per series)."""
        with self._lock:
            values = dict(self._values)
        lines = []
        for name, (kind, text) in SERIES.items():
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.append(f"{name} {_number(values[name])}")
        return "\n".join(lines) + "\n"


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (port 0: a free one, see :attr:`port`)."""

    def __init__(self, metrics: Metrics, port: int, host: str = "127.0.0.1"):
        registry = metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self.send_error(404, "only /metrics")
                    return
                body = registry.exposition().encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):  # noqa: A002 - quiet
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics",
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
