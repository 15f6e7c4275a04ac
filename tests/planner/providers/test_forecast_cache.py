"""Each web provider is called at most every ``min_interval_s``; in between the run plans on
its last answer, kept in SQL and shown as cached (issue 16: Solcast allows ~10 calls a day,
the planner runs 288 times)."""

from __future__ import annotations

import pandas as pd
import pytest
from loopback_http import Reply, recorded, serve

from planner import config as config_mod
from planner.inputs import cache
from planner.inputs.gather import gather
from planner.plan.record import input_summary
from planner.providers.base import TimeSeries

NOW = pd.Timestamp("2023-10-28T10:07Z")


def _routes() -> dict:
    return {"/api/DayAheadPriceIndices?date=2023-10-28": recorded("nordpool",
                                                                   "SE3_2023-10-28.json"),
            "/api/DayAheadPriceIndices?date=2023-10-29": recorded("nordpool",
                                                                   "SE3_2023-10-29.json"),
            "/api/DayAheadPriceIndices?date=2023-10-30": Reply(204)}


def _cfg(site_dir, url: str, **prices) -> config_mod.HeliosConfig:
    return config_mod.load(site_dir(start="2023-10-28T00:00:00Z", hours=72, config={
        "prices": {"type": "nordpool", "area": "SE3", "base_url": url + "/api", **prices}}))


def test_prices_are_fetched_once_per_min_interval_and_shown_as_cached(site_dir):
    with serve(_routes()) as srv:
        cfg = _cfg(site_dir, srv.url)
        assert cfg.prices.options.min_interval_s == 900  # the documented default
        first = gather(cfg, NOW)
        calls = len(srv.requests)
        assert calls >= 2
        st = next(s for s in first.status if s.kind == "prices")
        assert st.provider == "nordpool" and st.fetched_at is None
        # 5 and 14 minutes later: the cached answer, no request
        for minutes in (5, 14):
            again = gather(cfg, NOW + pd.Timedelta(minutes=minutes))
            assert len(srv.requests) == calls, minutes
            st = next(s for s in again.status if s.kind == "prices")
            assert st.provider == "nordpool (cached)" and not st.degraded
            assert st.fetched_at == NOW
            offset = len(first.index[first.index < again.index[0]])
            assert list(again.spot_eur_per_kwh) == \
                list(first.spot_eur_per_kwh[offset:offset + again.n])
        row = next(r for r in input_summary(again.status, NOW + pd.Timedelta(minutes=14))
                   if r["kind"] == "prices")
        assert row["age_s"] == 14 * 60 and row["provider"] == "nordpool (cached)"
        # after min_interval_s: asked again
        gather(cfg, NOW + pd.Timedelta(minutes=16))
        assert len(srv.requests) == 2 * calls


def test_min_interval_0_or_no_storage_calls_every_run(site_dir):
    with serve(_routes()) as srv:
        cfg = _cfg(site_dir, srv.url, min_interval_s=0)
        gather(cfg, NOW)
        calls = len(srv.requests)
        gather(cfg, NOW + pd.Timedelta(minutes=5))
        assert len(srv.requests) == 2 * calls
    with serve(_routes()) as srv:
        cfg = config_mod.load(site_dir(start="2023-10-28T00:00:00Z", hours=72, config={
            "prices": {"type": "nordpool", "area": "SE3", "base_url": srv.url + "/api"},
            "storage": {"enabled": False}}))
        gather(cfg, NOW)
        calls = len(srv.requests)
        gather(cfg, NOW + pd.Timedelta(minutes=5))
        assert len(srv.requests) == 2 * calls


def test_solcast_is_limited_to_under_10_calls_a_day_and_new_options_fetch_anew(tmp_path):
    doc = {"pv": {"type": "solcast", "api_key": "k", "site_id": "abc"},
           "storage": {"url": f"sqlite:///{tmp_path / 'h.db'}"}}
    cfg = config_mod.from_mapping(doc)
    assert cfg.pv.options.min_interval_s == 9000
    calls = []

    def call() -> TimeSeries:
        calls.append(1)
        index = pd.date_range("2023-10-28T00:00Z", periods=96, freq="h", name="ts_utc")
        return TimeSeries(pd.Series(float(len(calls)), index=index), 3600, "solcast API")

    runs = pd.date_range(NOW, periods=288, freq="5min")  # one day of `helios plan`
    got = [cache.fetch_limited("pv", cfg, t, t.floor("15min"), call) for t in runs]
    assert len(calls) == 10 and 86400 / 9000 <= 10  # the first call + one every 2.5 h
    assert got[1].fetched_at == NOW and got[1].series.values.iloc[0] == 1.0
    assert got[1].series.source == "solcast API"
    other = config_mod.from_mapping({**doc, "pv": {**doc["pv"], "site_id": "other"}})
    assert cache.fetch_limited("pv", other, runs[1], runs[1], call).fetched_at is None
    assert cache.cache_key("solcast", cfg.pv.options) != cache.cache_key("solcast",
                                                                          other.pv.options)


def test_a_cached_series_that_no_longer_covers_now_is_not_used(tmp_path):
    cfg = config_mod.from_mapping({"pv": {"type": "solcast", "api_key": "k", "site_id": "a"},
                                   "storage": {"url": f"sqlite:///{tmp_path / 'h.db'}"}})
    calls = []

    def call() -> TimeSeries:
        calls.append(1)
        index = pd.date_range("2023-10-28T10:00Z", periods=2, freq="h", name="ts_utc")
        return TimeSeries(pd.Series(1.0, index=index), 3600, "solcast API")

    cache.fetch_limited("pv", cfg, NOW, NOW.floor("15min"), call)
    later = NOW + pd.Timedelta(hours=2)  # within 9000 s, but after the series' end
    assert cache.fetch_limited("pv", cfg, later, later.floor("15min"), call).fetched_at is None
    assert len(calls) == 2


@pytest.mark.parametrize("name", ["tibber", "nordpool", "entsoe", "openmeteo", "solcast"])
def test_every_web_provider_documents_its_min_interval(name):
    kind = "pv" if name in ("openmeteo", "solcast") else "prices"
    rows = {r[0]: r for r in config_mod.explain()}
    row = rows[f"{kind}.min_interval_s"] if f"{kind}.min_interval_s" in rows else next(
        r for k, r in rows.items() if k.endswith("min_interval_s") and name in str(r))
    assert row[2] == "s" and "cached" in row[3]
