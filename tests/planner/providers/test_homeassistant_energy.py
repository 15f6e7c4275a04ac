"""The water heater's energy delivered today from a Home Assistant daily energy entity,
against a loopback server replaying HA's ``GET /api/states/<entity>`` payload of a daily
``utility_meter`` (and of a device's own "energy today" sensor without ``last_reset``), and
end to end: ``helios plan`` subtracts it from today's need."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
import yaml
from loopback_http import Reply, serve

from planner import config as config_mod
from planner import providers
from planner.cli import doctor
from planner.core.errors import ConfigError, ProviderConfigError, ProviderUnavailable
from planner.optimize.components.water_heater import NAME as WATER_HEATER
from planner.plan import heater, run
from planner.plan import water_heater as heater_mod
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy
from planner.providers.state.homeassistant_energy import HomeAssistantDailyEnergy

FAST = RetryPolicy(timeout_s=0.5, retries=0, backoff_s=0.01)
TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.ha-long-lived.h34t3r"
NOW = pd.Timestamp("2026-05-01T10:00:00Z")  # 12:00 in Berlin
CTX = ProviderContext(config_mod.default().site, NOW)
ENTITY = "sensor.water_heater_energy_today"
MIDNIGHT = "2026-04-30T22:00:00.000061+00:00"  # local midnight, Europe/Berlin (CEST)


def meter_payload(state: str = "2.417", unit: str = "kWh", last_reset: str | None = MIDNIGHT,
                  changed: str = "2026-05-01T09:52:10.331842+00:00",
                  reported: str = "2026-05-01T09:59:30.004711+00:00",
                  entity: str = ENTITY) -> str:
    """HA's ``/api/states/<entity>`` of a daily utility_meter (``last_reset`` = the reset);
    without ``last_reset``: a device's own energy-today sensor."""
    attributes = {"source": "sensor.water_heater_energy", "status": "collecting",
                  "last_period": "5.96", "last_valid_state": "1843.211",
                  "meter_period": "daily", "cron pattern": "0 0 * * *",
                  "state_class": "total_increasing", "unit_of_measurement": unit,
                  "device_class": "energy", "friendly_name": "Water heater energy today"}
    if last_reset is not None:
        attributes["last_reset"] = last_reset
    else:
        for k in ("source", "status", "last_period", "last_valid_state", "meter_period",
                  "cron pattern"):
            attributes.pop(k)
    return json.dumps({
        "entity_id": entity, "state": state, "attributes": attributes,
        "last_changed": changed, "last_reported": reported, "last_updated": changed,
        "context": {"id": "01HWXA7M6Q2Y8N0C3JZ5K4B1RT", "parent_id": None, "user_id": None}})


def provider(url: str, **kw) -> HomeAssistantDailyEnergy:
    return HomeAssistantDailyEnergy(HomeAssistantDailyEnergy.Config(
        url=url, token=TOKEN, entity_id=ENTITY, **kw), CTX, FAST)


def route(body: str, status: int = 200) -> dict:
    return {f"/api/states/{ENTITY}": Reply(status, body)}


def test_daily_utility_meter_in_kwh_with_the_token_in_the_header_only():
    with serve(route(meter_payload())) as ha:
        assert provider(ha.url).read(NOW) == pytest.approx(2.417)
    seen = ha.requests[0]
    assert seen.method == "GET" and seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in seen.path and not seen.query


def test_wh_and_a_sensor_without_last_reset_that_changed_today():
    body = meter_payload("1830", unit="Wh", last_reset=None)
    with serve(route(body)) as ha:
        assert provider(ha.url).read(NOW) == pytest.approx(1.83)


