"""The simulated driver's further batteries follow the plan's power per battery (issue 13):
the executor's control law gives one battery power, the driver shares it in the plan's
proportions (``devices.<name>.power_kw``), the home battery holds the grid with the rest,
energy is conserved and each battery stays within its own limits and SoC bounds."""

from __future__ import annotations

from dataclasses import replace

import pytest
from device_emulators.loop import flat_plan
from gx_emulator.plans import T0, FakeClock

from executor import drivers
from executor import schedule as sched
from executor.control import Apply, Limits
from executor.drivers.base import Setpoint
from executor.drivers.simulated import Plant, SimulatedDriver
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor

LIMITS = Limits(min_soc_pct=10.0, max_charge_w=5000.0, max_discharge_w=5000.0,
                capacity_kwh=10.0, soc_gain_w_per_pct=0.0, interval_s=10.0, control="grid")


def _site(tmp_path, home_kw, garage_kw, load_w=1500.0, garage_soc=60.0, ticks=30):
    clock = FakeClock(T0)
    config = drivers.create("simulated", {"soc_pct": 60.0, "capacity_kwh": 10.0, "batteries": [
        {"name": "garage", "capacity_kwh": 5.0, "soc_pct": garage_soc, "max_discharge_w": 2000,
         "max_charge_w": 2000, "min_soc_pct": 10.0}]}, clock=clock).config
    driver = SimulatedDriver(config, clock=clock,
                             plant=Plant(60.0, 10.0, clock(), profile=lambda now: (0.0, load_w)))
    path = str(tmp_path / "schedule.json")
    plan = flat_plan(path, T0, grid_w=0)
    slots = tuple(replace(s, battery_discharge_kw=max(home_kw, 0.0),
                          battery_charge_kw=max(-home_kw, 0.0),
                          devices={"garage": {"power_kw": -garage_kw, "soc_pct": 50.0},
                                   "water_heater": {"power_kw": 0.0}})
                  for s in plan.slots)
    sched.write(path, replace(plan, slots=slots))
    ex = Executor(driver, PlanTracker(FileSource(path)), LIMITS, str(tmp_path / "pause.json"),
                  clock=clock, interval_s=10.0)
    decisions = []
    for _ in range(ticks):
        decisions.append(ex.tick())
        clock.advance(10)
    return driver, ex, decisions


def test_shares_follow_the_plan_and_the_grid_is_held(tmp_path):
    # plan: home 0.5 kW, garage 1.0 kW discharging; load 1.5 kW, grid 0
    driver, ex, decisions = _site(tmp_path, 0.5, 1.0)
    assert isinstance(decisions[-1], Apply)
    m = driver.read()
    garage = driver.extra[0]
    assert garage.power_w == pytest.approx(1000.0, abs=30.0)
    assert driver.plant.battery_power_w == pytest.approx(500.0, abs=30.0)
    assert abs(m.grid_power_w) < 30.0 and m.battery_power_w == pytest.approx(1500.0, abs=30.0)
    assert driver.socs["garage"] < 60.0  # it discharged, its own SoC moved


def test_an_empty_further_battery_leaves_the_load_to_the_home_battery(tmp_path):
    driver, _ex, _ = _site(tmp_path, 0.5, 1.0, garage_soc=10.0)
    assert driver.extra[0].power_w == pytest.approx(0.0, abs=1e-6)
    assert driver.plant.battery_power_w == pytest.approx(1500.0, abs=30.0)
    assert driver.socs["garage"] >= 10.0 - 1e-9


def test_without_plan_shares_the_split_is_by_capacity(tmp_path):
    clock = FakeClock(T0)
    driver = drivers.create("simulated", {"batteries": [{"name": "garage", "capacity_kwh": 10.0,
                                                         "soc_pct": 50.0}]}, clock=clock)
    got = driver.shares(Setpoint(grid_power_w=0, min_soc_pct=10.0, battery_power_w=1000.0))
    assert got == pytest.approx({"battery": 500.0, "garage": 500.0})
