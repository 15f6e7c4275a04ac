"""`helios simulate`: the planner, the executor and the storage together on one simulated clock.

One simulated day at full speed (module fixture, shared by the checks): the real
``plan_once`` every 5 simulated minutes writing ``schedule.json`` and ``plan_history``, the
real executor loop every 10 s on the ``simulated`` driver writing measurements that the
planner's ``state: measurements`` and ``load: history`` read back, a water heater behind a
relay follower, an outage announced 12 h ahead, the metrics scraped over real HTTP.

Data: the CoSSMic summer house (CC-BY) with the SE3 2024-12-10..13 prices (Energinet, CC-BY;
all positive, so every plan is an LP) moved onto the house's dates.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from executor import schedule as sched
from planner.cli.main import main
from planner.core.errors import ConfigError, DataError
from planner.simulate import report as sim_report
from planner.simulate.clock import Pacer, SimClock, parse_speed
from planner.simulate.home import Recorded, read_outages
from planner.simulate.run import Options, Simulation, load_configs

START = pd.Timestamp("2016-05-05T22:00Z")  # local midnight, Europe/Berlin
OUTAGE = ("2016-05-06T19:00:00Z", "2016-05-06T21:30:00Z")
RESERVE_PCT = 40.0
MIN_PCT = 10.0


def write_prices(path, data_dir):
    prices = pd.read_csv(data_dir / "prices_se3_2024-12-10_13_spike707_1h.csv")
    ts = pd.to_datetime(prices["ts_utc"], utc=True)
    prices["ts_utc"] = (ts - (ts.iloc[0] - START)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    prices.to_csv(path, index=False)
    return path


def write_site(tmp, data_dir):
    write_prices(tmp / "prices.csv", data_dir)
    (tmp / "config.yaml").write_text(yaml.safe_dump({
        "site": {"timezone": "Europe/Berlin"},
        "planning": {"horizon_h": 24},
        "battery": {"capacity_kwh": 10, "min_soc_pct": MIN_PCT,
                    "reserve_soc_pct": RESERVE_PCT},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
        # switched by a relay: on/off at its power (a modulating plan would be followed at
        # full power whenever it asks for any)
        "water_heater": {"power_kw": 2.0, "daily_kwh": 4.0, "modulating": False},
        # a file's providers are replaced by the simulation's; they must still be valid
        "prices": {"type": "flat"}, "pv": {"type": "none"}, "load": {"type": "constant"},
        "state": {"type": "static"},
    }))
    (tmp / "outages.yaml").write_text(yaml.safe_dump(
        [{"start": OUTAGE[0], "end": OUTAGE[1], "announced_h": 12}]))
    return tmp


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    data_dir = Path(__file__).parents[1] / "data"
    tmp = write_site(tmp_path_factory.mktemp("sim"), data_dir)
    out = tmp / "out"
    cfg, exec_cfg = load_configs(str(tmp / "config.yaml"), out)
    recorded = Recorded(cfg, tmp / "prices.csv", data_dir / "cossmic_summer_week_pv_1h.csv",
                        data_dir / "cossmic_summer_week_load_1h.csv")
    sim = Simulation(cfg, exec_cfg, recorded, read_outages(tmp / "outages.yaml"), out,
                     Options(start=START, days=1.0, speed=None, soc_start_pct=50.0,
                             metrics_port=0))
    try:
        counters = sim.run()
        with urllib.request.urlopen(sim.server.url, timeout=5) as resp:
            scraped = (resp.headers["Content-Type"], resp.read().decode("utf-8"))
        summary = sim_report.write(sim, out)
    finally:
        sim.close()
    return sim, counters, summary, scraped, out


def parse_exposition(text: str) -> dict:
    """A strict reader of the text format 0.0.4 for unlabelled samples: every sample follows
    its own # HELP and # TYPE lines; returns name -> (type, value)."""
    out, helped, typed = {}, set(), {}
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ", 3)[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter", "untyped"), line
            typed[name] = kind
        else:
            m = sample.match(line)
            assert m, f"not a sample line: {line!r}"
            name, value = m.groups()
            assert name in helped and name in typed, f"{name} without HELP/TYPE"
            out[name] = (typed[name], float(value))
    return out


