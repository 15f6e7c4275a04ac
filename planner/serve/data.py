"""What the web app reads: schedule.json, the pause file and the plan history (read-only).

:class:`Home` gathers the paths and the database of one installation, resolved exactly as the
two programs resolve them: ``output.schedule_path`` and ``storage`` from the planner's config,
the pause file from the executor's (``executor.state_dir`` / ``pause_file``, or systemd's
``$STATE_DIRECTORY``), so a pause made here is the file the executor reads every tick.

The database is only read: a missing SQLite file or a schema that is not at
:data:`~planner.history.schema.SCHEMA_REVISION` is reported (``History.problem``) instead of
being created or migrated — that is the planner's job (``helios plan``, ``helios db upgrade``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from executor import config as executor_config
from executor import overrides as ov
from executor import pause
from executor import schedule as sched
from executor.schedule import Schedule, format_utc
from planner.config import HeliosConfig
from planner.core.errors import StorageError
from planner.core.site import SiteSpec
from planner.history.rows import RunRecord, from_db_time, to_db_time
from planner.history.schema import SCHEMA_REVISION, measurements, plan_history, plan_slot
from planner.history.store import Store, real_measurement

#: a reading older than this is shown as stale on the live page [s]
STALE_MEASUREMENT_S = 300.0

#: how each action reads in a sentence
ACTION_WORDS = {
    "charge_grid": "charging from the grid",
    "charge_pv": "charging from PV",
    "discharge": "discharging to cover the load",
    "export": "discharging into the grid",
    "hold": "holding the battery",
    "curtail": "curtailing PV",
    "idle": "idle (plain self-consumption)",
}


@dataclass
class Home:
    """One installation as the web app sees it."""

    cfg: HeliosConfig
    schedule_path: str
    pause_path: str
    state_dir: str
    history: History
    tz: ZoneInfo
    spec: SiteSpec
    #: the executor's overrides file (``executor.overrides_path``)
    overrides_path: str = ""

    @classmethod
    def from_config(cls, cfg: HeliosConfig) -> Home:
        """Paths from the planner's config and the executor's view of the same file.

        Raises
        ------
        planner.core.errors.ConfigError / executor.errors.ConfigError
            The config (or its ``executor:`` section) is invalid.
        """
        if cfg.source and os.path.isfile(cfg.source):
            ex = executor_config.load(cfg.source)
        else:
            ex = executor_config.default(os.path.dirname(cfg.output.schedule_path))
        return cls(cfg=cfg, schedule_path=cfg.output.schedule_path, pause_path=ex.pause_path,
                   state_dir=ex.state_dir, history=History(Store.from_config(cfg)),
                   tz=ZoneInfo(cfg.site.timezone), spec=SiteSpec.from_config(cfg),
                   overrides_path=ex.overrides_path)

    # -- schedule.json -------------------------------------------------------------------------
    def schedule_bytes(self) -> bytes | None:
        """The current schedule.json as written by the planner (None when there is none)."""
        try:
            return Path(self.schedule_path).read_bytes()
        except FileNotFoundError:
            return None

    def schedule(self) -> tuple[Schedule | None, str | None]:
        """The parsed schedule, or None and why not."""
        raw = self.schedule_bytes()
        if raw is None:
            return None, f"no schedule.json at {self.schedule_path} (run `helios plan`)"
        try:
            return sched.from_json(raw), None
        except sched.ScheduleError as exc:
            return None, f"schedule.json is invalid: {exc}"

    # -- overrides -----------------------------------------------------------------------------
    def overrides_state(self, now: datetime) -> list[dict]:
        """The overrides not over yet as the executor sees them (its overrides file), each
        with ``in_force``; a broken file shows as none (the executor logs it)."""
        found, _problem = ov.read(self.overrides_path) if self.overrides_path else ([], None)
        return [{**o.to_dict(), "in_force": o.in_force(now), "text": o.describe()}
                for o in sorted(found, key=lambda o: (o.start, o.id or 0)) if o.end > now]

    # -- pause ---------------------------------------------------------------------------------
    def pause_state(self, now: datetime) -> dict:
        """``{"paused": bool, "until": ISO or None, "forever": bool}`` as the executor sees it."""
        until = pause.read(self.pause_path)
        if until is None or until <= now:
            return {"paused": False, "until": None, "forever": False}
        return {"paused": True, "until": format_utc(until), "forever": until >= pause.FOREVER}


class History:
    """Read-only queries over the plan history (:mod:`planner.history.schema`)."""

    def __init__(self, store: Store):
        self.store = store
        self._ok = False

    def problem(self) -> str | None:
        """Why the history cannot be read now (None when it can). Never creates anything."""
        if self._ok:
            return None
        url = self.store.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
                and not os.path.exists(url.database):
            return "no plan history yet (run `helios plan`)"
        try:
            revision = self.store.revision()
        except StorageError as exc:
            return str(exc)
        if revision != SCHEMA_REVISION:
            return (f"plan history schema is {revision or 'missing'}, this Helios reads "
                    f"{SCHEMA_REVISION} (run `helios db upgrade`)")
        self._ok = True
        return None

    def _rows(self, query) -> list[dict]:
        def run() -> list[dict]:
            with self.store.engine.connect() as conn:
                return [dict(r) for r in conn.execute(query).mappings()]

        return self.store._guard("reading the history", run)  # noqa: SLF001 - its error policy

    def latest_measurement(self, now: datetime) -> dict | None:
        """The newest measurement at or before ``now`` (+ 1 min of clock skew)."""
        q = (sa.select(measurements)
             .where(measurements.c.measured_at <= to_db_time(now + timedelta(minutes=1)))
             .order_by(measurements.c.measured_at.desc(), measurements.c.id.desc()).limit(1))
        rows = self._rows(q)
        return _measurement(rows[0], now) if rows else None

    def measurements(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Real measurements (not ``simulated``) in ``[start, end)``, indexed by
        ``measured_at`` (UTC)."""
        q = (sa.select(measurements)
             .where(measurements.c.measured_at >= to_db_time(start),
                    measurements.c.measured_at < to_db_time(end),
                    real_measurement())
             .order_by(measurements.c.measured_at))
        frame = pd.DataFrame(self._rows(q), columns=[c.name for c in measurements.columns])
        frame["measured_at"] = pd.to_datetime(frame["measured_at"]).dt.tz_localize("UTC") \
            if len(frame) else pd.DatetimeIndex([], tz="UTC")
        return frame.set_index("measured_at")

    def plans(self, limit: int) -> list[dict]:
        """The newest plans, newest first (ids, times, status and the expected costs)."""
        cols = [plan_history.c[name] for name in (
            "id", "created_at", "generated_at", "plan_start", "plan_end", "valid_until",
            "status", "solver", "expected_cost_eur", "net_cost_eur", "baseline_no_battery_eur",
            "baseline_self_consumption_eur", "soc_start_pct", "inputs_degraded",
            "n_violations")]
        q = sa.select(*cols).order_by(plan_history.c.id.desc()).limit(limit)
        out = []
        for r in self._rows(q):
            row = dict(r)
            for key in ("created_at", "generated_at", "plan_start", "plan_end", "valid_until"):
                row[key] = format_utc(from_db_time(row[key]).to_pydatetime())
            row["inputs_degraded"] = bool(row["inputs_degraded"])
            row["savings_vs_no_battery_eur"] = round(
                row["baseline_no_battery_eur"] - row["net_cost_eur"], 6)
            row["savings_vs_self_consumption_eur"] = round(
                row["baseline_self_consumption_eur"] - row["net_cost_eur"], 6)
            out.append(row)
        return out

    def newest(self) -> RunRecord:
        """The newest stored plan with its slots (``StorageError`` when there is none)."""
        return self.store.load()

    def slots_in_force(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Per slot in ``[start, end)``: the slot of the newest plan generated before the slot
        ended (the plan the executor was following), with that plan's terminal value.

        Indexed by ``slot_start`` (UTC); columns ``plan_id``, ``slot_s``, ``soc_pct``,
        ``buy_eur_per_kwh``, ``sell_eur_per_kwh``, ``cost_eur``, ``action``,
        ``terminal_value_eur_per_kwh``.
        """
        s, h = plan_slot.alias("s"), plan_history.alias("h")
        window = (s.c.slot_start >= to_db_time(start), s.c.slot_start < to_db_time(end))
        newest = (sa.select(s.c.slot_start, sa.func.max(s.c.plan_id).label("plan_id"))
                  .select_from(s.join(h, h.c.id == s.c.plan_id))
                  .where(*window, h.c.generated_at < s.c.slot_end)
                  .group_by(s.c.slot_start).subquery("n"))
        q = (sa.select(s.c.slot_start, s.c.plan_id, h.c.slot_s, s.c.soc_pct,
                       s.c.buy_eur_per_kwh, s.c.sell_eur_per_kwh, s.c.cost_eur, s.c.action,
                       h.c.terminal_value_eur_per_kwh)
             .select_from(s.join(newest, sa.and_(newest.c.slot_start == s.c.slot_start,
                                                  newest.c.plan_id == s.c.plan_id))
                          .join(h, h.c.id == s.c.plan_id))
             .order_by(s.c.slot_start))
        frame = pd.DataFrame(self._rows(q), columns=[
            "slot_start", "plan_id", "slot_s", "soc_pct", "buy_eur_per_kwh",
            "sell_eur_per_kwh", "cost_eur", "action", "terminal_value_eur_per_kwh"])
        frame["slot_start"] = pd.to_datetime(frame["slot_start"]).dt.tz_localize("UTC") \
            if len(frame) else pd.DatetimeIndex([], tz="UTC")
        return frame.set_index("slot_start")


def _num(x) -> float | None:
    return None if x is None or pd.isna(x) else round(float(x), 3)


def _measurement(row: dict, now: datetime) -> dict:
    """A measurement row as the API shows it (load derived from the balance when missing)."""
    at = from_db_time(row["measured_at"]).to_pydatetime()
    load = row["load_power_w"]
    if load is None and None not in (row["pv_power_w"], row["grid_power_w"],
                                     row["battery_power_w"]):
        # AC balance: load = pv + grid import + battery discharge (signs: + into the home)
        load = row["pv_power_w"] + row["grid_power_w"] + row["battery_power_w"]
    age_s = max((now - at).total_seconds(), 0.0)
    return {"measured_at": format_utc(at), "age_s": round(age_s, 1),
            "stale": age_s > STALE_MEASUREMENT_S,
            "soc_pct": _num(row["soc_pct"]), "battery_power_w": _num(row["battery_power_w"]),
            "grid_power_w": _num(row["grid_power_w"]), "pv_power_w": _num(row["pv_power_w"]),
            "load_power_w": _num(load), "source": row["source"],
            "simulated": bool(row.get("simulated", False))}


def slot_dict(slot: sched.Slot, slot_s: int) -> dict:
    """A schedule slot as the API shows it."""
    return {"start": format_utc(slot.start),
            "end": format_utc(slot.start + timedelta(seconds=slot_s)),
            "action": slot.action, "reason": slot.reason, "intent": slot.intent,
            "buy_eur_per_kwh": slot.buy_eur_per_kwh, "sell_eur_per_kwh": slot.sell_eur_per_kwh,
            "pv_kw": slot.pv_kw, "load_kw": slot.load_kw, "soc_pct": slot.soc_pct,
            "grid_kw": round(slot.grid_import_kw - slot.grid_export_kw, 3),
            "battery_kw": round(slot.battery_discharge_kw - slot.battery_charge_kw, 3),
            "grid_setpoint_w": slot.grid_setpoint_w}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def next_sentence(plan: Schedule, now: datetime, tz: ZoneInfo) -> str:
    """What happens next, in one sentence (local time)."""
    current = plan.slot_at(now)
    if current is None:
        return "No slot of the plan covers now: the executor releases control."
    i = plan.slots.index(current)
    words = ACTION_WORDS.get(current.action, current.action)
    later = next((s for s in plan.slots[i + 1:] if s.action != current.action), None)
    if later is None:
        end = plan.slots[-1].start + timedelta(seconds=plan.slot_s)
        return (f"{_cap(words)} until the plan ends at "
                f"{end.astimezone(tz):%a %H:%M}.")
    return (f"{_cap(words)} until {later.start.astimezone(tz):%H:%M}, then "
            f"{ACTION_WORDS.get(later.action, later.action)}: {later.reason}.")


def status(home: Home, now: datetime) -> dict:
    """Everything the live page and a Home Assistant REST sensor need, in one document."""
    plan, plan_problem = home.schedule()
    doc: dict = {"now": format_utc(now), "timezone": str(home.tz),
                 "pause": home.pause_state(now), "overrides": home.overrides_state(now),
                 "plan": None, "slot": None, "next": None,
                 "measurement": None, "problems": []}
    if plan_problem:
        doc["problems"].append(plan_problem)
    if plan is not None:
        doc["plan"] = {"generated_at": format_utc(plan.generated_at),
                       "valid_until": format_utc(plan.valid_until),
                       "stale": now > plan.valid_until, "status": plan.status,
                       "expected_cost_eur": plan.expected_cost_eur,
                       "slots": len(plan.slots)}
        slot = plan.slot_at(now)
        doc["slot"] = None if slot is None else slot_dict(slot, plan.slot_s)
        doc["next"] = next_sentence(plan, now, home.tz)
    history_problem = home.history.problem()
    if history_problem:
        doc["problems"].append(history_problem)
    else:
        try:
            doc["measurement"] = home.history.latest_measurement(now)
        except StorageError as exc:
            doc["problems"].append(str(exc))
    if doc["measurement"] is None and not history_problem:
        doc["problems"].append("no measurement yet (helios-executor stores them)")
    return doc
