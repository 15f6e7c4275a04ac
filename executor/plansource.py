"""Where the plan comes from (file, SQL, HTTP) and which plan is current.

:class:`PlanTracker` keeps the last good plan: an invalid or partial document is rejected
(logged once per distinct error) and the previous plan stays in force until it goes stale,
which :func:`executor.control.decide` judges. A plan that is *gone* (file deleted, no row in
the database, HTTP 404) is dropped at once: someone removed it on purpose, so control is
released within one tick.

SQLAlchemy is imported lazily and only for ``source: sql`` (never on a GX).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from executor import schedule as sched
from executor.schedule import Schedule, ScheduleError
from executor.telemetry import require_sqlite_file

log = logging.getLogger("helios.executor.plan")


class PlanGone(Exception):
    """The source says there is no plan (file missing, empty table, HTTP 404)."""


class Unchanged(Exception):
    """The source has not changed since the last fetch (cheap check: mtime, ETag)."""


class FileSource:
    """``schedule.json`` by path; re-read only when its (mtime, size, inode) changes."""

    def __init__(self, path: str):
        self.path = path
        self._signature: Any = None

    def describe(self) -> str:
        """Human-readable origin for the log."""
        return self.path

    def fetch(self) -> Schedule:
        """The plan, if changed.

        Raises
        ------
        PlanGone, Unchanged, ScheduleError, OSError
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._signature = None
            raise PlanGone(f"plan file {self.path} missing") from None
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        if signature == self._signature:
            raise Unchanged()
        try:
            plan = sched.read(self.path)
        except FileNotFoundError:
            self._signature = None
            raise PlanGone(f"plan file {self.path} missing") from None
        except (ScheduleError, OSError):
            self._signature = signature  # a corrupt file is judged once, not every tick
            raise
        self._signature = signature
        return plan


class HttpSource:
    """GET a schedule.json over HTTP (conditional on ETag / Last-Modified)."""

    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url
        self.timeout_s = timeout_s
        self._etag = None
        self._modified = None

    def describe(self) -> str:
        """Human-readable origin for the log."""
        return self.url

    def fetch(self) -> Schedule:
        """The plan, if changed.

        Raises
        ------
        PlanGone, Unchanged, ScheduleError, OSError
        """
        import urllib.error  # lazy: urllib.request pulls in ssl (~8 MB RSS) on a GX
        import urllib.request

        req = urllib.request.Request(self.url, headers={"User-Agent": "helios-executor"})
        if self._etag:
            req.add_header("If-None-Match", self._etag)
        if self._modified:
            req.add_header("If-Modified-Since", self._modified)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                body = resp.read()
                etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                raise Unchanged() from None
            if exc.code in (404, 410):
                self._etag = self._modified = None
                raise PlanGone(f"plan URL {self.url} answered HTTP {exc.code}") from None
            raise OSError(f"plan URL {self.url} answered HTTP {exc.code}") from None
        plan = sched.from_json(body)
        self._etag, self._modified = etag, modified
        return plan


class SqlSource:
    """The newest plan in the database (``plan_history`` + the ``current_schedule`` view).

    The document it builds is version 1.1 when the slots carry their intent (database
    revision 0003 or newer, plan saved by a planner that writes intents) and 1.0 otherwise.
    """

    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url
        self.timeout_s = timeout_s
        self._engine = None
        self._last_id = None

    def describe(self) -> str:
        """The URL with any password hidden."""
        if "@" in self.url and "://" in self.url:
            scheme, rest = self.url.split("://", 1)
            user = rest.split("@", 1)[0].split(":", 1)[0]
            return f"{scheme}://{user}:***@{rest.split('@', 1)[1]}"
        return self.url

    def _connect(self):
        if self._engine is None:
            import sqlalchemy as sa  # optional dependency, only for source: sql

            args = {"connect_args": {"timeout": self.timeout_s}} \
                if self.url.startswith("sqlite") else {"pool_pre_ping": True}
            self._engine = sa.create_engine(self.url, **args)
        return self._engine

    def fetch(self) -> Schedule:
        """The newest plan, if its id changed.

        Raises
        ------
        PlanGone, Unchanged, ScheduleError, OSError (database unreachable)
        """
        import sqlalchemy as sa  # optional dependency, only for source: sql (absent on a GX)

        require_sqlite_file(self.url)
        try:
            with self._connect().connect() as conn:
                head = conn.execute(sa.text(
                    "SELECT id, generated_at, valid_until, slot_s, status, objective_eur, "
                    "expected_cost_eur, solve_s, solver, violations FROM plan_history "
                    "ORDER BY id DESC LIMIT 1")).mappings().first()
                if head is None:
                    raise PlanGone("no plan in the database")
                if head["id"] == self._last_id:
                    raise Unchanged()
                rows = conn.execute(sa.text(
                    "SELECT * FROM current_schedule ORDER BY slot_start")).mappings().all()
                devices = _devices(conn, sa, head["id"])
        except sa.exc.SQLAlchemyError as exc:
            raise OSError(f"database: {type(exc).__name__}: {str(exc).splitlines()[0]}") \
                from None
        doc = {
            "version": sched.SCHEMA_VERSION,
            "version_minor": 0,  # 1 below when the slots carry their intent
            "generated_at": _db_time(head["generated_at"]),
            "valid_until": _db_time(head["valid_until"]),
            "slot_s": head["slot_s"], "status": head["status"],
            "objective_eur": head["objective_eur"],
            "expected_cost_eur": head["expected_cost_eur"],
            "solve_s": head["solve_s"], "solver": head["solver"],
            "violations": _violations(head["violations"]),
            "slots": [],
        }
        names = [f for f in sched.Slot.__dataclass_fields__
                 if f not in ("start", "devices") and f not in _INTENT_COLUMNS]
        for row in rows:
            item = {"start": _db_time(row["slot_start"])}
            for name in names:
                item[name] = row[name]
            item["grid_setpoint_w"] = int(item["grid_setpoint_w"])
            # a database before revision 0003 has no such columns, a plan saved before it
            # has NULLs: both are 1.0 slots, whose intent the executor derives itself. Any
            # value present is passed on, so a half-filled row is rejected by the contract.
            for name in _INTENT_COLUMNS:
                if row.get(name) is not None:
                    item[name] = row[name]
                    doc["version_minor"] = max(doc["version_minor"], _INTENT_MINOR)
            if devices.get(item["start"]):  # plan_device (revision 0007): schedule 1.2
                item["devices"] = devices[item["start"]]
                doc["version_minor"] = _DEVICES_MINOR
            doc["slots"].append(item)
        plan = sched.from_dict(doc)
        self._last_id = head["id"]
        return plan


