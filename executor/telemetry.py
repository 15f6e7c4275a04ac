"""Telemetry: every tick the measurement is logged; every ``interval_s`` one averaged row is
stored.

Rows always go to a JSONL buffer first (one line per row, flushed and fsynced), then — when
an SQL URL is configured — to the ``measurements`` table in one transaction, after which the
buffer is emptied. When the database is unreachable the rows stay in the buffer and are sent
on a later flush, so nothing is lost across outages or restarts. On a GX (no SQLAlchemy) the
JSONL file *is* the store; it is rotated at ``max_file_bytes`` (one ``.1`` generation kept).

The ``measurements`` table is owned by the planner's history (``planner/history/schema.py``,
created by ``helios db upgrade``); the executor only inserts ``measured_at`` (naive UTC, the
start of the averaging window), ``soc_pct``, ``battery_power_w`` (+ = discharging),
``grid_power_w`` (+ = import), ``pv_power_w``, ``load_power_w``, ``source`` and, when a relay
gives it (schema 0008), ``water_heater_power_w``: the heater's power from its relay's meter or
``relays[].power_kw`` while on; the planner integrates it into the energy already delivered
today. Rows without it are inserted without the column. SQLAlchemy is imported lazily.

Readings of a simulated plant (the ``simulated`` driver, ``dry_run`` on its own) are not
measurements: ``helios-executor`` stores them only with ``--store-simulated``, and then every
row carries ``"simulated": true`` (JSONL) / ``simulated = true`` (SQL, schema 0004), which the
planner's readers (load history, PV correction, ``state: measurements``) skip. Real rows are
inserted without the column (its default is false), so they still go into a database that
has not been upgraded to 0004 yet.
"""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import datetime, timedelta, timezone

from executor.drivers.base import Measurement

log = logging.getLogger("helios.executor.telemetry")

POWER_FIELDS = ("battery_power_w", "grid_power_w", "pv_power_w", "load_power_w")
#: switched devices whose power is stored (a column each in ``measurements``, schema 0008)
DEVICE_FIELDS = ("water_heater_power_w",)


