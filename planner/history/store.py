"""Plan history in SQL: every run, every slot, measurements and a price cache.

SQLite is the embedded default (``storage.url: sqlite:///helios.db``); MariaDB/MySQL work
through ``mysql+pymysql://USER@HOST/DB`` with the password from ``secrets.yaml``
(``storage.password: !secret NAME``). The schema is created and upgraded by Alembic
(``planner/history/migrations``, shipped in the package): ``helios db upgrade``, and automatically
on first use. Tables (see ``docs/storage.md`` and the README for example queries):

``plan_history``
    one row per run: when, the plan window, slot length, status, objective and expected
    cost, the two baselines, solver and solve time, a hash of the effective configuration,
    the input summary (provider, data window and age, degraded or not) and the violations.
``plan_slot``
    one row per (plan id, slot start) with every per-slot field of ``schedule.json`` plus
    ``soc_kwh``, ``cost_eur``, ``energy_value_eur_per_kwh`` and ``spot_eur_per_kwh``. The
    intent fields of schedule 1.1 (``intent``, ``battery_min_kw``, ``battery_max_kw``;
    migration 0003) are NULL in rows saved before them: a 1.0 plan, whose intent the executor
    derives from the flows.
``measurements``
    what the executor measured (SoC, battery/grid/PV/load power, time).
``price_cache``
    the last known spot price per provider and slot, so an outage can fall back to it.
``current_schedule`` (view)
    the slots of the newest plan.

All timestamps are stored as UTC without a zone (``DATETIME``/ISO text); this module converts
at the boundary (aware UTC ``pandas.Timestamp`` outside). Each run is saved in one
transaction: either the run and all its slots are there, or nothing is. The database URL is
only ever shown with its password hidden (``URL.render_as_string(hide_password=True)``), and
secret values are redacted from every message.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Engine, make_url

from planner.core.errors import StorageError

#: the newest migration (``planner/history/migrations/versions``); a test checks it is
#: Alembic's head
SCHEMA_REVISION = "0003"
#: Alembic's script location: the ``migrations`` folder shipped beside this module (an absolute
#: path, so a ``planner`` folder elsewhere on ``sys.path`` — e.g. ``tests/planner`` — cannot
#: shadow it)
MIGRATIONS = str(Path(__file__).resolve().parent / "migrations")

# --------------------------------------------------------------------------------------------
# schema (the migrations create exactly this; ``tests/planner/test_store.py`` compares them)

#: UTC timestamps: microseconds on MariaDB (``DATETIME(6)``), ISO text on SQLite
UtcDateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Money = sa.Double

metadata = sa.MetaData()

plan_history = sa.Table(
    "plan_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True,
              comment="wall-clock time the run was saved [UTC]"),
    sa.Column("generated_at", UtcDateTime, nullable=False,
              comment="the plan's 'now' (schedule.json generated_at) [UTC]"),
    sa.Column("plan_start", UtcDateTime, nullable=False, comment="first slot start [UTC]"),
    sa.Column("plan_end", UtcDateTime, nullable=False, comment="end of the last slot [UTC]"),
    sa.Column("valid_until", UtcDateTime, nullable=False, comment="[UTC]"),
    sa.Column("slot_s", sa.Integer, nullable=False),
    sa.Column("n_slots", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("objective_eur", Money, nullable=False),
    sa.Column("expected_cost_eur", Money, nullable=False, comment="grid bill over the horizon"),
    sa.Column("wear_cost_eur", Money, nullable=False),
    sa.Column("terminal_value_eur_per_kwh", sa.Double, nullable=False),
    sa.Column("net_cost_eur", Money, nullable=False,
              comment="bill + wear - value of the change in stored energy"),
    sa.Column("baseline_no_battery_eur", Money, nullable=False, comment="net cost"),
    sa.Column("baseline_self_consumption_eur", Money, nullable=False, comment="net cost"),
    sa.Column("baselines", sa.JSON, nullable=False),
    sa.Column("solver", sa.String(32), nullable=False),
    sa.Column("solve_s", sa.Double, nullable=False),
    sa.Column("exact_milp", sa.Boolean, nullable=False),
    sa.Column("soc_start_pct", sa.Double, nullable=False),
    sa.Column("capacity_kwh", sa.Double, nullable=False),
    sa.Column("min_soc_pct", sa.Double, nullable=False),
    sa.Column("reserve_soc_pct", sa.Double, nullable=False),
    sa.Column("max_soc_pct", sa.Double, nullable=False),
    sa.Column("site_timezone", sa.String(64), nullable=False),
    sa.Column("config_hash", sa.String(64), nullable=False,
              comment="sha256 of the effective configuration, secrets excluded"),
    sa.Column("helios_version", sa.String(32), nullable=False),
    sa.Column("price_provider", sa.String(64), nullable=False),
    sa.Column("inputs_degraded", sa.Boolean, nullable=False),
    sa.Column("inputs_age_s", sa.Double, nullable=False,
              comment="age of the oldest input data at plan time [s]"),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("n_violations", sa.Integer, nullable=False),
    sa.Column("violations", sa.JSON, nullable=False),
)

#: the intent fields of schedule.json 1.1 (nullable: NULL in plans saved before 0003)
INTENT_SLOT_FIELDS = ("intent", "battery_min_kw", "battery_max_kw")
#: the per-slot fields of schedule.json, in file order
SCHEDULE_SLOT_FIELDS = (
    "grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw",
    "pv_kw", "pv_used_kw", "load_kw", "soc_pct", "buy_eur_per_kwh", "sell_eur_per_kwh",
    "grid_setpoint_w", "action", "reason", *INTENT_SLOT_FIELDS,
)
#: per-slot fields from the plan frame beyond schedule.json
EXTRA_SLOT_FIELDS = ("soc_kwh", "cost_eur", "energy_value_eur_per_kwh", "spot_eur_per_kwh")
SLOT_FIELDS = SCHEDULE_SLOT_FIELDS + EXTRA_SLOT_FIELDS

plan_slot = sa.Table(
    "plan_slot", metadata,
    sa.Column("plan_id", sa.Integer, sa.ForeignKey("plan_history.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("slot_start", UtcDateTime, primary_key=True, comment="[UTC]"),
    sa.Column("slot_end", UtcDateTime, nullable=False,
              comment="slot_start + slot_s [UTC]; lets SQL join measurements portably"),
    *[sa.Column(name, sa.Double, nullable=False) for name in SCHEDULE_SLOT_FIELDS[:10]],
    sa.Column("grid_setpoint_w", sa.Integer, nullable=False, comment="+ = import"),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    *[sa.Column(name, sa.Double, nullable=False) for name in EXTRA_SLOT_FIELDS],
    # schedule 1.1 (migration 0003, hence last): NULL = a 1.0 plan without intent
    sa.Column("intent", sa.String(16), nullable=True),
    sa.Column("battery_min_kw", sa.Double, nullable=True, comment="+ = discharge [kW]"),
    sa.Column("battery_max_kw", sa.Double, nullable=True, comment="+ = discharge [kW]"),
    sa.Index("ix_plan_slot_slot_start", "slot_start"),
)

measurements = sa.Table(
    "measurements", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("measured_at", UtcDateTime, nullable=False, index=True, comment="[UTC]"),
    sa.Column("soc_pct", sa.Double, nullable=True),
    sa.Column("battery_power_w", sa.Double, nullable=True, comment="+ = discharging"),
    sa.Column("grid_power_w", sa.Double, nullable=True, comment="+ = import"),
    sa.Column("pv_power_w", sa.Double, nullable=True),
    sa.Column("load_power_w", sa.Double, nullable=True),
    sa.Column("source", sa.String(64), nullable=True),
)

price_cache = sa.Table(
    "price_cache", metadata,
    sa.Column("provider", sa.String(64), primary_key=True),
    sa.Column("slot_start", UtcDateTime, primary_key=True, comment="[UTC]"),
    sa.Column("slot_s", sa.Integer, nullable=False),
    sa.Column("spot_eur_per_kwh", sa.Double, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False, comment="[UTC]"),
)

#: the view the migrations create (same SQL on SQLite and MariaDB)
CURRENT_SCHEDULE_SQL = (
    "CREATE VIEW current_schedule AS "
    "SELECT s.* FROM plan_slot s "
    "WHERE s.plan_id = (SELECT MAX(h.id) FROM plan_history h)"
)

# --------------------------------------------------------------------------------------------
# time and value conversion


def to_db_time(ts: Any) -> datetime:
    """Aware timestamp → naive UTC ``datetime`` for the database (naive input is rejected)."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp {ts!r}: expected UTC")
    return ts.tz_convert("UTC").tz_localize(None).to_pydatetime()


