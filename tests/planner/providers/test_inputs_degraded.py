"""Degraded modes and secret redaction, end to end through ``helios plan`` / ``helios prices``
with the Tibber provider on a loopback server (issue 4)."""

from __future__ import annotations

import json
import logging
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from loopback_http import Reply, recorded, serve

from planner import config, providers
from planner.cli.main import main
from planner.core.errors import ProviderUnavailable
from planner.inputs import degraded
from planner.inputs import gather as inputs
from planner.providers import http

TOKEN = "tibber-5K4MVS-OjfWhK_4yrjOlFe1F6kJXPVf7eQYggo8ebAE"
NOW = "2023-07-01T10:05:00Z"


@pytest.fixture(autouse=True)
def fast_http(monkeypatch):
    monkeypatch.setattr(http, "DEFAULT_POLICY", http.RetryPolicy(
        timeout_s=0.3, retries=1, backoff_s=0.01, max_backoff_s=0.01, max_retry_after_s=1))
    monkeypatch.setenv("HELIOS_LOG_LEVEL", "DEBUG")
    monkeypatch.setattr(degraded, "_logged", set())
    yield
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_helios", False)]:
        root.removeHandler(h)
    root.setLevel(logging.WARNING)


def write_site(site_dir, tmp_path, url: str):
    path = site_dir(start="2023-07-01T00:00:00Z", hours=48,
                    config={"storage": {"url": "sqlite:///h.db", "keep_days": 100000},
                            "report": {"path": "report.html"}})
    text = path.read_text().replace(
        "prices:\n  type: csv\n  path: prices.csv\n",
        f"prices:\n  type: tibber\n  token: !secret tibber_token\n  base_url: {url}/gql\n"
        "  timeout_s: 0.3\n")
    assert "tibber" in text
    path.write_text(text)
    (tmp_path / "secrets.yaml").write_text(f"tibber_token: {TOKEN}\n")
    return path


def everything_written(tmp_path) -> str:
    parts = [(tmp_path / "schedule.json").read_text(), (tmp_path / "report.html").read_text()]
    con = sqlite3.connect(tmp_path / "h.db")
    for (table,) in con.execute("select name from sqlite_master where type='table'"):
        parts.append(repr(con.execute(f"select * from {table}").fetchall()))
    con.close()
    return "\n".join(parts)


def test_prices_verb_prints_local_time_grid(site_dir, tmp_path):
    with serve({"/gql": recorded("tibber", "hourly_2023-07-01.json")}) as srv:
        path = write_site(site_dir, tmp_path, srv.url)
        res = CliRunner().invoke(main, ["prices", "--config", str(path), "--now", NOW])
    assert res.exit_code == 0, res.output
    assert "prices (tibber): Tibber priceInfo (energy), 48 values every 60 min" in res.output
    assert "2023-07-01 12:00 CEST" in res.output  # 10:00 UTC shown in Europe/Berlin
    assert "negative" in res.output and TOKEN not in res.output


@pytest.mark.parametrize("reply, code, message", [
    (Reply(401, "unauthorized"), 3, r"error: prices \(tibber\): HTTP 401 Unauthorized .*token"),
    (Reply(500, "oops"), 3, r"HTTP 500 Internal Server Error .* gave up after 2 attempt"),
    (Reply(429, "", {"Retry-After": "120"}), 3, r"HTTP 429 .*Retry-After 120 s"),
    (Reply(200, "{not json"), 3, r"malformed JSON"),
    (Reply(200, "{}", delay_s=0.5), 3, r"within 0.3 s \(timeout\)"),
])
def test_prices_verb_errors_are_one_line_without_traceback(site_dir, tmp_path, reply, code,
                                                          message):
    with serve({"/gql": reply}) as srv:
        path = write_site(site_dir, tmp_path, srv.url)
        res = CliRunner().invoke(main, ["prices", "--config", str(path), "--now", NOW])
    assert res.exit_code == code
    assert "Traceback" not in res.output and TOKEN not in res.output
    import re

    assert re.search(message, res.output), res.output


