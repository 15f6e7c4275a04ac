"""Closed loop on the in-process plant: plan → executor → simulated inverter → SoC follows the
plan over a simulated day (run in about a second)."""

from __future__ import annotations

from datetime import timedelta

from gx_emulator.fixtures import *  # noqa: F403 - shared fixtures (see there)
from gx_emulator.plans import T0, Replanner, build_plan

from executor.control import Apply


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


def test_drift_correction_pulls_soc_back(make_executor, clock, plan_path, limits):
    """Load is 30 % higher than forecast: without correction the SoC drifts away from the
    plan; with it the error stays bounded."""
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
