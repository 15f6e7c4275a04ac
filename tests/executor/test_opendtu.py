"""The ``opendtu`` driver: Hoymiles inverters on the battery through an emulated OpenDTU and a
Shelly Gen2 meter over real loopback HTTP, in closed loops of the real executor."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import replace
from datetime import timedelta

import pytest
from device_emulators.home import Home
from device_emulators.loop import flat_plan, run_ticks, ticks_to_settle
from device_emulators.opendtu import OpenDtuGateway
from device_emulators.web import DeviceServer, ShellyMeter
from gx_emulator.plans import T0, FakeClock

from executor import drivers
from executor.__main__ import _install_signals
from executor.config import from_mapping, load
from executor.control import Apply, Limits, Release
from executor.drivers.opendtu import firmware_scheme
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor

LIMITS = Limits(min_soc_pct=10.0, capacity_kwh=10.0, soc_gain_w_per_pct=0.0, interval_s=10.0)


@pytest.fixture
def site(tmp_path):
    made = []

    def build(soc_pct=60.0, load_w=400.0, limits=LIMITS, firmware="v25.9.11",
              capacity_wh=10000.0, **options):
        clock = FakeClock(T0)
        home = Home(T0, load_w=load_w)
        gw = OpenDtuGateway(soc_pct=soc_pct, firmware=firmware, capacity_wh=capacity_wh)
        home.devices.append(gw)
        gw_server, meter = DeviceServer(gw).start(), DeviceServer(ShellyMeter(home, gen=2))
        meter.start()
        made.extend([gw_server, meter])
        opts = {"url": gw_server.url, "password": "openDTU42",
                "meter": {"type": "shelly", "url": meter.url, "gen": 2},
                "soc": {"type": "http", "url": gw_server.url + "/test/battery"},
                "timeout_s": 0.5, **options}
        driver = drivers.create("opendtu", opts, clock=clock)
        plan_path = str(tmp_path / "schedule.json")
        flat_plan(plan_path, T0)
        ex = Executor(driver, PlanTracker(FileSource(plan_path)), limits,
                      str(tmp_path / "pause.json"), clock=clock, interval_s=10.0)
        return ex, home, gw, clock, plan_path

    yield build
    for server in made:
        server.stop()


def _load(home, w):
    return lambda: setattr(home, "load_w", w)


def test_issue_config_form_with_a_secret_password(tmp_path):
    (tmp_path / "secrets.yaml").write_text("opendtu_password: s3cret\n")
    (tmp_path / "config.yaml").write_text(
        "executor:\n  driver:\n    type: opendtu\n    url: \"http://192.168.1.60\"\n"
        "    username: admin\n    password: !secret opendtu_password\n"
        "    meter: {type: shelly, url: \"http://192.168.1.61\", gen: 2}\n")
    cfg = load(str(tmp_path / "config.yaml"))
    driver = drivers.create(cfg.driver_type, cfg.driver_options, clock=FakeClock(T0))
    assert driver.headers["Authorization"] == "Basic YWRtaW46czNjcmV0"  # admin:s3cret
    assert driver.meter.url == "http://192.168.1.61/rpc/EM.GetStatus?id=0"
    plain = from_mapping({"executor": {"driver": {
        "type": "opendtu", "url": "http://x", "password": "plain",
        "meter": {"type": "homewizard", "url": "http://y"}}}})
    assert plain.driver_options["password"] == "plain"


def test_firmware_schemes():
    assert firmware_scheme("v25.9.11") == "new" and firmware_scheme("v25.10.3") == "new"
    assert firmware_scheme("v24.6.10") == "old" and firmware_scheme("v25.9.10-3-gabc") == "old"
    assert firmware_scheme("8cab3335") is None and firmware_scheme(None) is None


@pytest.mark.parametrize("firmware", ["v25.9.11", "v24.6.10"])
def test_zero_feed_in_tracks_load_steps_under_the_cap(site, firmware):
    ex, home, gw, clock, _ = site(firmware=firmware)
    steps = {0: 400.0, 8: 700.0, 16: 250.0, 24: 1500.0, 32: 300.0}
    grid = run_ticks(ex, home, clock, 40, events={k: _load(home, w) for k, w in steps.items()})
    rise = ticks_to_settle(grid[8:16], 0, 0.0)
    fall = ticks_to_settle(grid[16:24], 0, 0.0)
    assert rise is not None and rise <= 3, grid
    assert fall == 1, grid  # a falling load is followed at once
    assert ticks_to_settle(grid[32:], 0, 0.0) == 1
    assert grid[31] == pytest.approx(1500.0 - 800.0, abs=25.0)  # the cap holds
    assert max(sum(p) for _, _, p in home.trace) <= 800.0 + 1e-6
    assert min(grid) >= -50.0  # never feeding in beyond the tolerance
    assert ex.driver.scheme == ("new" if firmware == "v25.9.11" else "old")
    assert gw.eeprom_writes == 0
    limits = [d for kind, d in gw.commands if kind == "limit"]
    assert limits and all(d["limit_type"] == 0 for d in limits)


def test_cap_minus_other_pv_and_rotation(site):
    ex, home, gw, clock, _ = site(load_w=2000.0, other_pv_w=200.0, rotate_s=60.0)
    run_ticks(ex, home, clock, 4)
    assert sum(i.power_w for i in gw.inverters.values()) == pytest.approx(600.0, abs=1.0)
    home.load_w = 500.0
    firsts = set()
    for _ in range(4):
        run_ticks(ex, home, clock, 6)
        firsts.add(max(gw.inverters.values(), key=lambda i: i.power_w).serial)
    assert firsts == set(gw.inverters)  # the fill order rotated


def test_never_below_the_soc_floor_and_resume_above_it(site):
    ex, home, gw, clock, _ = site(soc_pct=10.6, load_w=800.0, capacity_wh=1000.0)
    run_ticks(ex, home, clock, 2)
    assert gw.power_w > 700.0  # feeding above the floor
    run_ticks(ex, home, clock, 40)
    assert gw.battery.soc_pct >= 10.0 - 0.2
    assert gw.power_w == 0.0 and home.grid_w() == pytest.approx(800.0)
    gw.dc_pv_w = 9000.0  # the battery charges on its own, about 2.5 %-points a tick
    fed_at = []
    for _ in range(8):
        run_ticks(ex, home, clock, 1)
        if gw.power_w > 0:
            fed_at.append(gw.battery.soc_pct)
    assert fed_at and 12.0 <= fed_at[0] <= 16.0  # resumes 2 points above the floor


def test_temperature_guard_moves_the_load_to_the_other_inverter(site, caplog):
    ex, home, gw, clock, _ = site(load_w=700.0, rotate_s=1e9)
    run_ticks(ex, home, clock, 2)
    first = max(gw.inverters.values(), key=lambda i: i.power_w).serial
    gw.inverters[first].ambient_c = 65.0  # 65 + 40 * 700/800 = 100 °C > 70; idle 65 > 60
    with caplog.at_level(logging.WARNING, "helios.executor.opendtu"):
        grid = run_ticks(ex, home, clock, 8)
    assert f"temperature {first}" in ex.driver.alarms
    assert gw.inverters[first].power_w == 0.0 and abs(grid[-1]) <= 50.0
    assert "alarm temperature" in caplog.text


def test_release_on_a_stale_plan_restores_the_start_state(site):
    ex, home, gw, clock, plan_path = site(load_w=300.0)
    gw.step(1e-6, home)  # found producing at their boot limit (800 W each)
    decisions: list = []
    run_ticks(ex, home, clock, 3, decisions=decisions)
    assert isinstance(decisions[-1], Apply)
    assert gw.power_w < 400.0
    flat_plan(plan_path, T0, generated_at=T0 - timedelta(hours=3), valid_s=3 * 3600 + 40)
    run_ticks(ex, home, clock, 3, decisions=decisions)
    assert isinstance(decisions[-1], Release) and "stale" in decisions[-1].reason
    assert all(i.on and i.limit_w == 800.0 for i in gw.inverters.values())
    n = len(gw.commands)
    run_ticks(ex, home, clock, 2)
    assert len(gw.commands) == n  # released once, not every tick


def test_sigterm_with_release_off_switches_every_inverter_off(site):
    ex, home, gw, clock, _ = site(release="off")
    count = []

    def sleep(seconds):
        clock.advance(seconds)
        home.advance(clock())
        count.append(1)
        if len(count) == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        _install_signals(ex)
        ex.run(max_ticks=50, sleep=sleep)
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])
    assert ex.ticks <= 5 and not any(i.on for i in gw.inverters.values())


@pytest.mark.parametrize("fault", ["500", "garbage"])
def test_gateway_errors_raise_an_alarm_and_release(site, caplog, fault):
    ex, home, gw, clock, _ = site()
    run_ticks(ex, home, clock, 2)
    gw.faults = [fault]
    with caplog.at_level(logging.INFO, "helios.executor"):
        d = ex.tick()
        assert isinstance(d, Release) and "OpenDTU" in d.reason
        assert "communication" in ex.driver.alarms
        assert isinstance(ex.tick(), Apply)
    assert "communication" not in ex.driver.alarms and "Traceback" not in caplog.text


@pytest.mark.parametrize("fault", ["missing", "wrong_type"])
def test_bad_inverter_data_skips_that_inverter(site, caplog, fault):
    ex, home, gw, clock, _ = site(load_w=1200.0)
    run_ticks(ex, home, clock, 2)
    gw.faults = [None, None, fault]  # the first ?inv= answer of the next tick
    with caplog.at_level(logging.WARNING, "helios.executor"):
        d = ex.tick()
    assert isinstance(d, Apply) and "Traceback" not in caplog.text
    assert any(k.startswith("inverter ") for k in ex.driver.alarms)


def test_wrong_password_raises_an_alarm_and_releases(site, caplog):
    ex, home, gw, clock, _ = site(password="wrong")
    with caplog.at_level(logging.WARNING, "helios.executor"):
        decisions: list = []
        run_ticks(ex, home, clock, 2, decisions=decisions)
    assert all(isinstance(d, Release) for d in decisions)
    assert any(k.startswith("command ") for k in ex.driver.alarms)
    assert "HTTP 401" in caplog.text and "wrong" not in caplog.text.replace("wrong_", "")


def test_a_dead_meter_releases(site):
    ex, home, gw, clock, _ = site()
    assert isinstance(ex.tick(), Apply)
    ex.driver.meter._base = "http://127.0.0.1:9"
    d = ex.tick()
    assert isinstance(d, Release) and "meter" in d.reason


def test_executor_limits_still_apply(site):
    ex, home, gw, clock, _ = site(load_w=700.0, limits=replace(LIMITS, max_discharge_w=300.0))
    run_ticks(ex, home, clock, 4)
    assert gw.power_w == pytest.approx(300.0, abs=1.0)
