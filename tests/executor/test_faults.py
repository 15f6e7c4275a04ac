"""Fault tests on the loop: plan deleted, truncated, corrupt, stale; pause; device errors.
Each ends released (or recovered) with the reason logged."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from gx_emulator.fixtures import *  # noqa: F403 - shared fixtures (see there)
from gx_emulator.plans import run_for

from executor import pause
from executor.control import Apply, Release
from executor.errors import DriverUnavailable


def test_follows_a_fresh_plan(make_executor, write_plan, clock):
    ex, plant = make_executor()
    plan = write_plan()
    d = ex.tick()
    assert isinstance(d, Apply)
    assert d.setpoint.grid_power_w == plan.slots[0].grid_setpoint_w
    assert plant.grid_setpoint_w == plan.slots[0].grid_setpoint_w


def test_plan_deleted_releases_within_one_tick(make_executor, write_plan, plan_path, clock,
                                               caplog):
    ex, plant = make_executor()
    write_plan()
    assert isinstance(ex.tick(), Apply)
    os.unlink(plan_path)
    clock.advance(10)
    with caplog.at_level(logging.INFO, "helios.executor"):
        d = ex.tick()
    assert isinstance(d, Release) and "missing" in d.reason
    assert plant.grid_setpoint_w is None  # the inverter is back to self-consumption
    assert "released: plan file" in caplog.text


def test_truncated_plan_keeps_last_good_until_stale(make_executor, write_plan, plan_path,
                                                    clock, caplog):
    ex, plant = make_executor()
    good = write_plan(n_slots=16)
    assert isinstance(ex.tick(), Apply)
    text = Path(plan_path).read_text()
    with open(plan_path, "w") as fh:  # a torn, non-atomic write
        fh.write(text[: len(text) // 2])
    clock.advance(10)
    with caplog.at_level(logging.WARNING, "helios.executor"):
        decisions = run_for(ex, clock, 600)
    assert all(isinstance(d, Apply) for d in decisions)
    assert caplog.text.count("plan rejected") == 1  # logged once, not every tick
    assert "keeping the last good plan" in caplog.text
    # ... until the last good plan goes stale
    clock.now = good.valid_until
    d = ex.tick()
    assert isinstance(d, Release) and d.reason.startswith("plan stale")
    assert plant.grid_setpoint_w is None
    # a good plan again: recovered
    write_plan()
    assert isinstance(ex.tick(), Apply)


def test_corrupt_plan_without_a_good_one_releases(make_executor, plan_path):
    ex, plant = make_executor()
    with open(plan_path, "w") as fh:
        fh.write('{"version": 1, "slots": [}')
    d = ex.tick()
    assert isinstance(d, Release) and d.reason.startswith("plan rejected (document: not valid")
    with open(plan_path, "w") as fh:
        fh.write('{"version": 2}')
    os.utime(plan_path, ns=(1, 1))
    d = ex.tick()
    assert "plan rejected" in d.reason and plant.grid_setpoint_w is None


def test_no_plan_file_at_start(make_executor):
    ex, _ = make_executor()
    d = ex.tick()
    assert isinstance(d, Release) and "missing" in d.reason


def test_stale_by_age_and_by_valid_until(make_executor, write_plan, clock):
    ex, _ = make_executor()
    write_plan(n_slots=12, generated_at=clock() - timedelta(hours=2), valid_s=4 * 3600)
    d = ex.tick()
    assert isinstance(d, Release) and "generated 7200 s ago" in d.reason
    write_plan(n_slots=12, valid_s=60)
    assert isinstance(ex.tick(), Apply)
    clock.advance(60)
    d = ex.tick()
    assert isinstance(d, Release) and "valid_until" in d.reason


def test_pause_and_resume_survive_restart(make_executor, write_plan, clock, tmp_path):
    ex, plant = make_executor()
    write_plan()
    pause.pause(ex.pause_path, clock() + timedelta(minutes=30))
    d = ex.tick()
    assert isinstance(d, Release) and d.reason.startswith("paused until")
    # a new process (same state dir) is still paused
    ex2, _ = make_executor()
    assert isinstance(ex2.tick(), Release)
    assert pause.resume(ex.pause_path)
    assert isinstance(ex2.tick(), Apply)
    # a pause that has ended lets the plan run again by itself
    pause.pause(ex.pause_path, clock() + timedelta(seconds=20))
    assert isinstance(ex2.tick(), Release)
    clock.advance(30)
    assert isinstance(ex2.tick(), Apply)


def test_corrupt_pause_file_fails_safe(make_executor, write_plan):
    ex, _ = make_executor()
    write_plan()
    with open(ex.pause_path, "w") as fh:
        fh.write("{not json")
    assert isinstance(ex.tick(), Release)


class FlakyDriver:
    """Wraps a driver; fails reads/writes while ``down``."""

    def __init__(self, inner):
        self.inner = inner
        self.down = False
        self.calls = []

    def read(self):
        if self.down:
            raise DriverUnavailable("connection refused")
        return self.inner.read()

    def apply(self, sp):
        self.calls.append(("apply", sp.grid_power_w))
        if self.down:
            raise DriverUnavailable("connection refused")
        self.inner.apply(sp)

    def release(self):
        self.calls.append(("release", None))
        if self.down:
            raise DriverUnavailable("connection refused")
        self.inner.release()


def test_device_errors_release_and_recover(make_executor, write_plan, clock):
    ex, plant = make_executor()
    ex.driver = FlakyDriver(ex.driver)
    write_plan()
    assert isinstance(ex.tick(), Apply)
    ex.driver.down = True
    clock.advance(10)
    d = ex.tick()
    assert isinstance(d, Release)
    assert d.reason.startswith("device unavailable (connection refused)")
    assert "release failed too" in d.reason
    ex.driver.down = False
    clock.advance(10)
    assert isinstance(ex.tick(), Apply)


def test_run_stops_and_releases_on_stop(make_executor, write_plan, clock):
    ex, plant = make_executor()
    write_plan()
    ticks = []

    def sleep(s):
        clock.advance(s)
        ticks.append(clock())
        if len(ticks) == 5:
            ex.stop("signal SIGTERM")

    ex.run(sleep=sleep)
    assert ex.ticks == 5
    assert plant.grid_setpoint_w is None  # released on the way out


def test_stop_requested_mid_tick_finishes_tick_then_releases(make_executor, write_plan, clock,
                                                             caplog):
    ex, plant = make_executor()
    write_plan()
    real_apply = ex.driver.apply

    def apply(sp):  # SIGTERM arrives while the setpoint is being written
        real_apply(sp)
        ex.stop("signal SIGTERM")

    ex.driver.apply = apply
    with caplog.at_level(logging.WARNING, "helios.executor"):
        ex.run(sleep=clock.sleep)
    assert ex.ticks == 1
    assert plant.grid_setpoint_w is None
    assert "released: signal SIGTERM" in caplog.text