def test_planner_runs_on_its_timer_and_every_plan_is_stored(day):
    sim, c, summary, _, out = day
    assert c.plan_failures == 0, c.failures
    first = START + pd.Timedelta(seconds=70)  # one tick after the first measurement row
    assert c.plan_times[0] == first
    gaps = {(b - a).total_seconds() for a, b in zip(c.plan_times, c.plan_times[1:], strict=False)}
    assert gaps == {300.0}
    assert c.plans == summary["planner"]["expected"] == 288
    assert summary["storage"]["plan_rows"] == c.plans
    db = sqlite3.connect(out / "helios-sim.db")
    created = [r[0] for r in db.execute("SELECT created_at FROM plan_history ORDER BY id")]
    assert pd.Timestamp(created[0]).tz_localize("UTC") == first  # the simulated clock's now


def test_schedule_json_is_valid_for_the_executor(day):
    sim, c, _, _, out = day
    plan = sched.read(str(out / "schedule.json"))  # the executor's own validating reader
    assert plan.generated_at == c.plan_times[-1].to_pydatetime()
    assert plan.slots and all(s.devices is None or isinstance(s.devices, dict)
                              for s in plan.slots)
    # the executor followed the plans: released only before the first one was written
    assert set(c.release_reasons) == {f"plan file {out / 'schedule.json'} missing"}
    assert c.released == 7
    assert c.stale_ticks == 0 and c.plan_age_max_s < 300