#: the per-slot intent columns of ``plan_slot`` (schedule 1.1, database revision 0003)
_INTENT_COLUMNS = ("intent", "battery_min_kw", "battery_max_kw")
#: the schedule minor version that added them
_INTENT_MINOR = 1
#: the schedule minor version of the per-slot ``devices`` block (``plan_device``, revision 0007)
_DEVICES_MINOR = 2


def _devices(conn: Any, sa: Any, plan_id: int) -> dict[str, dict[str, dict[str, float]]]:
    """``{slot start Z: {device: {"power_kw": kw[, "soc_pct": pct]}}}`` of plan ``plan_id``
    from ``plan_device`` (``soc_pct`` from revision 0008: further batteries, the car); empty
    for a plan without devices or a database before revision 0007."""
    got = None
    for columns in ("slot_start, device, power_kw, soc_pct", "slot_start, device, power_kw"):
        try:
            got = conn.execute(sa.text(f"SELECT {columns} FROM plan_device "
                                       "WHERE plan_id = :id"), {"id": plan_id}).all()
            break
        except sa.exc.SQLAlchemyError:  # no column (before 0008) or no table (before 0007)
            conn.rollback()
    if got is None:
        return {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in got:
        entry = {"power_kw": float(row[2])}
        if len(row) > 3 and row[3] is not None:
            entry["soc_pct"] = float(row[3])
        out.setdefault(_db_time(row[0]), {})[row[1]] = entry
    return out


def _db_time(value: Any) -> str:
    """Naive UTC from the database (datetime or ISO text) → ``...Z``."""
    text = value.isoformat(sep="T") if hasattr(value, "isoformat") else str(value)
    text = text.replace(" ", "T")
    if "+" not in text[10:] and not text.endswith("Z"):
        text += "Z"
    return text


def _violations(value: Any) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    keep = ("kind", "amount", "unit", "message", "first_slot")
    return [{k: v.get(k) for k in keep if k in v} for v in value
            if isinstance(v, dict) and all(k in v for k in keep[:4])]


def make_source(kind: str, path: str = "", url: str = "", timeout_s: float = 5.0):
    """A plan source for ``executor.plan.source``."""
    if kind == "file":
        return FileSource(path)
    if kind == "http":
        return HttpSource(url, timeout_s)
    if kind == "sql":
        return SqlSource(url, timeout_s)
    raise ValueError(f"unknown plan source {kind!r}")


class PlanTracker:
    """Holds the last good plan and why there is none when there is none.

    Parameters
    ----------
    source
        A ``FileSource``, ``HttpSource`` or ``SqlSource`` (anything with ``fetch()`` and
        ``describe()``).
    """

    def __init__(self, source: Any):
        self.source = source
        self.plan: Schedule | None = None
        self.reason = "no plan loaded yet"
        self._last_error: str | None = None

    def poll(self) -> Schedule | None:
        """Fetch if changed; returns the plan to follow (may be the last good one) or None."""
        try:
            plan = self.source.fetch()
        except Unchanged:
            return self.plan
        except PlanGone as exc:
            if self.plan is not None or self.reason != str(exc):
                log.warning("%s: dropping the plan", exc)
            self.plan, self.reason, self._last_error = None, str(exc), None
            return None
        except ScheduleError as exc:
            self._note_error(f"plan rejected ({exc})")
            return self.plan
        except OSError as exc:
            self._note_error(f"plan source unreadable ({exc})")
            return self.plan
        self.plan, self._last_error = plan, None
        self.reason = "plan loaded"
        log.info("loaded plan generated %s, valid until %s, %d slots from %s",
                 sched.format_utc(plan.generated_at), sched.format_utc(plan.valid_until),
                 len(plan.slots), self.source.describe())
        return plan

    def _note_error(self, message: str) -> None:
        if message != self._last_error:
            keep = "keeping the last good plan" if self.plan is not None else "no good plan"
            log.warning("%s; %s", message, keep)
        self._last_error = message
        if self.plan is None:
            self.reason = message
