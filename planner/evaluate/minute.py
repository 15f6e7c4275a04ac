r"""1-minute truth inside the plan's slots: minute data and the physics stepped per minute.

The plan works on slot averages (15 min or 1 h); the meter and the executor do not. A kettle
draws 2 kW for three minutes and a cloud halves the PV for five; averaged over the slot both
vanish, and a backtest judged on slot averages credits a plan with self-consumption it cannot
have had (Pinter et al. 2025, arXiv 2510.25373: 15–60-min averages overstated MPC's advantage
over a rule by 69 %). This module gives the backtest
(:func:`planner.evaluate.loop.run_backtest`,
``Options.minute``) the truth at the meter's resolution:

* **Minute data** (:class:`planner.evaluate.minute_truth.MinuteData`): recorded or seeded
  synthetic minutes under the slot profile, keeping every slot's mean
  (:mod:`planner.evaluate.minute_truth`).
* **The physics per minute** (:class:`MinuteSteps`, the
  :class:`planner.evaluate.physics.FineSteps` hook):
  :func:`planner.evaluate.physics.step` once per minute on a
  per-minute
  :class:`~planner.evaluate.physics.Home` (``slot_s=60``) with the minute's PV and load, the
  control law recomputed every minute (the executor does it every 10 s on live readings). Import
  and export are averaged separately, so both can be non-zero in one slot; with the prices
  constant inside a slot, the per-slot bill (buy·import − sell·export) *is* the per-minute
  settlement.
* **The baselines as minute rules** (:class:`MinuteRule`): self-consumption and the price
  rule act on the minute's net load, as a real inverter's rule does.
* **Perfect foresight at minute level** (:func:`perfect_foresight_minutes`): the
  perfect-foresight LP on the minute data, solved per day with the slot-level optimum's SoC
  pinned at the day boundaries; see its docstring for why this is the fair limit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from executor.control import intent_battery, power_to_target
from executor.schedule import intent_band
from planner.core.errors import DataError
from planner.evaluate.metrics import compare, energy_residual_kwh, metrics
from planner.evaluate.minute_truth import MINUTE_S, MinuteData
from planner.evaluate.perfect import Terms, perfect_foresight
from planner.evaluate.physics import TOL, Home, PlanIntent, Series, Trace, simulate, step
from planner.evaluate.strategies import NoBattery, PriceRule, Replay, SelfConsumption

#: the minute-level perfect-foresight LPs (:func:`perfect_foresight_minutes`): each keeps
#: this much [h] ...
PF_WINDOW_H = 24.0
#: ... of a window solved this much [h] further, pinned at its end
PF_LOOKAHEAD_H = 12.0


# ============================================================================================
# the physics per minute


class RuleIntent(NamedTuple):
    """A baseline's per-minute law (:class:`MinuteRule`): an intent with the baseline's
    reserve, below which it never discharges. Its first four fields are an intent tuple."""

    intent: str
    low: float
    high: float
    target_kwh: float
    reserve_kwh: float


class MinuteSteps:
    """:class:`planner.evaluate.physics.FineSteps`: every slot in 1-minute steps of
    :func:`planner.evaluate.physics.step`, with the control law recomputed every minute.

    * ``intent`` (4-tuple ``(intent, low, high, target_kwh)``): :func:`step` applies
      :func:`executor.control.intent_battery` on the minute's net load, with
      ``power_to_target`` over one minute towards the slot's planned end SoC — the time to
      the next decision, as the executor computes it per tick.
    * a :class:`RuleIntent` (:class:`MinuteRule`): the same law, and never a discharge
      below ``reserve_kwh`` (the baselines' reserve).
    * ``grid_setpoint_kw``: the grid is held per minute, the battery takes ``net − G``
      (``guard`` as in :func:`step`).
    * otherwise the battery setpoint is held for the whole slot.

    Returns :func:`step`'s tuple as slot averages (import and export averaged separately)
    and the SoC at the slot end. ``record=True`` keeps every minute's row in ``rows``.
    """

    def __init__(self, data: MinuteData, series: Series, record: bool = False):
        self.data = data
        self.start = data.start
        self.k = data.k
        self.pv = data.pv_kw.tolist()
        self.load = data.load_kw.tolist()
        self.ok = series.grid_ok.tolist()
        self.sell = series.sell_eur_per_kwh.tolist()
        self._homes: dict[Home, Home] = {}
        self.record = record
        self.rows: list[tuple] = []

    def minute_home(self, home: Home) -> Home:
        """``home`` with 1-minute steps."""
        found = self._homes.get(home)
        if found is None:
            found = self._homes[home] = replace(home, slot_s=MINUTE_S)
        return found

    def step_slot(self, t: int, home: Home, soc_kwh: float, setpoint_kw: float,
                  pv_cap_kw: float, grid_setpoint_kw: float | None, guard: bool,
                  intent: tuple | None) -> tuple[float, ...]:
        """Slot ``t`` in 1-minute steps; the slot averages in :func:`step`'s order."""
        j = t - self.start
        if not 0 <= j < self.data.n:
            raise DataError(f"minute data cover slots {self.start}..{self.start + self.data.n}"
                            f", not {t}")
        hm = self.minute_home(home)
        dt = hm.dt_h
        eta_c, eta_d = hm.charge_efficiency, hm.discharge_efficiency
        pv, load, ok, sell = self.pv[j], self.load[j], self.ok[t], self.sell[t]
        rule = isinstance(intent, RuleIntent)
        law = None if rule else intent
        imp = exp = ch = dis = used = uns = 0.0
        e = soc_kwh
        for m in range(self.k):
            sp = setpoint_kw
            if rule:
                name, low, high, target, reserve = intent
                need = load[m] - (pv[m] if pv_cap_kw >= pv[m] else pv_cap_kw)
                sp = intent_battery(name, low, high, need,
                                    power_to_target(e, target, dt, eta_c, eta_d))
                if sp > 0.0:
                    sp = min(sp, max(e - reserve, 0.0) * eta_d / dt)
            row = step(hm, e, sp, pv_cap_kw, pv[m], load[m], ok, sell, grid_setpoint_kw,
                           guard, law)
            if self.record:
                self.rows.append((t, m, pv[m], load[m], *row))
            imp += row[0]
            exp += row[1]
            ch += row[2]
            dis += row[3]
            used += row[4]
            uns += row[5]
            e = row[6]
        k = self.k
        return imp / k, exp / k, ch / k, dis / k, used / k, uns / k, e


class MinuteRule:
    """A baseline (:class:`~planner.evaluate.strategies.SelfConsumption`,
    :class:`~planner.evaluate.strategies.PriceRule`) as a rule on the minute's readings.

    It decides like the wrapped strategy and also gives :class:`MinuteSteps` the per-minute
    law as a :class:`RuleIntent`:
    self-consumption is ``self_consume`` (the battery covers the minute's net load, never below
    the reserve), the price rule's cheap slots are ``charge_grid`` at full power up to the
    maximum SoC, its dear slots self-consumption and the others ``hold`` (surplus PV charges,
    nothing discharges). At slot level the same rules act on the slot's averages.
    """

    control = "intent"

    def __init__(self, base, home: Home):
        self.base = base
        self.name = base.name
        self.home = home
        self.intent: tuple = ()

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """The wrapped strategy's decision; the minute law in ``intent``."""
        out = self.base.decide(t, soc_kwh)
        h = self.home
        ch, dis = -h.max_charge_kw, h.max_discharge_kw
        if isinstance(self.base, PriceRule) and self.base.charge[t]:
            self.intent = RuleIntent("charge_grid", ch, ch, h.max_kwh, h.reserve_kwh)
        elif isinstance(self.base, PriceRule) and not self.base.dear[t]:
            self.intent = RuleIntent("hold", ch, 0.0, soc_kwh, h.reserve_kwh)
        else:
            self.intent = RuleIntent("self_consume", ch, dis, soc_kwh, h.reserve_kwh)
        return out


class PlanIntents:
    """A fixed plan (a trace's flows) followed by intent, like the executor would."""

    control = "intent"

    def __init__(self, name: str, plan: Trace, start: int, home: Home,
                 pv_cap_kw: np.ndarray | None = None):
        self.name = name
        self.start = start
        self.plan = plan
        self.home = home
        n = len(plan.index)
        self.cap = (np.full(n, math.inf) if pv_cap_kw is None else np.asarray(pv_cap_kw))
        self.intent: tuple = ()

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """The plan's intent for slot ``t`` (target: its planned end SoC)."""
        p, j, h = self.plan, t - self.start, self.home
        self.intent = PlanIntent(*intent_band(
            p.battery_charge_kw[j], p.battery_discharge_kw[j], p.grid_import_kw[j],
            p.grid_export_kw[j], h.max_charge_kw, h.max_discharge_kw), float(p.soc_kwh[j]),
            float(p.grid_import_kw[j] - p.grid_export_kw[j]))
        return (float(p.battery_discharge_kw[j] - p.battery_charge_kw[j]), float(self.cap[j]),
                None)


# ============================================================================================
# perfect foresight at minute level


def minute_series(series: Series, data: MinuteData) -> Series:
    """The covered slots as a 1-minute :class:`~planner.evaluate.physics.Series` (prices and grid
    held per slot, PV and load per minute)."""
    k = data.k
    w = slice(data.start, data.start + data.n)
    first = series.index[data.start]
    index = pd.date_range(first, periods=data.n * k, freq=f"{MINUTE_S}s")
    rep = lambda a: np.repeat(a[w], k)  # noqa: E731
    return Series.build(index, MINUTE_S, rep(series.spot_eur_per_kwh),
                            rep(series.buy_eur_per_kwh), rep(series.sell_eur_per_kwh),
                            data.pv_kw.ravel(), data.load_kw.ravel(),
                            ~rep(series.grid_ok))


def to_slots(trace: Trace, k: int, index: pd.DatetimeIndex, name: str) -> Trace:
    """A 1-minute trace as slot averages (SoC at each slot's end)."""
    n = len(trace.index) // k
    avg = lambda a: np.asarray(a).reshape(n, k).mean(axis=1)  # noqa: E731
    return Trace(name, index, trace.soc_start_kwh, avg(trace.grid_import_kw),
                     avg(trace.grid_export_kw), avg(trace.battery_charge_kw),
                     avg(trace.battery_discharge_kw), avg(trace.pv_used_kw),
                     avg(trace.unserved_kw), np.asarray(trace.soc_kwh)[k - 1::k].copy(),
                     dict(trace.info))


def perfect_foresight_minutes(home: Home, series: Series, data: MinuteData,
                              soc_start_kwh: float, terms: Terms, slot_pf: Trace,
                              chunk_h: float = PF_WINDOW_H,
                              lookahead_h: float = PF_LOOKAHEAD_H) -> Trace:
    """The perfect-foresight limit at the meter's resolution, as slot averages.

    The fair limit at minute level knows every minute: it may charge in the minute a cloud
    passes and discharge in the minute the kettle runs, import in one minute and export in
    the next, as the meter settles them. Replaying the slot-level optimum through the minute
    physics (reported too, ``perfect_foresight_slot_plan``) is *not* a limit: a plan of slot
    averages cannot follow the minutes, so a minute rule can beat it. So this solves the
    planner's LP (:func:`planner.evaluate.perfect.perfect_foresight`) on the 1-minute data. A year
    at 1 minute (≈4 M columns) is too big for one LP, so it is solved in rolling windows:
    each LP covers ``chunk_h + lookahead_h`` hours from the SoC reached so far, with the
    stored energy at its end pinned to the slot-level optimum's SoC at that instant (a soft
    target: every kWh above or below costs ≥ half the soft-target penalty, far above any
    energy price, so the pin holds wherever it is feasible), and only its first ``chunk_h``
    hours are kept; the last LP takes the period's own terms. That is a feasible minute
    schedule with every minute known, optimal up to the pins: a limit that can only be
    slightly conservative. The lookahead matters: on three DE 2016 days (May, synthetic
    minutes) pinned windows without it (6 h or 24 h) found 1.4 % less saving than one LP
    over the three days, because the minute optimum's SoC at midnight differs from the slot
    optimum's; with 24 h kept + 12 h ahead (:data:`PF_WINDOW_H`, :data:`PF_LOOKAHEAD_H`)
    the result equals the 3-day LP (to 2e-6 EUR), at ≈0.7 s a day (≈4 min a year).
    """
    k = data.k
    hm = replace(home, slot_s=MINUTE_S)
    ms = minute_series(series, data)
    n = data.n
    per = max(1, int(round(chunk_h * 3600 / series.slot_s)))
    parts = []
    e = soc_start_kwh
    problems = set()
    ahead = max(0, int(round(lookahead_h * 3600 / series.slot_s)))
    for a in range(0, n, per):
        b = min(n, a + per)
        z = min(n, b + ahead)  # solved to z, kept to b
        if z < n:
            # end exactly at the pin: below it costs the soft penalty W (less M), above it
            # M = W / 2 per kWh (a negative end value), both far above any energy price
            pin = float(slot_pf.soc_kwh[z - 1])
            t = replace(terms, end_value_eur_per_kwh=-terms.penalty_eur_per_kwh / 2,
                        final_kwh=pin, final_weight_eur_per_kwh=terms.penalty_eur_per_kwh)
        else:
            t = terms
        tr, _ = perfect_foresight(hm, ms, a * k, z * k, e, t)
        problems.add(tr.info.get("problem"))
        keep = (b - a) * k
        tr = replace(tr, **{f: getattr(tr, f)[:keep] for f in (
            "index", "grid_import_kw", "grid_export_kw", "battery_charge_kw",
            "battery_discharge_kw", "pv_used_kw", "unserved_kw", "soc_kwh")})
        parts.append(tr)
        e = tr.soc_end_kwh
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    whole = Trace("perfect_foresight", ms.index, soc_start_kwh, cat("grid_import_kw"),
                      cat("grid_export_kw"), cat("battery_charge_kw"),
                      cat("battery_discharge_kw"), cat("pv_used_kw"), cat("unserved_kw"),
                      cat("soc_kwh"),
                      {"problem": "+".join(sorted(p for p in problems if p)),
                       "windows": len(parts), "window_h": chunk_h, "lookahead_h": lookahead_h,
                       "resolution_s": MINUTE_S})
    index = series.index[data.start:data.start + n]
    return to_slots(whole, k, index, "perfect_foresight")


# ============================================================================================
# every strategy at minute truth


@dataclass
class MinuteResult:
    """Every strategy judged at 1-minute truth: slot-average traces, metrics, comparison."""

    traces: dict[str, Trace]
    metrics: dict[str, dict]
    comparison: dict
    info: dict

    def summary(self) -> dict:
        """JSON-ready: sources, the metrics, the comparison and each run's info."""
        return {**self.info, "strategies": self.metrics, "comparison": self.comparison,
                "runs": {name: tr.info for name, tr in self.traces.items()}}


#: the minute-level strategies after :data:`planner.evaluate.loop.STRATEGY_ORDER`
SLOT_PLAN_RUNS = ("perfect_foresight_slot_plan", "perfect_foresight_slot_plan_intent")


def judge(home: Home, series: Series, start: int, stop: int, soc_start_kwh: float,
          terms: Terms, slot_traces: dict[str, Trace], data: MinuteData,
          make_helios, timezone: str, progress=None) -> MinuteResult:
    """Helios, the baselines and perfect foresight, each run through :class:`MinuteSteps`.

    * ``helios``: a fresh closed loop (``make_helios()``): it plans on slot averages as
      always, re-plans from the SoC the minute physics left, and its executor applies the
      control law every minute.
    * ``no_battery``; ``self_consumption`` and ``price_rule`` as minute rules
      (:class:`MinuteRule`).
    * ``perfect_foresight``: :func:`perfect_foresight_minutes`, the limit at minute level;
      the ``share_of_perfect_foresight`` here is of *its* savings.
    * ``perfect_foresight_slot_plan``: the slot-level optimum replayed with its battery
      powers held per slot (``control="battery"``), and ``…_intent``: the same plan followed
      by intent (:class:`PlanIntents`). Not limits — what perfect *slot* foresight earns at
      the meter; ``share_of_slot_plan`` compares Helios with the better of the two.

    The bill is per minute (prices constant within a slot, import and export averaged
    separately). ``energy_residual_kwh`` per run checks conservation.
    """
    if data.start != start or data.n != stop - start:
        raise DataError(f"minute data cover slots {data.start}..{data.start + data.n}, the "
                        f"run {start}..{stop}")
    t0 = time.perf_counter()
    fine = MinuteSteps(data, series)
    traces: dict[str, Trace] = {}
    traces["helios"] = simulate(home, series, start, stop, soc_start_kwh, make_helios(),
                                    progress, fine=fine)
    traces["no_battery"] = simulate(home.without_battery(), series, start, stop,
                                        soc_start_kwh, NoBattery(), fine=fine)
    traces["self_consumption"] = simulate(
        home, series, start, stop, soc_start_kwh,
        MinuteRule(SelfConsumption(home, series), home), fine=fine)
    traces["price_rule"] = simulate(
        home, series, start, stop, soc_start_kwh,
        MinuteRule(PriceRule(home, series, timezone), home), fine=fine)
    t_pf = time.perf_counter()
    pf = slot_traces["perfect_foresight"]
    traces["perfect_foresight"] = perfect_foresight_minutes(home, series, data, soc_start_kwh,
                                                            terms, pf)
    traces["perfect_foresight"].info["run_s"] = round(time.perf_counter() - t_pf, 3)
    w = slice(start, stop)
    cap = np.where(pf.pv_used_kw < series.pv_kw[w] - TOL, pf.pv_used_kw, np.inf)
    replay = Replay(SLOT_PLAN_RUNS[0], start, pf.battery_charge_kw,
                        pf.battery_discharge_kw, cap)
    traces[SLOT_PLAN_RUNS[0]] = simulate(home, series, start, stop, soc_start_kwh, replay,
                                             fine=fine)
    traces[SLOT_PLAN_RUNS[1]] = simulate(
        home, series, start, stop, soc_start_kwh,
        PlanIntents(SLOT_PLAN_RUNS[1], pf, start, home, cap), fine=fine)
    for tr in traces.values():
        tr.info["energy_residual_kwh"] = round(
            energy_residual_kwh(tr, series, start, home), 9)
    table = {name: metrics(tr, series, start, home, terms) for name, tr in traces.items()}
    comparison = compare({k: v for k, v in table.items() if k not in SLOT_PLAN_RUNS})
    nb = table["no_battery"]["net_cost_eur"]
    plan = min(table[k]["net_cost_eur"] for k in SLOT_PLAN_RUNS)
    for row_name, row in comparison.items():
        cost = table[row_name]["net_cost_eur"]
        row["share_of_slot_plan"] = (round((nb - cost) / (nb - plan), 6)
                                     if abs(nb - plan) > 1e-9 else None)
    info = {"resolution_s": MINUTE_S, "source": dict(data.source),
            "run_s": round(time.perf_counter() - t0, 3)}
    return MinuteResult(traces, table, comparison, info)