def from_db_time(value: Any) -> pd.Timestamp:
    """Naive UTC value from the database → aware UTC ``pandas.Timestamp``."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _missing(x: Any) -> bool:
    """None, NaN or pd.NA: how pandas may hold a NULL (a slot without intent)."""
    return x is None or (not isinstance(x, str) and bool(pd.isna(x)))


def _none_for_missing(slots: pd.DataFrame) -> pd.DataFrame:
    """The intent columns with None (not NaN) where a slot has no intent."""
    slots = slots.copy()
    for name in INTENT_SLOT_FIELDS:
        values = slots[name]
        if any(_missing(v) for v in values):
            slots[name] = pd.Series([None if _missing(v) else v for v in values],
                                    index=slots.index, dtype=object)
    return slots


def _finite(x: Any) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x!r}")
    return x


# --------------------------------------------------------------------------------------------
# a run as rows


@dataclass(frozen=True)
class RunRecord:
    """One run as stored: the ``plan_history`` row and its slots.

    ``run`` holds the ``plan_history`` columns (timestamps as aware UTC ``pd.Timestamp``);
    ``slots`` is indexed by ``slot_start`` (UTC) with :data:`SLOT_FIELDS` as columns; the
    :data:`INTENT_SLOT_FIELDS` are None in a slot without intent (a 1.0 plan). The
    report renders from this, whether it comes from a fresh plan or from the database.
    """

    run: dict
    slots: pd.DataFrame
    plan_id: int | None = None


def _canonical(value: Any, secrets: frozenset[str]) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name), secrets) for f in fields(value)
                if f.name not in ("secret_values", "source")}
    if isinstance(value, dict):
        return {str(k): _canonical(v, secrets) for k, v in sorted(value.items(), key=str)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, secrets) for v in value]
    if isinstance(value, str) and (value in secrets or type(value).__name__ == "_Secret"):
        return "<secret>"
    return value


def config_hash(cfg: Any) -> str:
    """sha256 (hex) of the effective configuration with secret values replaced."""
    doc = _canonical(cfg, frozenset(getattr(cfg, "secret_values", ())))
    text = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _helios_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("helios-ems")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every secret value in ``text`` by ``***``."""
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text