def test_measurements_go_to_sql_and_the_planner_reads_them(day):
    sim, c, summary, _, out = day
    db = sqlite3.connect(out / "helios-sim.db")
    rows = db.execute("SELECT measured_at, soc_pct, load_power_w, simulated FROM measurements "
                      "ORDER BY measured_at").fetchall()
    # one a minute, and the reading at the end of the period (stored on the executor's exit)
    assert len(rows) == summary["storage"]["measurement_rows"] == 1441
    assert all(r[3] in (0, None) for r in rows)  # this database is the simulated home's own
    assert min(r[1] for r in rows) >= MIN_PCT - 1e-6
    # the planner's start SoC is the stored measurement (state: measurements), not a guess
    inputs, soc_start, created = db.execute(
        "SELECT inputs, soc_start_pct, created_at FROM plan_history ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert "measurements" in inputs
    # the newest row stored by then: a row is written when its minute is over
    stored_by = (pd.Timestamp(created) - pd.Timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S")
    measured = db.execute("SELECT soc_pct FROM measurements WHERE measured_at <= ? ORDER BY "
                          "measured_at DESC LIMIT 1", (stored_by,)).fetchone()[0]
    assert soc_start == pytest.approx(measured)
    # load: history read the measured rows: degraded until 1 day of history (min_days 1)
    assert set(summary["planner"]["degraded_inputs"]) == {"load: history (fallback)"}


def test_soc_never_below_min_and_heater_gets_its_energy(day):
    sim, c, summary, _, _ = day
    assert summary["battery"]["soc_min_pct"] >= MIN_PCT - 1e-6
    assert summary["energy"]["unserved_kwh"] == 0.0
    heater = summary["appliances"][0]
    assert heater["name"] == "water_heater"
    assert heater["per_day_kwh"] == {"2016-05-06": pytest.approx(4.0, abs=1e-6)}
    # the bill adds up: import at buy minus export at sell over the run
    assert summary["energy"]["import_kwh"] + summary["energy"]["pv_kwh"] > 0
    assert 0 < summary["energy"]["self_consumption_pct"] <= 100


def test_announced_outage_keeps_the_reserve_and_the_report_shows_it(day):
    sim, c, summary, _, out = day
    (outage,) = summary["outages"]
    assert outage["in_period"] and outage["announced_h"] == 12
    assert outage["soc_start_pct"] >= RESERVE_PCT - 0.5
    assert outage["reserve_kept"] is True and outage["above_min"] is True
    assert outage["unserved_kwh"] == 0.0
    assert outage["soc_min_pct"] < outage["soc_start_pct"]  # the battery carried the house
    # the reserve was kept before the outage (after it, the battery recharges from below)
    db = sqlite3.connect(out / "helios-sim.db")
    before = db.execute("SELECT MIN(soc_pct) FROM measurements WHERE measured_at < ?",
                        ("2016-05-06 19:00:00",)).fetchone()[0]
    assert before >= RESERVE_PCT - 0.5
    # during the outage nothing crossed the meter
    grid = db.execute("SELECT MAX(ABS(grid_power_w)) FROM measurements WHERE measured_at >= ? "
                      "AND measured_at < ?", ("2016-05-06 19:01:00", "2016-05-06 21:29:00")
                      ).fetchone()[0]
    assert grid == 0.0
    text = (out / "summary.txt").read_text()
    assert "announced 12 h ahead" in text and "kept" in text and "NOT kept" not in text
    page = (out / "report.html").read_text()
    assert "<title>outage</title>" in page and "reserve kept" in page
    assert json.loads((out / "summary.json").read_text())["outages"][0]["reserve_kept"] is True
    assert (out / "last_plan.html").stat().st_size > 10_000  # the planner's own report


def test_metrics_endpoint_over_http(day):
    sim, c, summary, (content_type, body), _ = day
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    m = parse_exposition(body)
    assert m["helios_sim_plans_total"] == ("counter", float(c.plans))
    assert m["helios_sim_executor_ticks_total"] == ("counter", float(c.ticks))
    assert m["helios_sim_executor_fallbacks_total"][1] == c.released
    assert m["helios_sim_plan_fallbacks_total"][1] == c.plan_fallbacks
    assert m["helios_sim_cost_eur"][1] == pytest.approx(summary["energy"]["cost_eur"], abs=1e-3)
    assert m["helios_sim_soc_pct"][1] == pytest.approx(summary["battery"]["soc_end_pct"],
                                                       abs=0.01)
    assert m["helios_sim_outage_active"] == ("gauge", 0.0)
    assert m["helios_sim_time_seconds"][1] == (START + pd.Timedelta(days=1)).timestamp()
    assert m["helios_sim_measurements_total"][1] == summary["storage"]["measurement_rows"]
    for name in ("grid_w", "pv_w", "load_w", "price_eur_per_kwh", "plan_age_seconds"):
        assert f"helios_sim_{name}" in m


def test_cli_short_run(tmp_path, data_dir):
    site = write_site(tmp_path, data_dir)
    result = CliRunner().invoke(main, [
        "simulate", "--prices", str(site / "prices.csv"),
        "--pv", str(data_dir / "cossmic_summer_week_pv_1h.csv"),
        "--load", str(data_dir / "cossmic_summer_week_load_1h.csv"),
        "--config", str(site / "config.yaml"), "--from", "2016-05-06", "--days", "0.05",
        "--speed", "max", "--load-forecast", "recorded", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["planner"]["plans"] == 15 and summary["planner"]["fallbacks"] == 0
    assert "planner: 15 plans of 15 timer runs" in result.output


@pytest.mark.parametrize("args, key", [
    (["--speed", "fast"], "--speed"),
    (["--from", "2017-01-01"], "--prices"),
])
def test_cli_bad_options_name_the_key(tmp_path, data_dir, args, key):
    site = write_site(tmp_path, data_dir)
    result = CliRunner().invoke(main, [
        "simulate", "--prices", str(site / "prices.csv"),
        "--pv", str(data_dir / "cossmic_summer_week_pv_1h.csv"),
        "--load", str(data_dir / "cossmic_summer_week_load_1h.csv"),
        "--config", str(site / "config.yaml"), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code in (2, 3), result.output
    assert key in result.output


def test_outage_file_errors_name_the_item_and_key(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("- {start: 2016-05-06T19:00:00Z, end: 2016-05-06T18:00:00Z}\n")
    with pytest.raises(DataError, match="item 1: end"):
        read_outages(path)
    path.write_text("- {start: '2016-05-06T19:00:00Z', end: '2016-05-06T20:00:00Z', "
                    "announced: 3}\n")
    with pytest.raises(DataError, match="unknown key 'announced'"):
        read_outages(path)
    path.write_text("- {start: '2016-05-06T19:00:00Z', end: '2016-05-06T20:00:00Z', "
                    "announced_h: -1}\n")
    with pytest.raises(DataError, match="announced_h"):
        read_outages(path)


def test_speed_and_pacing():
    assert parse_speed("100x") == 100.0 and parse_speed("500") == 500.0
    assert parse_speed("max") is None
    with pytest.raises(ConfigError, match="--speed"):
        parse_speed("0x")
    wall = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        wall[0] += s

    pacer = Pacer(100.0, wall=lambda: wall[0], sleep=sleep)
    pacer.wait_until(10.0)  # 10 simulated s at 100x = 0.1 s of wall time
    assert slept == [pytest.approx(0.1)]
    wall[0] += 1.0  # the loop fell behind by a second
    pacer.wait_until(20.0)
    assert len(slept) == 1 and pacer.behind_s == pytest.approx(0.9)
    clock = SimClock(START.to_pydatetime())
    clock.advance(10)
    assert clock() == (START + pd.Timedelta(seconds=10)).to_pydatetime()
    with pytest.raises(ValueError):
        clock.set(START.to_pydatetime())