def require_sqlite_file(url: str) -> None:
    """Refuse to let SQLite create an empty database file: the planner's store owns it."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        path = url[len(prefix):].split("?", 1)[0]
        if not os.path.exists(path):
            raise OSError(f"database file {path} does not exist (run `helios db upgrade`)")


class SqlSink:
    """Insert rows into ``measurements`` (lazy SQLAlchemy; one transaction per flush)."""

    def __init__(self, url: str, source: str = "helios-executor", timeout_s: float = 5.0):
        self.url = url
        self.source = source
        self.timeout_s = timeout_s
        self._engine = None

    def write(self, rows: list) -> None:
        """Insert ``rows``; raises ``OSError`` when the database cannot take them."""
        import sqlalchemy as sa  # optional: absent on a GX (the JSONL buffer is the store)

        require_sqlite_file(self.url)
        try:
            if self._engine is None:
                args = {"connect_args": {"timeout": self.timeout_s}} \
                    if self.url.startswith("sqlite") else {"pool_pre_ping": True}
                self._engine = sa.create_engine(self.url, **args)
            groups: dict[tuple[str, ...], list[dict]] = {}
            for row in rows:
                at = datetime.strptime(row["measured_at"], "%Y-%m-%dT%H:%M:%SZ")
                item = {"measured_at": at, "soc_pct": row.get("soc_pct"),
                        **{k: row.get(k) for k in POWER_FIELDS}, "source": self.source}
                item.update({k: row[k] for k in DEVICE_FIELDS if row.get(k) is not None})
                if row.get("simulated"):  # tagged, so the planner never learns from them
                    item["simulated"] = True
                groups.setdefault(tuple(item), []).append(item)
            with self._engine.begin() as conn:
                for names, items in groups.items():  # only the columns a row has
                    conn.execute(sa.text(
                        f"INSERT INTO measurements ({', '.join(names)}) "
                        f"VALUES ({', '.join(':' + k for k in names)})"), items)
        except sa.exc.SQLAlchemyError as exc:
            if self._engine is not None:
                self._engine.dispose()
            raise OSError(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None


class Telemetry:
    """Averages measurements per window and stores them (buffer → optional SQL sink).

    Parameters
    ----------
    buffer_path : str
        The JSONL buffer (created with its directory).
    sink : SqlSink, optional
        Where rows go after the buffer; None = the buffer is the store.
    interval_s : float
        Averaging window. [s]
    max_file_bytes : int
        Rotate the buffer at this size when there is no sink (never with a sink: nothing may
        be dropped before it reached the database).
    simulated : bool
        The readings come from a simulated plant: every row is tagged ``"simulated": true``.
    """

    def __init__(self, buffer_path: str, sink: SqlSink | None = None, interval_s: float = 60.0,
                 max_file_bytes: int = 5_000_000, simulated: bool = False):
        self.buffer_path = buffer_path
        self.simulated = simulated
        self.sink = sink
        self.interval_s = interval_s
        self.max_file_bytes = max_file_bytes
        self._window_start: datetime | None = None
        self._sums: dict = {}
        self._counts: dict = {}
        self._soc: float | None = None
        self._sink_error: str | None = None
        self.stored = 0  # rows that reached the sink (or the buffer, without a sink)
        os.makedirs(os.path.dirname(os.path.abspath(buffer_path)), exist_ok=True)

    def _window_of(self, at: datetime) -> datetime:
        epoch = at.timestamp()
        start = epoch - (epoch % self.interval_s)
        return datetime.fromtimestamp(start, tz=timezone.utc)

    def record(self, m: Measurement | None, now: datetime,
               devices: dict[str, float] | None = None) -> None:
        """Add a measurement (None = no reading this tick) and the switched devices' powers
        by device name [W] (only those with a column: :data:`DEVICE_FIELDS`); closes
        finished windows."""
        window = self._window_of(now)
        if self._window_start is not None and window > self._window_start:
            self._close_window()
        if self._window_start is None or window > self._window_start:
            self._window_start = window
        for device, value in (devices or {}).items():
            name = f"{device}_power_w"
            if name in DEVICE_FIELDS and value is not None and math.isfinite(value):
                self._sums[name] = self._sums.get(name, 0.0) + value
                self._counts[name] = self._counts.get(name, 0) + 1
        if m is None:
            return
        for name in POWER_FIELDS:
            value = getattr(m, name)
            if value is not None and math.isfinite(value):
                self._sums[name] = self._sums.get(name, 0.0) + value
                self._counts[name] = self._counts.get(name, 0) + 1
        if m.soc_pct is not None:
            self._soc = m.soc_pct

    def _close_window(self) -> None:
        if not self._counts and self._soc is None:
            return
        row = {"measured_at": self._window_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "soc_pct": None if self._soc is None else round(self._soc, 3)}
        for name in POWER_FIELDS:
            n = self._counts.get(name, 0)
            row[name] = round(self._sums[name] / n, 1) if n else None
        for name in DEVICE_FIELDS:  # only when measured: older readers never see the key
            if self._counts.get(name):
                row[name] = round(self._sums[name] / self._counts[name], 1)
        if self.simulated:
            row["simulated"] = True
        self._sums, self._counts, self._soc = {}, {}, None
        self._append(row)
        self.flush()

    def _append(self, row: dict) -> None:
        if self.sink is None and self.max_file_bytes:
            try:
                if os.path.getsize(self.buffer_path) > self.max_file_bytes:
                    os.replace(self.buffer_path, self.buffer_path + ".1")
            except FileNotFoundError:
                pass
        with open(self.buffer_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if self.sink is None:
            self.stored += 1

    def pending(self) -> list:
        """Rows in the buffer not yet stored in SQL (all rows without a sink)."""
        try:
            with open(self.buffer_path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            return []
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a torn last line after a power cut: skip it, keep the rest
        return rows

    def flush(self) -> int:
        """Send buffered rows to the sink; returns how many were stored (0 on failure)."""
        if self.sink is None:
            return 0
        rows = self.pending()
        if not rows:
            return 0
        try:
            self.sink.write(rows)
        except OSError as exc:
            if str(exc) != self._sink_error:
                log.warning("measurements database unavailable (%s); %d row(s) buffered in %s",
                            exc, len(rows), self.buffer_path)
            self._sink_error = str(exc)
            return 0
        if self._sink_error is not None or len(rows) > 1:
            log.info("measurements database reachable; flushed %d buffered row(s)", len(rows))
        self._sink_error = None
        with open(self.buffer_path, "w", encoding="utf-8") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        self.stored += len(rows)
        return len(rows)

    def close(self, now: datetime) -> None:
        """Store the partial window (on exit) and try a last flush."""
        if self._window_start is not None:
            self._close_window()
            self._window_start = self._window_of(now) + timedelta(seconds=self.interval_s)
