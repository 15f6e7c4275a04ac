"""Baselines: no battery and plain self-consumption, simulated on the plan's own inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from executor import plant
from planner import config as config_mod
from planner.evaluate.physics import Home, step
from planner.inputs import gather as inputs
from planner.plan import baselines, run


def _cfg(**sections) -> config_mod.HeliosConfig:
    return config_mod.from_mapping(sections)


def _inputs(cfg, pv, load, buy, sell=None, soc_pct=50.0):
    n = len(pv)
    sell = buy if sell is None else sell
    return inputs.from_arrays(pd.Timestamp("2026-05-01T00:00:00Z"), 3600, np.zeros(n), pv, load,
                              soc_pct, cfg, buy_eur_per_kwh=buy, sell_eur_per_kwh=sell)


def _balanced(b: baselines.Baseline, inp) -> None:
    supply = b.pv_used_kw + b.grid_import_kw + b.battery_discharge_kw + b.unserved_kw
    demand = inp.load_kw + b.battery_charge_kw + b.grid_export_kw
    np.testing.assert_allclose(supply, demand, atol=1e-9)
    assert (b.pv_used_kw <= inp.pv_kw + 1e-12).all()
    for arr in (b.grid_import_kw, b.grid_export_kw, b.battery_charge_kw,
                b.battery_discharge_kw, b.unserved_kw):
        assert (arr >= 0).all()


def test_no_battery_by_hand():
    cfg = _cfg()
    inp = _inputs(cfg, pv=[0, 3, 1], load=[1, 1, 2], buy=[0.3, 0.2, 0.4], sell=[0.1, 0.05, 0.1])
    b = baselines.no_battery(inp, cfg)
    np.testing.assert_allclose(b.grid_import_kw, [1, 0, 1])
    np.testing.assert_allclose(b.grid_export_kw, [0, 2, 0])
    assert b.bill_eur == pytest.approx(0.3 - 0.1 + 0.4)
    assert b.net_cost_eur == b.bill_eur
    _balanced(b, inp)


def test_no_battery_curtails_at_negative_sell_and_respects_export_limit():
    cfg = _cfg(grid={"max_export_kw": 1.5})
    inp = _inputs(cfg, pv=[5, 5], load=[1, 1], buy=[0.1, 0.1], sell=[-0.05, 0.05])
    b = baselines.no_battery(inp, cfg)
    np.testing.assert_allclose(b.grid_export_kw, [0, 1.5])
    np.testing.assert_allclose(b.pv_used_kw, [1, 2.5])
    _balanced(b, inp)


def test_self_consumption_by_hand():
    # 10 kWh, 5 kW, 90 % each way, SoC 10-100 %, start 50 %; 1 h slots
    cfg = _cfg(battery={"charge_efficiency": 0.9, "discharge_efficiency": 0.9,
                        "cycle_cost_eur_per_kwh": 0.01})
    inp = _inputs(cfg, pv=[8, 8, 0, 0, 0], load=[1, 1, 3, 3, 3], buy=[0.3] * 5, sell=[0.1] * 5)
    b = baselines.self_consumption(inp, cfg, terminal_value_eur_per_kwh=0.2)
    # slot 0: surplus 7 > 5 kW limit: charge 5 (4.5 kWh in), export 2
    # slot 1: room 10 - 9.5 = 0.5 kWh -> 0.556 kW charge, export the rest
    assert b.battery_charge_kw[0] == pytest.approx(5.0)
    assert b.battery_charge_kw[1] == pytest.approx(0.5 / 0.9)
    assert b.soc_kwh[1] == pytest.approx(10.0)
    # slots 2-4: discharge 3 kW (3.333 kWh out each) until the 1 kWh floor
    np.testing.assert_allclose(b.battery_discharge_kw[2:4], [3, 3])
    assert b.soc_kwh[3] == pytest.approx(10 - 2 * 3 / 0.9)
    assert b.battery_discharge_kw[4] == pytest.approx((b.soc_kwh[3] - 1.0) * 0.9)
    assert b.soc_kwh[4] == pytest.approx(1.0)
    assert (b.grid_import_kw[:4] == 0).all() and b.grid_import_kw[4] > 0
    assert not (b.battery_charge_kw * b.grid_import_kw > 0).any()  # never charges from grid
    assert not (b.battery_discharge_kw * b.grid_export_kw > 0).any()  # never exports battery
    throughput = b.battery_charge_kw.sum() + b.battery_discharge_kw.sum()
    assert b.wear_eur == pytest.approx(0.01 * throughput)
    assert b.stored_value_eur == pytest.approx(0.2 * (1.0 - 5.0))
    _balanced(b, inp)


def test_self_consumption_keeps_the_reserve():
    cfg = _cfg(battery={"reserve_soc_pct": 40, "min_soc_pct": 10})
    inp = _inputs(cfg, pv=[0] * 6, load=[2] * 6, buy=[0.3] * 6, soc_pct=60)
    b = baselines.self_consumption(inp, cfg)
    assert b.soc_kwh.min() == pytest.approx(4.0)
    _balanced(b, inp)


def test_plan_never_costs_more_than_self_consumption(site_dir):
    """The optimiser may follow the self-consumption strategy, so it can only do better."""
    for tariff in ({}, {"buy": "(price + 0.15) * 1.19", "sell": "price"}):
        cfg = config_mod.load(site_dir(config={"tariff": tariff} if tariff else None))
        result = run.plan_once(cfg, pd.Timestamp("2026-05-01T10:07:00Z"))
        comp = baselines.compare(result.plan, cfg)
        assert comp.savings_vs_self_consumption_eur >= -1e-6
        assert comp.savings_vs_no_battery_eur >= -1e-6
        d = comp.as_dict()
        assert d["plan"]["net_cost_eur"] == pytest.approx(comp.plan_net_cost_eur, abs=1e-6)
        assert d["plan"]["bill_eur"] == pytest.approx(result.schedule.expected_cost_eur,
                                                      abs=1e-5)
        _balanced(comp.self_consumption, result.plan.inputs)
        _balanced(comp.no_battery, result.plan.inputs)


def test_self_consumption_keeps_the_reserve_even_when_the_import_limit_is_short():
    # 2 kW import limit, 5 kW load: the battery covers 3 kW only down to the reserve (4 kWh)
    cfg = _cfg(battery={"reserve_soc_pct": 40, "min_soc_pct": 10}, grid={"max_import_kw": 2})
    inp = _inputs(cfg, pv=[0] * 4, load=[5] * 4, buy=[0.3] * 4, soc_pct=70)
    b = baselines.self_consumption(inp, cfg)
    np.testing.assert_allclose(b.battery_discharge_kw, [(7.0 - 4.0) * 0.95, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(b.soc_kwh, [4.0] * 4)
    np.testing.assert_allclose(b.grid_import_kw, [2.0] * 4)
    np.testing.assert_allclose(b.unserved_kw, [5 - 2 - 2.85, 3, 3, 3])
    _balanced(b, inp)


def test_baselines_and_the_backtest_step_run_the_executor_plant():
    # one physics: the backtest's step with a battery command is executor.plant.step on the
    # same limits, and the baselines are the plan's slots through it holding the grid at 0
    cfg = _cfg(grid={"max_export_kw": 2})
    home = Home.from_config(cfg)
    for e, setpoint, pv, load, ok, sell in ((5.0, 3.0, 1.0, 4.0, True, 0.1),
                                            (9.0, -4.0, 6.0, 0.5, True, -0.01),
                                            (2.0, 1.0, 0.0, 9.0, False, 0.1)):
        assert tuple(step(home, e, setpoint, math.inf, pv, load, ok, sell)) == tuple(
            plant.step(home, e, home.dt_h, pv, load, setpoint, math.inf, ok, sell >= 0))
    inp = _inputs(cfg, pv=[6, 6, 0, 0], load=[1, 1, 3, 3], buy=[0.3] * 4,
                  sell=[0.1, -0.1, 0.1, 0.1])
    b = baselines.self_consumption(inp, cfg)
    soc = 5.0
    for t in range(4):
        f = plant.step(home, soc, 1.0, inp.pv_kw[t], inp.load_kw[t], 0.0, math.inf, True,
                       inp.sell_eur_per_kwh[t] >= 0, grid_kw=0.0)
        assert (b.grid_import_kw[t], b.grid_export_kw[t], b.soc_kwh[t]) == pytest.approx(
            (f.grid_import_kw, f.grid_export_kw, f.soc_kwh))
        soc = f.soc_kwh
