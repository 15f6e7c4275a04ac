"""``helios override add water|load`` reaches the relays at once, before the next plan:
CLI → overrides file → executor tick → the Shelly emulators' contacts (issue 13, item 5)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from click.testing import CliRunner
from gx_emulator.shelly_relay import ShellyRelay

from executor import overrides as ov
from executor import relays
from executor import schedule as sched
from executor.control import Apply, Limits
from executor.drivers.simulated import Plant, SimulatedDriver
from executor.plansource import FileSource, PlanTracker
from executor.relays.base import RelayFollower
from executor.runner import Executor
from planner.cli.main import main

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)


def _follower(device: str, url: str, clock) -> RelayFollower:
    problems: list = []
    cfg = relays.validate("shelly", {"device": device, "url": url}, problems)
    assert problems == []
    return RelayFollower(relays.create("shelly", cfg, clock=clock), max_plan_age_s=7200)


def test_water_and_load_overrides_switch_the_relays_before_the_next_plan(site_dir):
    # the heater's window (14:00-18:00) and the pool's (20:00-23:00) are later: at 10:00 the
    # plan has both off
    cfg_path = site_dir(config={
        "site": {"timezone": "UTC"},
        "water_heater": {"power_kw": 3.0, "daily_kwh": 3.0, "modulating": False,
                         "window": {"from": "14:00", "to": "18:00"}},
        "loads": [{"name": "pool", "power_kw": 1.0, "run_h": 2, "modulating": False,
                   "window": {"from": "20:00", "to": "23:00"}}]},
        hours=24, start="2026-05-01T00:00:00Z", pv=np.zeros(24), load=np.full(24, 0.5))
    runner = CliRunner()
    base = ["--config", str(cfg_path), "--now", "2026-05-01T10:00:00Z"]
    r = runner.invoke(main, ["plan", *base])
    assert r.exit_code == 0, r.output
    plan = sched.read(cfg_path.parent / "schedule.json")
    assert plan.slots[0].devices["water_heater"]["power_kw"] == 0.0
    clock = [T0]
    with ShellyRelay(gen=2) as heater, ShellyRelay(gen=2) as pump:
        followers = [_follower("water_heater", heater.url, lambda: clock[0]),
                     _follower("pool", pump.url, lambda: clock[0])]
        ex = Executor(SimulatedDriver(clock=lambda: clock[0],
                                      plant=Plant(50.0, 10.0, T0,
                                                  profile=lambda now: (0.0, 500.0))),
                      PlanTracker(FileSource(str(cfg_path.parent / "schedule.json"))),
                      Limits(max_plan_age_s=7200, interval_s=10),
                      str(cfg_path.parent / "p.json"), clock=lambda: clock[0],
                      relays=followers, overrides_path=str(cfg_path.parent / ov.FILE_NAME))
        assert isinstance(ex.tick(), Apply)
        assert (heater.output[0], pump.output[0]) == (False, False)  # the plan: both off

        r = runner.invoke(main, ["override", "add", "water", "--from", "now", "--for", "1h",
                                 "--kw", "1.5", "--reason", "bath", *base])
        assert r.exit_code == 0, r.output
        r = runner.invoke(main, ["override", "add", "load", "pool", "--from", "now", "--for",
                                 "30m", *base])
        assert r.exit_code == 0, r.output
        clock[0] += timedelta(seconds=10)
        ex.tick()  # the same (old) plan; the relays follow the overrides file at once
        assert (heater.output[0], pump.output[0]) == (True, True)
        assert followers[0].last_reason.startswith("override #1 water")
        assert followers[1].last_reason.startswith("override #2 load")

        r = runner.invoke(main, ["override", "clear", "1", *base])
        assert r.exit_code == 0, r.output
        clock[0] += timedelta(seconds=10)
        ex.tick()  # cleared, but on for 20 s only: held on (min_on_s 300 s)
        assert heater.output[0] is True and "held on" in followers[0].last_reason
        clock[0] += timedelta(seconds=300)
        ex.tick()
        assert (heater.output[0], pump.output[0]) == (False, True)  # the pool's override runs
        clock[0] += timedelta(minutes=30)
        ex.tick()  # the pool's override is over by itself
        assert (heater.output[0], pump.output[0]) == (False, False)
        ex.shutdown()
        assert (heater.output[0], pump.output[0]) == (True, False)  # their safe states
