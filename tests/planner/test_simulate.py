"""The backtest simulator: slot physics, energy conservation, strategies, the perfect-foresight
limit, closed loop = optimum with a whole-period horizon, outages with and without notice.

Real data: the CoSSMic summer week (PV/load, CC-BY) with DK1 prices of 2023-07-02 (Energinet,
CC-BY, −440 EUR/MWh at noon: buy prices go negative with the tariff below), hourly slots so
that every closed loop stays around a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from backtest_data import summer_week, week_series

from planner import config
from planner.core.errors import SolverFailedError
from planner.evaluate.loop import Options, Result, run_backtest
from planner.evaluate.metrics import energy_residual_kwh, metrics, objective_eur
from planner.evaluate.mpc import MpcStrategy
from planner.evaluate.perfect import Terms, perfect_foresight
from planner.evaluate.physics import Home, Series, Trace, simulate, step
from planner.evaluate.strategies import NoBattery, PriceRule, SelfConsumption
from planner.inputs import gather as inputs
from planner.optimize.model import Model as _PlannerModel
from planner.plan import baselines

DATA_DIR = Path(__file__).parents[1] / "data"

TARIFF = {"buy": "(price + 0.15) * 1.19", "sell": "price"}


def _cfg(battery: dict | None = None, planning: dict | None = None, grid: dict | None = None):
    return config.from_mapping({
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02, **(battery or {})},
        "planning": {"slot_s": 3600, "horizon_h": 24, **(planning or {})},
        "grid": grid or {},
        "tariff": TARIFF,
    })


@pytest.fixture(scope="module")
def week():
    """48 h of the summer house with the DK1 negative-price days on the same slots."""
    return summer_week(48)


def _series(week, cfg, outage=None, pv_scale: float = 1.0) -> Series:
    return week_series(week, cfg, pv=week[2] * pv_scale, outage=outage)


HOME = Home(slot_s=3600, capacity_kwh=10, min_kwh=1, max_kwh=10, reserve_kwh=1,
                     max_charge_kw=5, max_discharge_kw=4, charge_efficiency=0.9,
                     discharge_efficiency=0.8, max_import_kw=6, max_export_kw=3,
                     wear_eur_per_kwh=0.0)


def _step(soc=5.0, setpoint=0.0, cap=math.inf, pv=0.0, load=0.0, ok=True, sell=0.1,
          grid=None, home=HOME):
    imp, exp, ch, dis, pv_used, unserved, soc_end = step(
        home, soc, setpoint, cap, pv, load, ok, sell, grid)
    # every single slot balances and never does both directions at once
    assert pv_used + imp + dis + unserved == pytest.approx(load + ch + exp, abs=1e-12)
    assert min(imp, exp) == 0 and min(ch, dis) == 0
    assert 0 <= pv_used <= pv + 1e-12
    return {"imp": imp, "exp": exp, "ch": ch, "dis": dis, "pv_used": pv_used,
            "unserved": unserved, "soc": soc_end}


# --------------------------------------------------------------------------------------------
# one slot


def test_step_follows_the_setpoint_and_the_grid_takes_the_rest():
    r = _step(setpoint=2.0, pv=1.0, load=4.0)
    assert (r["dis"], r["imp"]) == (2.0, pytest.approx(1.0))
    assert r["soc"] == pytest.approx(5 - 2.0 / 0.8)
    r = _step(setpoint=-3.0, pv=1.0, load=0.5)
    assert (r["ch"], r["imp"], r["exp"]) == (3.0, pytest.approx(2.5), 0)
    assert r["soc"] == pytest.approx(5 + 3.0 * 0.9)


def test_step_clamps_power_and_soc_limits():
    assert _step(soc=10.0, setpoint=9.0, load=9.0)["dis"] == 4.0  # power limit
    r = _step(soc=1.5, setpoint=4.0, load=4.0)  # only 0.5 kWh above min: 0.4 kWh AC
    assert r["dis"] == pytest.approx(0.5 * 0.8) and r["soc"] == pytest.approx(1.0)
    r = _step(soc=9.5, setpoint=-5.0)  # room for 0.5 kWh
    assert r["ch"] == pytest.approx(0.5 / 0.9) and r["soc"] == pytest.approx(10.0)
    r = _step(soc=0.5, setpoint=2.0, load=2.0)  # below min (after an outage): no discharge
    assert r["dis"] == 0 and r["imp"] == 2.0 and r["soc"] == 0.5


def test_step_outage_battery_covers_then_load_is_unserved_and_surplus_is_curtailed():
    r = _step(setpoint=-3.0, load=2.0, ok=False)  # the plan wanted to charge from the grid
    assert (r["imp"], r["dis"], r["unserved"]) == (0, 2.0, 0)
    r = _step(soc=1.0, load=2.0, ok=False)  # empty battery
    assert (r["imp"], r["unserved"]) == (0, 2.0)
    r = _step(soc=9.0, load=6.0, ok=False)  # more than the discharge limit
    assert (r["dis"], r["unserved"]) == (4.0, pytest.approx(2.0))
    r = _step(soc=9.0, pv=8.0, load=1.0, ok=False)  # surplus: battery takes what it can
    assert r["exp"] == 0 and r["ch"] == pytest.approx(1.0 / 0.9)
    assert r["pv_used"] == pytest.approx(1.0 + 1.0 / 0.9)


def test_step_grid_limits_and_export_rules():
    r = _step(soc=5.0, setpoint=0.0, load=8.0)  # import limit 6: battery helps, no unserved
    assert (r["imp"], r["dis"], r["unserved"]) == (6.0, pytest.approx(2.0), 0)
    r = _step(soc=10.0, pv=8.0, load=1.0)  # export limit 3, battery full: curtail 4
    assert (r["exp"], r["pv_used"]) == (3.0, pytest.approx(4.0))
    r = _step(soc=10.0, pv=8.0, load=1.0, sell=-0.01)  # negative sell: curtail, no export
    assert (r["exp"], r["pv_used"]) == (0, pytest.approx(1.0))
    no_export = Home(**{**HOME.__dict__, "max_export_kw": 0.0})
    assert _step(soc=10.0, pv=3.0, load=1.0, home=no_export)["exp"] == 0


def test_step_pv_cap_curtails_unless_the_load_needs_it():
    r = _step(pv=5.0, load=1.0, cap=2.0, setpoint=-1.0)
    assert r["pv_used"] == 2.0 and r["exp"] == 0 and r["ch"] == 1.0
    r = _step(soc=1.0, pv=5.0, load=4.0, cap=0.0, ok=False)  # outage: the cap gives way
    assert r["unserved"] == 0 and r["pv_used"] == 4.0


def test_step_grid_setpoint_mode_battery_absorbs_the_error():
    r = _step(pv=3.0, load=1.0, grid=0.5, setpoint=99.0)  # holds +0.5 kW import
    assert r["imp"] == pytest.approx(0.5) and r["ch"] == pytest.approx(2.5)


# --------------------------------------------------------------------------------------------
# whole runs


def test_energy_is_conserved_over_every_strategy_and_mode(week):
    cfg = _cfg()
    outage = np.zeros(48, dtype=bool)
    outage[30:36] = True
    series = _series(week, cfg, outage, pv_scale=1.5)
    result = run_backtest(cfg, series, 0, 48,
                                   Options(noisy_too=True, control="grid"))
    assert set(result.traces) == {"helios", "helios_noisy", "no_battery", "self_consumption",
                                  "price_rule", "perfect_foresight"}
    home = result.home
    for name, trace in result.traces.items():
        assert abs(energy_residual_kwh(trace, series, 0, home)) < 1e-9, name
        assert np.all(trace.soc_kwh >= home.min_kwh - 1e-9), name
        assert np.all(trace.soc_kwh <= home.max_kwh + 1e-9), name
        assert np.all(trace.grid_import_kw[30:36] == 0), name
        assert np.all(trace.grid_export_kw[30:36] == 0), name
        assert np.all(np.minimum(trace.battery_charge_kw, trace.battery_discharge_kw) == 0)
        assert np.all(np.minimum(trace.grid_import_kw, trace.grid_export_kw) == 0)
        m = result.metrics[name]
        assert m["load_kwh"] == pytest.approx(float(series.load_kw.sum()))


def test_perfect_foresight_is_never_beaten(week):
    cfg = _cfg()
    for outage in (None, np.arange(48) % 24 >= 19):
        series = _series(week, cfg, outage)
        result = run_backtest(
            cfg, series, 0, 48, Options(noisy_too=True, noise_pct=25, seed=3))
        limit = result.traces["perfect_foresight"].info["lp_objective_eur"]
        for name, trace in result.traces.items():
            value = objective_eur(trace, series, 0, result.home, result.terms)
            assert value >= limit - 1e-6, name
        nb = result.metrics["no_battery"]["net_cost_eur"]
        assert result.metrics["helios"]["net_cost_eur"] < nb


def test_perfect_foresight_exact_at_negative_buy_prices(week):
    # DK1 −440 EUR/MWh: buy = (−0.44 + 0.15) * 1.19 < 0, so burning energy in the battery's
    # losses pays; the LP would charge and discharge at once, the MILP re-solve must not
    cfg = _cfg(battery={"cycle_cost_eur_per_kwh": 0.0})
    series = _series(week, cfg)
    assert (series.buy_eur_per_kwh < 0).any()
    home = Home.from_config(cfg)
    terms = Terms.for_period(cfg, series, 0, 48)
    trace, optimum = perfect_foresight(home, series, 0, 48, 5.0, terms)
    assert trace.info["problem"] == "MILP"
    assert objective_eur(trace, series, 0, home, terms) == pytest.approx(optimum,
                                                                                  abs=1e-6)


@pytest.mark.parametrize("control", ["intent", "battery", "grid"])
def test_closed_loop_with_whole_period_horizon_equals_the_optimum(week, control):
    # perfect forecasts, a horizon covering the whole period (it shrinks with the data) and a
    # final SoC target (so every re-plan values the end the same way): Bellman says the
    # closed loop realises the optimum of the single whole-period problem
    # (the plain objective: the grid hurdle is not part of the whole-period optimum)
    cfg = _cfg(battery={"final_soc_pct": 50},
               planning={"horizon_h": 48, "grid_hurdle_eur_per_kwh": 0})
    series = _series(week, cfg)
    result = run_backtest(cfg, series, 0, 48,
                                   Options(control=control))
    optimum = result.traces["perfect_foresight"].info["lp_objective_eur"]
    helios = objective_eur(result.traces["helios"], series, 0, result.home,
                                    result.terms)
    assert helios == pytest.approx(optimum, rel=1e-6, abs=1e-6)
    assert result.comparison["helios"]["share_of_perfect_foresight"] == pytest.approx(1, abs=1e-6)
    assert result.traces["helios"].info["solves"] == 48


def test_replan_every_n_slots_solves_less(week):
    cfg = _cfg()
    series = _series(week, cfg)
    home = Home.from_config(cfg)
    strategy = MpcStrategy(cfg, series, replan_every=4)
    trace = simulate(home, series, 0, 48, 5.0, strategy)
    assert trace.info["solves"] == 12
    assert abs(energy_residual_kwh(trace, series, 0, home)) < 1e-9


def test_noisy_forecasts_are_seeded(week):
    cfg = _cfg()
    series = _series(week, cfg)
    home = Home.from_config(cfg)

    def run(seed):
        s = MpcStrategy(cfg, series, "noisy", noise_pct=30, seed=seed)
        return simulate(home, series, 0, 24, 5.0, s).soc_kwh

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_noisy_forecasts_look_like_forecasts():
    # constant actuals: the relative error is what the planner sees
    n = 96 * 30
    index = pd.date_range("2026-01-01T00:00Z", periods=n, freq="15min")
    series = Series.build(index, 900, np.zeros(n), np.full(n, 0.2), np.zeros(n),
                                   np.ones(n), np.ones(n))
    cfg = config.from_mapping({"planning": {"horizon_h": 48}})
    mpc = MpcStrategy(cfg, series, "noisy", noise_pct=10, seed=4)
    errors = np.array([mpc.inputs_at(t, 5.0)[0].pv_kw - 1 for t in range(0, n - 192, 8)])
    # the current slot is nearly known (sigma / sqrt(96) ~ 1 %), a day ahead the full 10 %
    assert 0.005 < errors[:, 0].std() < 0.02
    assert 0.07 < errors[:, 96:].std() < 0.13
    # the same target slot seen from two re-plans: same sign, smaller error closer in
    a, b = mpc.inputs_at(100, 5.0)[0].pv_kw - 1, mpc.inputs_at(101, 5.0)[0].pv_kw - 1
    same = b[:-1] * a[1:] > 0
    assert same.all()
    assert np.all(np.abs(b[:95]) <= np.abs(a[1:96]) + 1e-12)
    # correlated in time (3 h): neighbouring slots err alike
    far = errors[:, 150:]
    assert np.corrcoef(far[:, :-1].ravel(), far[:, 1:].ravel())[0, 1] > 0.8


def test_baselines_match_the_planner_baselines_module(week):
    # planner/plan/baselines.py (the report's baselines) and the simulator agree without outages
    cfg = _cfg(grid={"max_export_kw": 3})
    series = _series(week, cfg)
    data = inputs.Inputs(series.index, 3600, series.spot_eur_per_kwh, series.buy_eur_per_kwh,
                         series.sell_eur_per_kwh, series.pv_kw, series.load_kw, 50.0,
                         series.index[0])
    home = Home.from_config(cfg)
    for ref, strategy, h in (
            (baselines.no_battery(data, cfg), NoBattery(), home.without_battery()),
            (baselines.self_consumption(data, cfg), SelfConsumption(home, series),
             home)):
        trace = simulate(h, series, 0, 48, 5.0, strategy)
        np.testing.assert_allclose(trace.grid_import_kw, ref.grid_import_kw, atol=1e-9)
        np.testing.assert_allclose(trace.grid_export_kw, ref.grid_export_kw, atol=1e-9)
        np.testing.assert_allclose(trace.soc_kwh, ref.soc_kwh, atol=1e-9)


def test_price_rule_charges_in_the_cheapest_hours_and_never_exports_battery_energy():
    n = 48
    index = pd.date_range("2026-01-05T23:00Z", periods=n, freq="1h")  # two Berlin days
    buy = np.tile(np.r_[np.full(6, 0.10), np.full(12, 0.30), np.full(6, 0.40)], 2)
    series = Series.build(index, 3600, buy, buy, buy * 0.2, np.zeros(n), np.ones(n))
    cfg = _cfg()
    home = Home.from_config(cfg)
    trace = simulate(home, series, 0, n, 1.0,
                              PriceRule(home, series, "Europe/Berlin"))
    charging = trace.battery_charge_kw > 0
    assert charging.any() and np.all(buy[charging] == 0.10)
    assert np.all(trace.grid_export_kw == 0)
    discharging = trace.battery_discharge_kw > 0
    assert discharging.any() and np.all(buy[discharging] >= 0.30)
    flat = Series.build(index, 3600, buy, np.full(n, 0.3), np.zeros(n), np.zeros(n),
                                 np.ones(n))  # no spread: no grid charging at all
    trace = simulate(home, flat, 0, n, 1.0,
                              PriceRule(home, flat, "Europe/Berlin"))
    assert np.all(trace.battery_charge_kw == 0)


def _outage_day(notice_h: float) -> tuple[Trace, Result]:
    # dear evening 16-20 h, then a 4 h outage: without notice the plan spends the battery in
    # the dear hours and the outage finds it empty; told in advance it keeps the energy
    n = 24
    index = pd.date_range("2026-01-10T00:00Z", periods=n, freq="1h")
    buy = np.full(n, 0.30)
    buy[16:20] = 0.60
    outage = np.zeros(n, dtype=bool)
    outage[20:24] = True
    series = Series.build(index, 3600, buy, buy, np.full(n, 0.05), np.zeros(n),
                                   np.ones(n), outage)
    cfg = _cfg(battery={"capacity_kwh": 4, "min_soc_pct": 0, "max_charge_kw": 2,
                        "max_discharge_kw": 2})
    result = run_backtest(cfg, series, 0, n,
                                   Options(soc_start_pct=100,
                                                    outage_notice_h=notice_h))
    return result.traces["helios"], result


def test_outage_unserved_load_is_counted_and_notice_keeps_a_reserve():
    blind, result = _outage_day(0)
    told, result_told = _outage_day(24)
    assert blind.unserved_kw.sum() == pytest.approx(4.0)  # battery empty when the grid went
    assert told.unserved_kw.sum() == pytest.approx(4 - 4 * 0.95, abs=1e-6)
    assert told.soc_kwh[19] == pytest.approx(4.0)  # kept full through the dear hours
    assert result_told.metrics["helios"]["unserved_kwh"] == pytest.approx(0.2, abs=1e-6)
    pf = result_told.metrics["perfect_foresight"]
    assert pf["unserved_kwh"] == pytest.approx(0.2, abs=1e-6)
    assert result.metrics["no_battery"]["unserved_kwh"] == pytest.approx(4.0)


def test_metrics_definitions():
    n = 4
    index = pd.date_range("2026-01-10T00:00Z", periods=n, freq="1h")
    series = Series.build(index, 3600, np.full(n, 0.2), np.full(n, 0.3),
                                   np.full(n, 0.1), np.array([0, 4.0, 4.0, 0]), np.ones(n))
    home = Home(slot_s=3600, capacity_kwh=4, min_kwh=0, max_kwh=4, reserve_kwh=0,
                         max_charge_kw=2, max_discharge_kw=2, charge_efficiency=1.0,
                         discharge_efficiency=1.0, max_import_kw=10, max_export_kw=10,
                         wear_eur_per_kwh=0.01)
    terms = Terms(0.25, 0.0, 0.0, 0.0, 10.0, 100.0)
    trace = simulate(home, series, 0, n, 0.0, SelfConsumption(home, series))
    m = metrics(trace, series, 0, home, terms)
    # charge 2+2 kWh from 3+3 surplus, export 1+1, discharge 1 in the last hour; import 1
    assert m["battery_charge_kwh"] == 4 and m["battery_discharge_kwh"] == 1
    assert (m["grid_import_kwh"], m["grid_export_kwh"]) == (1, 2)
    assert m["bill_eur"] == pytest.approx(0.3 * 1 - 0.1 * 2)
    assert m["wear_eur"] == pytest.approx(0.05)
    assert m["stored_value_eur"] == pytest.approx(0.25 * 3)
    assert m["net_cost_eur"] == pytest.approx(0.1 + 0.05 - 0.75)
    assert m["equivalent_cycles"] == pytest.approx(5 / 8)
    assert m["self_consumption_ratio"] == pytest.approx(1 - 2 / 8)
    assert m["self_sufficiency_ratio"] == pytest.approx(1 - 1 / 4)
    assert m["hours_at_min_soc"] == 1  # empty during the first hour


def test_failed_replan_falls_back_then_keeps_the_previous_plan(week, monkeypatch):
    # HiGHS can end with status UNKNOWN, which cvxpy reports as a ValueError: the re-plan is
    # retried with the fallback solvers; if those fail too, nothing changes (as a failed
    # `helios plan` leaves the previous schedule) and the last plan is followed
    cfg = _cfg()
    series = _series(week, cfg)
    home = Home.from_config(cfg)
    original = _PlannerModel.solve
    calls = []

    def flaky(self, data, cfg_used):
        t = int((data.index[0] - series.index[0]) / pd.Timedelta(hours=1))
        calls.append((t, cfg_used.planning.solver))
        if t == 3 and cfg_used.planning.solver == "highs":
            raise ValueError("Cannot unpack invalid solution: status UNKNOWN")
        if 10 <= t < 14:
            raise SolverFailedError("every solver failed")
        return original(self, data, cfg_used)

    monkeypatch.setattr(_PlannerModel, "solve", flaky)
    strategy = MpcStrategy(cfg, series)
    trace = simulate(home, series, 0, 24, 5.0, strategy)
    stats = strategy.stats()
    assert (3, "clarabel") in calls
    assert stats["fallback_solves"] == 1 and stats["failed_solves"] == 4
    assert stats["solves"] == 20
    assert "UNKNOWN" in stats["failures"][0]
    # slots 10..13 follow the plan made at slot 9
    reference = MpcStrategy(cfg, series)
    reference.replan(9, float(trace.soc_kwh[8]))
    np.testing.assert_allclose(trace.battery_charge_kw[10:14] - trace.battery_discharge_kw[10:14],
                               -np.asarray(reference._setpoint[1:5]), atol=1e-6)
    assert abs(energy_residual_kwh(trace, series, 0, home)) < 1e-9


def test_self_consumption_ratio_does_not_count_battery_export_as_pv_exported():
    # Three 1 h slots, load 1 kW, PV 3, 0, 3 kW. Slot 1: PV covers the load and charges 2 kW
    # (no export). Slot 2: the battery discharges 2 kW: 1 to the load, 1 exported — not PV.
    # Slot 3: PV's surplus of 2 kW and the battery's 2 kW are exported (4): 2 kWh PV exported.
    # PV 6 kWh, 2 exported: 4/6 used on site (the old 1 - export / PV gave 1 - 5/6 = 1/6).
    index = pd.date_range("2026-01-10T00:00Z", periods=3, freq="1h")
    series = Series.build(index, 3600, np.full(3, 0.2), np.full(3, 0.3), np.full(3, 0.1),
                          np.array([3.0, 0.0, 3.0]), np.ones(3))
    home = Home(slot_s=3600, capacity_kwh=4, min_kwh=0, max_kwh=4, reserve_kwh=0,
                max_charge_kw=2, max_discharge_kw=2, charge_efficiency=1.0,
                discharge_efficiency=1.0, max_import_kw=10, max_export_kw=10,
                wear_eur_per_kwh=0.0)
    terms = Terms(0.0, 0.0, 0.0, 0.0, 10.0, 100.0)
    trace = Trace("hand", index, 2.0, grid_import_kw=np.zeros(3),
                  grid_export_kw=np.array([0.0, 1.0, 4.0]),
                  battery_charge_kw=np.array([2.0, 0.0, 0.0]),
                  battery_discharge_kw=np.array([0.0, 2.0, 2.0]),
                  pv_used_kw=np.array([3.0, 0.0, 3.0]), unserved_kw=np.zeros(3),
                  soc_kwh=np.array([4.0, 2.0, 0.0]))
    m = metrics(trace, series, 0, home, terms)
    assert m["grid_export_kwh"] == 5
    assert m["pv_exported_kwh"] == 2  # only slot 3's PV surplus
    assert m["self_consumption_ratio"] == pytest.approx(1 - 2 / 6)
