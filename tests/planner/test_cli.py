"""`helios` CLI: exit codes, summary, schedule.json written atomically or not at all."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from executor import schedule as sched
from planner import config as config_mod
from planner.cli.main import main
from planner.inputs import gather

NOW = "2026-05-01T10:07:00Z"


@pytest.fixture
def runner():
    return CliRunner()


def _plan(runner, cfg_path, *extra):
    return runner.invoke(main, ["plan", "--config", str(cfg_path), "--now", NOW, *extra])


def test_plan_writes_valid_schedule_and_prints_summary(runner, site_dir):
    cfg_path = site_dir()
    result = _plan(runner, cfg_path)
    assert result.exit_code == 0, result.output
    out = cfg_path.parent / "schedule.json"
    schedule = sched.read(out)
    assert schedule.slots[0].start.isoformat() == "2026-05-01T10:00:00+00:00"
    assert schedule.slot_s == 900
    assert len(schedule.slots) == (48 - 10) * 4  # prices end 2026-05-03T00:00Z
    assert schedule.generated_at.isoformat() == "2026-05-01T10:07:00+00:00"
    assert (schedule.valid_until - schedule.generated_at).total_seconds() == 3600
    assert schedule.status == "optimal"
    # summary in local time (Europe/Berlin, CEST = UTC+2): first row 12:00
    assert "12:00" in result.output.splitlines()[2]
    assert "expected cost" in result.output and "wrote" in result.output
    doc = json.loads(out.read_text())
    for key in ("version", "generated_at", "valid_until", "slot_s", "status", "objective_eur",
                "solve_s", "solver", "violations", "slots"):
        assert key in doc
    assert set(doc["slots"][0]) >= {"start", "grid_import_kw", "grid_export_kw",
                                     "battery_charge_kw", "battery_discharge_kw", "pv_kw",
                                     "pv_used_kw", "load_kw", "soc_pct", "buy_eur_per_kwh",
                                     "sell_eur_per_kwh", "grid_setpoint_w", "action", "reason"}
    for slot in schedule.slots:
        assert slot.grid_setpoint_w == round((slot.grid_import_kw - slot.grid_export_kw) * 1000)


def test_out_option_and_quiet(runner, site_dir, tmp_path):
    target = tmp_path / "elsewhere.json"
    result = _plan(runner, site_dir(), "--out", str(target), "-q")
    assert result.exit_code == 0
    assert result.output == ""
    assert sched.read(target).slots


@pytest.mark.parametrize(("change", "code", "message"), [
    ({"battery": {"capacity_kwh": "big"}}, 2, "battery.capacity_kwh: expected a number > 0"),
    ({"battery": {"min_soc_pct": 90, "max_soc_pct": 50}}, 2, "battery.min_soc_pct"),
    ({"prices": {"type": "csv", "path": "missing.csv"}}, 3, "file not found"),
])
def test_failure_leaves_previous_schedule_untouched(runner, site_dir, change, code, message):
    cfg_path = site_dir()
    assert _plan(runner, cfg_path).exit_code == 0
    out = cfg_path.parent / "schedule.json"
    before = out.read_bytes()
    site_dir(config=change)
    result = _plan(runner, cfg_path)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert out.read_bytes() == before
    assert not [p for p in os.listdir(cfg_path.parent) if p.startswith(".tmp-")]


def test_gap_in_csv_exit_3(runner, site_dir, tmp_path):
    cfg_path = site_dir()
    lines = (tmp_path / "prices.csv").read_text().splitlines()
    del lines[5]
    (tmp_path / "prices.csv").write_text("\n".join(lines) + "\n")
    result = _plan(runner, cfg_path)
    assert result.exit_code == 3
    assert "gap, no row for 2026-05-01T04:00:00Z" in result.output
    assert not (tmp_path / "schedule.json").exists()


def test_naive_now_is_a_usage_error(runner, site_dir):
    result = runner.invoke(main, ["plan", "--config", str(site_dir()), "--now",
                                  "2026-05-01T10:00:00"])
    assert result.exit_code == 2
    assert "no time zone" in result.output


def test_unwritable_output_exit_5(runner, site_dir, tmp_path):
    result = _plan(runner, site_dir(), "--out", str(tmp_path / "no" / "such" / "dir.json"))
    assert result.exit_code == 5
    assert "cannot write" in result.output


def test_no_config_without_demo_is_exit_2(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HELIOS_CONFIG", raising=False)
    result = runner.invoke(main, ["plan"])
    assert result.exit_code == 2
    assert "--config: expected a config file" in result.output


def test_every_verb_is_on_the_group(runner):
    """planner/cli/main.py adds one command per verb module; --help lists them all."""
    res = runner.invoke(main, ["--help"])
    assert res.exit_code == 0
    listed = {line.split()[0] for line in res.output.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == {"backtest", "check-config", "db", "doctor", "ev", "forecast", "plan",
                      "override", "prices", "report", "serve", "setup", "simulate", "sweep"}
    assert runner.invoke(main, ["db", "--help"]).output.count("upgrade") >= 1


def test_check_config(runner, site_dir):
    ok = runner.invoke(main, ["check-config", "--config", str(site_dir())])
    assert ok.exit_code == 0 and "config OK" in ok.output
    bad = runner.invoke(main, ["check-config", "--config",
                               str(site_dir(config={"grid": {"max_import_kw": -3}}))])
    assert bad.exit_code == 2
    assert "grid.max_import_kw: expected a number >= 0 [kW], got -3 (int)" in bad.output
    explain = runner.invoke(main, ["check-config", "--explain"])
    assert "battery.capacity_kwh = 10.0 [kWh]" in explain.output


def test_demo_runs_as_a_real_process(tmp_path):
    """The README's first command, as a user runs it (console script, no network)."""
    env = {**os.environ, "HELIOS_CONFIG": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "plan", "--demo", "--now", "2026-07-01T08:00:00Z",
         "--out", str(tmp_path / "schedule.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    schedule = sched.read(tmp_path / "schedule.json")
    assert len(schedule.slots) == 192
    actions = {s.action for s in schedule.slots}
    assert "charge_grid" in actions or "charge_pv" in actions
    assert any(s.buy_eur_per_kwh < 0 for s in schedule.slots), "demo has a negative-price day"
    assert "expected cost" in proc.stdout
    # stdout is the summary only (no solver banner or log lines in the middle of it)
    assert proc.stdout.startswith("Helios plan "), proc.stdout[:200]


def test_plan_does_not_load_the_other_verbs():
    """`helios plan` runs every 5 minutes on small machines: its start must not import the
    backtest, the report or the forecast-check verbs (the group loads verbs on first use)."""
    code = ("import sys\n"
            "from planner.cli.main import main\n"
            "try:\n"
            "    main(['plan', '--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('planner.cli.')\n"
            "             or m.startswith('planner.evaluate')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    loaded = out.stdout.strip().splitlines()[-1]
    assert "planner.cli.plan" in loaded
    for other in ("planner.cli.backtest", "planner.cli.forecast", "planner.evaluate"):
        assert other not in loaded, loaded


# --- issue 16: an empty or partial config never plans on demo data ---------------------------


@pytest.mark.parametrize(("doc", "missing"), [
    ("", ["prices", "pv", "load", "state"]),
    ("battery: {capacity_kwh: 8}\n", ["prices", "pv", "load", "state"]),
    ("prices: {type: csv, path: prices.csv}\n", ["pv", "load", "state"]),
])
@pytest.mark.parametrize("verb", ["plan", "check-config"])
def test_missing_providers_are_a_config_error_naming_them(runner, tmp_path, doc, missing,
                                                          verb):
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(doc)
    result = runner.invoke(main, [verb, "--config", str(cfg_path)])
    assert result.exit_code == 2, result.output
    for kind in ("prices", "pv", "load", "state"):
        named = f"{kind}: expected a {kind}: section {{type: ...}}" in result.output
        assert named == (kind in missing), (kind, result.output)
    assert "only with --demo" in result.output
    assert not (tmp_path / "schedule.json").exists()


def test_partial_config_with_demo_plans_on_demo_providers(runner, tmp_path):
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text("battery: {capacity_kwh: 8}\n")
    result = runner.invoke(main, ["plan", "--config", str(cfg_path), "--demo", "--now", NOW])
    assert result.exit_code == 0, result.output
    assert sched.read(tmp_path / "schedule.json").slots


def test_static_state_is_flagged_like_a_degraded_input(runner, site_dir):
    cfg_path = site_dir(config={"report": {"path": "report.html"}})
    result = _plan(runner, cfg_path)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "state: static" in x
                and not x.startswith("helios: warning"))
    assert line.startswith("DEGRADED state: static (state.soc_pct = 50 %): a fixed state of "
                           "charge from the config, not measured"), line
    con = sqlite3.connect(cfg_path.parent / "helios.db")
    degraded, inputs = con.execute("select inputs_degraded, inputs from plan_history").fetchone()
    con.close()
    assert degraded == 1
    state = next(i for i in json.loads(inputs) if i["kind"] == "state")
    assert state["degraded"] and state["provider"] == "static"
    html = (cfg_path.parent / "report.html").read_text()
    assert "state.soc_pct = 50 %" in html and "not measured" in html


def test_measured_state_is_not_degraded(site_dir):
    cfg = config_mod.load(site_dir())
    now = pd.Timestamp(NOW)
    assert gather.state_status(cfg, 50.0, now).degraded
    measured = dataclasses.replace(cfg, state=config_mod.ProviderConfig("measurements", None))
    st = gather.state_status(measured, 61.0, now)
    assert not st.degraded and st.source == "SoC 61.0 %" and st.provider == "measurements"


def test_demo_providers_static_state_and_no_tariff_are_warned(runner, site_dir):
    cfg_path = site_dir(config={"prices": {"type": "demo"}, "pv": {"type": "demo"},
                                "load": {"type": "demo"}})
    for args in (["plan", "--config", str(cfg_path), "--now", NOW],
                 ["check-config", "--config", str(cfg_path)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        warnings = [x for x in result.output.splitlines() if x.startswith("helios: warning: ")]
        assert any("prices, pv, load: type demo: planning on the built-in demo data" in w
                   for w in warnings), warnings
        assert any("state: type static" in w for w in warnings), warnings
        assert any("no tariff: section: buy = sell = the spot price" in w for w in warnings)
    # a real tariff and no demo providers: only the static state is left
    cfg_path = site_dir(config={"tariff": {"buy": "price + 0.2", "sell": "price"}})
    result = runner.invoke(main, ["check-config", "--config", str(cfg_path)])
    warnings = [x for x in result.output.splitlines() if x.startswith("helios: warning: ")]
    assert len(warnings) == 1 and "state: type static" in warnings[0]
    # --demo and -q: no config warnings (the demo is meant to be demo data)
    result = runner.invoke(main, ["plan", "--config", str(cfg_path), "--now", NOW, "--demo"])
    assert "helios: warning" not in result.output


# --- issue 16: after `helios plan --demo` in an empty folder the other verbs work there ------


def test_verbs_work_where_plan_demo_ran(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HELIOS_CONFIG", raising=False)
    assert runner.invoke(main, ["plan", "--demo", "--now", NOW, "-q"]).exit_code == 0
    assert (tmp_path / "schedule.json").exists() and (tmp_path / "helios.db").exists()
    for args, expect in ((["report", "--demo"], "wrote report.html (plan 1,"),
                         (["check-config", "--demo"], "config OK"),
                         (["db", "status", "--demo"], "schema "),
                         (["db", "prune", "--demo"], "pruned rows"),
                         (["prices", "--demo", "--now", NOW], "prices (demo)"),
                         (["forecast", "pv", "--demo", "--now", NOW], "pv (demo)")):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert expect in result.output, (args, result.output)
    assert (tmp_path / "report.html").stat().st_size > 10_000
    status = runner.invoke(main, ["db", "status", "--demo"]).output
    assert "plan      1" in status
    # without --demo: exit 2, and the hint names an option the verb takes
    for args in (["report"], ["db", "status"], ["prices"], ["check-config"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "or --demo for the built-in demo configuration" in result.output
        assert "--demo" in runner.invoke(main, [*args, "--help"]).output


# --- issue 16: NaN after a solve never ends in a traceback after schedule.json ---------------


def _patch_solution(monkeypatch, **nan_fields):
    from planner.plan import run as run_mod

    real = run_mod.model.solve

    def solve(inputs, cfg):
        sol = real(inputs, cfg)
        changes = {}
        for name, index in nan_fields.items():
            arr = np.array(getattr(sol, name), dtype=float)
            arr[index] = np.nan
            changes[name] = arr
        return dataclasses.replace(sol, **changes)

    monkeypatch.setattr(run_mod.model, "solve", solve)


def test_nan_flow_after_the_solve_is_exit_4_before_anything_is_written(runner, site_dir,
                                                                       monkeypatch):
    cfg_path = site_dir()
    _patch_solution(monkeypatch, grid_import_kw=3)
    result = _plan(runner, cfg_path)
    assert result.exit_code == 4, result.output
    assert "non-finite grid_import_kw (nan) in the slot starting 2026-05-01T10:45:00" \
        in result.output and "nothing was written" in result.output
    assert "Traceback" not in result.output
    assert not (cfg_path.parent / "schedule.json").exists()
    assert not (cfg_path.parent / "helios.db").exists()


def test_missing_energy_values_are_stored_as_null(runner, site_dir, monkeypatch):
    """The LP's dual is informative only: a solve without it still plans, saves and
    reports (NULL in plan_slot.energy_value_eur_per_kwh)."""
    cfg_path = site_dir(config={"report": {"path": "report.html"}})
    _patch_solution(monkeypatch, energy_value_eur_per_kwh=slice(None))
    result = _plan(runner, cfg_path)
    assert result.exit_code == 0, result.output
    assert "saved plan 1" in result.output
    con = sqlite3.connect(cfg_path.parent / "helios.db")
    values = {r[0] for r in con.execute("select energy_value_eur_per_kwh from plan_slot")}
    con.close()
    assert values == {None}
    assert runner.invoke(main, ["report", "--config", str(cfg_path)]).exit_code == 0


# --- issue 16: the README says what the code does ---------------------------------------------

README = Path(__file__).parents[2] / "README.md"


def test_config_lookup_order_is_the_one_the_readme_gives(tmp_path, monkeypatch):
    from planner.cli.common import find_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("")
    monkeypatch.setenv("HELIOS_CONFIG", "from-env.yaml")
    assert find_config("given.yaml") == "given.yaml"
    assert find_config(None) == "from-env.yaml"
    monkeypatch.setenv("HELIOS_CONFIG", "")  # set but empty: ignored
    assert find_config(None) == "config.yaml"
    (tmp_path / "config.yaml").unlink()
    assert find_config(None) is None
    text = " ".join(README.read_text().split())
    assert ("The config file is, in this order: `--config FILE`; else `$HELIOS_CONFIG` (when "
            "set and not empty); else `./config.yaml` if it exists; else none") in text


def test_readme_starts_with_a_venv_and_names_the_test_services():
    text = README.read_text()
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert len(first_block) == 2
    assert first_block[0].startswith("python3 -m venv .venv && . .venv/bin/activate && pip "
                                     "install -e . && helios plan --demo")
    assert first_block[1].startswith("pip install -e '.[test]' && python -m pytest -q")
    assert "PEP 668" in text
    ci = (Path(__file__).parents[2] / ".ci" / "run").read_text()
    packages = ci.split('APT_PACKAGES="', 1)[1].split('"', 1)[0].split()
    flat = " ".join(text.split())
    for package in packages:  # every apt package .ci/run installs is named in the README
        assert f"{package}" in flat, package
    assert "127.0.0.1:3306" in flat and "CI=true" in flat
