"""Switched loads on relays (executor/relays/): a Shelly (Gen1 and Gen2, on a loopback HTTP
emulator) and a Victron GX relay (on a private dbus-daemon) follow the plan's
``devices.<name>.power_kw``: on above the threshold, minimum on/off times, writes only on
changes plus a periodic re-assert, the safe state on a stale plan and on exit, and device
trouble logged without ever touching the battery loop."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from datetime import timedelta

import pytest
from gx_emulator.plans import T0, FakeClock, build_plan
from gx_emulator.shelly_relay import ShellyRelay

from executor import config, overrides, pause, relays
from executor import schedule as sched
from executor.__main__ import build as build_executor
from executor.control import Apply, Limits
from executor.drivers.simulated import Plant, SimulatedDriver
from executor.errors import ConfigError
from executor.plansource import FileSource, PlanTracker
from executor.relays.base import RelayConfig, RelayFollower, safe_state
from executor.runner import Executor
from executor.telemetry import Telemetry

HEATER_KW = [3.0, 0.0, 0.02, 3.0, 3.0]  # on, off, off (below 0.05 kW), on, on


@pytest.fixture
def clock():
    return FakeClock(T0)


def _write_plan(tmp_path, powers, device="water_heater", valid_s=7200.0) -> str:
    plan = build_plan(T0, len(powers), 50.0, valid_s=valid_s)
    slots = [replace(s, devices={device: {"power_kw": kw}}) if kw is not None else s
             for s, kw in zip(plan.slots, powers)]  # noqa: B905 - 3.8 style
    path = str(tmp_path / "schedule.json")
    sched.write(path, replace(plan, slots=slots))
    return path


def _follower(kind: str, options: dict, clock) -> RelayFollower:
    problems: list = []
    cfg = relays.validate(kind, options, problems)
    assert problems == []
    return RelayFollower(relays.create(kind, cfg, clock=clock), max_plan_age_s=7200)


def _executor(tmp_path, clock, followers, powers=HEATER_KW, device="water_heater",
              valid_s=7200.0) -> Executor:
    path = _write_plan(tmp_path, powers, device, valid_s)
    return Executor(SimulatedDriver(clock=clock, plant=Plant(50.0, 10.0, clock())),
                    PlanTracker(FileSource(path)), Limits(), str(tmp_path / "pause.json"),
                    clock=clock, relays=followers)


def _sets(dev: ShellyRelay) -> list[str]:
    return [r for r in dev.requests if "Switch.Set" in r or "turn=" in r]


# --------------------------------------------------------------------------------------------
# Shelly


def test_shelly_gen2_follows_the_plan_writes_only_changes_and_ends_on(tmp_path, clock):
    with ShellyRelay(gen=2) as dev:
        follower = _follower("shelly", {"device": "water_heater", "url": dev.url,
                                        "reassert_s": 0}, clock)
        ex = _executor(tmp_path, clock, [follower])
        states = []
        for _ in HEATER_KW:
            assert isinstance(ex.tick(), Apply)  # the battery loop is untouched
            states.append(dev.output[0])
            clock.advance(900)
        assert states == [True, False, False, True, True]
        assert _sets(dev) == ["/rpc/Switch.Set?id=0&on=true", "/rpc/Switch.Set?id=0&on=false",
                              "/rpc/Switch.Set?id=0&on=true"]
        ex.tick()  # past the plan's last slot: no slot covers now → the heater's safe state
        assert dev.output[0] is True and "safe state on" in follower.last_reason
        ex.shutdown()
        assert dev.output[0] is True  # the heater's thermostat decides after Helios


def test_shelly_gen1_load_off_on_a_stale_plan_and_on_exit(tmp_path, clock):
    with ShellyRelay(gen=1, auth=("admin", "pw")) as dev:
        follower = _follower("shelly", {"device": "pool_pump", "url": dev.url, "gen": 1,
                                        "username": "admin", "password": "pw"}, clock)
        ex = _executor(tmp_path, clock, [follower], powers=[1.2, 1.2], device="pool_pump",
                       valid_s=600)
        ex.tick()
        assert dev.output[0] is True and "/relay/0?turn=on" in dev.requests
        clock.advance(610)  # valid_until passed, and the pump has been on for > min_on_s
        ex.tick()
        assert dev.output[0] is False
        assert follower.last_reason == "plan stale (valid_until passed): safe state off"
        dev.output[0] = True  # someone switches it on by hand
        clock.advance(60)
        ex.tick()
        assert dev.output[0] is False  # a reported state other than the wanted one is fixed
        ex.shutdown()
        assert dev.output[0] is False


def test_minimum_on_and_off_times_protect_the_contactor(tmp_path, clock):
    with ShellyRelay(gen=2) as dev:
        follower = _follower("shelly", {"device": "water_heater", "url": dev.url,
                                        "min_on_s": 1200, "min_off_s": 1200,
                                        "reassert_s": 0}, clock)
        ex = _executor(tmp_path, clock, [follower], powers=[3.0, 0.0, 3.0, 3.0])
        timeline = []
        for _ in range(60):  # every 60 s for an hour
            ex.tick()
            timeline.append(dev.output[0])
            clock.advance(60)
        # on at 0; the plan says off at 900 s but the contact stays on until 1200 s;
        # the plan says on again at 1800 s but it stays off until 1200 + 1200 = 2400 s
        changes = [i * 60 for i in range(1, 60) if timeline[i] != timeline[i - 1]]
        assert timeline[0] is True and changes == [1200, 2400]
        assert dev.switches == 3
        ex.tick()
        ex.shutdown()


def test_reassert_sends_the_state_again_but_not_every_tick(tmp_path, clock):
    with ShellyRelay(gen=2) as dev:
        follower = _follower("shelly", {"device": "water_heater", "url": dev.url,
                                        "reassert_s": 600}, clock)
        ex = _executor(tmp_path, clock, [follower], powers=[3.0, 3.0, 3.0, 3.0])
        for _ in range(30):  # 30 min, every 60 s
            ex.tick()
            clock.advance(60)
        assert len(_sets(dev)) == 3  # at 0, 600 and 1200 s
        assert dev.switches == 1
        ex.shutdown()


@pytest.mark.parametrize("gen", [1, 2])
@pytest.mark.parametrize("fault", ["500", "garbage", "stuck", "gone"])
def test_device_trouble_is_logged_once_and_never_stops_the_battery(tmp_path, clock, caplog,
                                                                   gen, fault):
    with ShellyRelay(gen=gen) as dev:
        follower = _follower("shelly", {"device": "water_heater", "url": dev.url, "gen": gen,
                                        "timeout_s": 0.5}, clock)
        ex = _executor(tmp_path, clock, [follower])
        if fault == "gone":
            dev.stop()
        else:
            dev.fault = fault
        with caplog.at_level(logging.WARNING, logger="helios.executor"):
            for _ in range(3):
                assert isinstance(ex.tick(), Apply)
                clock.advance(30)
        assert follower.last_reason.startswith("failed: ")
        assert follower.last_sent is None
        relay_lines = [r.getMessage() for r in caplog.records
                       if r.name == "helios.executor.relays"]
        assert all(r.exc_info is None for r in caplog.records)
        # three ticks, each a failed read and a failed switch: each message logged once
        assert len(relay_lines) == len(set(relay_lines)) == (1 if fault == "stuck" else 2)
        if fault != "gone":
            dev.fault = None  # the device is back: the next tick switches it
            ex.tick()
            assert dev.output[0] is True and follower.last_sent is True
        ex.shutdown()  # no exception, even for a device that is gone


def test_an_exception_from_a_relay_is_logged_without_a_traceback(tmp_path, clock, caplog):
    class Broken:
        name = "relay broken"
        config = RelayConfig(device="broken")

        def tick(self, plan, now, paused=False, override=None):
            raise ValueError("bug")

        def shutdown(self):
            raise ValueError("bug on exit")

    ex = _executor(tmp_path, clock, [Broken()])
    with caplog.at_level(logging.ERROR, logger="helios.executor"):
        assert isinstance(ex.tick(), Apply)
        ex.shutdown()
    assert [r.getMessage() for r in caplog.records] == [
        "relay broken failed: ValueError: bug",
        "relay broken: shutdown failed: ValueError: bug on exit"]


def test_pause_gives_the_load_its_safe_state(tmp_path, clock):
    with ShellyRelay(gen=2, on=True) as dev:
        follower = _follower("shelly", {"device": "dishwasher", "url": dev.url}, clock)
        ex = _executor(tmp_path, clock, [follower], powers=[2.0, 2.0], device="dishwasher")
        pause.pause(ex.pause_path, pause.parse_until("forever", clock()))
        ex.tick()
        assert dev.output[0] is False and follower.last_reason == "paused: safe state off"
        ex.shutdown()


# --------------------------------------------------------------------------------------------
# configuration


def test_relays_are_optional_and_validated_per_entry(tmp_path):
    assert config.default(str(tmp_path)).relays == ()
    cfg = config.from_mapping({"executor": {"relays": [
        {"type": "shelly", "device": "water_heater", "url": "http://10.0.0.5", "gen": 1},
        {"type": "gx_relay", "device": "dishwasher", "relay": 1, "on_stale": "on"}]}},
        str(tmp_path))
    (k0, c0), (k1, c1) = cfg.relays
    assert (k0, c0.gen, c0.url, safe_state(c0)) == ("shelly", 1, "http://10.0.0.5", True)
    assert (k1, c1.relay, safe_state(c1), c1.min_on_s) == ("gx_relay", 1, True, 300.0)
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"executor": {"relays": [
            {"type": "shelly", "url": "http://x"},
            {"type": "shelly", "device": "a", "url": "http://x", "colour": 1},
            {"type": "tasmota", "device": "a"},
            "shelly",
            {"type": "gx_relay", "device": "a", "min_on_s": -1, "on_stale": "maybe"}]}})
    got = [str(p) for p in info.value.problems]
    assert got[0] == "executor.relays[0].device: expected a value (required), got nothing" \
        or got[0].startswith("executor.relays[0].device:")
    assert any(p.startswith("executor.relays[1].colour: expected one of the known keys")
               for p in got)
    assert any(p.startswith("executor.relays[2].type: expected one of gx_relay, shelly")
               for p in got)
    assert any(p.startswith("executor.relays[3]: expected a mapping") for p in got)
    assert any(p.startswith("executor.relays[4].min_on_s:") for p in got)
    assert any(p.startswith("executor.relays[4].on_stale:") for p in got)
    assert len(got) == 6
    with pytest.raises(ConfigError, match=r"executor.relays: expected a list"):
        config.from_mapping({"executor": {"relays": {"type": "shelly"}}})
    keys = {row[0] for row in config.explain()}
    assert {"executor.relays[].type", "executor.relays[].device",
            "executor.relays[].min_off_s"} <= keys


def test_helios_executor_wires_the_relays_except_in_a_dry_run(tmp_path):
    cfg = config.from_mapping({"executor": {"driver": {"type": "simulated"}, "relays": [
        {"type": "shelly", "device": "water_heater", "url": "http://127.0.0.1:9"}],
        "telemetry": {"enabled": False}}}, str(tmp_path))
    ex = build_executor(cfg)
    assert [r.name for r in ex.relays] == [
        "relay water_heater (shelly gen 2 http://127.0.0.1:9 #0)"]
    assert build_executor(cfg, dry_run=True).relays == []


# --------------------------------------------------------------------------------------------
# Victron GX relay on a private dbus-daemon

needs_dbus = pytest.mark.skipif(
    shutil.which("dbus-daemon") is None and os.environ.get("CI") != "true",
    reason="dbus-daemon not installed (CI installs it: apt-get install dbus)")


@pytest.fixture(scope="module")
def daemon():
    from gx_emulator.dbus_gx import DbusDaemon  # optional: jeepney, only for the GX tests

    with DbusDaemon() as d:
        yield d


@needs_dbus
def test_gx_relay_follows_the_plan_and_ends_in_its_safe_state(tmp_path, clock, daemon):
    from gx_emulator.dbus_relay import DbusRelays  # optional: jeepney, only for GX tests

    with DbusRelays(daemon.address, functions=[2, 2]) as gx:
        follower = _follower("gx_relay", {"device": "water_heater", "relay": 1,
                                          "bus": daemon.address, "library": "jeepney",
                                          "reassert_s": 0, "on_stale": "off"}, clock)
        ex = _executor(tmp_path, clock, [follower])
        states = []
        for _ in HEATER_KW:
            assert isinstance(ex.tick(), Apply)
            states.append(gx.state[1])
            clock.advance(900)
        assert states == [1, 0, 0, 1, 1] and gx.state[0] == 0
        assert gx.set_calls == [("/Relay/1/State", 1), ("/Relay/1/State", 0),
                                ("/Relay/1/State", 1)]
        assert follower.last_reported is True
        ex.shutdown()
        assert gx.state[1] == 0  # on_stale: off


@needs_dbus
def test_gx_relay_not_in_manual_mode_or_missing_is_reported(tmp_path, clock, daemon, caplog):
    from gx_emulator.dbus_relay import DbusRelays  # optional: jeepney, only for GX tests

    options = {"device": "water_heater", "bus": daemon.address, "library": "jeepney"}
    with DbusRelays(daemon.address, functions=[1, 2]) as gx:  # relay 0 drives a generator
        follower = _follower("gx_relay", options, clock)
        ex = _executor(tmp_path, clock, [follower])
        with caplog.at_level(logging.WARNING, logger="helios.executor"):
            assert isinstance(ex.tick(), Apply)
        assert gx.set_calls == []
        assert "/Settings/Relay/Function is 1, not 2 (manual)" in follower.last_reason
        follower.relay.close()
    with DbusRelays(daemon.address, functions=None) as gx:  # no settings service: no check
        follower = _follower("gx_relay", options, clock)
        ex = _executor(tmp_path, clock, [follower])
        ex.tick()
        assert gx.state[0] == 1
        ex.shutdown()
        assert gx.state[0] == 1  # water_heater: thermostat on
    follower = _follower("gx_relay", options, clock)  # nothing on the bus
    ex = _executor(tmp_path, clock, [follower])
    with caplog.at_level(logging.WARNING, logger="helios.executor"):
        assert isinstance(ex.tick(), Apply)
        ex.shutdown()
    assert follower.last_reason.startswith("failed: ")
    assert all(r.exc_info is None for r in caplog.records)


# --------------------------------------------------------------------------------------------
# the heater's power in the measurements (issue 13: energy delivered today)


@pytest.mark.parametrize("gen,options,on_w", [
    (2, {}, 3000.0),                                   # the Shelly's meter (apower)
    (1, {"gen": 1, "power_kw": 2.0}, 2000.0),          # no meter: power_kw while on
])
def test_relay_records_the_heaters_power_in_the_measurements(tmp_path, clock, gen, options,
                                                             on_w):
    with ShellyRelay(gen=gen) as dev:
        follower = _follower("shelly", {"device": "water_heater", "url": dev.url,
                                        "reassert_s": 0, **options}, clock)
        ex = _executor(tmp_path, clock, [follower])
        ex.telemetry = Telemetry(str(tmp_path / "buf.jsonl"), interval_s=900)
        for _ in HEATER_KW:
            ex.tick()
            clock.advance(900)
        ex.shutdown()
        rows = ex.telemetry.pending()
    assert [r["water_heater_power_w"] for r in rows[:5]] == [on_w, 0.0, 0.0, on_w, on_w]


def test_without_a_meter_or_power_kw_no_heater_power_is_recorded(tmp_path, clock):
    with ShellyRelay(gen=1) as dev:
        follower = _follower("shelly", {"device": "water_heater", "url": dev.url, "gen": 1},
                             clock)
        ex = _executor(tmp_path, clock, [follower])
        ex.telemetry = Telemetry(str(tmp_path / "buf.jsonl"), interval_s=900)
        for _ in range(3):
            ex.tick()
            clock.advance(900)
        rows = ex.telemetry.pending()
    assert rows and all("water_heater_power_w" not in r for r in rows)


# --------------------------------------------------------------------------------------------
# water/load overrides between plans (the overrides file, read every tick)


def _override_file(tmp_path, *items) -> str:
    path = str(tmp_path / overrides.FILE_NAME)
    overrides.write(path, list(items))
    return path


def test_water_override_switches_on_at_once_inside_the_minimum_times(tmp_path, clock):
    with ShellyRelay(gen=2) as dev:
        follower = _follower("shelly", {"device": "water_heater", "url": dev.url,
                                        "reassert_s": 0}, clock)
        ex = _executor(tmp_path, clock, [follower], powers=[3.0, 0.0, 0.0, 0.0])
        ex.overrides_path = str(tmp_path / overrides.FILE_NAME)
        ex.tick()
        assert dev.output[0] is True  # the plan's first slot
        clock.advance(900)
        ex.tick()
        assert dev.output[0] is False  # the plan's second slot (on for 900 s >= min_on_s)
        clock.advance(60)  # someone asks for hot water now, for 340 s; kw is ignored
        now = clock()
        _override_file(tmp_path, overrides.Override("water", now, now + timedelta(seconds=340),
                                                    kw=1.0, id=7))
        ex.tick()
        assert dev.output[0] is False  # off for 60 s < min_off_s: held off
        assert follower.last_reason.startswith("override #7 water until")
        assert "held off for the minimum time" in follower.last_reason
        clock.advance(240)  # off for 300 s
        ex.tick()
        assert dev.output[0] is True and follower.last_reason.startswith("override #7 water")
        clock.advance(100)  # the override is over; the plan says off; on for 100 s only
        ex.tick()
        assert dev.output[0] is True and "held on for the minimum time" in follower.last_reason
        clock.advance(200)
        ex.tick()
        assert dev.output[0] is False and follower.last_reason.startswith("devices.water_heater")


def test_load_override_runs_its_load_without_a_plan_and_a_pause_still_wins(tmp_path, clock):
    with ShellyRelay(gen=2) as pump, ShellyRelay(gen=2) as heater:
        pool = _follower("shelly", {"device": "pool_pump", "url": pump.url}, clock)
        water = _follower("shelly", {"device": "water_heater", "url": heater.url,
                                     "on_stale": "off"}, clock)
        ex = _executor(tmp_path, clock, [pool, water], powers=[0.0, 0.0], device="pool_pump",
                       valid_s=600)
        now = clock()
        ex.overrides_path = _override_file(
            tmp_path, overrides.Override("load", now, now + timedelta(hours=2),
                                         target="pool_pump", kw=0.5, id=3))
        ex.tick()
        assert pump.output[0] is True and heater.output[0] is False  # only its own device
        clock.advance(700)  # the plan is stale now: the override is obeyed all the same
        ex.tick()
        assert pump.output[0] is True and pool.last_reason.startswith("override #3 load")
        pause.pause(ex.pause_path, clock() + timedelta(hours=1))
        ex.tick()
        assert pump.output[0] is False and "paused" in pool.last_reason
        pause.resume(ex.pause_path)
        clock.advance(300)
        ex.tick()
        assert pump.output[0] is True
        ex.shutdown()
        assert pump.output[0] is False  # its safe state on exit, override or not


def test_a_broken_overrides_file_leaves_the_relays_on_the_plan(tmp_path, clock, caplog):
    with ShellyRelay(gen=2) as dev:
        follower = _follower("shelly", {"device": "water_heater", "url": dev.url}, clock)
        ex = _executor(tmp_path, clock, [follower], powers=[0.0, 0.0])
        ex.overrides_path = str(tmp_path / overrides.FILE_NAME)
        with open(ex.overrides_path, "w") as fh:
            fh.write("{not json")
        with caplog.at_level(logging.ERROR, logger="helios.executor"):
            assert isinstance(ex.tick(), Apply)
        assert dev.output[0] is False and follower.last_reason.startswith("devices.water_heater")
        assert any("unreadable" in r.getMessage() for r in caplog.records)
