"""Fixtures for the executor tests: a fake clock, plans, a wired executor on a simulated plant.

Imported with ``from gx_emulator.fixtures import *`` by the test modules that use them rather
than living in ``tests/executor/conftest.py``: the planner's tests import the top-level
``conftest`` by module name, and a second ``conftest`` module would shadow it.
"""

from __future__ import annotations

import pytest

from executor import schedule as sched
from executor.control import Limits
from executor.drivers.simulated import Plant, SimulatedDriver
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor
from executor.telemetry import Telemetry
from gx_emulator.plans import T0, FakeClock, build_plan

__all__ = ["clock", "limits", "plan_path", "make_executor", "write_plan"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def limits() -> Limits:
    return Limits(max_plan_age_s=3600, interval_s=10)


@pytest.fixture
def plan_path(tmp_path):
    return str(tmp_path / "schedule.json")


@pytest.fixture
def make_executor(tmp_path, clock, limits, plan_path):
    """Build an executor on a simulated plant; returns (executor, plant)."""

    def make(soc_pct: float = 50.0, telemetry: Telemetry | None = None, **plant_kw):
        plant = Plant(soc_pct, limits.capacity_kwh, clock(), **plant_kw)
        driver = SimulatedDriver(clock=clock, plant=plant)
        ex = Executor(driver, PlanTracker(FileSource(plan_path)), limits,
                      str(tmp_path / "pause.json"), telemetry, clock=clock,
                      interval_s=limits.interval_s)
        return ex, plant

    return make


@pytest.fixture
def write_plan(plan_path, clock):
    """Write a plan starting at the current fake time (valid 1 h by default)."""

    def write(n_slots: int = 8, soc_start_pct: float = 50.0, **kw) -> sched.Schedule:
        start = kw.pop("start", clock())
        plan = build_plan(start, n_slots, soc_start_pct, generated_at=kw.pop("generated_at",
                                                                               clock()), **kw)
        sched.write(plan_path, plan)
        return plan

    return write