def input_summary(status: Iterable[Any], now: pd.Timestamp,
                  secrets: Iterable[str] = ()) -> list[dict]:
    """One dict per input (prices, pv, load): provider, source, data window, age, degraded.

    ``age_s`` is how old the data were at plan time: ``now - fetched_at`` when the provider
    says when it fetched them (cached data), otherwise 0 (fetched during this run).
    """
    out = []
    for st in status:
        fetched = getattr(st, "fetched_at", None)
        age = max(0.0, (now - pd.Timestamp(fetched)).total_seconds()) if fetched is not None \
            else 0.0
        out.append({
            "kind": st.kind,
            "provider": st.provider,
            "source": redact(str(st.source), secrets),
            "data_start": pd.Timestamp(st.data_start).isoformat(),
            "data_end": pd.Timestamp(st.data_end).isoformat(),
            "age_s": round(age, 3),
            "degraded": bool(st.degraded),
            "detail": redact(str(st.detail), secrets),
        })
    return out


def record_from_result(result: Any, cfg: Any, comparison: Any = None,
                       created_at: pd.Timestamp | None = None) -> RunRecord:
    """Build the rows for a finished run (:class:`planner.plan.run.PlanResult`).

    ``comparison`` is :func:`planner.plan.baselines.compare` (computed here when omitted). The
    per-slot values are taken from the schedule, so the database holds exactly what
    ``schedule.json`` says.
    """
    from planner.plan import baselines

    plan, schedule = result.plan, result.schedule
    if comparison is None:
        comparison = baselines.compare(plan, cfg)
    inputs, sol = plan.inputs, plan.solution
    b = cfg.battery
    now = pd.Timestamp(schedule.generated_at)
    secrets = cfg.secret_values
    summary = input_summary(inputs.status, now, secrets)
    price = next((s for s in summary if s["kind"] == "prices"), None)
    costs = comparison.as_dict()
    violations = [
        {"kind": v.kind, "amount": v.amount, "unit": v.unit, "message": v.message,
         "first_slot": pd.Timestamp(v.first_slot).isoformat() if v.first_slot else None}
        for v in schedule.violations
    ]
    run = {
        "created_at": created_at if created_at is not None else pd.Timestamp.now(tz="UTC"),
        "generated_at": now,
        "plan_start": pd.Timestamp(schedule.slots[0].start),
        "plan_end": pd.Timestamp(schedule.end),
        "valid_until": pd.Timestamp(schedule.valid_until),
        "slot_s": schedule.slot_s,
        "n_slots": len(schedule.slots),
        "status": schedule.status,
        "objective_eur": schedule.objective_eur,
        "expected_cost_eur": schedule.expected_cost_eur,
        "wear_cost_eur": round(float(sol.wear_cost_eur), 6),
        "terminal_value_eur_per_kwh": round(float(sol.terminal_value_eur_per_kwh), 6),
        "net_cost_eur": costs["plan"]["net_cost_eur"],
        "baseline_no_battery_eur": costs["no_battery"]["net_cost_eur"],
        "baseline_self_consumption_eur": costs["self_consumption"]["net_cost_eur"],
        "baselines": costs,
        "solver": schedule.solver,
        "solve_s": schedule.solve_s,
        "exact_milp": bool(sol.exact_milp),
        "soc_start_pct": round(float(inputs.soc_start_pct), 4),
        "capacity_kwh": float(b.capacity_kwh),
        "min_soc_pct": float(b.min_soc_pct),
        "reserve_soc_pct": float(b.reserve_soc_pct if b.reserve_soc_pct is not None
                                 else b.min_soc_pct),
        "max_soc_pct": float(b.max_soc_pct),
        "site_timezone": cfg.site.timezone,
        "config_hash": config_hash(cfg),
        "helios_version": _helios_version(),
        "price_provider": price["provider"] if price else cfg.prices.type,
        "inputs_degraded": any(s["degraded"] for s in summary),
        "inputs_age_s": max((s["age_s"] for s in summary), default=0.0),
        "inputs": summary,
        "n_violations": len(violations),
        "violations": violations,
    }
    rows = [asdict(s) for s in schedule.slots]
    slots = pd.DataFrame(rows).set_index("start")
    slots.index = pd.DatetimeIndex(slots.index).tz_convert("UTC")
    slots.index.name = "slot_start"
    frame = plan.frame
    slots["soc_kwh"] = frame["soc_kwh"].to_numpy().round(6)
    slots["cost_eur"] = frame["cost_eur"].to_numpy().round(6)
    slots["energy_value_eur_per_kwh"] = frame["energy_value_eur_per_kwh"].to_numpy().round(6)
    slots["spot_eur_per_kwh"] = inputs.spot_eur_per_kwh.round(6)
    return RunRecord(run, _none_for_missing(slots[list(SLOT_FIELDS)]))


