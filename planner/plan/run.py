"""One planning run, end to end: config + now → inputs → optimum → checked plan → schedule.

Kept apart from the CLI so tests, the backtest and the benchmark call exactly what
``helios plan`` calls, including the input fallback chain (fresh → price cache → flat
prices, :mod:`planner.inputs.fallback`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from executor import schedule as sched
from planner.config import HeliosConfig
from planner.core import timegrid
from planner.core.errors import OptimizationError, OutputError
from planner.inputs import sindex
from planner.inputs.fallback import Warn, gather_with_fallback
from planner.inputs.types import Inputs
from planner.optimize import model, scenarios
from planner.plan import build as plan_mod
from planner.plan import ev as ev_mod
from planner.plan import heater as heater_mod
from planner.plan import overrides as overrides_mod


@dataclass(frozen=True)
class PlanResult:
    """A finished run: the checked plan and the schedule the executor will follow."""

    plan: plan_mod.Plan
    schedule: sched.Schedule


def plan_once(cfg: HeliosConfig, now: pd.Timestamp, warn: Warn | None = None,
              outages: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = ()) -> PlanResult:
    """Gather inputs (with the fallback chain), optimise and build the plan. Writes nothing.

    ``warn`` gets one line when the plan is made on cached or flat prices (default: logged).
    ``outages``: grid outages ``[start, end)`` known now (announced); their slots are
    planned without grid import or export (:func:`outage_limits`).

    Raises
    ------
    HeliosError
        Any provider, data or optimisation problem (see :mod:`planner.core.errors`).
    """
    now = timegrid.to_utc(now, "now")
    inputs = gather_with_fallback(cfg, now, warn)
    # the S-index: a safety margin on the load and PV forecasts (inputs/sindex.py)
    inputs = sindex.for_plan(inputs, cfg, now)
    # the car: its state from the vehicle provider, the one-off overrides (plan/ev.py); the
    # heater: energy delivered today (a device_energy source, else measurements) and the
    # tank's temperature (plan/heater.py)
    extra = {**ev_mod.ev_extra(cfg, now, warn), **heater_mod.heater_extra(cfg, now, warn)}
    # manual overrides (helios override): constraints of this solve (plan/overrides.py)
    manual = overrides_mod.for_plan(cfg, inputs.index[0], inputs.end, warn)
    if manual:
        extra = {**extra, "overrides": manual}
    return plan_inputs(inputs, cfg, now, extra, outage_limits(inputs, outages))


def outage_limits(inputs: Inputs, outages: Sequence[tuple[pd.Timestamp, pd.Timestamp]]
                  ) -> model.SlotLimits | None:
    """Grid import/export 0 in every slot of ``inputs`` that overlaps one of ``outages``
    (None: no slot does)."""
    starts = inputs.index.asi8 // 10**9
    down = np.zeros(inputs.n, dtype=bool)
    for start, end in outages:
        down |= (starts < end.timestamp()) & (starts + inputs.slot_s > start.timestamp())
    if not down.any():
        return None
    up = np.where(down, 0.0, np.inf)
    return model.SlotLimits(import_kw=up, export_kw=up)


def plan_inputs(inputs: Inputs, cfg: HeliosConfig, now: pd.Timestamp | None = None,
                extra: dict | None = None, limits: model.SlotLimits | None = None
                ) -> PlanResult:
    """Optimise already-gathered inputs (backtests, tests); ``extra``: the devices'
    per-solve inputs by name (``{"ev": {"soc_pct": 30, ...}}``); ``limits``: per-slot power
    limits (an announced outage; the scenario plan is then skipped, as in the backtest)."""
    solution = None
    # the scenario plan knows no manual overrides nor outages: with one in force the plan is
    # the deterministic one, which obeys it
    if (cfg.planning.scenario_pv_spread > 0 and limits is None
            and not (extra or {}).get("overrides")):
        solution = scenarios.solve(inputs, cfg)
    if solution is None and limits is not None:
        solution = model.solve(inputs, cfg, limits, extra=extra or None)
    if solution is None:
        # no extra without a car: the call stays what it was (tests patch model.solve)
        solution = model.solve(inputs, cfg, extra=extra) if extra else model.solve(inputs, cfg)
    require_finite(solution, inputs.index)
    plan = plan_mod.build(inputs, solution, cfg)
    generated = timegrid.to_utc(now if now is not None else inputs.now)
    return PlanResult(plan, plan_mod.to_schedule(plan, cfg, generated))


#: plan columns that may be NaN: the LP's dual (a solver may return none; stored as NULL)
MAY_BE_UNKNOWN = ("energy_value_eur_per_kwh",)


def require_finite(solution: model.Solution, index: pd.DatetimeIndex) -> None:
    """Refuse a solution with a NaN or infinite number before anything is built or written
    (exit 4).

    NaN compares false with every bound, so it would pass :func:`planner.plan.build.check`
    and end the run in the history's save, after ``schedule.json``. Only the marginal value
    of stored energy (:data:`MAY_BE_UNKNOWN`, the LP's dual) may be missing.

    Raises
    ------
    OptimizationError
        Naming the quantity and the first slot.
    """
    for f in dataclasses.fields(solution):
        value = getattr(solution, f.name)
        if f.name in MAY_BE_UNKNOWN or isinstance(value, (str, bool)):
            continue
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            continue  # not a number (e.g. the solver's name)
        bad = ~np.isfinite(arr)
        if not bad.any():
            continue
        if arr.ndim == 1 and len(arr) == len(index):
            i = int(np.argmax(bad))
            where = f" in the slot starting {index[i].isoformat()}"
            shown = arr[i]
        else:
            where, shown = "", value
        raise OptimizationError(f"the solver returned a non-finite {f.name} ({shown}){where}; "
                                "nothing was written")


def write_schedule(schedule: sched.Schedule, path: str) -> None:
    """Write schedule.json atomically.

    Raises
    ------
    OutputError
        When the file cannot be written; the previous file is then untouched.
    """
    try:
        sched.write(path, schedule)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def summary(result: PlanResult, cfg: HeliosConfig, hours: int = 6) -> str:
    """A terminal summary in the site's local time: next hours slot by slot, then totals."""
    tz = cfg.site.tz
    plan = result.plan
    f = plan.frame
    sol = plan.solution
    lines = []
    start_local = f.index[0].tz_convert(tz)
    end_local = plan.inputs.end.tz_convert(tz)
    lines.append(f"Helios plan {start_local:%Y-%m-%d %H:%M} -> {end_local:%Y-%m-%d %H:%M} "
                 f"{start_local.tzname()} ({len(f)} slots of {plan.inputs.slot_s // 60} min), "
                 f"start SoC {plan.inputs.soc_start_pct:.0f} %")
    shown = f[f.index < f.index[0] + pd.Timedelta(hours=hours)]
    if len(shown):
        lines.append(f"{'time':>5}  {'action':<11} {'intent':<14} {'buy':>7} {'sell':>7} "
                     f"{'grid kW':>8} {'batt kW':>8} {'SoC %':>6}  reason")
        for ts, row in shown.iterrows():
            batt = round(row.battery_discharge_kw - row.battery_charge_kw, 2) + 0.0
            grid = round(row.grid_import_kw - row.grid_export_kw, 2) + 0.0
            lines.append(f"{ts.tz_convert(tz):%H:%M}  {row.action:<11} {row.intent:<14} "
                         f"{row.buy_eur_per_kwh:7.3f} {row.sell_eur_per_kwh:7.3f} {grid:8.2f} "
                         f"{batt:8.2f} {row.soc_pct:6.1f}  {row.reason}")
    dt = plan.inputs.dt_h
    imported = float(np.sum(f.grid_import_kw) * dt)
    exported = float(np.sum(f.grid_export_kw) * dt)
    lines.append(f"expected cost {sol.energy_cost_eur:.2f} EUR over the horizon "
                 f"(import {imported:.1f} kWh, export {exported:.1f} kWh); objective "
                 f"{sol.objective_eur:.2f} EUR incl. wear {sol.wear_cost_eur:.2f} EUR and "
                 f"stored-energy value {sol.terminal_value_eur_per_kwh:.3f} EUR/kWh")
    if plan.co2_kg is not None:  # carbon: (planning.co2_eur_per_kg weighs it)
        lines.append(f"grid carbon {plan.co2_kg:.2f} kg CO2 over the horizon (import x "
                     f"intensity; weight {cfg.planning.co2_eur_per_kg:g} EUR/kg)")
    lines.extend(plan_mod.device_lines(plan, tz))  # water heater, deferrable loads, ev
    for x in ev_mod.sessions(plan):
        lines.append(f"ev: {x['soc_pct']:.1f} % at the departure "
                     f"{pd.Timestamp(x['departure']).tz_convert(tz):%a %H:%M} (target "
                     f"{x['target_soc_pct']:.0f} %), {x['energy_kwh']:.1f} kWh for "
                     f"{x['cost_eur']:.2f} EUR vs {x['at_plugin_cost_eur']:.2f} EUR charging "
                     "at full power from plug-in")
    lines.append(f"solver {sol.solver}, {sol.solve_s * 1000:.1f} ms, status {plan.status}")
    for st in plan.inputs.status:
        flag = "DEGRADED " if st.degraded else ""
        detail = f": {st.detail}" if st.detail else ""
        until = ("" if st.kind == "state"  # a reading at plan time, not a series
                 else f" until {st.data_end.tz_convert(tz):%Y-%m-%d %H:%M}")
        lines.append(f"{flag}{st.kind}: {st.provider} ({st.source}){until}{detail}")
    for o in result.schedule.overrides:
        what = o["kind"] + (f" {o['target']}" if o.get("target") else "")
        span = (f"{pd.Timestamp(o['start']).tz_convert(tz):%a %H:%M} -> "
                f"{pd.Timestamp(o['end']).tz_convert(tz):%a %H:%M}")
        extra = "".join(f", {v:g}{u}" for v, u in ((o.get("soc_pct"), " %"),
                                                   (o.get("kw"), " kW")) if v is not None)
        why = f" ({o['reason']})" if o.get("reason") else ""
        lines.append(f"override #{o['id']}: {what} {span}{extra}{why}")
    for v in plan.violations:
        lines.append(f"violation: {v.kind}: {v.message}")
    return "\n".join(lines)
