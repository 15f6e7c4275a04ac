"""Planning that expects to be wrong: a two-stage stochastic LP over forecast scenarios.

The plan's first slot is what the executor does now; every later slot will be re-planned on a
better forecast. So the decision that matters is the first slot's, and it should be good
whichever way the forecast turns out. :class:`ScenarioModel` solves ``K`` copies of the
planner's own LP (:class:`planner.optimize.model.Model`, one per scenario of PV and load), tied
together by one constraint: the first slot's grid and battery flows are the same in every
scenario (non-anticipativity), and minimises the probability-weighted objective. The
scenarios come from the forecasters' own error size (:func:`pv_scenarios`): the PV forecast
scaled down and up after the current hour.

With one scenario it is exactly the deterministic plan. The returned solution is the central
scenario's (its later slots are the P50 plan, shown in the schedule and the report), with
the first slot shared by all.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from planner.config import HeliosConfig
from planner.core.errors import SolverFailedError
from planner.inputs.types import Inputs
from planner.optimize._cvxpy import cp
from planner.optimize.model import Model, ModelSpec, Solution
from planner.optimize.problem import Outcome

#: weights of the low / central / high scenarios
WEIGHTS = (0.25, 0.5, 0.25)
#: fewest past days behind error-history scenarios (fewer: the deterministic plan)
MIN_DAYS = 7


def pv_scenarios(inputs: Inputs, spread: float, lead_slots: int) -> tuple[list[Inputs], list]:
    """Low / central / high PV scenarios: the forecast × (1 ∓ ``spread``) from slot
    ``lead_slots`` on (the current hour is nowcast), with weights ¼, ½, ¼."""
    factors = [(1.0 - spread, 1.0), (1.0, 1.0), (1.0 + spread, 1.0)]
    return scaled_scenarios(inputs, factors, lead_slots), list(WEIGHTS)


def scaled_scenarios(inputs: Inputs, factors: list[tuple[float, float]],
                     lead_slots: int) -> list[Inputs]:
    """One scenario per ``(pv_factor, load_factor)``: the forecasts scaled from slot
    ``lead_slots`` on (the current hour is nowcast)."""
    out = []
    for pv_f, load_f in factors:
        pv = inputs.pv_kw.copy()
        pv[lead_slots:] *= pv_f
        load = inputs.load_kw.copy()
        load[lead_slots:] *= load_f
        out.append(replace(inputs, pv_kw=np.maximum(pv, 0.0), load_kw=np.maximum(load, 0.0)))
    return out


def error_quantiles(forecast_kwh, actual_kwh, quantile: float,
                    min_kwh: float = 0.05) -> tuple[float, float, float] | None:
    """The P(q), P50 and P(1 − q) of actual / forecast over past periods (days), or None
    with fewer than :data:`MIN_DAYS` periods whose forecast is at least ``min_kwh``.

    The inputs are matching sequences: what the forecaster said a period would bring and what
    it brought (the backtest: its own forecasts and the recorded series; production: the
    stored plans and the measurements). Quantiles are numpy's default (linear between the
    order statistics)."""
    fc = np.asarray(forecast_kwh, dtype=float)
    act = np.asarray(actual_kwh, dtype=float)
    ok = np.isfinite(fc) & np.isfinite(act) & (fc >= min_kwh)
    if int(ok.sum()) < MIN_DAYS:
        return None
    ratio = act[ok] / fc[ok]
    lo, mid, hi = np.quantile(ratio, [quantile, 0.5, 1.0 - quantile])
    return float(lo), float(mid), float(hi)


class ErrorHistory:
    """The forecasters' own daily errors: what the first plan of each day forecast for the
    day's slots (PV and load energy), against what the day brought.

    :meth:`record` is called with every plan's forecast; only the first one of a day counts
    (made at its start: the lead of a day-ahead plan's later slots). The caller keys days and
    slots (the backtest: local dates and slot positions). :meth:`factors` reads only days
    complete before ``now`` (no look-ahead)."""

    def __init__(self, days: int, quantile: float):
        self.days = days
        self.quantile = quantile
        self.forecasts: dict = {}  # day -> (start, stop, pv_kwh, load_kwh)

    def record(self, day, start: int, stop: int, pv_kwh: float, load_kwh: float) -> None:
        """The forecast of day ``day`` (slots ``start .. stop - 1``), if it is the first."""
        if day not in self.forecasts:
            self.forecasts[day] = (start, stop, pv_kwh, load_kwh)

    def factors(self, now: int, actual_kwh, joint_load: bool
                ) -> list[tuple[float, float]] | None:
        """``[(pv, load)]`` factors of the low / central / high scenarios from the last
        :attr:`days` days complete before slot ``now``: PV at P(q), 1, P(1 − q); the load,
        when ``joint_load``, at P(1 − q), 1, P(q) (low PV with high load); None too early.

        ``actual_kwh(start, stop)`` gives the measured ``(pv_kwh, load_kwh)`` of those slots."""
        past = [v for v in self.forecasts.values() if v[1] <= now][-self.days:]
        if not past:
            return None
        actual = np.array([actual_kwh(a, b) for a, b, _, _ in past])
        pv = error_quantiles([v[2] for v in past], actual[:, 0], self.quantile)
        if pv is None:
            return None
        load = error_quantiles([v[3] for v in past], actual[:, 1], self.quantile) \
            if joint_load else None
        lo_l, hi_l = (load[2], load[0]) if load is not None else (1.0, 1.0)
        return [(pv[0], lo_l), (1.0, 1.0), (pv[2], hi_l)]


class ScenarioModel:
    """``len(weights)`` scenario copies of the planner's LP sharing the first slot."""

    def __init__(self, spec: ModelSpec, weights: list[float]):
        self.spec = spec
        self.weights = [float(w) for w in weights]
        self.models = [Model(spec) for _ in weights]
        central = len(weights) // 2
        self.central = central
        base = self.models[central]
        objective = sum(w * m.objective.args[0] for w, m in zip(self.weights, self.models,
                                                                strict=True))
        constraints = [c for m in self.models for c in m.constraints]
        for i, m in enumerate(self.models):
            if i == central:
                continue
            # every component's flows in the first slot: the decision executed now
            for mine, shared in zip(m.problem.flows, base.problem.flows, strict=True):
                constraints.append(mine.kw[0] == shared.kw[0])
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def solve(self, scenarios: list[Inputs], cfg: HeliosConfig) -> Solution:
        """Solve for these scenario inputs (the central one is the plan's)."""
        t0 = time.perf_counter()
        for m, inputs in zip(self.models, scenarios, strict=True):
            m.set_inputs(inputs, cfg)
        try:
            self.problem.solve(solver=cp.HIGHS, warm_start=True)
        except (cp.error.SolverError, ValueError) as exc:
            raise SolverFailedError(f"scenario LP: {exc}") from None
        if self.problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise SolverFailedError(f"scenario LP: status {self.problem.status}")
        base = self.models[self.central].problem
        base.capture_duals(scale=self.weights[self.central])
        if base.read().any():  # an exclusive plan needs the exact single-scenario solve
            raise SolverFailedError("scenario LP split a flow pair")
        return Solution.from_outcome(Outcome(float(self.problem.value), "HIGHS (scenarios)",
                                             False, base.outputs(), time.perf_counter() - t0))


_CACHE: dict = {}


def solve(inputs: Inputs, cfg: HeliosConfig, spread: float | None = None,
          cache: dict | None = None,
          factors: list[tuple[float, float]] | None = None) -> Solution | None:
    """The scenario plan (``factors``: ``(pv, load)`` scales of the low / central / high
    scenarios, e.g. from :class:`ErrorHistory`; else PV × (1 ∓ ``spread``), default
    ``planning.scenario_pv_spread``), or None when the plain plan must be used (too short a
    horizon, a split flow pair: the exact MILP path; every factor 1: nothing to hedge).

    ``cache`` keeps the compiled problems per :class:`ModelSpec` (default: a small
    module-wide one, enough for ``helios plan``; the backtest passes its own, which keeps
    every horizon size it meets)."""
    slot_s = inputs.slot_s
    lead = int(round(3600 / slot_s))
    if inputs.n <= lead:
        return None
    if factors is None:
        spread = cfg.planning.scenario_pv_spread if spread is None else spread
        cases, weights = pv_scenarios(inputs, spread, lead)
    else:
        if all(abs(p - 1.0) < 1e-6 and abs(q - 1.0) < 1e-6 for p, q in factors):
            return None
        cases, weights = scaled_scenarios(inputs, factors, lead), list(WEIGHTS)
    spec = ModelSpec.from_config(cfg, inputs.n, slot_s, inputs.soc_start_pct)
    if spec.devices or spec.ev is not None:  # flexible devices: the single plan plans them
        return None
    if cache is None:
        cache = _CACHE
        if spec not in cache and len(cache) > 4:
            cache.clear()
    smodel = cache.get(spec)
    if smodel is None:
        smodel = cache[spec] = ScenarioModel(spec, weights)
    try:
        return smodel.solve(cases, cfg)
    except SolverFailedError:
        return None
