"""The water heater's tank (issue 13, item 1): optima against an independent formulation.

The reference below is written from the model statement in
``planner/optimize/components/water_heater.py`` with explicit dense matrices and
``scipy.optimize.linprog`` (no cvxpy, no planner code): per slot grid import/export, PV
used, the heater's power, the tank's heat and the cold-water slack. The planner's optimum
must match it, and the tank's heat, re-simulated here from the planned power alone, must stay
inside ``[0, capacity]`` in every slot.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog
from test_water_heater import NO_BATTERY, _cfg, _inputs

from planner.core.errors import ConfigError
from planner.optimize import model
from planner.plan import run

TANK = {"capacity_kwh": 4.0, "min_temp_c": 45.0, "max_temp_c": 65.0, "ambient_temp_c": 20.0,
        "standing_loss_pct_per_h": 2.0}


def _reference(buy, sell, pv, power_kw, open_, draw_kwh, cap, keep, loss, heat0, penalty,
               value, dt=1.0):
    """min Σ dt(buy·imp − sell·exp) + P Σ cold − v e_{n−1}: balance pv + imp = p + exp,
    e_t = keep e_{t−1} + dt p_t − draw_t − loss + cold_t, 0 ≤ e ≤ cap."""
    n = len(buy)
    blocks = 6  # imp, exp, pv, p, e, cold
    c = np.concatenate([dt * np.asarray(buy), -dt * np.asarray(sell), np.zeros(n), np.zeros(n),
                        np.zeros(n), np.full(n, penalty)])
    c[4 * n + n - 1] -= value
    eq, rhs = [], []
    for t in range(n):
        row = np.zeros(blocks * n)
        row[t], row[n + t], row[2 * n + t], row[3 * n + t] = 1, -1, 1, -1
        eq.append(row)
        rhs.append(0.0)
        row = np.zeros(blocks * n)
        row[4 * n + t], row[3 * n + t], row[5 * n + t] = 1, -dt, -1
        if t:
            row[4 * n + t - 1] = -keep
        eq.append(row)
        rhs.append(-draw_kwh[t] - loss + (keep * heat0 if t == 0 else 0.0))
    bounds = ([(0, None)] * n + [(0, None)] * n + [(0, x) for x in pv]
              + [(0, power_kw if o else 0) for o in open_] + [(0, cap)] * n + [(0, None)] * n)
    res = linprog(c, A_eq=np.array(eq), b_eq=np.array(rhs), bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun, res.x[3 * n:4 * n]


def _simulate(p_kw, draw_kwh, keep, loss, heat0, dt=1.0):
    heat, out = heat0, []
    for p, d in zip(p_kw, draw_kwh, strict=True):
        heat = keep * heat + dt * p - d - loss
        out.append(heat)
    return np.array(out)


CASES = [
    # (buy, sell, pv, window, temp_c, modulating)
    ([0.3] * 6 + [0.1] * 4 + [0.4] * 14, None, None, ("00:00", "00:00"), 55.0, True),
    ([0.25, 0.1, 0.35, 0.05] * 6, None, None, ("00:00", "00:00"), 45.0, True),
    ([0.3] * 24, [0.05] * 24, [0] * 9 + [2.5] * 6 + [0] * 9, ("06:00", "20:00"), 50.0, True),
    ([0.2 + 0.1 * np.sin(i / 3) for i in range(24)], None, None, ("10:00", "18:00"), 62.0,
     True),
]


@pytest.mark.parametrize("buy,sell,pv,window,temp_c,modulating", CASES)
def test_tank_optimum_matches_the_reference_and_bounds_hold(buy, sell, pv, window, temp_c,
                                                             modulating):
    tank = {**TANK, "temp_c": temp_c}
    profile = [0] * 7 + [20, 10] + [0] * 9 + [10, 20, 20, 20] + [0] * 2
    tank["draw_profile_pct"] = profile
    cfg = _cfg({"tank": tank, "modulating": modulating, "daily_kwh": 3.0,
                "window": {"from": window[0], "to": window[1]}}, NO_BATTERY)
    n = len(buy)
    sell = [0.0] * n if sell is None else sell
    pv = [0.0] * n if pv is None else pv
    data = _inputs(cfg, buy, sell=sell, pv=pv)
    sol = model.solve(data, cfg)
    p = sol.device_kw["water_heater"]

    keep, loss = 1 - 0.02, 0.02 * 4.0 * (45 - 20) / 20
    heat0 = 4.0 * (temp_c - 45) / 20
    hours = np.arange(n) % 24
    draw = 3.0 * np.asarray(profile, dtype=float)[hours] / sum(profile)
    lo, hi = (int(x[:2]) for x in window)
    open_ = [(lo == hi) or (lo <= h < hi) for h in hours]
    value = float(np.median(buy))  # discharge efficiency 1 in _cfg
    penalty = None
    from_site = model.context(data, cfg).site.soft_penalty_eur_per_kwh
    ref_cost, ref_p = _reference(buy, sell, pv, 1.0, open_, draw, 4.0, keep, loss, heat0,
                                 penalty or from_site, value)
    heater_obj = sol.energy_cost_eur - value * sol.outputs["water_heater_tank_kwh"][-1]
    assert heater_obj == pytest.approx(ref_cost, abs=1e-5)
    assert sol.outputs["water_heater_cold_kwh"] == pytest.approx(0.0, abs=1e-7)
    # the heat, re-simulated from the planned power alone, stays in bounds in every slot
    heat = _simulate(p, draw, keep, loss, heat0)
    assert heat.min() >= -1e-6 and heat.max() <= 4.0 + 1e-6
    np.testing.assert_allclose(heat, sol.outputs["water_heater_tank_kwh"], atol=1e-6)
    temp = sol.outputs["water_heater_temp_c"]
    assert temp.min() >= 45 - 1e-5 and temp.max() <= 65 + 1e-5
    assert np.all(p[~np.array(open_)] <= 1e-9)  # never outside its window


def test_tank_heats_in_the_cheap_slots_and_not_in_the_dear_ones():
    # 4 cheap slots at 0.10 among dear 0.30/0.40: the element runs only there (and only as much
    # as the draw until the end needs, the end heat being worth the median price 0.40)
    cfg = _cfg({"tank": {**TANK, "temp_c": 55.0}, "window": {"from": "00:00", "to": "00:00"}},
               NO_BATTERY)
    buy = [0.3] * 6 + [0.1] * 4 + [0.4] * 14
    sol = model.solve(_inputs(cfg, buy), cfg)
    p = sol.device_kw["water_heater"]
    assert p[6:10].sum() > 3.0 and p[:6].sum() + p[10:].sum() == pytest.approx(0, abs=1e-6)


def test_cold_start_below_min_temperature_heats_first_and_on_off_is_whole_steps():
    cfg = _cfg({"tank": {**TANK, "temp_c": 40.0}, "modulating": False,
                "window": {"from": "00:00", "to": "00:00"}}, NO_BATTERY)
    sol = model.solve(_inputs(cfg, [0.2] * 24), cfg)
    p = sol.device_kw["water_heater"]
    assert p[0] == pytest.approx(1.0)  # the deficit (1 kWh below 45 °C) is made up at once
    assert np.all((np.abs(p) < 1e-6) | (np.abs(p - 1.0) < 1e-6))
    heat = sol.outputs["water_heater_tank_kwh"]
    assert heat.min() >= -1e-6 and heat.max() <= 4.0 + 1e-6


def test_sensor_temperature_from_extra_overrides_the_static_one():
    cfg = _cfg({"tank": {**TANK, "temp_c": 45.0}, "window": {"from": "00:00", "to": "00:00"}},
               NO_BATTERY)
    data = _inputs(cfg, [0.2] * 24)
    hot = model.solve(data, cfg, extra={"water_heater": {"temp_c": 65.0}})
    cold = model.solve(data, cfg)
    assert hot.device_kw["water_heater"].sum() < cold.device_kw["water_heater"].sum() - 1.0


def test_thermostat_baseline_keeps_the_tank_full():
    cfg = _cfg({"tank": {**TANK, "temp_c": 55.0}, "window": {"from": "00:00", "to": "00:00"}},
               NO_BATTERY)
    sol = model.solve(_inputs(cfg, [0.2] * 24), cfg)
    plain = sol.outputs["water_heater_earliest_kw"]
    keep, loss = 0.98, 0.02 * 4.0 * 25 / 20
    heat = _simulate(plain, np.full(24, 2.0 / 24), keep, loss, 2.0)
    assert plain[0] == pytest.approx(1.0)  # full power while below the thermostat's bound
    assert heat[3:].min() == pytest.approx(4.0) and heat.max() <= 4.0 + 1e-9


@pytest.mark.parametrize("tank,key", [
    ({"capacity_kwh": 4, "min_temp_c": 70}, "water_heater.tank.min_temp_c"),
    ({"capacity_kwh": 4, "draw_profile_pct": [1, 2]}, "water_heater.tank.draw_profile_pct"),
    ({"capacity_kwh": 4, "temperature": {"type": "nope"}},
     "water_heater.tank.temperature.type"),
    ({"capacity_kwh": 4, "temperature": {"type": "homeassistant", "url": "http://x"}},
     "water_heater.tank.temperature.token"),
    ({"min_temp_c": 40}, "water_heater.tank.capacity_kwh"),
])
def test_tank_config_is_checked_naming_the_key(tank, key):
    with pytest.raises(ConfigError) as err:
        _cfg({"tank": tank}, NO_BATTERY)
    assert key in str(err.value)


def test_a_tank_too_small_for_the_draw_is_a_violation_and_the_plan_is_built():
    # 12 kWh/day drawn, the element may only run 02:00-03:00: the tank cannot keep up
    cfg = _cfg({"tank": {**TANK, "temp_c": 45.0}, "daily_kwh": 12.0,
                "window": {"from": "02:00", "to": "03:00"}}, NO_BATTERY)
    result = run.plan_inputs(_inputs(cfg, [0.2] * 24), cfg)
    kinds = [v.kind for v in result.schedule.violations]
    assert "device_energy" in kinds and result.schedule.status == "optimal_with_violations"
    assert any("min_temp_c" in v.message for v in result.schedule.violations)
