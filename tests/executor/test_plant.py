"""executor.plant: the one home physics (backtest, baselines, simulated plant)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from executor import plant
from executor.drivers.simulated import Plant

#: 10 kWh (1-10 usable), 5 kW charge / 4 kW discharge, 90 % / 80 %, 6 kW import, 3 kW export
LIMITS = plant.PlantLimits(min_kwh=1.0, max_kwh=10.0, max_charge_kw=5.0, max_discharge_kw=4.0,
                           charge_efficiency=0.9, discharge_efficiency=0.8, max_import_kw=6.0,
                           max_export_kw=3.0)


def _balance(f: plant.Flows, pv: float, load: float) -> float:
    """Supply − demand on the AC bus; 0 when the interval balances. [kW]"""
    return (f.pv_used_kw + f.grid_import_kw + f.battery_discharge_kw + f.unserved_kw
            - load - f.grid_export_kw - f.battery_charge_kw)


def test_battery_follows_the_command_within_power_and_soc_limits():
    f = plant.step(LIMITS, 5.0, 1.0, 0.0, 1.0, battery_kw=1.0)
    assert (f.battery_discharge_kw, f.grid_import_kw) == (1.0, 0.0)
    assert f.soc_kwh == pytest.approx(5.0 - 1.0 / 0.8)
    f = plant.step(LIMITS, 5.0, 1.0, 0.0, 1.0, battery_kw=-9.0)  # charge limit 5 kW
    assert f.battery_charge_kw == 5.0 and f.grid_import_kw == pytest.approx(6.0)
    assert f.soc_kwh == pytest.approx(5.0 + 0.9 * 5.0)
    f = plant.step(LIMITS, 1.5, 1.0, 0.0, 4.0, battery_kw=4.0)  # only 0.5 kWh above min
    assert f.battery_discharge_kw == pytest.approx(0.5 * 0.8)
    assert f.soc_kwh == pytest.approx(1.0)
    assert f.grid_import_kw == pytest.approx(4.0 - 0.4)
    f = plant.step(LIMITS, 9.8, 0.5, 0.0, 0.0, battery_kw=-5.0)  # 0.2 kWh room in 30 min
    assert f.battery_charge_kw == pytest.approx(0.2 / (0.9 * 0.5))
    assert f.soc_kwh == pytest.approx(10.0)


def test_soc_outside_the_limits_is_never_pushed_further():
    assert plant.step(LIMITS, 0.5, 1.0, 0.0, 2.0, battery_kw=3.0).battery_discharge_kw == 0.0
    f = plant.step(LIMITS, 0.5, 1.0, 0.0, 0.0, battery_kw=-1.0)  # below min: may charge
    assert f.battery_charge_kw == 1.0
    f = plant.step(LIMITS, 10.5, 1.0, 4.0, 0.0, battery_kw=-3.0)  # above max: no charge
    assert f.battery_charge_kw == 0.0 and f.grid_export_kw == 3.0
    assert f.soc_kwh == 10.5


def test_grid_setpoint_makes_the_battery_take_the_rest():
    f = plant.step(LIMITS, 5.0, 1.0, 3.0, 1.0, battery_kw=4.0, grid_kw=0.5)
    assert f.battery_charge_kw == pytest.approx(2.5)  # need −2 − 0.5 → charge 2.5
    assert f.grid_import_kw == pytest.approx(0.5)


def test_export_limit_negative_price_and_switch_curtail_pv():
    f = plant.step(LIMITS, 10.0, 1.0, 8.0, 1.0)  # battery full, export 3: 4 kW curtailed
    assert (f.grid_export_kw, f.pv_used_kw) == (3.0, pytest.approx(4.0))
    f = plant.step(LIMITS, 10.0, 1.0, 8.0, 1.0, export_ok=False)
    assert (f.grid_export_kw, f.pv_used_kw) == (0.0, pytest.approx(1.0))
    f = plant.step(LIMITS, 5.0, 1.0, 8.0, 1.0, export_ok=False)  # the battery takes 5 kW
    assert f.battery_charge_kw == 5.0 and f.pv_used_kw == pytest.approx(6.0)


def test_pv_cap_curtails_unless_the_load_needs_it():
    f = plant.step(LIMITS, 5.0, 1.0, 5.0, 1.0, pv_cap_kw=2.0)
    assert f.pv_used_kw == 2.0 and f.grid_export_kw == pytest.approx(1.0)
    f = plant.step(LIMITS, 1.0, 1.0, 5.0, 8.0, pv_cap_kw=1.0)  # empty battery, 6 kW import
    assert f.pv_used_kw == pytest.approx(2.0) and f.unserved_kw == 0.0


def test_outage_islands_the_home():
    f = plant.step(LIMITS, 8.0, 1.0, 0.0, 6.0, battery_kw=0.0, grid_ok=False)
    assert f.grid_import_kw == 0.0 and f.battery_discharge_kw == 4.0
    assert f.unserved_kw == pytest.approx(2.0)
    f = plant.step(LIMITS, 5.0, 1.0, 9.0, 1.0, battery_kw=0.0, grid_ok=False)
    assert f.grid_export_kw == 0.0 and f.battery_charge_kw == 5.0
    assert f.pv_used_kw == pytest.approx(6.0)


def test_no_grid_limit_by_default():
    lim = plant.PlantLimits(0.0, 10.0, 5.0, 5.0, 0.95, 0.95)
    f = plant.step(lim, 0.0, 1.0, 0.0, 40.0)
    assert f.grid_import_kw == 40.0 and f.unserved_kw == 0.0
    f = plant.step(lim, 10.0, 1.0, 30.0, 0.0)
    assert f.grid_export_kw == 30.0 and f.pv_used_kw == 30.0


def test_energy_is_conserved_and_flows_are_exclusive():
    rng = random.Random(3)
    for _ in range(5000):
        soc = rng.uniform(-0.5, 11.0)
        pv, load, dt = rng.uniform(0, 9), rng.uniform(0, 8), rng.choice((1 / 360, 0.25, 1.0))
        kwargs = {"battery_kw": rng.uniform(-7, 7), "grid_ok": rng.random() < 0.8,
                  "export_ok": rng.random() < 0.8}
        if rng.random() < 0.3:
            kwargs["pv_cap_kw"] = rng.uniform(0, 6)
        if rng.random() < 0.3:
            kwargs["grid_kw"] = rng.uniform(-4, 4)
        f = plant.step(LIMITS, soc, dt, pv, load, **kwargs)
        assert abs(_balance(f, pv, load)) < 1e-9
        losses = (1 - 0.9) * f.battery_charge_kw + (1 / 0.8 - 1) * f.battery_discharge_kw
        assert f.soc_kwh - soc == pytest.approx(
            (f.battery_charge_kw - f.battery_discharge_kw - losses) * dt, abs=1e-9)
        assert min(f.grid_import_kw, f.grid_export_kw) == 0.0
        assert min(f.battery_charge_kw, f.battery_discharge_kw) == 0.0
        assert 0.0 <= f.pv_used_kw <= pv + 1e-12
        assert f.grid_import_kw <= (6.0 if kwargs["grid_ok"] else 0.0) + 1e-12
        assert f.grid_export_kw <= (3.0 if kwargs["grid_ok"] and kwargs["export_ok"]
                                    else 0.0) + 1e-12
        assert min(1.0, soc) - 1e-12 <= f.soc_kwh <= max(10.0, soc) + 1e-12


def test_self_consumption_command_keeps_the_reserve():
    assert plant.self_consumption_kw(-2.0, 3.0, 4.0, 0.8, 1.0) == -2.0  # surplus: charge
    assert plant.self_consumption_kw(2.0, 7.0, 4.0, 0.8, 1.0) == 2.0
    assert plant.self_consumption_kw(2.0, 5.0, 4.0, 0.8, 1.0) == pytest.approx(0.8)
    assert plant.self_consumption_kw(2.0, 3.0, 4.0, 0.8, 1.0) == 0.0


def test_the_simulated_plant_steps_through_this_physics():
    t0 = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
    p = Plant(50.0, 10.0, t0, profile=lambda now: (3000.0, 800.0), min_soc_pct=20.0,
              max_charge_w=2000.0)
    p.grid_setpoint_w = 500.0  # hold 0.5 kW import: the battery takes 2.2 + 0.5 → 2 kW limit
    before = p.soc_pct
    p.advance(t0 + timedelta(seconds=10))
    f = plant.step(p.limits(), before / 100 * 10.0, 10 / 3600, 3.0, 0.8, grid_kw=0.5)
    assert p.battery_power_w == pytest.approx(-2000.0)
    assert p.battery_power_w == pytest.approx(
        1000 * (f.battery_discharge_kw - f.battery_charge_kw))
    assert p.grid_power_w == pytest.approx(1000 * (f.grid_import_kw - f.grid_export_kw))
    assert p.grid_power_w == pytest.approx(800.0 - 3000.0 + 2000.0)
    assert p.soc_pct == pytest.approx(f.soc_kwh * 10.0)
    assert p.energy_in_wh == pytest.approx(2000.0 * 10 / 3600)
    assert math.isinf(p.limits().max_import_kw)
