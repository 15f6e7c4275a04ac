"""Car-side charging control (executor/evse/tesla.py, kia_hyundai.py) against loopback
emulators of the cars' cloud APIs replaying the recorded payloads: the plan's current is sent
only on a change and at most every min_command_interval_s; 401, 429 (Retry-After) and an
asleep car (HTTP 408) are handled without hammering the API; a stale plan releases."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from device_emulators.vehicle_api import FleetApi, KiaConnect
from device_emulators.web import DeviceServer
from gx_emulator.plans import T0, FakeClock, build_plan

from executor import evse
from executor.errors import ConfigError, DriverError, DriverUnavailable
from executor.evse.base import EvFollower

VIN = "5YJ3E7EB0KF000000"


def _plan(kw: list[float], valid_s: float = 7200.0):
    plan = build_plan(T0, len(kw), 50.0, valid_s=valid_s)
    return replace(plan, slots=[replace(s, devices={"ev": {"power_kw": p}})
                                for s, p in zip(plan.slots, kw, strict=True)])


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def tesla_api():
    api = FleetApi(VIN, "tok")
    server = DeviceServer(api).start()
    yield api, server.url
    server.stop()


def _tesla(url, clock, **options):
    problems: list = []
    cfg = evse.validate("tesla", {"vin": VIN, "token": "tok", "base_url": url,
                                  "min_command_interval_s": 60, **options}, problems)
    assert not problems, problems
    return evse.create("tesla", cfg, clock=clock)


def test_tesla_follows_the_plan_with_few_commands(tesla_api, clock):
    api, url = tesla_api
    follower = EvFollower(_tesla(url, clock), max_plan_age_s=7200)
    # 15-min slots: 11 kW (16 A), 5 kW (7.2 -> 7 A), 5.2 kW (7.5 -> 8 A: < 2 A step), 0
    plan = _plan([11.0, 5.0, 5.2, 0.0])
    for _ in range(4 * 90):  # 10-s ticks through the four slots
        follower.tick(plan, clock())
        clock.advance(10)
    assert api.commands() == ["set_charging_amps=16", "charge_start", "set_charging_amps=7",
                              "charge_stop"]
    assert not api.charging and api.amps == 7
    assert follower.last_state.status == "commanded off"


def test_tesla_a_change_waits_for_the_minimum_interval(tesla_api, clock):
    api, url = tesla_api
    car = _tesla(url, clock, min_command_interval_s=300)
    car.set_current(16)
    clock.advance(30)
    car.set_current(0)  # too soon: nothing sent yet
    assert api.commands() == ["set_charging_amps=16", "charge_start"]
    clock.advance(270)
    car.set_current(0)
    assert api.commands()[-1] == "charge_stop"


def test_tesla_401_names_the_token_and_backs_off(tesla_api, clock, caplog):
    api, url = tesla_api
    car = _tesla(url, clock, token="wrong", auth_backoff_s=3600)
    with pytest.raises(DriverError, match="executor.ev_charger.token") as err:
        car.set_current(16)
    assert "wrong" not in str(err.value)  # the token never in a message
    n = len(api.requests)
    for _ in range(10):
        clock.advance(120)
        car.set_current(16)  # blocked: no request for an hour
    assert len(api.requests) == n
    # through the follower: logged, never raised
    follower = EvFollower(car, max_plan_age_s=7200)
    with caplog.at_level(logging.WARNING):
        follower.tick(_plan([11.0]), clock())


def test_tesla_429_waits_retry_after(tesla_api, clock):
    api, url = tesla_api
    api.retry_after_s = 600
    api.faults = ["429"]
    car = _tesla(url, clock)
    with pytest.raises(DriverUnavailable, match="429"):
        car.set_current(16)
    for _ in range(5):
        clock.advance(100)  # 500 s < 600 s: no request
        car.set_current(16)
    assert len(api.requests) == 1
    clock.advance(100)
    car.set_current(16)
    assert api.commands()[-2:] == ["set_charging_amps=16", "charge_start"] and api.charging


def test_tesla_asleep_car_stop_needs_nothing_start_waits_or_wakes(tesla_api, clock):
    api, url = tesla_api
    api.asleep = True
    car = _tesla(url, clock)
    car.set_current(0)  # 408 on stop: an asleep car does not charge
    assert car.read().status == "commanded off"
    clock.advance(60)
    with pytest.raises(DriverUnavailable, match="asleep"):
        car.set_current(16)
    assert "wake_up" not in api.commands()  # never woken without wake_to_start
    waking = _tesla(url, clock, wake_to_start=True)
    with pytest.raises(DriverUnavailable, match="woken"):
        waking.set_current(16)
    assert api.commands()[-1] == "wake_up" and not api.asleep
    clock.advance(60)
    waking.set_current(16)
    assert api.commands()[-2:] == ["set_charging_amps=16", "charge_start"] and api.charging
    assert waking.wakes == 1


def test_tesla_already_charging_counts_as_done_and_a_stale_plan_releases(tesla_api, clock):
    api, url = tesla_api
    api.charging = True
    follower = EvFollower(_tesla(url, clock, max_current_a=16), max_plan_age_s=7200)
    follower.tick(_plan([4.14]), clock())  # 6 A: set, start answers is_charging
    assert api.commands() == ["set_charging_amps=6", "charge_start"]
    clock.advance(3 * 3600)  # the plan is stale: the car's own behaviour (full current)
    follower.tick(_plan([4.14], valid_s=600), clock())
    follower.tick(_plan([4.14], valid_s=600), clock())  # released once, not again
    assert api.commands()[-1:] == ["set_charging_amps=16"] and api.amps == 16
    assert follower.last_current_a is None


def test_tesla_config_needs_vin_and_token(tesla_api, clock):
    with pytest.raises(DriverError, match="executor.ev_charger.vin"):
        evse.create("tesla", evse.validate("tesla", {"token": "t"}, []), clock=clock)
    problems: list = []
    evse.validate("tesla", {"vin": VIN, "token": "t", "min_command_interval": 5}, problems)
    assert problems and "min_command_interval" in str(problems[0])


# --------------------------------------------------------------------------------------------
# Kia / Hyundai


@pytest.fixture
def kia_api():
    api = KiaConnect("veh-0001", "Bearer kia")
    server = DeviceServer(api).start()
    yield api, server.url
    server.stop()


def _kia(url, clock, **options):
    cfg = evse.validate("kia_hyundai", {"vehicle_id": "veh-0001", "access_token": "Bearer kia",
                                        "device_id": "dev-1", "base_url": url, **options}, [])
    return evse.create("kia_hyundai", cfg, clock=clock)


def test_kia_starts_and_stops_only_and_respects_its_interval(kia_api, clock):
    api, url = kia_api
    follower = EvFollower(_kia(url, clock), max_plan_age_s=7200)
    plan = _plan([11.0, 5.0, 0.0, 0.0, 11.0, 11.0])  # amps changes are not commands
    for _ in range(6 * 90):
        follower.tick(plan, clock())
        clock.advance(10)
    actions = [body["action"] for _, _, body, _ in api.requests]
    assert actions == ["start", "stop", "start"]
    assert all(body["deviceId"] == "dev-1" for _, _, body, _ in api.requests)
    assert api.requests[0][3]["Ccsp-Device-Id"] == "dev-1"


def test_kia_refusals_duplicate_and_401(kia_api, clock):
    api, url = kia_api
    car = _kia(url, clock, min_command_interval_s=0)
    api.faults = ["F"]
    with pytest.raises(DriverError, match="resCode 9999"):
        car.set_current(16)
    api.faults = ["4004"]
    car.set_current(16)  # duplicate request: already under way = done
    assert car.read().charging
    api.faults = ["401"]
    with pytest.raises(DriverError, match="executor.ev_charger.access_token"):
        car.set_current(0)


def test_unknown_charger_type_is_a_config_error():
    with pytest.raises(ConfigError, match="tesla"):
        evse.get("teslaa")
