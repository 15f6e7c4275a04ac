"""The ``marstek`` driver against emulated Venus units over real UDP sockets and an emulated
P1 meter over HTTP, in closed loops of the real executor on :func:`executor.plant.step`."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import replace
from datetime import timedelta

import pytest
from device_emulators.home import Home
from device_emulators.loop import flat_plan, run_ticks, ticks_to_settle
from device_emulators.marstek import MarstekUnit
from device_emulators.web import DeviceServer, P1Meter
from gx_emulator.plans import T0, FakeClock

from executor import drivers
from executor import schedule as sched
from executor.__main__ import _install_signals
from executor.control import Apply, Limits, Release
from executor.drivers._split import plan_weights
from executor.drivers.marstek import split_power
from executor.errors import ConfigError
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor

LIMITS = Limits(min_soc_pct=10.0, max_charge_w=7500.0, max_discharge_w=7500.0,
                capacity_kwh=15.0, soc_gain_w_per_pct=0.0, interval_s=10.0, control="grid")


@pytest.fixture
def site(tmp_path):
    """Three units (different SoC and capacity) in a home with a P1 meter; yields a builder."""
    made = []

    def build(socs=(60.0, 40.0, 30.0), caps=(5120.0, 5120.0, 2560.0), load_w=800.0,
              grid_w=0, limits=LIMITS, **options):
        clock = FakeClock(T0)
        home = Home(T0, load_w=load_w)
        units = [MarstekUnit(s, c, min_soc_pct=5.0).start()
                 for s, c in zip(socs, caps, strict=True)]
        home.devices.extend(units)
        meter = DeviceServer(P1Meter(home)).start()
        made.append((units, meter, []))
        opts = {"batteries": [f"127.0.0.1:{u.port}" for u in units],
                "meter": {"type": "homewizard", "url": meter.url},
                "timeout_s": 0.15, "retries": 1, "request_gap_s": 0.0, **options}
        driver = drivers.create("marstek", opts, clock=clock)
        made[-1][2].append(driver)
        plan_path = str(tmp_path / "schedule.json")
        flat_plan(plan_path, T0, grid_w=grid_w)
        ex = Executor(driver, PlanTracker(FileSource(plan_path)), limits,
                      str(tmp_path / "pause.json"), clock=clock, interval_s=10.0)
        return ex, home, units, clock, plan_path

    yield build
    for units, meter, driver in made:
        driver[0].close()
        for u in units:
            u.stop()
        meter.stop()


def test_split_power_by_weight_within_limits():
    assert split_power(3000, [2500, 2500, 2500], [1, 1, 1]) == pytest.approx([1000] * 3)
    assert split_power(3000, [2500, 2500], [9, 1]) == pytest.approx([2500, 500])  # excess moved
    assert split_power(-6000, [2500, 2500, 0], [1, 2, 5]) == pytest.approx([-2500, -2500, 0])
    assert split_power(900, [2500, 2500], [0, 0]) == pytest.approx([450, 450])
    assert split_power(0, [2500], [1]) == [0.0]


def test_issue_config_forms_validate_and_bad_hosts_name_the_key():
    clock = FakeClock(T0)
    driver = drivers.create("marstek", {
        "batteries": ["192.168.1.50", "192.168.1.51:30000"],
        "meter": {"type": "homewizard", "url": "http://192.168.1.40"}}, clock=clock)
    assert [(u.peer.host, u.peer.port) for u in driver.units] == [("192.168.1.50", 30000),
                                                                 ("192.168.1.51", 30000)]
    driver.close()
    with pytest.raises(ConfigError, match=r"executor\.driver\.batteries\[1\]"):
        drivers.create("marstek", {"batteries": ["a", "b:99999"], "meter": {
            "type": "homewizard", "url": "http://x"}}, clock=clock)
    with pytest.raises(ConfigError, match=r"executor\.driver\.meter\.type"):
        drivers.create("marstek", {"batteries": ["a"], "meter": {"type": "p1", "url": "x"}},
                       clock=clock)


@pytest.mark.parametrize("target_w", [0, 200])
def test_grid_tracks_the_target_within_50_w_in_three_ticks_after_load_steps(site, target_w):
    ex, home, units, clock, _ = site(grid_w=target_w)
    steps = {0: 800.0, 8: 3500.0, 16: 300.0, 24: 5200.0}

    def set_load(w):
        return lambda: setattr(home, "load_w", w)

    grid = run_ticks(ex, home, clock, 32, events={k: set_load(w) for k, w in steps.items()})
    settle = [ticks_to_settle(grid[k:k + 8], 0, target_w) for k in steps]
    assert all(s is not None and s <= 3 for s in settle), (settle, grid)
    for u in units:
        assert max(abs(p[i]) for _, _, p in home.trace for i in range(3)) <= 2500.0 + 1e-6
        assert u.overlaps == 0
        assert u.mode == "Passive"
    # the split follows the energy above the floor: the fullest unit gives the most
    last = home.trace[-1][2]
    assert last[0] > last[1] > last[2] > 0


def test_pv_surplus_charges_by_headroom_and_never_beyond_limits(site):
    ex, home, units, clock, _ = site(socs=(90.0, 50.0, 50.0))
    home.pv_w = 4000.0
    home.load_w = 500.0
    grid = run_ticks(ex, home, clock, 6)
    assert abs(grid[-1]) <= 50.0
    powers = home.trace[-1][2]
    assert all(p < 0 for p in powers) and powers[0] > powers[1]  # the fullest charges least
    home.pv_w = 12000.0  # more than 3 × 2500 W: the grid takes the rest
    grid = run_ticks(ex, home, clock, 4)
    assert all(p >= -2500.0 - 1e-6 for p in home.trace[-1][2])
    assert grid[-1] == pytest.approx(500.0 - 12000.0 + 7500.0, abs=60.0)


def test_never_below_the_soc_floor(site):
    limits = replace(LIMITS, min_soc_pct=20.0)
    ex, home, units, clock, _ = site(socs=(22.0, 21.0, 35.0), caps=(1000.0, 1000.0, 1000.0),
                                     load_w=3000.0, limits=limits)
    run_ticks(ex, home, clock, 60)
    assert min(u.soc_pct for u in units) >= 20.0 - 0.2
    assert all(u.soc_pct < 21.0 for u in units)  # they did discharge down to the floor


def test_release_on_a_stale_plan_puts_every_unit_back_in_auto(site):
    ex, home, units, clock, plan_path = site()
    decisions: list = []
    run_ticks(ex, home, clock, 3, decisions=decisions)
    assert all(isinstance(d, Apply) for d in decisions)
    assert [u.mode for u in units] == ["Passive"] * 3
    flat_plan(plan_path, T0, generated_at=T0 - timedelta(hours=3), valid_s=3 * 3600 + 40)
    run_ticks(ex, home, clock, 3, decisions=decisions)
    assert isinstance(decisions[-1], Release) and "stale" in decisions[-1].reason
    assert [u.mode for u in units] == ["Auto"] * 3
    sent = len(units[0].requests)
    run_ticks(ex, home, clock, 2)  # released: the status is polled, Auto is not rewritten
    assert "ES.SetMode" not in [m for _, m, _ in units[0].requests[sent:]]


def test_sigterm_releases_every_unit(site):
    ex, home, units, clock, _ = site()
    ticks = []

    def sleep(seconds):
        clock.advance(seconds)
        home.advance(clock())
        ticks.append(clock())
        if len(ticks) == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        _install_signals(ex)
        ex.run(max_ticks=50, sleep=sleep)
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])
    assert ex.ticks <= 5
    assert [u.mode for u in units] == ["Auto"] * 3


def test_a_unit_that_dies_mid_run_is_dropped_and_rejoins(site, caplog):
    ex, home, units, clock, _ = site(load_w=3000.0)
    dead = units[0]

    def die():
        dead.powered = False

    def revive():
        dead.powered = True

    with caplog.at_level(logging.WARNING, "helios.executor"):
        grid = run_ticks(ex, home, clock, 24, events={6: die, 16: revive})
    assert ticks_to_settle(grid[6:16], 0, 0.0) <= 3, grid
    assert ticks_to_settle(grid[16:], 0, 0.0) <= 3, grid
    text = caplog.text
    assert "offline" in text and "back online" in text and "Traceback" not in text
    assert dead.mode == "Passive" and all(abs(p) > 100 for p in home.trace[-1][2])


def test_all_units_gone_releases_and_a_dead_meter_releases(site):
    ex, home, units, clock, _ = site()
    meter_url = ex.driver.meter.url
    assert isinstance(ex.tick(), Apply)
    for u in units:
        u.alive = False
    d = ex.tick()
    assert isinstance(d, Release) and "no Marstek unit answered" in d.reason
    for u in units:
        u.alive = True
    assert isinstance(ex.tick(), Apply)
    ex.driver.meter.config = replace(ex.driver.meter.config, url="http://127.0.0.1:9")
    ex.driver.meter._base = "http://127.0.0.1:9"
    d = ex.tick()
    assert isinstance(d, Release) and "meter" in d.reason
    assert [u.mode for u in units] == ["Auto"] * 3  # released: they follow their own CT
    assert meter_url.endswith("/api/v1/data")


@pytest.mark.parametrize("fault", ["drop", "garbage", "wrong_id", "error", "missing_soc",
                                   "string_soc", "set_false"])
def test_bad_answers_are_logged_and_never_a_traceback(site, caplog, fault):
    ex, home, units, clock, _ = site()
    run_ticks(ex, home, clock, 2)
    units[1].faults = [fault] * 3
    units[1].delay_s = 0.01
    home.load_w = 1500.0  # new shares: ES.SetMode goes out too
    with caplog.at_level(logging.DEBUG, "helios.executor"):
        decisions: list = []
        run_ticks(ex, home, clock, 6, decisions=decisions)
    assert all(isinstance(d, Apply) for d in decisions)  # the others carry on
    assert "Traceback" not in caplog.text
    assert abs(home.grid_w()) <= 50.0
    if fault in ("garbage", "wrong_id"):
        ignored = ex.driver.units[1].peer.ignored
        assert any(("garbage" in w or "answer with id" in w) for w in ignored)
    if fault in ("error", "missing_soc", "string_soc", "set_false"):
        assert "offline" in caplog.text
    assert units[1].mode == "Passive"  # back in the split once it answers properly


def test_one_request_in_flight_and_the_gap_between_requests(site):
    ex, home, units, clock, _ = site(request_gap_s=0.03)
    for u in units:
        u.delay_s = 0.02
    run_ticks(ex, home, clock, 4)
    for u in units:
        assert u.overlaps == 0
        gaps = [b - a for a, b in zip(u.arrivals_s, u.arrivals_s[1:], strict=False)]
        assert min(gaps) >= 0.03 - 1e-3
        ids = [i for i, _, _ in u.requests]
        assert len(set(ids)) == len(ids)  # a new id per request


def test_plan_weights_follow_the_plan_and_idle_units_take_only_the_excess():
    names = ["battery", "garage", "shed"]
    planned = {"battery": 400.0, "garage": 1200.0, "shed": 0.0, "water_heater": -3000.0}
    w = plan_weights(800.0, names, planned, [1.0, 1.0, 1.0])
    assert split_power(800.0, [2500] * 3, w) == pytest.approx([200, 600, 0], abs=0.1)
    # more than the planned units can give: the idle one takes the rest
    assert split_power(6000.0, [2500] * 3, w) == pytest.approx([2500, 2500, 1000], abs=0.1)
    # no unit planned in the direction needed (a charge): the driver's own weights
    assert plan_weights(-800.0, names, planned, [3.0, 1.0, 1.0]) == [3.0, 1.0, 1.0]
    assert plan_weights(800.0, names, None, [3.0, 1.0, 1.0]) == [3.0, 1.0, 1.0]


def test_units_follow_the_plans_power_per_battery(site, tmp_path):
    """devices.<name>.power_kw of the further batteries (schedule.json) and the home
    battery's power: the units named by plan_names share the battery power in the plan's
    proportions (by SoC they would share it the other way round)."""
    ex, home, units, clock, plan_path = site(socs=(60.0, 40.0, 30.0),
                                             plan_names=["battery", "garage", "shed"])
    plan = sched.read(plan_path)
    slots = tuple(replace(s, battery_discharge_kw=0.2,
                          devices={"garage": {"power_kw": -0.6, "soc_pct": 40.0},
                                   "shed": {"power_kw": 0.0, "soc_pct": 30.0}})
                  for s in plan.slots)
    sched.write(plan_path, replace(plan, slots=slots))
    grid = run_ticks(ex, home, clock, 8)
    assert abs(grid[-1]) <= 50.0
    powers = home.trace[-1][2]
    assert powers[1] == pytest.approx(3 * powers[0], rel=0.05) and powers[0] > 100
    assert abs(powers[2]) < 5.0  # the plan leaves the shed idle
    with pytest.raises(ConfigError, match=r"executor\.driver\.plan_names"):
        drivers.create("marstek", {"batteries": ["a", "b"], "plan_names": ["battery"],
                                   "meter": {"type": "homewizard", "url": "http://x"}},
                       clock=clock)
