"""Carbon-intensity providers (issue 13, item 4): CSV and Energinet's CO2Emis, the latter
against a loopback server replaying a recorded-shape payload (no internet)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from loopback_http import Reply, recorded, serve

from planner import config, providers
from planner.config.sections import ProviderConfig
from planner.core.errors import ConfigError, DataError, ProviderUnavailable
from planner.providers.base import ProviderContext
from planner.providers.carbon.energinet import EnerginetCarbon, parse_records

START = pd.Timestamp("2026-05-01T00:00Z")


def _energinet(url: str, **kw) -> EnerginetCarbon:
    cfg = config.default()
    options = EnerginetCarbon.Config(base_url=url, timeout_s=2.0, **kw)
    return EnerginetCarbon(options, ProviderContext(cfg.site, START, cfg))


def test_energinet_replays_the_recorded_payload():
    """Only DK1's values, in time order, 5-min resolution; the request asks DK1 in UTC."""
    with serve({"/dataset/CO2Emis": recorded("energinet", "co2emis_2026-05-01.json")}) as srv:
        ts = _energinet(srv.url).fetch(START + pd.Timedelta(hours=1), START + pd.Timedelta(hours=3))
    assert ts.resolution_s == 300
    assert ts.values.index[0] == START and len(ts.values) == 36
    assert ts.values.iloc[0] == 100.0 and ts.values.iloc[12] == 300.0  # 01:00 UTC: 200 + 100
    assert ts.values.index.is_monotonic_increasing
    q = srv.requests[0].query
    assert json.loads(q["filter"]) == {"PriceArea": ["DK1"]}
    assert q["start"] == "2026-04-30T19:00" and q["end"] == "2026-05-01T03:00"
    assert q["timezone"] == "utc"


def test_energinet_forecast_dataset_and_area():
    with serve({"/dataset/CO2EmisProg": recorded("energinet", "co2emis_2026-05-01.json")}) as srv:
        ts = _energinet(srv.url, dataset="CO2EmisProg", price_area="DK2").fetch(
            START, START + pd.Timedelta(hours=3))
    assert ts.values.iloc[0] == 60.0 and "DK2" in ts.source


@pytest.mark.parametrize("body, error, message", [
    ({"records": []}, ProviderUnavailable, "no CO2 emission values for DK1"),
    ({"nothing": 1}, ProviderUnavailable, "no 'records'"),
    ({"records": [{"Minutes5UTC": "2026-05-01T00:00:00", "PriceArea": "DK1",
                   "CO2Emission": -4}]}, DataError, r"records\[0\].CO2Emission"),
    ({"records": [{"Minutes5UTC": "soon", "PriceArea": "DK1", "CO2Emission": 4}]}, DataError,
     r"records\[0\].Minutes5UTC"),
])
def test_energinet_bad_answers(body, error, message):
    with serve({"/dataset/CO2Emis": Reply(200, json.dumps(body))}) as srv, \
            pytest.raises(error, match=message):
        _energinet(srv.url).fetch(START, START + pd.Timedelta(hours=1))


def test_energinet_server_error_is_unavailable():
    with serve({"/dataset/CO2Emis": Reply(503, "busy")}) as srv, \
            pytest.raises(ProviderUnavailable):
        EnerginetCarbon(EnerginetCarbon.Config(base_url=srv.url, timeout_s=1.0),
                        ProviderContext(config.default().site, START, None),
                        policy=None).fetch(START, START + pd.Timedelta(hours=1))


def test_a_missing_value_takes_the_one_before():
    recs = [{"Minutes5UTC": t, "PriceArea": "DK1", "CO2Emission": v}
            for t, v in (("2026-05-01T00:00:00", 10), ("2026-05-01T00:10:00", 30))]
    s = parse_records({"records": recs}, "DK1")
    assert list(s) == [10.0, 10.0, 30.0]


def test_csv_carbon(tmp_path):
    path = tmp_path / "co2.csv"
    path.write_text("ts_utc,co2_g_per_kwh\n2026-05-01T00:00:00Z,120\n2026-05-01T01:00:00Z,80\n")
    cfg = config.default()
    cls = providers._lookup("carbon", "csv")
    ts = providers.create("carbon", ProviderConfig("csv", cls.Config(path=str(path))),
                          ProviderContext(cfg.site, START, cfg)).fetch(START, START)
    assert list(ts.values) == [120.0, 80.0] and ts.resolution_s == 3600
    path.write_text("ts_utc,co2_g_per_kwh\n2026-05-01T00:00:00Z,-1\n")
    with pytest.raises(DataError, match="line 2"):
        providers.create("carbon", ProviderConfig("csv", cls.Config(path=str(path))),
                         ProviderContext(cfg.site, START, cfg)).fetch(START, START)


def test_carbon_section_is_validated():
    assert "carbon" in providers.KINDS
    assert providers.available("carbon") == ["csv", "energinet", "entsoe"]
    with pytest.raises(ConfigError, match="carbon.type"):
        config.from_mapping({"carbon": {"type": "watttime"}})
    with pytest.raises(ConfigError, match="carbon.price_area"):
        config.from_mapping({"carbon": {"type": "energinet", "price_area": "SE3"}})
    cfg = config.from_mapping({"carbon": {"type": "energinet"}})
    assert cfg.carbon == {"type": "energinet"} and cfg.planning.co2_eur_per_kg == 0.0
