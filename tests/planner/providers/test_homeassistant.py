"""Home Assistant state and load providers against a loopback server replaying HA's REST
payload shapes (``/api/states/<entity>``, ``/api/history/period/<start>`` with
``minimal_response``): SoC, unavailable / unknown, the token only in the Authorization header
and never in an error or a log line, power and energy history to hourly load."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
import yaml
from loopback_http import Reply, serve

from planner import config as config_mod
from planner import providers
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy
from planner.providers.load.homeassistant import HomeAssistantLoad, hourly_load_kw
from planner.providers.state.homeassistant import HomeAssistantState
from planner.providers.temperature.homeassistant import HomeAssistantTemperature

FAST = RetryPolicy(timeout_s=0.5, retries=0, backoff_s=0.01)
TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.ha-long-lived.s3cr3t"
NOW = pd.Timestamp("2026-05-01T10:00:00Z")
CTX = ProviderContext(config_mod.default().site, NOW)
SOC = "sensor.victron_battery_soc"
HOUSE = "sensor.house_consumption"


def state_payload(state: str = "63.5", unit: str | None = "%",
                  reported: str = "2026-05-01T09:59:41.482117+00:00") -> str:
    """The shape of HA's ``GET /api/states/<entity_id>`` answer."""
    attributes = {"state_class": "measurement", "device_class": "battery",
                  "friendly_name": "Battery State of charge"}
    if unit is not None:
        attributes["unit_of_measurement"] = unit
    return json.dumps({
        "entity_id": SOC, "state": state, "attributes": attributes,
        "last_changed": "2026-05-01T09:41:02.107415+00:00",
        "last_reported": reported, "last_updated": "2026-05-01T09:41:02.107415+00:00",
        "context": {"id": "01HWX6Q3M2K5J4T0Z8B7R9C1DE", "parent_id": None, "user_id": None}})


def history_payload(times, states, unit: str, entity: str = HOUSE,
                    device_class: str = "power") -> str:
    """HA's history with ``minimal_response``: attributes on the first row only."""
    rows = []
    for i, (t, s) in enumerate(zip(times, states, strict=True)):
        when = pd.Timestamp(t).isoformat(timespec="microseconds")
        if i == 0:
            rows.append({"entity_id": entity, "state": s, "attributes": {
                "state_class": "measurement" if device_class == "power" else
                "total_increasing", "unit_of_measurement": unit,
                "device_class": device_class, "friendly_name": "House consumption"},
                "last_changed": when, "last_updated": when})
        else:
            rows.append({"state": s, "last_changed": when})
    return json.dumps([rows])


def soc_provider(url: str, **kw) -> HomeAssistantState:
    return HomeAssistantState(HomeAssistantState.Config(url=url, token=TOKEN, entity_id=SOC,
                                                        **kw), CTX, FAST)


def history_path(window_days: int = 28) -> str:
    start = (NOW - pd.Timedelta(days=window_days)).floor("h")
    return "/api/history/period/" + quote(start.isoformat(), safe="")


def load_provider(url: str, **kw) -> HomeAssistantLoad:
    return HomeAssistantLoad(HomeAssistantLoad.Config(url=url, token=TOKEN, entity_id=HOUSE,
                                                      **kw), CTX, FAST)


# ------------------------------------------------------------------ state


def test_soc_from_the_state_endpoint_with_the_token_in_the_header_only():
    with serve({f"/api/states/{SOC}": Reply(200, state_payload())}) as ha:
        assert soc_provider(ha.url).read(NOW) == 63.5
    seen = ha.requests[0]
    assert seen.method == "GET" and seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in seen.path and not seen.query


@pytest.mark.parametrize("state", ["unavailable", "unknown"])
def test_unavailable_or_unknown_is_transient_and_names_the_entity(state):
    with serve({f"/api/states/{SOC}": Reply(200, state_payload(state))}) as ha:
        with pytest.raises(ProviderUnavailable, match=f"{SOC} is {state}"):
            soc_provider(ha.url).read(NOW)


def test_a_refused_token_never_appears_in_the_error_or_the_log(caplog):
    caplog.set_level(logging.DEBUG)
    body = '{"message": "Invalid access token or password: ' + TOKEN + '"}'
    with serve({f"/api/states/{SOC}": Reply(401, body)}) as ha:
        with pytest.raises(ProviderConfigError) as err:
            soc_provider(ha.url).read(NOW)
    assert "HTTP 401" in str(err.value) and "secrets.yaml" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text


def test_an_unknown_entity_is_a_config_error_naming_it():
    with serve({}) as ha:  # HA answers 404 {"message": "Entity not found."}
        with pytest.raises(ProviderConfigError, match=f"no entity '{SOC}'"):
            soc_provider(ha.url).read(NOW)


def test_a_soc_entity_not_in_percent_is_refused():
    with serve({f"/api/states/{SOC}": Reply(200, state_payload("13.2", unit="kWh"))}) as ha:
        with pytest.raises(ProviderConfigError, match="'kWh', expected a state of charge"):
            soc_provider(ha.url).read(NOW)


def test_a_value_ha_has_not_received_for_long_is_stale():
    old = Reply(200, state_payload(reported="2026-05-01T07:00:00+00:00"))
    with serve({f"/api/states/{SOC}": old}) as ha:
        with pytest.raises(ProviderUnavailable, match="10800 s ago"):
            soc_provider(ha.url).read(NOW)
        assert soc_provider(ha.url, max_age_s=0).read(NOW) == 63.5