# --------------------------------------------------------------------------------------------
# the store


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
        from alembic.config import Config

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
        from alembic import command

        def run() -> str | None:
            with self.engine.begin() as conn:
                command.upgrade(self._alembic_config(conn), revision)
            return self.revision()

        result = self._guard(f"schema upgrade to {revision}", run)
        self._schema_ok = result == SCHEMA_REVISION
        return result

    def downgrade(self, revision: str) -> str | None:
        """Undo migrations down to ``revision`` (``base`` removes every table)."""
        from alembic import command

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
                elif name in INTENT_SLOT_FIELDS and _missing(value):
                    row[name] = None  # a slot without intent (1.0 plan)
                elif name in ("action", "reason", "intent"):
                    row[name] = str(value)
                else:
                    row[name] = _finite(value)
            rows.append(row)

        def run_tx() -> int:
            with self.engine.begin() as conn:
                plan_id = int(conn.execute(plan_history.insert().values(**run))
                              .inserted_primary_key[0])
                conn.execute(plan_slot.insert(), [{"plan_id": plan_id, **r} for r in rows])
                if cache_provider and rows:
                    self._cache_prices(conn, cache_provider, starts,
                                       [r["spot_eur_per_kwh"] for r in rows],
                                       int(run["slot_s"]), run["generated_at"])
                if prune_now is not None:
                    self._prune(conn, prune_now)
                return plan_id

        return self._guard("saving the plan", run_tx)

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

    def add_measurements(self, rows: Iterable[dict]) -> int:
        """Insert measurement rows (``measured_at`` aware UTC, powers in W); returns count."""
        self.ensure_schema()
        items = []
        for r in rows:
            item = dict(r)
            item["measured_at"] = to_db_time(item["measured_at"])
            items.append(item)

        def run() -> int:
            if items:
                with self.engine.begin() as conn:
                    conn.execute(measurements.insert(), items)
            return len(items)

        return self._guard("saving measurements", run)

    def latest_soc(self, now: pd.Timestamp) -> tuple[pd.Timestamp, float] | None:
        """The newest measured SoC at or before ``now``: (measured_at UTC, soc_pct) or None."""
        self.ensure_schema()
        q = (sa.select(measurements.c.measured_at, measurements.c.soc_pct)
             .where(measurements.c.measured_at <= to_db_time(now),
                    measurements.c.soc_pct.is_not(None))
             .order_by(measurements.c.measured_at.desc()).limit(1))

        def run() -> tuple[pd.Timestamp, float] | None:
            with self.engine.connect() as conn:
                row = conn.execute(q).first()
            return None if row is None else (from_db_time(row[0]), float(row[1]))

        return self._guard("reading the latest measurement", run)

    def prune(self, now: pd.Timestamp | None = None, keep_days: int | None = None
              ) -> dict[str, int]:
        """Delete plans (with their slots), measurements and cached prices older than
        ``keep_days`` (default: the store's); returns the number of rows deleted per table."""
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
        counts = {
            "plan_slot": conn.execute(
                plan_slot.delete().where(plan_slot.c.plan_id.in_(old))).rowcount,
            "plan_history": conn.execute(
                plan_history.delete().where(plan_history.c.created_at < cutoff)).rowcount,
            "measurements": conn.execute(
                measurements.delete().where(measurements.c.measured_at < cutoff)).rowcount,
            "price_cache": conn.execute(
                price_cache.delete().where(price_cache.c.slot_start < cutoff)).rowcount,
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
            rec = dict(row)
            pid = int(rec.pop("id"))
            for key in ("created_at", "generated_at", "plan_start", "plan_end", "valid_until"):
                rec[key] = from_db_time(rec[key])
            for key in ("exact_milp", "inputs_degraded"):
                rec[key] = bool(rec[key])
            for key in ("baselines", "inputs", "violations"):
                if isinstance(rec[key], str):  # some MariaDB versions hand JSON back as text
                    rec[key] = json.loads(rec[key])
            slots = pd.DataFrame([dict(r) for r in got])
            slots = slots.drop(columns=["plan_id", "slot_end"])
            slots["slot_start"] = pd.DatetimeIndex(
                pd.to_datetime(slots["slot_start"])).tz_localize("UTC")
            slots = slots.set_index("slot_start")[list(SLOT_FIELDS)]
            return RunRecord(rec, _none_for_missing(slots), pid)

        return self._guard("loading a plan", run)
