"""`helios backtest`: outputs, the what-if sweep in processes, outages, exit codes.

Data: the CoSSMic summer house (CC-BY) with the DK1 2023-07-02 prices (Energinet, CC-BY)
moved onto the house's dates, hourly slots and a 12 h horizon to keep each run short.
"""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from backtest_data import write_week_prices
from click.testing import CliRunner

from planner.cli.main import main


@pytest.fixture
def site(tmp_path, data_dir):
    write_week_prices(tmp_path / "prices.csv")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "site": {"timezone": "Europe/Berlin"},
        "planning": {"slot_s": 3600, "horizon_h": 12},
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
    }))
    return tmp_path


def _args(site, data_dir, *extra):
    return ["backtest", "--prices", str(site / "prices.csv"),
            "--pv", str(data_dir / "cossmic_summer_week_pv_1h.csv"),
            "--load", str(data_dir / "cossmic_summer_week_load_1h.csv"),
            "--config", str(site / "config.yaml"),
            "--from", "2016-05-06", "--to", "2016-05-07", *extra]


def _run(site, data_dir, *extra):
    return CliRunner().invoke(main, _args(site, data_dir, *extra))


def test_backtest_prints_the_comparison_and_writes_csv_json_html(site, data_dir):
    out = site / "out"
    result = _run(site, data_dir, "--out", str(out))
    assert result.exit_code == 0, result.output
    text = result.stdout
    for name in ("Helios", "no battery", "self-consumption", "price rule", "perfect foresight"):
        assert name in text
    assert "of the perfect-foresight savings" in text
    assert "simulating" in result.stderr  # the progress bar goes to stderr
    summary = json.loads((out / "summary.json").read_text())
    # --from 2016-05-06 is local midnight (CEST): 2016-05-05T22:00Z; 24 hourly slots
    assert summary["period"]["start"] == "2016-05-05T22:00:00+00:00"
    assert summary["period"]["slots"] == 24
    st = summary["strategies"]
    assert set(st) == {"helios", "no_battery", "self_consumption", "price_rule",
                       "perfect_foresight"}
    for m in st.values():
        assert m["objective_eur"] >= st["perfect_foresight"]["objective_eur"] - 1e-6
    share = summary["comparison"]["helios"]["share_of_perfect_foresight"]
    assert 0 < share <= 1 + 1e-9
    assert summary["speed"]["solves"] == 24
    with open(out / "slots.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24 and rows[0]["ts_utc"] == "2016-05-05T22:00:00Z"
    assert {"helios_grid_import_kw", "perfect_foresight_soc_kwh",
            "no_battery_cost_eur"} <= set(rows[0])
    page = (out / "report.html").read_text()
    assert "<svg" not in page and "uPlot" in page and "The MIT License" in page
    for chart in ("daily", "cumulative", "soc", "hist"):
        assert f'id="chart-{chart}"' in page
    lowered = page.lower()  # self-contained: no external resource of any kind
    assert "<script src" not in lowered and "<link" not in lowered and "@import" not in lowered
    data = json.loads(page.split('id="backtest-data">', 1)[1].split("</script>", 1)[0])
    assert data["daily"][0][0] == "helios" and len(data["days"]) == 1 == len(data["daily"][0][1])
    assert data["tz"] == "Europe/Berlin" and len(data["soc_x"]) == 24


def test_json_output(site, data_dir):
    result = _run(site, data_dir, "--json", "-q", "--forecast", "noisy", "--noise-pct", "20",
                  "--replan-every", "2", "--control", "grid")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["options"]["forecast"] == "noisy"
    assert summary["speed"]["solves"] == 12
    assert summary["runs"]["helios"]["forecast"] == "noisy"


def test_sweep_runs_every_scenario_in_processes(site, data_dir):
    out = site / "sweep"
    result = _run(site, data_dir, "--battery-kwh", "5,10", "--pv-scale", "1,1.5",
                  "--jobs", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "battery kWh" in result.stdout
    with open(out / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(float(r["battery_kwh"]), float(r["pv_scale"])) for r in rows] == [
        (5, 1), (5, 1.5), (10, 1), (10, 1.5)]
    for r in rows:
        assert (out / r["scenario"] / "summary.json").exists()
    # more PV: the house without battery pays less
    by = {(float(r["battery_kwh"]), float(r["pv_scale"])): r for r in rows}
    assert float(by[5, 1.5]["no_battery_net_cost_eur"]) < float(by[5, 1]["no_battery_net_cost_eur"])


def test_outages_from_yaml_count_unserved_load(site, data_dir):
    (site / "outages.yaml").write_text(
        "- {start: '2016-05-06T17:00:00Z', end: '2016-05-06T21:00:00Z'}\n")
    result = _run(site, data_dir, "--outages", str(site / "outages.yaml"), "--json", "-q")
    assert result.exit_code == 0, result.output
    st = json.loads(result.stdout)["strategies"]
    assert st["no_battery"]["unserved_kwh"] > 0.5
    assert st["helios"]["unserved_kwh"] < 1e-6  # told 48 h ahead, the battery covers it


@pytest.mark.parametrize("extra, code, message", [
    (["--from", "2016-05-06T00:00"], 2, "no time zone"),
    (["--battery-kwh", "5,x"], 2, "comma-separated numbers"),
    (["--soc-start-pct", "5"], 2, "--soc-start-pct"),
    (["--from", "2016-05-01"], 3, "before the data start"),
    (["--to", "2016-06-01"], 3, "after the data end"),
    (["--outages", "missing.csv"], 3, "cannot read"),
])
def test_bad_options_and_data_exit_codes(site, data_dir, extra, code, message):
    args = _args(site, data_dir)
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_bad_files_and_config(site, data_dir):
    (site / "bad.csv").write_text("ts_utc,price\n2016-05-06T00:00:00Z,1\n")
    args = _args(site, data_dir)
    args[args.index("--prices") + 1] = str(site / "bad.csv")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3 and "price_eur_per_kwh" in result.output
    (site / "config.yaml").write_text("battery: {capacity_kwh: -1}\n")
    result = _run(site, data_dir)
    assert result.exit_code == 2 and "battery.capacity_kwh" in result.output


def test_bad_outage_files_exit_3(site, data_dir):
    (site / "outages.csv").write_text("start,end\n2016-05-06T17:00:00Z,2016-05-06T18:00:00Z\n")
    result = _run(site, data_dir, "--outages", str(site / "outages.csv"))
    assert result.exit_code == 3 and "start_utc,end_utc" in result.output
    (site / "outages.csv").write_text("start_utc,end_utc\n2016-05-06T17:00:00,2016-05-06T18:00Z\n")
    result = _run(site, data_dir, "--outages", str(site / "outages.csv"))
    assert result.exit_code == 3 and "no time zone" in result.output
    (site / "outages.yaml").write_text("- {start: '2016-05-06T18:00Z', end: '2016-05-06T17:00Z'}\n")
    result = _run(site, data_dir, "--outages", str(site / "outages.yaml"))
    assert result.exit_code == 3 and "not after start" in result.output


def test_unwritable_output_exits_5(site, data_dir):
    (site / "taken").write_text("a file where the output directory should go")
    result = _run(site, data_dir, "-q", "--out", str(site / "taken" / "results"))
    assert result.exit_code == 5, result.output


def test_carbon_gives_kg_co2_per_strategy(site, data_dir):
    """--carbon (the plan's carbon CSV): each strategy's kg CO2 = Σ import × intensity, in
    the JSON summary, the terminal table and the report."""
    (site / "co2.csv").write_text("ts_utc,co2_g_per_kwh\n" + "".join(
        f"2016-05-0{d}T{h:02d}:00:00Z,{200 + 10 * h}\n" for d in (5, 6, 7, 8) for h in range(24)))
    out = site / "out"
    result = _run(site, data_dir, "--carbon", str(site / "co2.csv"), "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert "kg CO2 of the grid import" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "slots.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for name, m in summary["strategies"].items():
        want = sum(float(r[f"{name}_grid_import_kw"])
                   * (200 + 10 * int(r["ts_utc"][11:13])) for r in rows) / 1000.0
        assert m["co2_kg"] == pytest.approx(want, rel=1e-4, abs=1e-3), name
    nb = summary["strategies"]["no_battery"]["co2_kg"]
    assert nb > 0
    assert "kg CO2 of the grid import" in (out / "report.html").read_text()
