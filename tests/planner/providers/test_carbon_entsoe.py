"""ENTSO-E generation-mix carbon intensity (A75, issue 13) against a loopback server
replaying an A75 payload in the API's format (no internet): the generation-weighted mean of
the emission factors, consumption series left out, the token only in the query and never in
an error, "no data yet" and rejections told apart, and the whole config path (``carbon:
{type: entsoe, token: !secret ...}``)."""

from __future__ import annotations

import pandas as pd
import pytest
from loopback_http import Reply, recorded, serve

from planner import config, providers
from planner.config.sections import ProviderConfig
from planner.core.errors import DataError, ProviderConfigError, ProviderUnavailable
from planner.providers.base import ProviderContext
from planner.providers.carbon.entsoe import FACTORS_G_PER_KWH, EntsoeCarbon, intensity, parse_a75

START = pd.Timestamp("2026-05-01T02:00Z")
TOKEN = "tok-3f9a-secret"
#: the payload's generation at 00:00 (position 1) [MW]; the B10 consumption series is not in it
AT_0 = {"B01": 4200, "B02": 9000, "B04": 4000, "B05": 2500, "B10": 300, "B11": 1500,
        "B16": 0, "B18": 3000, "B19": 12000}


def _provider(url: str, **kw) -> EntsoeCarbon:
    cfg = config.default()
    options = EntsoeCarbon.Config(token=TOKEN, area="DE-LU", base_url=url, timeout_s=2.0, **kw)
    return EntsoeCarbon(options, ProviderContext(cfg.site, START, cfg))


def _expected(mw: dict, factors=FACTORS_G_PER_KWH) -> float:
    return sum(v * factors[k] for k, v in mw.items()) / sum(mw.values())


def test_replayed_a75_gives_the_weighted_mean_of_the_factors():
    with serve({"/api": recorded("entsoe", "A75_DE-LU_2026-05-01.xml")}) as srv:
        ts = _provider(srv.url + "/api").fetch(START, START + pd.Timedelta(hours=4))
    s = ts.values
    assert ts.resolution_s == 900 and len(s) == 24 and "A75 DE-LU" in ts.source
    assert s.index[0] == pd.Timestamp("2026-05-01T00:00Z")
    assert s.iloc[0] == pytest.approx(_expected(AT_0))  # ≈ 367 g/kWh
    at_20 = {"B01": 4200, "B02": 9000 - 800, "B04": 4000 + 500, "B05": 2500, "B10": 0,
             "B11": 1500, "B16": 6 * 600, "B18": 3000 - 600, "B19": 12000 + 3000}
    assert s.iloc[20] == pytest.approx(_expected(at_20))
    assert s.iloc[20] < s.iloc[0]  # more wind and sun in the morning
    q = srv.requests[0].query
    assert q["documentType"] == "A75" and q["processType"] == "A16"
    assert q["in_Domain"] == "10Y1001A1001A82H" and q["securityToken"] == TOKEN
    assert q["periodStart"] == "202604302000" and q["periodEnd"] == "202605010600"


def test_factors_can_be_overridden_and_an_unknown_type_names_it():
    mw = parse_a75(recorded("entsoe", "A75_DE-LU_2026-05-01.xml").body)
    higher = intensity(mw, {**FACTORS_G_PER_KWH, "B02": 1100.0})
    assert higher.iloc[0] == pytest.approx(_expected(AT_0, {**FACTORS_G_PER_KWH, "B02": 1100}))
    with pytest.raises(DataError, match="B19"):
        intensity(mw, {k: v for k, v in FACTORS_G_PER_KWH.items() if k != "B19"})


def test_no_data_rejection_and_errors_never_show_the_token():
    with serve({"/api": recorded("entsoe", "no_data.xml")}) as srv, \
            pytest.raises(ProviderUnavailable, match="no generation published"):
        _provider(srv.url + "/api").fetch(START, START + pd.Timedelta(hours=1))
    reject = ('<Acknowledgement_MarketDocument xmlns="urn:x"><Reason><code>999</code>'
              '<text>Invalid security token</text></Reason></Acknowledgement_MarketDocument>')
    with serve({"/api": Reply(200, reject, content_type="application/xml")}) as srv, \
            pytest.raises(ProviderConfigError, match="rejected") as err:
        _provider(srv.url + "/api").fetch(START, START + pd.Timedelta(hours=1))
    assert TOKEN not in str(err.value)
    with serve({"/api": Reply(401, "Unauthorized")}) as srv, pytest.raises(Exception) as err:
        _provider(srv.url + "/api").fetch(START, START + pd.Timedelta(hours=1))
    assert TOKEN not in str(err.value)
    with pytest.raises(ProviderUnavailable, match="malformed"):
        parse_a75(b"<GL_MarketDocument><TimeSeries><Period/></TimeSeries></GL_MarketDocument>")


def test_config_with_a_secret_token(tmp_path):
    (tmp_path / "secrets.yaml").write_text(f"entsoe: {TOKEN}\n")
    (tmp_path / "config.yaml").write_text(
        "carbon: {type: entsoe, token: !secret entsoe, area: DE-LU}\n")
    cfg = config.load(tmp_path / "config.yaml")
    assert TOKEN in cfg.secret_values
    with serve({"/api": recorded("entsoe", "A75_DE-LU_2026-05-01.xml")}) as srv:
        typ, options = config.devices.carbon_config(
            {"type": "entsoe", "token": TOKEN, "area": "DE-LU", "base_url": srv.url + "/api"},
            [])
        got = providers.create("carbon", ProviderConfig(typ, options),
                               ProviderContext(cfg.site, START, cfg)).fetch(
            START, START + pd.Timedelta(hours=1))
    assert got.values.iloc[0] == pytest.approx(_expected(AT_0))
