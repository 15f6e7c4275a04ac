"""Closed loop on the in-process plant: plan → executor → simulated inverter → SoC follows the
plan over a simulated day (run in about a second)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from gx_emulator.fixtures import *  # noqa: F403 - shared fixtures (see there)
from gx_emulator.plans import T0, Replanner, build_plan

from executor.control import Apply, Limits


def _run_day(ex, plant, clock, day, replanner, load_scale=1.0):
    if load_scale != 1.0:
        base = plant.profile
        plant.profile = lambda now: (base(now)[0], base(now)[1] * load_scale)
    errors = []
    applied = 0
    while clock() < day.end - timedelta(seconds=10):
        replanner.maybe_write(clock())
        d = ex.tick()
        applied += isinstance(d, Apply)
        slot = day.slot_at(clock())
        if clock() >= T0.replace(minute=30) and (clock() - slot.start).total_seconds() < 10:
            prev = day.slots[day.slots.index(slot) - 1] if slot is not day.slots[0] else None
            if prev is not None:
                errors.append(abs(plant.soc_pct - prev.soc_pct))
        clock.advance(10)
    return errors, applied


def test_soc_follows_plan_over_a_day(make_executor, clock, plan_path):
    day = build_plan(T0, 96, 50.0)
    ex, plant = make_executor(soc_pct=50.0)
    errors, applied = _run_day(ex, plant, clock, day, Replanner(plan_path, day))
    assert applied == ex.ticks  # followed all day, never released
    assert len(errors) >= 90
    assert max(errors) < 1.0, f"max SoC error {max(errors):.2f} %"


@pytest.mark.parametrize("limits", [Limits(max_plan_age_s=3600, interval_s=10, control="grid")])
def test_drift_correction_pulls_soc_back(make_executor, clock, plan_path, limits):
    """``control: grid``. Load is 30 % higher than forecast: without correction the SoC drifts
    away from the plan; with it the error stays bounded."""
    day = build_plan(T0, 96, 50.0)
    ex, plant = make_executor(soc_pct=50.0)
    errors, _ = _run_day(ex, plant, clock, day, Replanner(plan_path, day), load_scale=1.3)

    from dataclasses import replace

    from gx_emulator.plans import FakeClock

    from executor.drivers.simulated import Plant, SimulatedDriver
    from executor.plansource import FileSource, PlanTracker
    from executor.runner import Executor

    clock2 = FakeClock(T0)
    plant2 = Plant(50.0, 10.0, clock2())
    off = Executor(SimulatedDriver(clock=clock2, plant=plant2),
                   PlanTracker(FileSource(plan_path + ".2")),
                   replace(limits, soc_gain_w_per_pct=0), plan_path + ".pause", clock=clock2)
    errors_off, _ = _run_day(off, plant2, clock2, day, Replanner(plan_path + ".2", day),
                             load_scale=1.3)
    assert max(errors_off) > 20.0  # the uncorrected loop drifts far away
    assert max(errors) < 0.2 * max(errors_off)
    assert max(errors) < 4.0  # proportional control: bounded error (300 W/% default gain)


def _guarded_executor(limits, clock, plan_path, suffix, guard, profile=None, soc_gain=None):
    from dataclasses import replace

    from executor.drivers.simulated import Plant, SimulatedDriver
    from executor.plansource import FileSource, PlanTracker
    from executor.runner import Executor

    plant = Plant(50.0, limits.capacity_kwh, clock(), **({"profile": profile} if profile else {}))
    lim = replace(limits, guard_forecast_error=guard, control="grid",
                  **({} if soc_gain is None else {"soc_gain_w_per_pct": soc_gain}))
    ex = Executor(SimulatedDriver(clock=clock, plant=plant),
                  PlanTracker(FileSource(plan_path + suffix)), lim, plan_path + suffix + ".p",
                  clock=clock, interval_s=limits.interval_s)
    return ex, plant


def test_guarded_executor_still_follows_the_plan(limits, clock, plan_path):
    """With the forecast guard on and the forecast right on average the SoC still follows the
    plan: the guard clips the swings within a slot on one side (a small bias the drift
    correction holds), so the bound is the dead band (1 %) plus a margin, not < 1.0."""
    day = build_plan(T0, 96, 50.0)
    ex, plant = _guarded_executor(limits, clock, plan_path, ".g", guard=True)
    errors, applied = _run_day(ex, plant, clock, day, Replanner(plan_path + ".g", day))
    assert applied == ex.ticks and len(errors) >= 90
    assert max(errors) < 1.5, f"max SoC error {max(errors):.2f} %"


def test_guard_keeps_the_battery_out_of_the_grid_when_pv_is_over_forecast(limits, plan_path):
    """The plan expects the full PV; the sky delivers half. Holding the planned export drains
    the battery into the grid; the guard lets the grid take the shortfall instead."""
    from gx_emulator.plans import FakeClock

    from executor.drivers.simulated import demo_profile

    def cloudy(now):
        pv, load = demo_profile(now)
        return 0.5 * pv, load

    day = build_plan(T0, 96, 50.0)
    to_grid = {}
    for guard in (False, True):
        clock = FakeClock(T0)
        ex, plant = _guarded_executor(limits, clock, plan_path, f".{guard}", guard,
                                      profile=cloudy, soc_gain=0)
        replanner = Replanner(plan_path + f".{guard}", day)
        kwh = 0.0
        while clock() < day.end - timedelta(seconds=10):
            replanner.maybe_write(clock())
            ex.tick()
            clock.advance(10)
            b, g = plant.battery_power_w, plant.grid_power_w
            planned_w = day.slot_at(clock()).battery_discharge_kw * 1000
            if b > planned_w and g < 0:  # discharging into the grid beyond the plan
                kwh += min(b - planned_w, -g) * 10 / 3.6e6
        to_grid[guard] = kwh
    assert to_grid[False] > 2.0, to_grid  # ≈ the planned PV charge turned into discharge
    assert to_grid[True] < 0.05 * to_grid[False], to_grid
