"""Recorded-payload tests of the web price providers (Tibber, Nord Pool, ENTSO-E) and the
shared HTTP policy, against a loopback server (issue 4)."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from loopback_http import Reply, recorded, serve

from planner import config as config_mod
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy
from planner.providers.prices.entsoe import EntsoePrices, parse_a44
from planner.providers.prices.nordpool import NordpoolPrices
from planner.providers.prices.tibber import TibberPrices

FAST = RetryPolicy(timeout_s=0.3, retries=2, backoff_s=0.01, max_backoff_s=0.02,
                   max_retry_after_s=1.0)
TOKEN = "5K4MVS-OjfWhK_4yrjOlFe1F6kJXPVf7eQYggo8ebAE"
CTX = ProviderContext(config_mod.default().site, pd.Timestamp("2023-07-01T10:00Z"))


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def tibber(url: str, **kw) -> TibberPrices:
    return TibberPrices(TibberPrices.Config(token=TOKEN, base_url=url + "/v1-beta/gql", **kw),
                        CTX, FAST)


def nordpool(url: str, **kw) -> NordpoolPrices:
    return NordpoolPrices(NordpoolPrices.Config(area="SE3", base_url=url + "/api", **kw),
                          CTX, FAST)


def entsoe(url: str, area: str = "NL") -> EntsoePrices:
    return EntsoePrices(EntsoePrices.Config(token=TOKEN, area=area, base_url=url + "/api"),
                        CTX, FAST)


# ------------------------------------------------------------------ Tibber


def test_tibber_normal_day_with_tomorrow_and_negative_prices():
    with serve({"/v1-beta/gql": recorded("tibber", "hourly_2023-07-01.json")}) as srv:
        got = tibber(srv.url).fetch(ts("2023-07-01T10:00Z"), ts("2023-07-03T10:00Z"))
    s = got.values
    assert got.resolution_s == 3600 and len(s) == 48
    assert s.index[0] == ts("2023-06-30T22:00Z") and str(s.index.tz) == "UTC"
    assert s.min() == pytest.approx(-0.5 + 0.01)  # energy = spot + margin, negative kept
    req = srv.requests[0]
    assert req.method == "POST" and req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert b"priceInfo" in req.body and b"QUARTER_HOURLY" not in req.body


def test_tibber_tomorrow_not_published_is_not_an_error():
    with serve({"/v1-beta/gql": recorded("tibber", "tomorrow_unpublished_2023-07-01.json")}
               ) as srv:
        got = tibber(srv.url).fetch(ts("2023-07-01T10:00Z"), ts("2023-07-03T10:00Z"))
    assert len(got.values) == 24 and got.end == ts("2023-07-01T22:00Z")


def test_tibber_dst_autumn_day_has_25_hours():
    with serve({"/v1-beta/gql": recorded("tibber", "dst_autumn_2023-10-29.json")}) as srv:
        got = tibber(srv.url).fetch(ts("2023-10-29T10:00Z"), ts("2023-10-30T10:00Z"))
    idx = got.values.index
    assert len(idx) == 25 and idx.is_unique and idx.is_monotonic_increasing
    assert (idx[1:] - idx[:-1] == pd.Timedelta(hours=1)).all()
    assert idx[0] == ts("2023-10-28T22:00Z") and got.end == ts("2023-10-29T23:00Z")


def test_tibber_quarter_hourly():
    with serve({"/v1-beta/gql": recorded("tibber", "quarter_hourly_2026-04-30.json")}) as srv:
        got = tibber(srv.url, resolution="quarter_hourly").fetch(
            ts("2026-04-30T10:00Z"), ts("2026-05-02T10:00Z"))
    assert got.resolution_s == 900 and len(got.values) == 192
    assert b"priceInfo(resolution: QUARTER_HOURLY)" in srv.requests[0].body


def test_tibber_graphql_unauthenticated_is_a_config_error_without_the_token():
    with serve({"/v1-beta/gql": recorded("tibber", "unauthenticated.json")}) as srv, \
            pytest.raises(ProviderConfigError, match="rejected the token") as err:
        tibber(srv.url).fetch(ts("2023-07-01T10:00Z"), ts("2023-07-02T10:00Z"))
    assert TOKEN not in str(err.value)


# ------------------------------------------------------------------ Nord Pool


def test_nordpool_uses_the_package_request_and_converts_eur_per_mwh():
    with serve({"/api/DayAheadPriceIndices?date=2023-10-28": recorded("nordpool",
                                                                       "SE3_2023-10-28.json"),
                "/api/DayAheadPriceIndices?date=2023-10-29": recorded("nordpool",
                                                                       "SE3_2023-10-29.json"),
                "/api/DayAheadPriceIndices?date=2023-10-30": Reply(204)}) as srv:
        got = nordpool(srv.url).fetch(ts("2023-10-28T10:00Z"), ts("2023-10-30T10:00Z"))
    q = srv.requests[0].query
    assert q["indexNames"] == "SE3" and q["market"] == "DayAhead" and q["currency"] == "EUR"
    assert q["resolutionInMinutes"] == "60"
    # 2023-10-29 has 25 hours (DST); 2023-10-30 is not published yet (204)
    s = got.values
    assert len(s) == 24 + 25 and s.index.is_unique
    assert s.loc[ts("2023-10-28T22:00Z")] == pytest.approx(34.33 / 1000)


def test_nordpool_tomorrow_not_published_204_ends_the_series():
    with serve({"/api/DayAheadPriceIndices?date=2023-10-29": recorded("nordpool",
                                                                       "SE3_2023-10-29.json"),
                "/api/DayAheadPriceIndices?date=2023-10-30": Reply(204)}) as srv:
        got = nordpool(srv.url).fetch(ts("2023-10-29T10:00Z"), ts("2023-10-30T20:00Z"))
    assert got.end == ts("2023-10-29T23:00Z") and len(srv.requests) == 2


def test_nordpool_quarter_hourly_with_negative_prices():
    with serve({"/api/DayAheadPriceIndices?date=2026-04-30": recorded(
            "nordpool", "SE3_2026-04-30_15min.json")}) as srv:
        got = nordpool(srv.url, resolution_min=15).fetch(ts("2026-04-30T10:00Z"),
                                                         ts("2026-04-30T20:00Z"))
    assert got.resolution_s == 900 and len(got.values) == 96
    assert srv.requests[0].query["resolutionInMinutes"] == "15"


def test_nordpool_unknown_area_is_a_config_error():
    with pytest.raises(ProviderConfigError, match="unknown area 'XX9'"):
        NordpoolPrices(NordpoolPrices.Config(area="XX9"), CTX, FAST)


def test_nordpool_today_unpublished_is_unavailable():
    with serve({"/api/DayAheadPriceIndices": Reply(204)}) as srv, \
            pytest.raises(ProviderUnavailable, match="no prices published for SE3"):
        nordpool(srv.url).fetch(ts("2023-10-29T10:00Z"), ts("2023-10-30T10:00Z"))


# ------------------------------------------------------------------ ENTSO-E


def test_entsoe_a44_hourly_fills_a03_gaps_and_keeps_negative_prices():
    with serve({"/api": recorded("entsoe", "A44_NL_2023-07-02.xml")}) as srv:
        got = entsoe(srv.url).fetch(ts("2023-07-01T22:00Z"), ts("2023-07-02T22:00Z"))
    s = got.values
    assert len(s) == 24 and got.resolution_s == 3600
    assert s.min() == pytest.approx(-0.5)
    q = srv.requests[0].query
    assert q["documentType"] == "A44" and q["in_Domain"] == "10YNL----------L"
    assert q["securityToken"] == TOKEN


def test_entsoe_quarter_hourly():
    with serve({"/api": recorded("entsoe", "A44_DE-LU_2026-04-30_15min.xml")}) as srv:
        got = entsoe(srv.url, "DE-LU").fetch(ts("2026-04-29T22:00Z"), ts("2026-04-30T22:00Z"))
    assert got.resolution_s == 900 and len(got.values) == 96


def test_entsoe_no_data_acknowledgement():
    assert parse_a44(recorded("entsoe", "no_data.xml").body) is None
    with serve({"/api": recorded("entsoe", "no_data.xml")}) as srv, \
            pytest.raises(ProviderUnavailable, match="no prices published for NL"):
        entsoe(srv.url).fetch(ts("2023-07-03T22:00Z"), ts("2023-07-04T22:00Z"))


# ------------------------------------------------------------------ error cases, all three

def _call(kind: str, url: str):
    start, end = ts("2023-10-29T10:00Z"), ts("2023-10-29T20:00Z")
    if kind == "tibber":
        return tibber(url).fetch(start, end)
    if kind == "nordpool":
        return nordpool(url).fetch(start, end)
    return entsoe(url).fetch(start, end)


ROUTE = {"tibber": "/v1-beta/gql", "nordpool": "/api/DayAheadPriceIndices", "entsoe": "/api"}
PROVIDERS = ("tibber", "nordpool", "entsoe")


@pytest.mark.parametrize("kind", PROVIDERS)
def test_http_401_is_a_config_error_naming_provider_and_status(kind):
    with serve({ROUTE[kind]: Reply(401, f'{{"message": "bad token {TOKEN}"}}')}) as srv, \
            pytest.raises(ProviderConfigError) as err:
        _call(kind, srv.url)
    msg = str(err.value)
    assert msg.startswith(f"prices ({kind}): HTTP 401") and "token" in msg
    assert TOKEN not in msg
    assert len(srv.requests) == 1  # no retry on 4xx


@pytest.mark.parametrize("kind", PROVIDERS)
def test_http_429_honours_retry_after_then_succeeds(kind):
    ok = {"tibber": recorded("tibber", "dst_autumn_2023-10-29.json"),
          "nordpool": recorded("nordpool", "SE3_2023-10-29.json"),
          "entsoe": recorded("entsoe", "A44_NL_2023-07-02.xml")}[kind]
    with serve({ROUTE[kind]: [Reply(429, "slow down", {"Retry-After": "0.2"}), ok]}) as srv:
        t0 = time.perf_counter()
        _call(kind, srv.url)
        assert time.perf_counter() - t0 >= 0.2
    assert len(srv.requests) == 2


@pytest.mark.parametrize("kind", PROVIDERS)
def test_http_429_with_a_long_retry_after_gives_up_at_once(kind):
    with serve({ROUTE[kind]: Reply(429, "", {"Retry-After": "3600"})}) as srv, \
            pytest.raises(ProviderUnavailable, match="HTTP 429 .*Retry-After 3600 s"):
        _call(kind, srv.url)
    assert len(srv.requests) == 1


@pytest.mark.parametrize("kind", PROVIDERS)
def test_http_500_is_retried_then_unavailable(kind):
    with serve({ROUTE[kind]: Reply(500, "oops")}) as srv, \
            pytest.raises(ProviderUnavailable, match=r"HTTP 500 .*gave up after 3 attempt"):
        _call(kind, srv.url)
    assert len(srv.requests) == 3


@pytest.mark.parametrize("kind", PROVIDERS)
def test_timeout_is_unavailable(kind):
    with serve({ROUTE[kind]: Reply(200, "{}", delay_s=0.6)}) as srv, \
            pytest.raises(ProviderUnavailable, match=r"within 0.3 s \(timeout\)"):
        _call(kind, srv.url)


@pytest.mark.parametrize("kind", PROVIDERS)
def test_malformed_payload_is_unavailable(kind):
    with serve({ROUTE[kind]: Reply(200, '{"data": {"viewer": {"homes": [')}) as srv, \
            pytest.raises(ProviderUnavailable, match="malformed"):
        _call(kind, srv.url)


def test_connection_refused_is_unavailable():
    with serve({}) as srv:
        url = srv.url
    with pytest.raises(ProviderUnavailable,
                       match=r"cannot connect to 127.0.0.1:\d+ \(connection refused\)"):
        _call("tibber", url)
