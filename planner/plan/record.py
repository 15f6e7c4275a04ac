"""A finished run as the history's rows: :func:`record_from_result` turns a
:class:`planner.plan.run.PlanResult` (plan + schedule) and its baselines into the
:class:`planner.history.rows.RunRecord` that :class:`planner.history.store.Store` saves and the
report renders.

It lives in the plan layer, above :mod:`planner.history`, because it reads plans and
baselines; the history only stores and loads rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, fields, is_dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pandas as pd

from planner.core.site import SiteSpec
from planner.history.rows import RunRecord, none_for_missing, redact
from planner.history.schema import SLOT_FIELDS
from planner.plan import baselines
from planner.plan import ev as ev_mod


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
    try:
        return version("helios-ems")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def input_summary(status: Iterable[Any], now: pd.Timestamp,
                  secrets: Iterable[str] = ()) -> list[dict]:
    """One dict per input (prices, pv, load, state): provider, source, data window, age,
    degraded (a ``static`` state is flagged degraded: it is not measured).

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
    plan, schedule = result.plan, result.schedule
    if comparison is None:
        comparison = baselines.compare(plan, cfg)
    inputs, sol = plan.inputs, plan.solution
    b = cfg.battery
    site = SiteSpec.from_config(cfg)
    now = pd.Timestamp(schedule.generated_at)
    secrets = cfg.secret_values
    summary = input_summary(inputs.status, now, secrets)
    price = next((s for s in summary if s["kind"] == "prices"), None)
    costs = comparison.as_dict()
    ev_sessions = ev_mod.sessions(plan)
    if ev_sessions:  # the car's sessions: planned vs charged at plug-in (plan/ev.py)
        costs["ev"] = {"sessions": ev_sessions, "soc_pct": [
            round(float(x), 3) for x in sol.outputs["ev_soc_pct"]]}
    if plan.co2_kg is not None:  # carbon: kg CO2 of the planned import (run row's JSON)
        costs["co2"] = {"kg": round(plan.co2_kg, 4), "eur_per_kg": cfg.planning.co2_eur_per_kg}
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
        # the soft floor (reserve, else min) as SiteSpec derives it, back in % of capacity
        "reserve_soc_pct": round(site.reserve_kwh / site.capacity_kwh * 100, 9),
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
    if schedule.overrides:  # the manual overrides in force (plan_history.overrides, 0008)
        run["overrides"] = [dict(o) for o in schedule.overrides]
    rows = [asdict(s) for s in schedule.slots]
    slots = pd.DataFrame(rows).set_index("start")
    slots.index = pd.DatetimeIndex(slots.index).tz_convert("UTC")
    slots.index.name = "slot_start"
    frame = plan.frame
    slots["soc_kwh"] = frame["soc_kwh"].to_numpy().round(6)
    slots["cost_eur"] = frame["cost_eur"].to_numpy().round(6)
    slots["energy_value_eur_per_kwh"] = frame["energy_value_eur_per_kwh"].to_numpy().round(6)
    slots["spot_eur_per_kwh"] = inputs.spot_eur_per_kwh.round(6)
    return RunRecord(run, none_for_missing(slots[list(SLOT_FIELDS)]),
                     devices=device_frame(schedule, slots.index),
                     device_soc=device_soc_frame(schedule, slots.index))


def device_frame(schedule: Any, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The schedule's ``devices.<name>.power_kw`` per slot, one column per device (none
    without devices), indexed like the record's slots. [kW]"""
    names = sorted({name for s in schedule.slots for name in (s.devices or {})})
    return pd.DataFrame({name: [float((s.devices or {}).get(name, {}).get("power_kw", 0.0))
                                for s in schedule.slots] for name in names}, index=index)


def device_soc_frame(schedule: Any, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The schedule's ``devices.<name>.soc_pct`` per slot, one column per device that has
    one (further batteries, the car), NaN where a slot has none. [%]"""
    names = sorted({name for s in schedule.slots for name, d in (s.devices or {}).items()
                    if "soc_pct" in d})
    return pd.DataFrame({name: [float((s.devices or {}).get(name, {}).get("soc_pct", "nan"))
                                for s in schedule.slots] for name in names}, index=index)