def test_a_value_from_before_midnight_is_not_todays():
    """The meter has not restarted (HA was down at midnight): yesterday's kWh must not be
    subtracted from today's need."""
    old_reset = meter_payload("5.96", last_reset="2026-04-29T22:00:00+00:00")
    with serve(route(old_reset)) as ha:
        with pytest.raises(ProviderUnavailable, match="was last reset at 2026-04-30 00:00, "
                                                      "before today's local midnight"):
            provider(ha.url).read(NOW)
    unchanged = meter_payload("5.96", last_reset=None, changed="2026-04-30T19:14:00+00:00")
    with serve(route(unchanged)) as ha:
        with pytest.raises(ProviderUnavailable, match="last changed at 2026-04-30 21:14"):
            provider(ha.url).read(NOW)
    # 0 since before midnight: nothing delivered today, which is right
    zero = meter_payload("0.0", last_reset=None, changed="2026-04-30T22:00:01+00:00")
    with serve(route(zero)) as ha:
        assert provider(ha.url).read(NOW) == 0.0


@pytest.mark.parametrize("state", ["unavailable", "unknown"])
def test_unavailable_or_unknown_is_transient_and_names_the_entity(state):
    with serve(route(meter_payload(state))) as ha:
        with pytest.raises(ProviderUnavailable, match=f"{ENTITY} is {state}"):
            provider(ha.url).read(NOW)


def test_wrong_unit_negative_stale_and_unknown_entity():
    with serve(route(meter_payload("2.0", unit="W"))) as ha:
        with pytest.raises(ProviderConfigError, match="'W'; expected energy in Wh, kWh, MWh"):
            provider(ha.url).read(NOW)
    with serve(route(meter_payload("-0.4"))) as ha:
        with pytest.raises(ProviderUnavailable, match="negative"):
            provider(ha.url).read(NOW)
    with serve(route(meter_payload(reported="2026-05-01T07:00:00+00:00"))) as ha:
        with pytest.raises(ProviderUnavailable, match="10800 s ago"):
            provider(ha.url).read(NOW)
    with serve({}) as ha:
        with pytest.raises(ProviderConfigError, match=f"no entity '{ENTITY}'"):
            provider(ha.url).read(NOW)


def test_a_refused_token_never_appears_in_the_error_or_the_log(caplog):
    caplog.set_level(logging.DEBUG)
    body = '{"message": "Invalid access token or password: ' + TOKEN + '"}'
    with serve(route(body, 401)) as ha:
        with pytest.raises(ProviderConfigError) as err:
            provider(ha.url).read(NOW)
    assert "HTTP 401" in str(err.value) and TOKEN not in str(err.value) + caplog.text


# ------------------------------------------------------------------ into the plan


def _config(tmp_path, url: str, heater_extra: str = "") -> config_mod.HeliosConfig:
    (tmp_path / "secrets.yaml").write_text(yaml.safe_dump({"ha_token": TOKEN}))
    (tmp_path / "config.yaml").write_text(
        "prices: {type: demo}\npv: {type: demo}\nload: {type: demo}\n"
        "state: {type: static, soc_pct: 50}\nstorage: {enabled: false}\n"
        "water_heater: {power_kw: 3, daily_kwh: 6, plan_days_ahead: 0,\n"
        f"  delivered_today: {{type: homeassistant, url: '{url}', token: !secret ha_token,\n"
        f"                    entity_id: {ENTITY}{heater_extra}}}}}\n")
    return config_mod.load(tmp_path / "config.yaml")


def _possible_kwh(now: pd.Timestamp, wanted: float) -> float:
    """``wanted``, or less just after local midnight (3 kW since then is the most)."""
    midnight = now.tz_convert("Europe/Berlin").normalize().tz_convert("UTC")
    return round(min(wanted, 3.0 * (now - midnight).total_seconds() / 3600 * 0.9), 3)


def test_plan_subtracts_todays_energy_from_the_heaters_need(tmp_path):
    now = pd.Timestamp.now(tz="UTC").floor("min")
    midnight = now.tz_convert("Europe/Berlin").normalize().tz_convert("UTC")
    kwh = _possible_kwh(now, 2.5)
    body = meter_payload(f"{kwh}", last_reset=midnight.isoformat(),
                         changed=(now - pd.Timedelta(minutes=5)).isoformat(),
                         reported=(now - pd.Timedelta(seconds=30)).isoformat())
    with serve(route(body)) as ha:
        cfg = _config(tmp_path, ha.url)
        assert TOKEN in cfg.secret_values
        assert heater_mod.delivered_today_kwh(cfg, now) == pytest.approx(kwh)
        result = run.plan_once(cfg, now)
    outputs = result.plan.solution.outputs
    assert outputs["water_heater_need_kwh"] == pytest.approx(6.0 - kwh)
    assert result.plan.solution.device_kw["water_heater"].sum() * 0.25 == pytest.approx(
        6.0 - kwh)


