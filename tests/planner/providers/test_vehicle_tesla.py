"""The Tesla vehicle provider against a loopback server replaying Fleet API ``vehicle_data``
answers (issue 14): state, at home, SQL cache per min_interval_s, an asleep car never woken,
401, 429 with Retry-After, and no token in any error or log."""

from __future__ import annotations

import logging
import time

import pandas as pd
import pytest
from loopback_http import Reply, recorded, serve

from executor.configspec import build
from planner import config as config_mod
from planner import providers
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy
from planner.providers.vehicle.tesla import TeslaVehicle

FAST = RetryPolicy(timeout_s=0.5, retries=2, backoff_s=0.01, max_backoff_s=0.02,
                   max_retry_after_s=1.0)
TOKEN = "eyJhbGciOiJSUzI1NiJ9.fleet-Zk3Xq9TOKENpart.s1gn4tur3"
VIN = "TEST00000000VIN01"
PATH = f"/api/1/vehicles/{VIN}/vehicle_data"
NOW = pd.Timestamp("2026-08-03T10:02Z")


def _cfg(tmp_path, storage: bool = True) -> config_mod.HeliosConfig:
    return config_mod.from_mapping({"storage": {"url": f"sqlite:///{tmp_path / 'h.db'}",
                                                "enabled": storage}}, tmp_path)


def tesla(url: str, cfg, **kw) -> TeslaVehicle:
    return TeslaVehicle(TeslaVehicle.Config(vin=VIN, token=TOKEN, base_url=url, **kw),
                        ProviderContext(cfg.site, NOW, cfg), FAST)


def test_vehicle_data_charging_at_home(tmp_path):
    with serve({PATH: recorded("tesla", "vehicle_data_charging.json")}) as srv:
        state = tesla(srv.url, _cfg(tmp_path, storage=False)).read(NOW)
    assert (state.soc_pct, state.plugged_in, state.charging, state.at_home) == \
        (42.0, True, True, True)
    assert state.measured_at == pd.Timestamp("2026-08-03T10:00Z") and not state.from_cache
    assert state.source == "tesla vehicle_data (Charging)"
    req = srv.requests[0]
    assert req.method == "GET" and req.path == PATH
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    # location only comes when location_data is asked for (firmware 2023.38+)
    assert req.query["endpoints"].split(";") == ["charge_state", "drive_state", "location_data"]


def test_unplugged_car_away_from_home(tmp_path):
    with serve({PATH: recorded("tesla", "vehicle_data_away.json")}) as srv:
        state = tesla(srv.url, _cfg(tmp_path, storage=False)).read(NOW)
    assert (state.soc_pct, state.plugged_in, state.charging, state.at_home) == \
        (67.0, False, False, False)


@pytest.mark.parametrize(("radius_m", "home"), [(150.0, False), (500.0, True)])
def test_at_home_is_within_the_radius(tmp_path, radius_m, home):
    # the car is at 52.52031 N 13.40062 E; a home 0.0027 deg further north is ~300 m away
    with serve({PATH: recorded("tesla", "vehicle_data_charging.json")}) as srv:
        state = tesla(srv.url, _cfg(tmp_path, storage=False), home_radius_m=radius_m,
                      home_latitude=52.52301, home_longitude=13.40062).read(NOW)
    assert state.at_home is home


def test_called_at_most_every_min_interval_the_state_kept_in_sql(tmp_path):
    cfg = _cfg(tmp_path)
    with serve({PATH: recorded("tesla", "vehicle_data_charging.json")}) as srv:
        first = tesla(srv.url, cfg).read(NOW)
        for minutes in (5, 10, 14):  # a new provider each plan, as `helios plan` does
            again = tesla(srv.url, cfg).read(NOW + pd.Timedelta(minutes=minutes))
            assert len(srv.requests) == 1, minutes
            assert again.from_cache and again.soc_pct == first.soc_pct
            assert (again.plugged_in, again.charging, again.at_home) == (True, True, True)
            assert again.measured_at == first.measured_at
        tesla(srv.url, cfg).read(NOW + pd.Timedelta(minutes=15))
        assert len(srv.requests) == 2
    assert TeslaVehicle.Config.__dataclass_fields__["min_interval_s"].default == 900


