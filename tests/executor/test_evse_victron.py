"""The executor drives an emulated Victron EV Charging Station on a private dbus-daemon
(jeepney): manual mode with the plan's current, stop at 0, the station's own mode back on a
stale plan and on exit."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest
from gx_emulator.dbus_evcs import SERVICE, DbusEvcs
from gx_emulator.dbus_gx import DbusDaemon
from gx_emulator.plans import T0, FakeClock, build_plan

from executor import evse
from executor import schedule as sched
from executor.control import Limits
from executor.drivers.simulated import Plant, SimulatedDriver
from executor.evse.base import EvFollower
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor

if shutil.which("dbus-daemon") is None and os.environ.get("CI") != "true":
    pytest.skip("dbus-daemon not installed (CI installs it: apt-get install dbus)",
                allow_module_level=True)

EV_KW = [7.36, 0.0, 22.0, 11.04]  # 3 phases: 10.67 A, stop, 16 A (max), 16 A


@pytest.fixture(scope="module")
def daemon():
    with DbusDaemon() as d:
        yield d


@pytest.fixture
def clock():
    return FakeClock(T0)


def _setup(tmp_path, clock, daemon, valid_s=7200.0, **options):
    plan = build_plan(T0, len(EV_KW), 50.0, valid_s=valid_s)
    slots = [replace(s, devices={"ev": {"power_kw": kw}})
             for s, kw in zip(plan.slots, EV_KW, strict=True)]
    path = str(tmp_path / "schedule.json")
    sched.write(path, replace(plan, slots=slots))
    cfg = evse.validate("victron_evcs", {"bus": daemon.address, "library": "jeepney",
                                         **options}, [])
    follower = EvFollower(evse.create("victron_evcs", cfg, clock=clock), max_plan_age_s=7200)
    return Executor(SimulatedDriver(clock=clock, plant=Plant(50.0, 10.0, clock())),
                    PlanTracker(FileSource(path)), Limits(), str(tmp_path / "pause.json"),
                    clock=clock, ev_charger=follower)


def test_follows_the_plan_in_manual_mode_and_gives_the_mode_back(tmp_path, clock, daemon):
    with DbusEvcs(daemon.address, mode=1, max_current_a=16.0) as station:
        ex = _setup(tmp_path, clock, daemon)
        currents = []
        for _ in range(len(EV_KW)):
            ex.tick()
            currents.append(round(station.current_a(), 2))
            assert station.mode == 0  # manual while Helios follows the plan
            clock.advance(900)
        assert currents == [10.67, 0.0, 16.0, 16.0]
        assert station.values()["/Status"] == 2
        assert ex.ev_charger.last_state.charging is True
        # only changes are written: slot 3 repeats slot 2's 16 A
        writes = [c for c in station.set_calls if c[0] == "/SetCurrent"]
        assert [round(v, 2) for _, v in writes] == [10.67, 16.0]
        ex.shutdown()
        assert (station.mode, station.start_stop) == (1, 0)  # auto again, as found


def test_stale_plan_gives_the_station_back_or_stops(tmp_path, clock, daemon):
    with DbusEvcs(daemon.address, mode=1) as station:
        ex = _setup(tmp_path, clock, daemon, valid_s=600)
        ex.tick()
        assert station.mode == 0 and station.current_a() > 10
        clock.advance(610)
        ex.tick()
        assert station.mode == 1 and ex.ev_charger.last_current_a is None
        station.surplus_w = 4600.0  # the station's own solar mode charges again
        assert station.current_a() == pytest.approx(4600 / 690)
        ex.shutdown()
    with DbusEvcs(daemon.address, mode=1) as station:
        ex = _setup(tmp_path, clock, daemon, valid_s=600, on_stale="stop")
        clock.now = T0
        ex.tick()
        clock.advance(610)
        ex.tick()
        assert (station.mode, station.start_stop, station.current_a()) == (0, 0, 0.0)
        ex.shutdown()


def test_service_found_on_the_bus_or_missing(tmp_path, clock, daemon):
    cfg = evse.validate("victron_evcs", {"bus": daemon.address, "library": "jeepney"}, [])
    charger = evse.create("victron_evcs", cfg, clock=clock)
    with DbusEvcs(daemon.address):
        assert charger.service == SERVICE
        assert charger.read().status in ("connected", "waiting for sun")
    charger.close()
    ex = _setup(tmp_path, clock, daemon)  # no station on the bus
    assert type(ex.tick()).__name__ == "Apply"
    assert ex.ev_charger.last_reason.startswith("failed")
    ex.shutdown()
