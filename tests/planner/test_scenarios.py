"""planner.optimize.scenarios: the two-stage scenario plan (first slot shared by all)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.inputs import gather as inputs
from planner.optimize import model, scenarios
from planner.plan import build as plan
from planner.plan import run

START = pd.Timestamp("2026-05-01T00:00Z")
TARIFF = {"buy": "(price + 0.15) * 1.19", "sell": "price"}


def _data(cfg, n=96, soc=50.0):
    t = np.arange(n)
    spot = 0.05 + 0.05 * np.sin(t / 8.0)
    pv = np.clip(4.0 * np.sin((t % 96 - 24) / 48.0 * np.pi), 0.0, None)
    load = 0.4 + 0.3 * (t % 7 == 0)
    return inputs.from_arrays(START, 900, spot, pv, load, soc, cfg)


def _cfg(spread: float):
    return config.from_mapping({"battery": {"capacity_kwh": 10}, "tariff": TARIFF,
                                "planning": {"scenario_pv_spread": spread}})


def test_zero_spread_is_the_deterministic_plan():
    cfg = _cfg(0.0)
    data = _data(cfg)
    spec = model.ModelSpec.from_config(cfg, data.n, 900)
    plain = model.Model(spec).solve(data, cfg)
    cases, weights = scenarios.pv_scenarios(data, 0.0, 4)
    sol = scenarios.ScenarioModel(spec, weights).solve(cases, cfg)
    assert sol.objective_eur == pytest.approx(plain.objective_eur, abs=1e-6)
    plan.check(data, sol, cfg)  # balance, bounds, exclusivity


def test_first_slot_is_shared_and_the_scenarios_differ_later():
    cfg = _cfg(0.5)
    data = _data(cfg)
    spec = model.ModelSpec.from_config(cfg, data.n, 900)
    cases, weights = scenarios.pv_scenarios(data, 0.5, 4)
    assert np.allclose(cases[0].pv_kw[:4], data.pv_kw[:4])  # the current hour is nowcast
    assert np.allclose(cases[0].pv_kw[4:], 0.5 * data.pv_kw[4:])
    sm = scenarios.ScenarioModel(spec, weights)
    sol = sm.solve(cases, cfg)
    plan.check(data, sol, cfg)
    flows = [(m.vars["ch"].value, m.vars["dis"].value, m.vars["imp"].value,
              m.vars["exp"].value) for m in sm.models]
    for other in flows:
        for a, b in zip(other, flows[1], strict=True):
            assert a[0] == pytest.approx(b[0], abs=1e-6)  # non-anticipativity
    assert max(abs(flows[0][0][4:] - flows[2][0][4:]).max(),
               abs(flows[0][1][4:] - flows[2][1][4:]).max()) > 0.1  # later slots differ
    # the objective is the weighted mean of the scenarios' objectives
    parts = [m.objective.args[0].value for m in sm.models]
    assert sol.objective_eur == pytest.approx(float(np.dot(weights, parts)), abs=1e-6)


def test_helios_plan_uses_scenarios_when_configured():
    cfg = _cfg(0.3)
    result = run.plan_inputs(_data(cfg), cfg)
    assert result.plan.solution.solver == "HIGHS (scenarios)"
    assert result.schedule.slots[0].intent in ("self_consume", "hold", "limit_charge",
                                               "charge_grid", "discharge_grid", "idle")
