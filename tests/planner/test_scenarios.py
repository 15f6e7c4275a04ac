"""planner.optimize.scenarios: the two-stage scenario plan (first slot shared by all)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from backtest_data import summer_week, week_series

from planner import config
from planner.evaluate.forecast import RealForecaster
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


def test_error_quantiles_of_a_known_history():
    # forecasts of 10 kWh, actuals 5 .. 14: ratios 0.5 .. 1.4 (ten days)
    fc = [10.0] * 10
    actual = [5.0 + k for k in range(10)]
    lo, mid, hi = scenarios.error_quantiles(fc, actual, 0.1)
    # linear between order statistics: P10 at position 0.9, P50 at 4.5, P90 at 8.1
    assert (lo, mid, hi) == pytest.approx((0.59, 0.95, 1.31))
    # a day whose forecast is below min_kwh (a dark day) does not count
    lo2, _, _ = scenarios.error_quantiles([*fc, 0.01], [*actual, 5.0], 0.1)
    assert lo2 == pytest.approx(0.59)
    # skewed: a sunny-spell persistence forecast too high on cloudy days
    lo3, _, hi3 = scenarios.error_quantiles([10.0] * 10, [3, 4, 9, 10, 10, 10, 10, 10, 11, 11],
                                            0.1)
    assert 1.0 - lo3 > hi3 - 1.0
    # too few days: None (the plan stays deterministic)
    assert scenarios.error_quantiles(fc[:6], actual[:6], 0.1) is None


def test_error_history_reads_only_days_complete_before_now_and_the_first_forecast():
    hist = scenarios.ErrorHistory(days=30, quantile=0.1)
    per_day = 4
    for d in range(12):
        hist.record(d, d * per_day, (d + 1) * per_day, 10.0, 8.0)
        hist.record(d, d * per_day + 1, (d + 1) * per_day, 99.0, 99.0)  # not the first: kept out
    seen = []

    def actual(a, b):
        seen.append(b)
        d = a // per_day
        return 5.0 + d, 8.0 * (1.0 + 0.05 * (d - 5))  # PV ratio 0.5 + 0.1 d; load ratio likewise

    now = 10 * per_day + 2  # in day 10: days 0 .. 9 are complete
    factors = hist.factors(now, actual, joint_load=True)
    assert max(seen) <= now  # no look-ahead
    (pv_lo, load_hi), central, (pv_hi, load_lo) = factors
    assert central == (1.0, 1.0)
    assert (pv_lo, pv_hi) == pytest.approx((0.59, 1.31))
    assert load_hi > 1.0 > load_lo  # low PV with high load
    assert hist.factors(now, actual, joint_load=False)[0][1] == 1.0
    # the window: only the last `days` complete days
    short = scenarios.ErrorHistory(days=7, quantile=0.1)
    short.forecasts = hist.forecasts
    (lo7, _), _, _ = short.factors(now, actual, joint_load=False)
    assert lo7 == pytest.approx(0.5 + 0.1 * (3 + 0.6))  # days 3..9: P10 at position 0.6
    assert scenarios.ErrorHistory(7, 0.1).factors(now, actual, True) is None


def test_one_scenario_is_the_deterministic_plan_exactly():
    cfg = _cfg(0.0)
    data = _data(cfg)
    spec = model.ModelSpec.from_config(cfg, data.n, 900)
    plain = model.Model(spec).solve(data, cfg)
    sol = scenarios.ScenarioModel(spec, [1.0]).solve([data], cfg)
    assert sol.objective_eur == pytest.approx(plain.objective_eur, abs=1e-6)
    assert np.allclose(sol.battery_charge_kw, plain.battery_charge_kw, atol=1e-6)
    assert np.allclose(sol.grid_import_kw, plain.grid_import_kw, atol=1e-6)
    # factors that are all 1: nothing to hedge, the caller makes the deterministic plan
    assert scenarios.solve(data, cfg, factors=[(1.0, 1.0)] * 3) is None


def test_load_scenarios_share_the_first_slot():
    cfg = _cfg(0.0)
    data = _data(cfg)
    factors = [(0.6, 1.3), (1.0, 1.0), (1.2, 0.9)]
    cases = scenarios.scaled_scenarios(data, factors, 4)
    assert np.allclose(cases[0].load_kw[:4], data.load_kw[:4])
    assert np.allclose(cases[0].load_kw[4:], 1.3 * data.load_kw[4:])
    assert np.allclose(cases[2].pv_kw[4:], 1.2 * data.pv_kw[4:])
    spec = model.ModelSpec.from_config(cfg, data.n, 900)
    sm = scenarios.ScenarioModel(spec, list(scenarios.WEIGHTS))
    sol = sm.solve(cases, cfg)
    plan.check(data, sol, cfg)
    for m in sm.models:
        for mine, shared in zip(m.problem.flows, sm.models[1].problem.flows, strict=True):
            assert mine.kw[0].value == pytest.approx(shared.kw[0].value, abs=1e-6)
    via_solve = scenarios.solve(data, cfg, factors=factors, cache={})
    assert via_solve.objective_eur == pytest.approx(sol.objective_eur, abs=1e-6)


def test_the_forecasters_past_day_forecasts_see_only_the_history_before_their_day():
    cfg = config.from_mapping({
        "site": {"timezone": "Europe/Berlin", "latitude": 47.66, "longitude": 9.18},
        "battery": {"capacity_kwh": 10}, "tariff": TARIFF,
        "load": {"type": "history", "min_days": 2},
        "planning": {"slot_s": 3600, "scenario_error_days": 7}})
    week = summer_week()  # 7 days from local midnight, hourly
    series = week_series(week, cfg)
    t = 5 * 24 + 3  # 03:00 on the sixth day
    past = RealForecaster(cfg, series).past_day_forecasts(t, 3)
    assert [(a, b) for a, b, _, _ in past] == [(48, 72), (72, 96), (96, 120)]
    assert all(pv > 1.0 and load > 1.0 for _, _, pv, load in past)
    # the same forecasts when everything from the last of those days on is different
    index, spot, pv, load = week
    pv2, load2 = pv.copy(), load.copy()
    pv2[96:] *= 0.1
    load2[96:] *= 3.0
    changed = RealForecaster(cfg, week_series(week, cfg, pv=pv2, load=load2))
    assert changed.past_day_forecasts(t, 3) == pytest.approx(past)
    # the data's first day has no forecast (nothing before it)
    assert [a for a, _, _, _ in RealForecaster(cfg, series).past_day_forecasts(t, 9)][0] == 24
