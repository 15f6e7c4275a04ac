"""The executor drives an emulated Alfen Eve (a real pymodbus server on 127.0.0.1): the current
follows the plan's devices.ev.power_kw, the setpoint is re-written before the validity time
runs out, a stale plan releases to the safe current (or stops), and the config section."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from gx_emulator.alfen_modbus import AlfenEve
from gx_emulator.plans import T0, FakeClock, build_plan

from executor import config as excfg
from executor import evse
from executor import schedule as sched
from executor.control import Limits
from executor.drivers.simulated import Plant, SimulatedDriver
from executor.errors import ConfigError
from executor.evse.base import ChargerConfig, EvFollower, current_a
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor

#: planned EV power per 15-min slot [kW] and the current expected for it (3 phases, 6-16 A)
EV_KW = [11.04, 4.14, 1.0, 20.0, 0.0, 7.0]
EV_A = [16.0, 6.0, 0.0, 16.0, 0.0, 7.0 * 1000 / 690]


def _plan(path, valid_s=7200.0, generated_at=T0):
    plan = build_plan(T0, len(EV_KW), 50.0, valid_s=valid_s, generated_at=generated_at)
    # the six slots (1.5 h) inside the plan's validity unless a test shortens it
    slots = [replace(s, devices={"ev": {"power_kw": kw}}) for s, kw in zip(plan.slots, EV_KW,
                                                                          strict=True)]
    sched.write(path, replace(plan, slots=slots))


def _executor(tmp_path, clock, eve, **options):
    cfg = evse.validate("alfen", {"host": "127.0.0.1", "port": eve.port, **options}, [])
    charger = evse.create("alfen", cfg, clock=clock)
    follower = EvFollower(charger, max_plan_age_s=7200.0)
    plan_path = str(tmp_path / "schedule.json")
    ex = Executor(SimulatedDriver(clock=clock, plant=Plant(50.0, 10.0, clock())),
                  PlanTracker(FileSource(plan_path)), Limits(), str(tmp_path / "pause.json"),
                  clock=clock, ev_charger=follower)
    return ex, plan_path


@pytest.fixture
def clock():
    return FakeClock(T0)


def test_current_from_power():
    cfg = ChargerConfig()
    assert [round(current_a(kw, cfg), 3) for kw in EV_KW] == [round(a, 3) for a in EV_A]
    one = ChargerConfig(phases=1, max_current_a=32)
    assert current_a(3.68, one) == pytest.approx(16.0)
    assert current_a(0.9, one) == pytest.approx(6.0)  # 3.9 A: up to the minimum
    assert current_a(0.6, one) == 0.0  # 2.6 A: below half the minimum, stop


def test_executor_follows_the_plan_and_renews_the_validity_time(tmp_path, clock):
    with AlfenEve(clock, safe_current_a=10.0, validity_s=60) as eve:
        ex, plan_path = _executor(tmp_path, clock, eve)
        _plan(plan_path)
        seen = {}
        for _ in range(len(EV_KW) * 90):  # 10-s ticks through the six slots
            ex.tick()
            slot = int((clock() - T0).total_seconds() // 900)
            seen.setdefault(slot, set()).add(round(eve.applied_a(), 3))
            assert eve.remaining_s() > 45  # re-written every tick, never near expiry
            clock.advance(10)
        assert {k: v for k, v in seen.items()} == {
            i: {round(a, 3)} for i, a in enumerate(EV_A)}
        assert len(eve.writes) == len(EV_KW) * 90
        assert eve.refused == 0
        # the car drew what was applied: 16 A x 3 x 230 V in slot 0
        ex.ev_charger.charger.close()


def test_station_falls_back_to_the_safe_current_without_writes(tmp_path, clock):
    with AlfenEve(clock, safe_current_a=8.0, validity_s=60) as eve:
        ex, plan_path = _executor(tmp_path, clock, eve)
        _plan(plan_path)
        ex.tick()
        assert eve.applied_a() == 16.0
        clock.advance(59)  # the executor died: nobody re-writes 1210
        assert eve.applied_a() == 16.0 and eve.remaining_s() == 1
        clock.advance(2)
        assert eve.applied_a() == 8.0 and eve.state() == "C2"
        ex.tick()  # back: the plan's current again
        assert eve.applied_a() == 16.0
        ex.ev_charger.charger.close()


def test_stale_plan_releases_to_the_safe_current(tmp_path, clock):
    with AlfenEve(clock, safe_current_a=6.0, validity_s=60) as eve:
        ex, plan_path = _executor(tmp_path, clock, eve)
        _plan(plan_path, valid_s=600)
        ex.tick()
        assert eve.applied_a() == 16.0
        clock.advance(610)  # valid_until passed
        ex.tick()
        assert ex.ev_charger.last_current_a is None
        assert "stale" in ex.ev_charger.last_reason
        assert eve.applied_a() == 6.0  # the safe current written at once
        writes = len(eve.writes)
        for _ in range(3):
            clock.advance(10)
            ex.tick()
        assert len(eve.writes) == writes  # released: no more writes
        ex.shutdown()


def test_stale_plan_stops_when_configured(tmp_path, clock):
    with AlfenEve(clock, safe_current_a=10.0, validity_s=60) as eve:
        ex, plan_path = _executor(tmp_path, clock, eve, on_stale="stop")
        _plan(plan_path, valid_s=600)
        ex.tick()
        clock.advance(610)
        for _ in range(10):  # 0 A re-written every tick: never back to the safe current
            ex.tick()
            clock.advance(10)
        assert eve.applied_a() == 0.0 and eve.state() == "B2" and eve.power_w() == 0.0
        ex.shutdown()
        assert eve.applied_a() == 10.0  # on exit: released


def test_pause_releases(tmp_path, clock):
    from executor import pause

    with AlfenEve(clock, safe_current_a=6.0) as eve:
        ex, plan_path = _executor(tmp_path, clock, eve)
        _plan(plan_path)
        ex.tick()
        assert eve.applied_a() == 16.0
        pause.pause(ex.pause_path, clock() + timedelta(hours=1))
        clock.advance(10)
        ex.tick()
        assert eve.applied_a() == 6.0 and ex.ev_charger.last_reason == "paused"
        ex.ev_charger.charger.close()


def test_charger_down_never_stops_the_battery_loop(tmp_path, clock):
    eve = AlfenEve(clock)  # not started: connection refused
    ex, plan_path = _executor(tmp_path, clock, eve)
    _plan(plan_path)
    decision = ex.tick()
    assert type(decision).__name__ == "Apply"  # the battery follows its plan regardless
    assert ex.ev_charger.last_reason.startswith("failed")


def test_config_section():
    doc = {"executor": {"ev_charger": {"type": "alfen", "host": "10.0.0.5", "phases": 1,
                                       "max_current_a": 32, "on_stale": "stop"}}}
    cfg = excfg.from_mapping(doc)
    assert cfg.ev_charger_type == "alfen"
    assert (cfg.ev_charger.host, cfg.ev_charger.phases, cfg.ev_charger.on_stale) == (
        "10.0.0.5", 1, "stop")
    assert excfg.from_mapping({}).ev_charger is None  # absent: nothing changes
    with pytest.raises(ConfigError) as info:
        excfg.from_mapping({"executor": {"ev_charger": {"type": "alfen", "hots": "x",
                                                        "phases": 2, "on_stale": "later"}}})
    text = str(info.value)
    assert "executor.ev_charger.hots" in text and "did you mean" in text
    assert "executor.ev_charger.on_stale" in text
    with pytest.raises(ConfigError, match="executor.ev_charger.phases: expected 1 or 3"):
        excfg.from_mapping({"executor": {"ev_charger": {"type": "alfen", "phases": 2}}})
    with pytest.raises(ConfigError, match="executor.ev_charger.min_current_a"):
        excfg.from_mapping({"executor": {"ev_charger": {"type": "alfen", "min_current_a": 20}}})
    with pytest.raises(ConfigError, match="executor.ev_charger.type"):
        excfg.from_mapping({"executor": {"ev_charger": {"type": "wallbox"}}})
    with pytest.raises(ConfigError, match="executor.ev_charger.type"):
        excfg.from_mapping({"executor": {"ev_charger": {"host": "x"}}})
    keys = {row[0] for row in excfg.explain()}
    assert {"executor.ev_charger.type", "executor.ev_charger.on_stale"} <= keys