def test_asleep_car_is_not_woken_and_the_cached_state_is_used(tmp_path):
    cfg = _cfg(tmp_path)
    asleep = recorded("tesla", "asleep_408.json", status=408)
    with serve({PATH: [recorded("tesla", "vehicle_data_charging.json"), asleep]}) as srv:
        tesla(srv.url, cfg).read(NOW)
        later = NOW + pd.Timedelta(minutes=20)
        state = tesla(srv.url, cfg).read(later)
        assert state.from_cache and state.soc_pct == 42.0
        assert state.source == "tesla vehicle_data (Charging) (asleep)"
        assert state.measured_at == pd.Timestamp("2026-08-03T10:00Z")
        assert len(srv.requests) == 2  # one try, no retry of a 408
        # the asleep answer counts as an answer: not asked again within min_interval_s
        tesla(srv.url, cfg).read(later + pd.Timedelta(minutes=10))
        assert len(srv.requests) == 2
    assert all(r.method == "GET" and r.path == PATH for r in srv.requests)  # never wake_up


def test_asleep_in_the_body_counts_as_asleep(tmp_path):
    body = '{"response": {"state": "asleep", "vin": "TEST00000000VIN01"}}'
    with serve({PATH: Reply(200, body)}) as srv, \
            pytest.raises(ProviderUnavailable) as err:
        tesla(srv.url, _cfg(tmp_path)).read(NOW)
    assert "asleep" in str(err.value) and "not woken" in str(err.value)
    assert len(srv.requests) == 1


def test_asleep_with_nothing_cached_is_unavailable(tmp_path):
    with serve({PATH: recorded("tesla", "asleep_408.json", status=408)}) as srv, \
            pytest.raises(ProviderUnavailable) as err:
        tesla(srv.url, _cfg(tmp_path)).read(NOW)
    assert "HTTP 408" in str(err.value) and "no earlier state is cached" in str(err.value)


def test_401_names_the_token_key_never_the_token(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with serve({PATH: recorded("tesla", "unauthorized_401.json", status=401)}) as srv, \
            pytest.raises(ProviderConfigError) as err:
        tesla(srv.url, _cfg(tmp_path)).read(NOW)
    text = str(err.value)
    assert "HTTP 401" in text and "vehicle.token" in text and "vehicle (tesla)" in text
    assert TOKEN not in text and TOKEN not in caplog.text
    assert len(srv.requests) == 1  # a bad token is not retried


def test_429_waits_retry_after_then_succeeds(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    replies = [Reply(429, '{"error": "rate limited"}', headers={"Retry-After": "0.3"}),
               recorded("tesla", "vehicle_data_charging.json")]
    with serve({PATH: replies}) as srv:
        t0 = time.monotonic()
        state = tesla(srv.url, _cfg(tmp_path, storage=False)).read(NOW)
        elapsed = time.monotonic() - t0
    assert state.soc_pct == 42.0 and len(srv.requests) == 2
    assert elapsed >= 0.3
    assert TOKEN not in caplog.text


def test_429_too_long_retry_after_is_unavailable_at_once(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with serve({PATH: Reply(429, f'{{"error": "slow down {TOKEN}"}}',
                            headers={"Retry-After": "3600"})}) as srv, \
            pytest.raises(ProviderUnavailable) as err:
        tesla(srv.url, _cfg(tmp_path, storage=False)).read(NOW)
    assert "HTTP 429" in str(err.value) and "Retry-After 3600" in str(err.value)
    assert len(srv.requests) == 1
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text


def test_registry_and_config_validation():
    assert "vehicle" in providers.KINDS
    assert providers.available("vehicle") == ["kia_hyundai", "manual", "tesla"]
    problems: list = []
    assert build(providers.config_class("vehicle", "tesla"), {"token": TOKEN},
                 "ev.vehicle", problems) is None
    assert any(p.key_path == "ev.vehicle.vin" for p in problems), problems
    assert all(TOKEN not in str(p) for p in problems)