def test_configured_with_a_secret_through_the_registry(tmp_path):
    (tmp_path / "secrets.yaml").write_text(yaml.safe_dump({"ha_token": TOKEN}))
    with serve({f"/api/states/{SOC}": Reply(200, state_payload("71"))}) as ha:
        text = (f"state: {{type: homeassistant, url: '{ha.url}', token: !secret ha_token, "
                f"entity_id: {SOC}}}\nprices: {{type: demo}}\npv: {{type: demo}}\n"
                "load: {type: demo}\n")
        (tmp_path / "config.yaml").write_text(text)
        cfg = config_mod.load(tmp_path / "config.yaml")
        provider = providers.create("state", cfg.state, ProviderContext(cfg.site, NOW, cfg))
        assert provider.read(NOW) == 71.0
    assert TOKEN in cfg.secret_values  # redacted from logs and messages (core.logsetup)


# ------------------------------------------------------------------ load


def test_power_history_is_averaged_over_time_not_over_samples():
    changes = pd.Series([1000.0, 3000.0, np.nan, 500.0], index=pd.DatetimeIndex([
        "2026-05-01T06:00Z", "2026-05-01T06:30Z", "2026-05-01T07:00Z", "2026-05-01T08:00Z"]))
    kw = hourly_load_kw(changes, "power", 1e-3, pd.Timestamp("2026-05-01T06:00Z"),
                        pd.Timestamp("2026-05-01T09:00Z"))
    assert kw.iloc[0] == pytest.approx(2.0)        # 30 min at 1 kW, 30 min at 3 kW
    assert np.isnan(kw.iloc[1])                    # unavailable for the whole hour: a gap
    assert kw.iloc[2] == pytest.approx(0.5)


def test_energy_meter_history_with_a_reset():
    hours = pd.date_range("2026-05-01T00:00Z", periods=5, freq="1h")
    changes = pd.Series([100.0, 100.8, 102.0, 0.3, 1.0], index=hours)  # reset at 03:00
    kw = hourly_load_kw(changes, "energy", 1.0, hours[0], hours[-1])
    assert kw.iloc[0] == pytest.approx(0.8) and kw.iloc[1] == pytest.approx(1.2)
    assert np.isnan(kw.iloc[2]) and kw.iloc[3] == pytest.approx(0.7)


def _house_w(t: pd.Timestamp) -> float:
    local_h = t.tz_convert("Europe/Berlin").hour
    return 300.0 + (1200.0 if 18 <= local_h < 21 else 0.0)


def test_load_forecast_from_a_power_entity_history():
    times = pd.date_range(NOW - pd.Timedelta(days=14), NOW, freq="10min", inclusive="left")
    states = [f"{_house_w(t):.1f}" for t in times]
    states[100] = "unavailable"
    routes = {f"{history_path()}?filter_entity_id={HOUSE}":
              Reply(200, history_payload(times, states, "W"))}
    with serve(routes) as ha:
        series = load_provider(ha.url, safety_margin_pct=0).forecast(
            NOW, NOW + pd.Timedelta(hours=24))
    seen = ha.requests[0]
    assert seen.query["end_time"] == NOW.isoformat()
    assert seen.query["significant_changes_only"] == "0"  # every change, not just "significant"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    evening = series.values[[t.tz_convert("Europe/Berlin").hour == 19
                             for t in series.values.index]]
    night = series.values[[t.tz_convert("Europe/Berlin").hour == 3
                           for t in series.values.index]]
    assert evening.iloc[0] == pytest.approx(1.5, rel=0.02)
    assert night.iloc[0] == pytest.approx(0.3, rel=0.02)
    assert "Home Assistant sensor.house_consumption" in series.source


def test_too_little_history_is_transient_and_a_wrong_unit_a_config_error():
    times = pd.date_range(NOW - pd.Timedelta(days=2), NOW, freq="1h", inclusive="left")
    short = history_payload(times, ["400"] * len(times), "W")
    with serve({history_path(): Reply(200, short)}) as ha:
        with pytest.raises(ProviderUnavailable, match="only 2.0 days"):
            load_provider(ha.url).forecast(NOW, NOW + pd.Timedelta(hours=6))
    temp = history_payload(times, ["21.5"] * len(times), "°C", device_class="temperature")
    with serve({history_path(): Reply(200, temp)}) as ha:
        with pytest.raises(ProviderConfigError, match="'°C'; expected power"):
            load_provider(ha.url).forecast(NOW, NOW + pd.Timedelta(hours=6))


# ------------------------------------------------------------------ tank temperature


def test_tank_temperature_in_celsius_unavailable_wrong_unit_and_stale():
    """water_heater.tank.temperature: the same payload with a °C unit; HA's no-value words,
    another unit and an old reading are refused like the SoC's."""
    def provider(url: str, **kw) -> HomeAssistantTemperature:
        return HomeAssistantTemperature(HomeAssistantTemperature.Config(
            url=url, token=TOKEN, entity_id=SOC, **kw), CTX, FAST)

    with serve({f"/api/states/{SOC}": Reply(200, state_payload("57.5", unit="°C"))}) as ha:
        assert provider(ha.url).read(NOW) == 57.5
    with serve({f"/api/states/{SOC}": Reply(200, state_payload("unknown", unit="°C"))}) as ha:
        with pytest.raises(ProviderUnavailable, match=f"{SOC} is unknown in Home Assistant"):
            provider(ha.url).read(NOW)
    with serve({f"/api/states/{SOC}": Reply(200, state_payload("135", unit="°F"))}) as ha:
        with pytest.raises(ProviderConfigError, match="'°F', expected °C"):
            provider(ha.url).read(NOW)
    old = (NOW - pd.Timedelta(hours=2)).isoformat()
    with serve({f"/api/states/{SOC}": Reply(200, state_payload("57.5", "°C", old))}) as ha:
        with pytest.raises(ProviderUnavailable, match="last reported 7200 s ago"):
            provider(ha.url).read(NOW)
        assert provider(ha.url, max_age_s=0).read(NOW) == 57.5