def test_an_unavailable_source_warns_and_plans_the_whole_day(tmp_path):
    warnings: list[str] = []
    with serve(route(meter_payload("unavailable"))) as ha:
        cfg = _config(tmp_path, ha.url)
        assert heater_mod.delivered_today_kwh(cfg, NOW, warnings.append) is None
        # the plan falls back to the measurements (none here: no database) -> 0 delivered
        assert heater.heater_extra(cfg, NOW, warnings.append) == {
            "water_heater": {"delivered_kwh": 0.0}}
    assert len(warnings) == 2 and "water_heater: energy delivered today unavailable" in \
        warnings[0] and "today's whole energy is planned" in warnings[0]
    assert TOKEN not in warnings[0]


def test_the_source_is_validated_naming_its_keys(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "prices: {type: demo}\npv: {type: demo}\nload: {type: demo}\n"
        "state: {type: static}\nwater_heater: {delivered_today: {type: homeassistant, "
        "url: 'http://ha:8123', token: x, entity: sensor.x}}\n")
    with pytest.raises(ConfigError) as info:
        config_mod.load(tmp_path / "config.yaml")
    keys = {p.key_path for p in info.value.problems}
    assert {"water_heater.delivered_today.entity",
            "water_heater.delivered_today.entity_id"} <= keys
    (tmp_path / "config.yaml").write_text(
        "prices: {type: demo}\npv: {type: demo}\nload: {type: demo}\n"
        "state: {type: static}\nwater_heater: {delivered_today: {type: shelly}}\n")
    with pytest.raises(ConfigError, match=r"water_heater.delivered_today.type: expected one of "
                                          "homeassistant"):
        config_mod.load(tmp_path / "config.yaml")
    assert "homeassistant" in providers.available("device_energy")


def test_the_doctor_reads_it_once(tmp_path):
    now = pd.Timestamp.now(tz="UTC").floor("min")
    midnight = now.tz_convert("Europe/Berlin").normalize().tz_convert("UTC")
    kwh = _possible_kwh(now, 1.25)
    body = meter_payload(f"{kwh}", last_reset=midnight.isoformat(), changed=now.isoformat(),
                         reported=now.isoformat())
    with serve(route(body)) as ha:
        cfg = _config(tmp_path, ha.url)
        check = doctor.check_water_heater(cfg, now)
    assert (check.step, check.status) == ("heater", "OK")
    assert f"delivered {kwh:.2f} kWh today (homeassistant)" in check.message
    with serve(route(meter_payload("unavailable"))) as ha:
        check = doctor.check_water_heater(_config(tmp_path, ha.url), NOW)
    assert check.status == "FAIL" and f"{ENTITY} is unavailable" in check.message
    assert TOKEN not in check.message + check.fix
    assert heater_mod.NAME == WATER_HEATER  # the component's name, without importing cvxpy


def test_a_lifetime_counter_is_not_todays_energy(tmp_path):
    """A total_increasing lifetime meter that changed today passes the entity's own checks;
    more kWh than power_kw since midnight allows gives it away."""
    now = pd.Timestamp.now(tz="UTC").floor("min")
    body = meter_payload("1843.211", last_reset=None, changed=now.isoformat(),
                         reported=now.isoformat())
    warnings: list[str] = []
    with serve(route(body)) as ha:
        cfg = _config(tmp_path, ha.url)
        assert heater_mod.delivered_today_kwh(cfg, now, warnings.append) is None
    assert "1843.21 kWh, more than power_kw (3 kW)" in warnings[0]
    assert "utility_meter with cycle: daily" in warnings[0]
