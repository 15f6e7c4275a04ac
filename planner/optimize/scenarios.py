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


def pv_scenarios(inputs: Inputs, spread: float, lead_slots: int) -> tuple[list[Inputs], list]:
    """Low / central / high PV scenarios: the forecast × (1 ∓ ``spread``) from slot
    ``lead_slots`` on (the current hour is nowcast), with weights ¼, ½, ¼."""
    out = []
    for scale in (1.0 - spread, 1.0, 1.0 + spread):
        pv = inputs.pv_kw.copy()
        pv[lead_slots:] *= scale
        out.append(replace(inputs, pv_kw=np.maximum(pv, 0.0)))
    return out, [0.25, 0.5, 0.25]


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
          cache: dict | None = None) -> Solution | None:
    """The scenario plan (``spread``, default ``planning.scenario_pv_spread``), or None when
    the plain plan must be used (too short a horizon, a split flow pair: the exact MILP path).

    ``cache`` keeps the compiled problems per :class:`ModelSpec` (default: a small
    module-wide one, enough for ``helios plan``; the backtest passes its own, which keeps
    every horizon size it meets)."""
    slot_s = inputs.slot_s
    lead = int(round(3600 / slot_s))
    if inputs.n <= lead:
        return None
    spread = cfg.planning.scenario_pv_spread if spread is None else spread
    cases, weights = pv_scenarios(inputs, spread, lead)
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
