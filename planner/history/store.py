"""Plan history in SQL: the :class:`Store` saves and loads runs, measurements and prices.

SQLite is the embedded default (``storage.url: sqlite:///helios.db``); MariaDB/MySQL work
through ``mysql+pymysql://USER@HOST/DB`` with the password from ``secrets.yaml``
(``storage.password: !secret NAME``). The schema (:mod:`planner.history.schema`; tables
``plan_history``, ``plan_slot``, ``measurements``, ``price_cache``, view ``current_schedule``,
see ``docs/storage.md`` and the README for example queries) is created and upgraded by
Alembic (``planner/history/migrations``, shipped in the package): ``helios db upgrade``, and
automatically on first use.

Rows go in and come out as :class:`planner.history.rows.RunRecord`; turning a plan into one
is the plan layer's job (:mod:`planner.plan.record`), so this package stores and loads rows
and knows nothing of plans. All timestamps are stored as UTC without a zone; each run is
saved in one transaction: either the run and all its slots are there, or nothing is. The
database URL is only ever shown with its password hidden
(``URL.render_as_string(hide_password=True)``), and secret values are redacted from every
message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from planner.core.errors import StorageError
from planner.history.rows import (
    RunRecord,
    finite,
    from_db_time,
    missing,
    none_for_missing,
    redact,
    to_db_time,
)
from planner.history.schema import (
    CURRENT_SCHEDULE_SQL,
    INTENT_SLOT_FIELDS,
    MIGRATIONS,
    NULLABLE_SLOT_FIELDS,
    SCHEMA_REVISION,
    SLOT_FIELDS,
    forecast_cache,
    manual_override,
    measurements,
    metadata,
    plan_device,
    plan_history,
    plan_slot,
    price_cache,
)

#: re-exported: the migrations' env.py, the executor's tests and the providers that read
#: measurements import them from here
__all__ = ["CURRENT_SCHEDULE_SQL", "INTENT_SLOT_FIELDS", "MIGRATIONS", "SCHEMA_REVISION",
           "SLOT_FIELDS", "RunRecord", "Store", "from_db_time", "make_engine", "make_url_safe",
           "measurements", "metadata", "plan_device", "plan_history", "plan_slot", "price_cache",
           "forecast_cache", "real_measurement", "redact", "to_db_time"]


#: the plan_history numbers that must be finite
_RUN_NUMBERS = ("objective_eur", "expected_cost_eur", "wear_cost_eur", "terminal_value_eur_per_kwh",
                "net_cost_eur", "baseline_no_battery_eur", "baseline_self_consumption_eur",
                "solve_s", "soc_start_pct")


def real_measurement() -> sa.ColumnElement[bool]:
    """The condition every reader of ``measurements`` adds: not from a simulated plant."""
    return measurements.c.simulated == sa.false()


def make_url_safe(url: str | URL) -> URL:
    """Parse a database URL; MariaDB/MySQL get ``charset=utf8mb4`` unless given."""
    u = make_url(url) if isinstance(url, str) else url
    if u.get_backend_name() in ("mysql", "mariadb") and "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
    return u


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url``: SQLite with a busy timeout and WAL, MariaDB with pre-ping."""
    u = make_url_safe(url)
    if u.get_backend_name() == "sqlite":
        engine = sa.create_engine(u, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL: the report and the executor's measurement writes do not block a plan's save
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return sa.create_engine(u, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    base = orig if orig is not None else exc
    text = str(base).strip().splitlines()[0] if str(base).strip() else type(base).__name__
    if isinstance(base, tuple) or (getattr(base, "args", None) and len(base.args) == 2
                                   and isinstance(base.args[0], int)):
        text = f"{base.args[1]} (error {base.args[0]})"
    return text[:300]


class Store:
    """The plan history database at one URL.

    Parameters
    ----------
    url
        SQLAlchemy URL (``sqlite:///PATH`` or ``mysql+pymysql://USER@HOST/DB``).
    password
        Replaces the URL's password (from ``secrets.yaml``).
    keep_days
        Retention for :meth:`prune`. [d]
    secrets
        Values to redact from every message.
    """

    def __init__(self, url: str | URL, password: str | None = None, keep_days: int = 365,
                 secrets: Iterable[str] = ()):
        u = make_url_safe(url)
        if password is not None:
            u = u.set(password=str(password))
        self.url = u
        self.keep_days = keep_days
        self.secrets = frozenset(s for s in secrets if s)
        if u.password:
            self.secrets |= {str(u.password)}
        self._engine: Engine | None = None
        self._schema_ok = False

    @classmethod
    def from_config(cls, cfg: Any) -> Store:
        """The store described by ``cfg.storage``."""
        s = cfg.storage
        try:
            return cls(s.url, s.password, s.keep_days, cfg.secret_values)
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise StorageError(f"storage.url: cannot parse the database URL "
                               f"({redact(str(exc), cfg.secret_values)})") from None

    # -- helpers ------------------------------------------------------------------------------
    @property
    def safe_url(self) -> str:
        """The URL with the password hidden, for messages."""
        return redact(self.url.render_as_string(hide_password=True), self.secrets)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (created on first use)."""
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def dispose(self) -> None:
        """Close pooled connections."""
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def error(self, what: str, exc: BaseException) -> StorageError:
        """A :class:`StorageError` naming the database (password hidden) and the cause."""
        return StorageError(redact(f"database {self.safe_url}: {what} failed: {_reason(exc)}",
                                   self.secrets))

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except StorageError:
            raise
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise self.error(what, exc) from None
        except Exception as exc:  # alembic's CommandError and driver errors outside SA
            if type(exc).__module__.startswith(("alembic", "pymysql", "sqlite3")):
                raise self.error(what, exc) from None
            raise

    # -- schema -------------------------------------------------------------------------------
    def _alembic_config(self, connection: sa.Connection) -> Any:
        from alembic.config import Config  # heavy (~0.2 s): only when a migration is due

        acfg = Config()
        acfg.set_main_option("script_location", MIGRATIONS)
        acfg.set_main_option("path_separator", "os")
        acfg.attributes["connection"] = connection
        return acfg

    def revision(self) -> str | None:
        """The database's schema revision (None when no schema yet)."""

        def run() -> str | None:
            with self.engine.connect() as conn:
                return self._revision(conn)

        return self._guard("reading the schema revision", run)

    @staticmethod
    def _revision(conn: sa.Connection) -> str | None:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def upgrade(self, revision: str = "head") -> str | None:
        """Apply migrations up to ``revision``; returns the new revision."""
        from alembic import command  # heavy: only when a migration is due

        def run() -> str | None:
            with self.engine.begin() as conn:
                command.upgrade(self._alembic_config(conn), revision)
            return self.revision()

        result = self._guard(f"schema upgrade to {revision}", run)
        self._schema_ok = result == SCHEMA_REVISION
        return result

    def downgrade(self, revision: str) -> str | None:
        """Undo migrations down to ``revision`` (``base`` removes every table)."""
        from alembic import command  # heavy: only when a migration is due

        def run() -> str | None:
            with self.engine.begin() as conn:
                command.downgrade(self._alembic_config(conn), revision)
            return self.revision()

        self._schema_ok = False
        return self._guard(f"schema downgrade to {revision}", run)

    def ensure_schema(self) -> None:
        """Create or upgrade the schema when it is not at :data:`SCHEMA_REVISION`.

        The common case costs one query; Alembic is imported only when there is work to do.
        """
        if self._schema_ok:
            return
        current = self.revision()
        if current != SCHEMA_REVISION:
            if current is not None and not current.isdigit():
                raise StorageError(f"database {self.safe_url}: unknown schema revision "
                                   f"{current!r}; this Helios knows up to {SCHEMA_REVISION}")
            if current is not None and int(current) > int(SCHEMA_REVISION):
                raise StorageError(f"database {self.safe_url}: schema revision {current} is "
                                   f"newer than this Helios (knows up to {SCHEMA_REVISION}); "
                                   "upgrade Helios")
            self.upgrade("head")
        self._schema_ok = True

    # -- writing ------------------------------------------------------------------------------
    def save(self, record: RunRecord, prune_now: pd.Timestamp | None = None,
             cache_provider: str | None = None) -> int:
        """Save one run in one transaction; returns its ``plan_history.id``.

        Also refreshes the price cache for ``cache_provider`` over the plan's slots and,
        when ``prune_now`` is given, prunes rows older than ``keep_days`` — all in the same
        transaction, so a failure leaves the database as it was.

        Raises
        ------
        StorageError
            The database is unreachable or the write failed (nothing was saved).
        """
        self.ensure_schema()
        run = dict(record.run)
        if run.get("overrides") is None:  # no overrides: also saves into a schema before 0009
            run.pop("overrides", None)
        for key in ("created_at", "generated_at", "plan_start", "plan_end", "valid_until"):
            run[key] = to_db_time(run[key])
        slots = record.slots
        starts = [to_db_time(t) for t in slots.index]
        rows = []
        step = pd.Timedelta(seconds=int(run["slot_s"])).to_pytimedelta()
        for start, values in zip(starts, slots.itertuples(index=False), strict=True):
            row = {"slot_start": start, "slot_end": start + step}
            for name, value in zip(SLOT_FIELDS, values, strict=True):
                if name == "grid_setpoint_w":
                    row[name] = int(value)
                elif name in INTENT_SLOT_FIELDS and missing(value):
                    row[name] = None  # a slot without intent (1.0 plan)
                elif name in ("action", "reason", "intent"):
                    row[name] = str(value)
                elif name in NULLABLE_SLOT_FIELDS and (missing(value)
                                                       or not math.isfinite(value)):
                    row[name] = None  # unknown (a solve without duals)
                else:
                    row[name] = self._finite(value, f"plan_slot.{name}", start)
            rows.append(row)
        for key in _RUN_NUMBERS:
            run[key] = self._finite(run[key], f"plan_history.{key}", None)
        devices = record.devices if record.devices is not None else pd.DataFrame()
        socs = record.device_soc if record.device_soc is not None else pd.DataFrame()

        def soc(name: str, i: int) -> float | None:
            if name not in socs.columns or missing(socs[name].iat[i]):
                return None
            return self._finite(socs[name].iat[i], f"plan_device.{name}.soc_pct", starts[i])

        device_rows = [{"slot_start": start, "device": str(name),
                        "power_kw": self._finite(kw, f"plan_device.{name}", start),
                        "soc_pct": soc(name, i)}
                       for name in devices.columns
                       for i, (start, kw) in enumerate(zip(starts, devices[name], strict=True))]

        def run_tx() -> int:
            with self.engine.begin() as conn:
                plan_id = int(conn.execute(plan_history.insert().values(**run))
                              .inserted_primary_key[0])
                conn.execute(plan_slot.insert(), [{"plan_id": plan_id, **r} for r in rows])
                if device_rows:
                    conn.execute(plan_device.insert(),
                                 [{"plan_id": plan_id, **r} for r in device_rows])
                if cache_provider and rows:
                    self._cache_prices(conn, cache_provider, starts,
                                       [r["spot_eur_per_kwh"] for r in rows],
                                       int(run["slot_s"]), run["generated_at"])
                if prune_now is not None:
                    self._prune(conn, prune_now)
                return plan_id

        return self._guard("saving the plan", run_tx)

    def _finite(self, value: Any, what: str, slot: datetime | None) -> float:
        """``value`` as a float, or a :class:`StorageError` naming the column and slot: a NaN
        must never end a run with a traceback after ``schedule.json`` was written (exit 6)."""
        try:
            return finite(value)
        except (TypeError, ValueError):
            where = f" in the slot starting {slot:%Y-%m-%dT%H:%M}Z" if slot is not None else ""
            raise StorageError(f"database {self.safe_url}: plan not saved: {what} is "
                               f"{value!r}{where} (not a finite number)") from None

    @staticmethod
    def _cache_prices(conn: sa.Connection, provider: str, starts: list[datetime],
                      values: list[float], slot_s: int, fetched_at: datetime) -> None:
        conn.execute(price_cache.delete().where(
            price_cache.c.provider == provider,
            price_cache.c.slot_start >= starts[0], price_cache.c.slot_start <= starts[-1]))
        conn.execute(price_cache.insert(), [
            {"provider": provider, "slot_start": s, "slot_s": slot_s, "spot_eur_per_kwh": v,
             "fetched_at": fetched_at} for s, v in zip(starts, values, strict=True)])

    def cached_prices(self, provider: str, start: pd.Timestamp, end: pd.Timestamp
                      ) -> pd.DataFrame:
        """Cached spot prices for ``provider`` in ``[start, end)``.

        Returns a frame indexed by ``slot_start`` (UTC) with ``spot_eur_per_kwh``, ``slot_s``
        and ``fetched_at`` (UTC) — empty when nothing is cached.
        """
        self.ensure_schema()

        def run() -> pd.DataFrame:
            q = (sa.select(price_cache.c.slot_start, price_cache.c.spot_eur_per_kwh,
                           price_cache.c.slot_s, price_cache.c.fetched_at)
                 .where(price_cache.c.provider == provider,
                        price_cache.c.slot_start >= to_db_time(start),
                        price_cache.c.slot_start < to_db_time(end))
                 .order_by(price_cache.c.slot_start))
            with self.engine.connect() as conn:
                got = conn.execute(q).all()
            frame = pd.DataFrame(got, columns=["slot_start", "spot_eur_per_kwh", "slot_s",
                                               "fetched_at"])
            frame["slot_start"] = pd.to_datetime(frame["slot_start"]).dt.tz_localize("UTC")
            frame["fetched_at"] = pd.to_datetime(frame["fetched_at"]).dt.tz_localize("UTC")
            return frame.set_index("slot_start")

        return self._guard("reading the price cache", run)

    def save_forecast(self, kind: str, provider: str, values: pd.Series, resolution_s: int,
                      fetched_at: pd.Timestamp, source: str) -> None:
        """Keep one provider's answer (``values`` indexed by UTC interval start), replacing
        the previous one (``forecast_cache``)."""
        self.ensure_schema()
        rows = [{"kind": kind, "provider": provider, "slot_start": to_db_time(t),
                 "resolution_s": int(resolution_s), "value": float(v),
                 "fetched_at": to_db_time(fetched_at), "source": str(source)[:255]}
                for t, v in values.items() if math.isfinite(float(v))]

        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(forecast_cache.delete().where(forecast_cache.c.kind == kind,
                                                           forecast_cache.c.provider == provider))
                if rows:
                    conn.execute(forecast_cache.insert(), rows)

        self._guard("caching a forecast", run)

    def cached_forecast(self, kind: str, provider: str
                        ) -> tuple[pd.Series, int, pd.Timestamp, str] | None:
        """The last answer kept by :meth:`save_forecast`: (values, resolution_s, fetched_at
        UTC, source), or None."""
        self.ensure_schema()
        q = (sa.select(forecast_cache.c.slot_start, forecast_cache.c.value,
                       forecast_cache.c.resolution_s, forecast_cache.c.fetched_at,
                       forecast_cache.c.source)
             .where(forecast_cache.c.kind == kind, forecast_cache.c.provider == provider)
             .order_by(forecast_cache.c.slot_start))

        def run() -> tuple[pd.Series, int, pd.Timestamp, str] | None:
            with self.engine.connect() as conn:
                got = conn.execute(q).all()
            if not got:
                return None
            index = pd.DatetimeIndex([from_db_time(r[0]) for r in got], name="ts_utc")
            values = pd.Series([float(r[1]) for r in got], index=index)
            return values, int(got[0][2]), from_db_time(got[0][3]), str(got[0][4])

        return self._guard("reading the forecast cache", run)

    def add_measurements(self, rows: Iterable[dict]) -> int:
        """Insert measurement rows (``measured_at`` aware UTC, powers in W, optionally
        ``simulated``); returns count."""
        self.ensure_schema()
        items = []
        for r in rows:
            item = dict(r)
            item["measured_at"] = to_db_time(item["measured_at"])
            items.append(item)

        # an executemany takes its columns from the first row: rows with different keys
        # (some tagged ``simulated``, some not) go in one insert per key set
        groups: dict[tuple[str, ...], list[dict]] = {}
        for item in items:
            groups.setdefault(tuple(sorted(item)), []).append(item)

        def run() -> int:
            if items:
                with self.engine.begin() as conn:
                    for group in groups.values():
                        conn.execute(measurements.insert(), group)
            return len(items)

        return self._guard("saving measurements", run)

    def latest_soc(self, now: pd.Timestamp) -> tuple[pd.Timestamp, float] | None:
        """The newest measured SoC at or before ``now``: (measured_at UTC, soc_pct) or None
        (simulated rows are not measurements)."""
        self.ensure_schema()
        q = (sa.select(measurements.c.measured_at, measurements.c.soc_pct)
             .where(measurements.c.measured_at <= to_db_time(now),
                    measurements.c.soc_pct.is_not(None), real_measurement())
             .order_by(measurements.c.measured_at.desc()).limit(1))

        def run() -> tuple[pd.Timestamp, float] | None:
            with self.engine.connect() as conn:
                row = conn.execute(q).first()
            return None if row is None else (from_db_time(row[0]), float(row[1]))

        return self._guard("reading the latest measurement", run)

    def heater_energy_kwh(self, start: pd.Timestamp, end: pd.Timestamp,
                          max_gap_s: float = 900.0) -> float | None:
        """Energy the water heater took in ``[start, end)`` from ``measurements
        .water_heater_power_w`` (0008): each row's average power over its window, a window
        being the time to the next row (at most the median spacing, and nothing across a gap
        longer than ``max_gap_s``); None when no row in the period measured it. [kWh]"""
        self.ensure_schema()
        col = measurements.c.water_heater_power_w
        q = (sa.select(measurements.c.measured_at, col)
             .where(measurements.c.measured_at >= to_db_time(start),
                    measurements.c.measured_at < to_db_time(end), col.is_not(None),
                    real_measurement())
             .order_by(measurements.c.measured_at))

        def run() -> float | None:
            with self.engine.connect() as conn:
                got = conn.execute(q).all()
            if not got:
                return None
            at = [from_db_time(r[0]).timestamp() for r in got]
            gaps = sorted(b - a for a, b in zip(at, at[1:], strict=False)) or [60.0]
            step = min(gaps[len(gaps) // 2], max_gap_s)
            total = 0.0
            for i, (t, (_at, power_w)) in enumerate(zip(at, got, strict=True)):
                span = (at[i + 1] - t) if i + 1 < len(at) else step
                span = min(span, step, end.timestamp() - t)
                if span > 0 and math.isfinite(float(power_w)):
                    total += max(0.0, float(power_w)) * span
            return total / 3.6e6

        return self._guard("reading the heater's measurements", run)

    def prune(self, now: pd.Timestamp | None = None, keep_days: int | None = None
              ) -> dict[str, int]:
        """Delete plans (with their slots), measurements, cached prices and cached forecasts
        older than ``keep_days`` (default: the store's); the number of rows deleted per table."""
        self.ensure_schema()
        now = pd.Timestamp.now(tz="UTC") if now is None else now

        def run() -> dict[str, int]:
            with self.engine.begin() as conn:
                return self._prune(conn, now, keep_days)

        return self._guard("pruning", run)

    def _prune(self, conn: sa.Connection, now: pd.Timestamp, keep_days: int | None = None
               ) -> dict[str, int]:
        days = self.keep_days if keep_days is None else keep_days
        cutoff = to_db_time(pd.Timestamp(now) - pd.Timedelta(days=days))
        old = sa.select(plan_history.c.id).where(plan_history.c.created_at < cutoff)
        # the devices' rows go with their plans (not counted: the counts name what is pruned)
        conn.execute(plan_device.delete().where(plan_device.c.plan_id.in_(old)))
        # manual overrides over for longer than keep_days (0009; not counted either)
        conn.execute(manual_override.delete().where(manual_override.c.end_at < cutoff))
        counts = {
            "plan_slot": conn.execute(
                plan_slot.delete().where(plan_slot.c.plan_id.in_(old))).rowcount,
            "plan_history": conn.execute(
                plan_history.delete().where(plan_history.c.created_at < cutoff)).rowcount,
            "measurements": conn.execute(
                measurements.delete().where(measurements.c.measured_at < cutoff)).rowcount,
            "price_cache": conn.execute(
                price_cache.delete().where(price_cache.c.slot_start < cutoff)).rowcount,
            # a provider's last answer is replaced on every fetch; one not fetched for keep_days
            # (its options changed: a new cache key) would otherwise stay for ever
            "forecast_cache": conn.execute(
                forecast_cache.delete().where(forecast_cache.c.fetched_at < cutoff)).rowcount,
        }
        return counts

    # -- reading ------------------------------------------------------------------------------
    def plan_ids(self, limit: int = 20) -> list[tuple[int, pd.Timestamp, str, float]]:
        """The newest plans: (id, created_at UTC, status, expected cost EUR), newest first."""
        self.ensure_schema()

        def run() -> list:
            q = (sa.select(plan_history.c.id, plan_history.c.created_at, plan_history.c.status,
                           plan_history.c.expected_cost_eur)
                 .order_by(plan_history.c.id.desc()).limit(limit))
            with self.engine.connect() as conn:
                return [(r[0], from_db_time(r[1]), r[2], r[3]) for r in conn.execute(q)]

        return self._guard("listing plans", run)

    def load(self, plan_id: int | None = None) -> RunRecord:
        """The run ``plan_id`` (default: the newest) with its slots.

        Raises
        ------
        StorageError
            No such plan (or no plan at all), or the database failed.
        """
        self.ensure_schema()

        def run() -> RunRecord:
            with self.engine.connect() as conn:
                q = sa.select(plan_history)
                q = (q.where(plan_history.c.id == plan_id) if plan_id is not None
                     else q.order_by(plan_history.c.id.desc()).limit(1))
                row = conn.execute(q).mappings().first()
                if row is None:
                    newest = conn.execute(sa.select(sa.func.max(plan_history.c.id))).scalar()
                    what = f"no plan with id {plan_id}" if plan_id is not None else "no plan"
                    hint = f" (newest is {newest})" if newest is not None else \
                        " (run `helios plan` first)"
                    raise StorageError(f"database {self.safe_url}: {what}{hint}")
                got = conn.execute(sa.select(plan_slot).where(plan_slot.c.plan_id == row["id"])
                                   .order_by(plan_slot.c.slot_start)).mappings().all()
                dev = conn.execute(sa.select(plan_device.c.slot_start, plan_device.c.device,
                                             plan_device.c.power_kw, plan_device.c.soc_pct)
                                   .where(plan_device.c.plan_id == row["id"])).all()
            rec = dict(row)
            pid = int(rec.pop("id"))
            for key in ("created_at", "generated_at", "plan_start", "plan_end", "valid_until"):
                rec[key] = from_db_time(rec[key])
            for key in ("exact_milp", "inputs_degraded"):
                rec[key] = bool(rec[key])
            for key in ("baselines", "inputs", "violations", "overrides"):
                if isinstance(rec.get(key), str):  # some MariaDB versions hand JSON back as text
                    rec[key] = json.loads(rec[key])
            slots = pd.DataFrame([dict(r) for r in got])
            slots = slots.drop(columns=["plan_id", "slot_end"])
            slots["slot_start"] = pd.DatetimeIndex(
                pd.to_datetime(slots["slot_start"])).tz_localize("UTC")
            slots = slots.set_index("slot_start")[list(SLOT_FIELDS)]
            devices = pd.DataFrame(index=slots.index)
            socs = pd.DataFrame(index=slots.index)
            if dev:  # plan_device (0007): one row per slot and device -> one column each
                long = pd.DataFrame(dev, columns=["slot_start", "device", "power_kw",
                                                  "soc_pct"])
                long["slot_start"] = pd.DatetimeIndex(
                    pd.to_datetime(long["slot_start"])).tz_localize("UTC")
                devices = (long.pivot(index="slot_start", columns="device", values="power_kw")
                           .reindex(slots.index).fillna(0.0))
                devices.columns.name = None
                long["soc_pct"] = pd.to_numeric(long["soc_pct"], errors="coerce")
                with_soc = long[long["soc_pct"].notna()]
                if len(with_soc):  # 0008: the devices' SoC (further batteries, the car)
                    socs = (with_soc.pivot(index="slot_start", columns="device",
                                           values="soc_pct").reindex(slots.index))
                    socs.columns.name = None
            return RunRecord(rec, none_for_missing(slots), pid, devices, socs)

        return self._guard("loading a plan", run)