def test_plan_without_prices_or_cache_is_a_flagged_self_consumption_plan(
        site_dir, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with serve({"/gql": Reply(503, "down")}) as srv:
        path = write_site(site_dir, tmp_path, srv.url)
        res = CliRunner().invoke(main, ["plan", "--config", str(path), "--now", NOW])
    assert res.exit_code == 0, res.output
    assert "plain self-consumption" in res.output
    # the terminal summary flags it next to the plan, not only in the log
    assert re.search(r"^DEGRADED prices: tibber .*plain self-consumption", res.output, re.M)
    sched = json.loads((tmp_path / "schedule.json").read_text())
    assert sched["slots"]
    # self-consumption: never charge from the grid, never export from the battery
    assert "charge_grid" not in res.output and "export   " not in res.output.split("reason")[1]
    con = sqlite3.connect(tmp_path / "h.db")
    assert con.execute("select inputs_degraded from plan_history").fetchall() == [(1,)]
    con.close()
    assert "degraded" in (tmp_path / "report.html").read_text()
    assert [r for r in caplog.records if "prices degraded" in r.getMessage()]
    # the token went to the server in a header but is nowhere in what Helios wrote or logged
    assert srv.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in everything_written(tmp_path)
    assert TOKEN not in res.output and TOKEN not in caplog.text


def test_plan_falls_back_to_cached_prices_then_recovers(site_dir, tmp_path):
    with serve({"/gql": [recorded("tibber", "hourly_2023-07-01.json"), Reply(500, "x")]}
               ) as srv:
        path = write_site(site_dir, tmp_path, srv.url)
        ok = CliRunner().invoke(main, ["plan", "--config", str(path), "--now", NOW])
        assert ok.exit_code == 0, ok.output
        down = CliRunner().invoke(main, ["plan", "--config", str(path), "--now",
                                         "2023-07-01T11:05:00Z"])
    assert down.exit_code == 0, down.output
    assert "planning on cached prices" in down.output, down.output
    assert "self-consumption" not in down.output
    assert TOKEN not in everything_written(tmp_path) + ok.output + down.output


def _failing(kind: str, monkeypatch):
    real = providers.create

    class Down:
        def forecast(self, start, end):
            raise ProviderUnavailable(f"{kind} (test)", "HTTP 503 from forecast.example")

    monkeypatch.setattr(providers, "create", lambda k, c, ctx: Down() if k == kind
                        else real(k, c, ctx))


def test_pv_missing_uses_conservative_clear_sky(site_dir, monkeypatch, caplog):
    cfg = config.load(site_dir(start="2026-06-21T00:00:00Z"))
    _failing("pv", monkeypatch)
    got = inputs.gather(cfg, pd.Timestamp("2026-06-21T00:00Z"))
    st = next(s for s in got.status if s.kind == "pv")
    assert st.degraded and "clear-sky" in st.detail and "HTTP 503" in st.detail
    assert (got.pv_kw == 0).all()  # csv provider has no peak_kw: assume no PV (conservative)
    site = cfg.site
    pv = degraded.clearsky_pv_kw(site, got.index, peak_kw=8.0)
    noon = got.index.tz_convert(site.tz).hour == 13
    assert 2.5 < pv[noon].max() <= 8.0 * degraded.PV_CLEARSKY_FACTOR
    night = got.index.tz_convert(site.tz).hour == 2
    assert (pv[night] == 0).all()
    assert len([r for r in caplog.records if "pv degraded" in r.getMessage()]) == 1
    inputs.gather(cfg, pd.Timestamp("2026-06-21T00:00Z"))  # logged once only
    assert len([r for r in caplog.records if "pv degraded" in r.getMessage()]) == 1


def test_load_missing_uses_default_profile(site_dir, monkeypatch):
    cfg = config.load(site_dir())
    _failing("load", monkeypatch)
    got = inputs.gather(cfg, pd.Timestamp("2026-05-01T00:00Z"))
    st = next(s for s in got.status if s.kind == "load")
    assert st.degraded and "default household profile" in st.detail
    assert np.isclose(got.load_kw.mean(), degraded.DEFAULT_LOAD_PROFILE_KW.mean(), atol=0.02)


def test_redacting_filter_covers_args_and_tracebacks():
    from planner.core.logsetup import RedactingFilter

    f = RedactingFilter([TOKEN])
    rec = logging.LogRecord("x", logging.DEBUG, __file__, 1, "GET /api?securityToken=%s",
                            (TOKEN,), None)
    f.filter(rec)
    assert rec.getMessage() == "GET /api?securityToken=***"
    try:
        raise ValueError(f"bad {TOKEN}")
    except ValueError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    f.filter(rec)
    assert TOKEN not in logging.Formatter().format(rec)


def test_entsoe_token_in_the_query_is_redacted_from_debug_logs(site_dir, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with serve({"/api": recorded("entsoe", "A44_NL_2023-07-02.xml")}) as srv:
        path = site_dir(start="2023-07-02T00:00:00Z")
        text = path.read_text().replace(
            "prices:\n  type: csv\n  path: prices.csv\n",
            f"prices:\n  type: entsoe\n  area: NL\n  token: !secret entsoe_token\n"
            f"  base_url: {srv.url}/api\n")
        path.write_text(text)
        (tmp_path / "secrets.yaml").write_text(f"entsoe_token: {TOKEN}\n")
        res = CliRunner().invoke(main, ["prices", "--config", str(path), "--now",
                                        "2023-07-02T08:00:00Z"])
    assert res.exit_code == 0, res.output
    assert srv.requests[0].query["securityToken"] == TOKEN  # it was sent ...
    assert "securityToken=***" in res.output  # ... urllib3 logged the URL, redacted
    assert TOKEN not in res.output and TOKEN not in caplog.text
