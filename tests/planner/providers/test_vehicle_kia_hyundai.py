"""The Kia/Hyundai vehicle provider against a loopback server replaying the EU cloud's
cached status and forced refresh (issue 14): cached state by default, a forced refresh only
when the cloud's copy is old and within the daily budget (counted in SQL or a state file),
401, 429 with Retry-After, cloud errors, and no token in any error or log."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from loopback_http import Reply, recorded, serve

from planner import config as config_mod
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy
from planner.providers.vehicle.kia_hyundai import BASE_URLS, KiaHyundaiVehicle

FAST = RetryPolicy(timeout_s=0.5, retries=2, backoff_s=0.01, max_backoff_s=0.02,
                   max_retry_after_s=1.0)
TOKEN = "kia-eu-Acc3ssT0ken-7f1d2c9b8a"
VID = "a1b2c3d4-0000-4e5f-9abc-1234567890ab"
LATEST = f"/api/v1/spa/vehicles/{VID}/status/latest"
FORCED = f"/api/v1/spa/vehicles/{VID}/status"
NOW = pd.Timestamp("2026-08-03T10:00Z")  # 12:00 in Berlin


def _cfg(tmp_path, storage: bool = True) -> config_mod.HeliosConfig:
    return config_mod.from_mapping({"site": {"timezone": "Europe/Berlin"},
                                    "storage": {"url": f"sqlite:///{tmp_path / 'h.db'}",
                                                "enabled": storage}}, tmp_path)


def kia(url: str, cfg, **kw) -> KiaHyundaiVehicle:
    options = {"vehicle_id": VID, "access_token": TOKEN, "device_id": "dev-42",
               "base_url": url, "min_interval_s": 0, **kw}
    return KiaHyundaiVehicle(KiaHyundaiVehicle.Config(**options),
                             ProviderContext(cfg.site, NOW, cfg), FAST)


def _forced(srv) -> int:
    return sum(1 for r in srv.requests if r.path == FORCED)


def test_cached_state_is_read_without_waking_the_car(tmp_path):
    with serve({LATEST: recorded("kia_hyundai", "status_latest_charging.json"),
                FORCED: recorded("kia_hyundai", "status_forced.json")}) as srv:
        state = kia(srv.url, _cfg(tmp_path)).read(NOW)
    assert (state.soc_pct, state.plugged_in, state.charging, state.at_home) == \
        (55.0, True, True, True)
    # "20260803115500" is local (CEST): 09:55 UTC
    assert state.measured_at == pd.Timestamp("2026-08-03T09:55Z")
    assert state.source == "kia_hyundai cached status"
    assert [r.path for r in srv.requests] == [LATEST]  # 5 min old: no forced refresh
    req = srv.requests[0]
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert req.headers["ccsp-device-id"] == "dev-42"


def test_forced_refresh_only_within_the_daily_budget_counted_in_sql(tmp_path):
    cfg = _cfg(tmp_path)
    with serve({LATEST: recorded("kia_hyundai", "status_latest_old.json"),
                FORCED: recorded("kia_hyundai", "status_forced.json")}) as srv:
        # the cloud's copy is from 06:10 local (04:10 UTC), ~6 h old: older than 4 h
        first = kia(srv.url, cfg, force_refresh_per_day=2).read(NOW)
        assert _forced(srv) == 1
        assert (first.soc_pct, first.source) == (61.0, "kia_hyundai forced refresh")
        assert first.measured_at == pd.Timestamp("2026-08-03T10:04Z")
        assert first.at_home is True  # location of the cached status kept
        second = kia(srv.url, cfg, force_refresh_per_day=2).read(NOW + pd.Timedelta(hours=1))
        assert _forced(srv) == 2 and second.soc_pct == 61.0
        for hours in (2, 8, 23):  # budget used: the cloud's (old) copy, no forced refresh
            state = kia(srv.url, cfg, force_refresh_per_day=2).read(
                NOW + pd.Timedelta(hours=hours))
            assert _forced(srv) == 2, hours
            assert (state.soc_pct, state.source) == (48.0, "kia_hyundai cached status")
        # 24 h after the first one, a refresh is allowed again
        kia(srv.url, cfg, force_refresh_per_day=2).read(NOW + pd.Timedelta(hours=24, minutes=1))
        assert _forced(srv) == 3


def test_budget_counted_in_a_state_file_without_storage(tmp_path):
    cfg = _cfg(tmp_path, storage=False)
    path = tmp_path / "kia_refresh.json"
    with serve({LATEST: recorded("kia_hyundai", "status_latest_old.json"),
                FORCED: recorded("kia_hyundai", "status_forced.json")}) as srv:
        for minutes in (0, 30, 60, 90):  # a new provider (process) every time
            kia(srv.url, cfg, force_refresh_per_day=1, state_file=str(path)).read(
                NOW + pd.Timedelta(minutes=minutes))
        assert _forced(srv) == 1
    assert path.exists() and TOKEN not in path.read_text()


def test_no_storage_and_no_state_file_means_no_forced_refresh(tmp_path):
    with serve({LATEST: recorded("kia_hyundai", "status_latest_old.json"),
                FORCED: recorded("kia_hyundai", "status_forced.json")}) as srv:
        state = kia(srv.url, _cfg(tmp_path, storage=False)).read(NOW)
    assert _forced(srv) == 0 and state.soc_pct == 48.0


def test_budget_0_never_forces(tmp_path):
    with serve({LATEST: recorded("kia_hyundai", "status_latest_old.json"),
                FORCED: recorded("kia_hyundai", "status_forced.json")}) as srv:
        kia(srv.url, _cfg(tmp_path), force_refresh_per_day=0).read(NOW)
    assert _forced(srv) == 0


def test_cached_state_reused_within_min_interval(tmp_path):
    cfg = _cfg(tmp_path)
    with serve({LATEST: recorded("kia_hyundai", "status_latest_charging.json")}) as srv:
        kia(srv.url, cfg, min_interval_s=900).read(NOW)
        again = kia(srv.url, cfg, min_interval_s=900).read(NOW + pd.Timedelta(minutes=10))
        assert len(srv.requests) == 1 and again.from_cache and again.soc_pct == 55.0
        kia(srv.url, cfg, min_interval_s=900).read(NOW + pd.Timedelta(minutes=16))
        assert len(srv.requests) == 2


def test_away_from_home(tmp_path):
    with serve({LATEST: recorded("kia_hyundai", "status_latest_charging.json")}) as srv:
        state = kia(srv.url, _cfg(tmp_path, storage=False), home_latitude=48.137,
                    home_longitude=11.575).read(NOW)
    assert state.at_home is False


def test_401_names_the_token_key_never_the_token(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with serve({LATEST: Reply(401, f'{{"retCode":"F","resCode":"4001","token":"{TOKEN}"}}')}
               ) as srv, pytest.raises(ProviderConfigError) as err:
        kia(srv.url, _cfg(tmp_path)).read(NOW)
    text = str(err.value)
    assert "HTTP 401" in text and "vehicle.access_token" in text
    assert TOKEN not in text and TOKEN not in caplog.text
    assert len(srv.requests) == 1


def test_429_with_retry_after_is_retried(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    replies = [Reply(429, "{}", headers={"Retry-After": "0.2"}),
               recorded("kia_hyundai", "status_latest_charging.json")]
    with serve({LATEST: replies}) as srv:
        state = kia(srv.url, _cfg(tmp_path, storage=False)).read(NOW)
    assert state.soc_pct == 55.0 and len(srv.requests) == 2
    assert TOKEN not in caplog.text


def test_429_persisting_is_unavailable(tmp_path):
    with serve({LATEST: Reply(429, "{}", headers={"Retry-After": "0.05"})}) as srv, \
            pytest.raises(ProviderUnavailable) as err:
        kia(srv.url, _cfg(tmp_path, storage=False)).read(NOW)
    assert "HTTP 429" in str(err.value) and len(srv.requests) == FAST.retries + 1


def test_cloud_error_answer_is_unavailable(tmp_path):
    with serve({LATEST: recorded("kia_hyundai", "error_4004.json")}) as srv, \
            pytest.raises(ProviderUnavailable) as err:
        kia(srv.url, _cfg(tmp_path)).read(NOW)
    assert "resCode 4004" in str(err.value) and len(srv.requests) == 1


def test_brand_chooses_the_eu_endpoint():
    cfg = config_mod.from_mapping({"storage": {"enabled": False}})
    p = KiaHyundaiVehicle(KiaHyundaiVehicle.Config(vehicle_id=VID, access_token=TOKEN,
                                                   brand="hyundai"),
                          ProviderContext(cfg.site, NOW, cfg))
    assert p.config.base_url == "" and p.config.force_refresh_per_day == 2
    assert BASE_URLS["hyundai"] == "https://prd.eu-ccapi.hyundai.com:8080"
