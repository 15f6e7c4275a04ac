"""Manual overrides (issue 13 item 5): the optimiser's soft constraints against hand-computed
optima, the SQL table on SQLite and MariaDB, time parsing, and the CLI → planner → executor
round trip (a ``hold`` keeps the simulated battery from discharging)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from test_store import db_url, mariadb_admin  # noqa: F401 - the SQLite + MariaDB fixtures

from executor import overrides as ov
from executor import schedule as sched
from executor.control import Apply, Limits
from executor.drivers.simulated import Plant, SimulatedDriver
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor
from planner import config
from planner.cli.main import main
from planner.history import overrides as sql
from planner.history.store import Store
from planner.inputs import gather
from planner.optimize import model
from planner.optimize.components import SlotLimits
from planner.plan import build as plan_build
from planner.plan import overrides as ovr
from planner.report import html as report_html

START = pd.Timestamp("2026-05-01T06:00Z")


def _cfg(**extra):
    doc = {"site": {"timezone": "UTC"},
           "planning": {"grid_hurdle_eur_per_kwh": 0.0, "terminal_value_quantile": 0.0}}
    doc.update(extra)
    return config.from_mapping(doc)


def _inputs(cfg, buy, load=None, soc=50.0, sell=None):
    n = len(buy)
    load = np.zeros(n) if load is None else np.asarray(load, dtype=float)
    sell = np.zeros(n) if sell is None else np.asarray(sell, dtype=float)
    return gather.from_arrays(START, 3600, buy, np.zeros(n), load, soc, cfg,
                              buy_eur_per_kwh=np.asarray(buy, dtype=float),
                              sell_eur_per_kwh=sell)


def _o(kind, first, last, oid=1, **kw):
    """Override ``oid`` over hourly slots ``[first, last)`` of START."""
    return ov.Override(kind=kind, start=(START + pd.Timedelta(hours=first)).to_pydatetime(),
                       end=(START + pd.Timedelta(hours=last)).to_pydatetime(), id=oid, **kw)


def _solve(cfg, data, *overrides, limits=None):
    extra = {"overrides": list(overrides)} if overrides else None
    return model.solve(data, cfg, limits, extra)


# --- the optimiser -------------------------------------------------------------------------

def test_hold_keeps_the_battery_from_discharging_in_its_window():
    # 1 kW load, buy 0.3/0.5/0.5/0.3/0.1 (no load in the last hour); energy left is worth
    # 0.95 x 0.1: without an override the battery covers every slot; holding slots 1-2 it
    # covers only 0 and 3, and the bill is exactly the two held hours at 0.5
    cfg = _cfg()
    data = _inputs(cfg, [0.3, 0.5, 0.5, 0.3, 0.1], load=[1.0] * 4 + [0.0], soc=80.0)
    free = _solve(cfg, data)
    assert free.battery_discharge_kw == pytest.approx([1.0] * 4 + [0.0], abs=1e-6)
    held = _solve(cfg, data, _o("hold", 1, 3))
    assert held.battery_discharge_kw == pytest.approx([1.0, 0, 0, 1.0, 0], abs=1e-6)
    assert held.grid_import_kw == pytest.approx([0, 1.0, 1.0, 0, 0], abs=1e-6)
    assert held.energy_cost_eur == pytest.approx(1.0, abs=1e-6)
    # energy balance holds in every slot
    balance = (held.grid_import_kw + held.battery_discharge_kw - held.grid_export_kw
               - held.battery_charge_kw - data.load_kw)
    assert np.abs(balance).max() < 1e-6
    assert ovr.violations(held.outputs, data.index) == []


def test_hold_yields_to_physics_and_reports_a_violation():
    # no grid in slot 1 (an outage): the load must come from the battery; the override is
    # soft, so the plan discharges there and reports the 1 kWh it misses
    cfg = _cfg()
    data = _inputs(cfg, [0.3, 0.5, 0.5, 0.3, 0.1], load=[1.0] * 4 + [0.0], soc=80.0)
    sol = _solve(cfg, data, _o("hold", 1, 3),
                 limits=SlotLimits(import_kw=[np.inf, 0.0, np.inf, np.inf, np.inf]))
    assert sol.battery_discharge_kw[1] == pytest.approx(1.0, abs=1e-6)
    assert sol.battery_discharge_kw[2] == pytest.approx(0.0, abs=1e-6)
    assert sol.unserved_kw.max() < 1e-6
    (v,) = ovr.violations(sol.outputs, data.index)
    assert (v.kind, v.amount, v.unit) == ("override", pytest.approx(1.0, abs=1e-4), "kWh")
    assert v.first_slot == data.index[1].to_pydatetime()
    assert "override #1 hold" in v.message


def test_charge_ramps_towards_the_soc_at_the_given_power():
    # flat 0.3 and energy worth 0.285: the plan never charges by itself; charge to 60 % at
    # 2 kW from 20 % (2 kWh): +1.9 kWh per hour (eta 0.95) until 6 kWh, then hold
    cfg = _cfg()
    data = _inputs(cfg, [0.3] * 5, soc=20.0)
    assert _solve(cfg, data).battery_charge_kw.max() < 1e-6
    sol = _solve(cfg, data, _o("charge", 0, 4, soc_pct=60.0, kw=2.0))
    assert sol.soc_kwh[:4] == pytest.approx([3.9, 5.8, 6.0, 6.0], abs=1e-6)
    assert sol.battery_charge_kw[:2] == pytest.approx([2.0, 2.0], abs=1e-6)
    assert sol.battery_discharge_kw[:4] == pytest.approx([0.0] * 4, abs=1e-6)
    assert ovr.violations(sol.outputs, data.index) == []


def test_charge_beyond_the_power_limit_is_reported():
    # 90 % from 20 % in one hour at the 5 kW limit is 4.75 kWh of the 7 kWh needed: 2.25 kWh short
    cfg = _cfg()
    data = _inputs(cfg, [0.3] * 3, soc=20.0)
    sol = _solve(cfg, data, _o("charge", 0, 1, soc_pct=90.0))
    assert sol.battery_charge_kw[0] == pytest.approx(5.0, abs=1e-6)
    (v,) = ovr.violations(sol.outputs, data.index)
    assert v.amount == pytest.approx(9.0 - 2.0 - 4.75, abs=1e-4)


def test_export_discharges_into_the_grid_down_to_the_soc():
    # sell 0.05 < the energy's value: the plan keeps it; export to 50 % at 2 kW from 80 %
    # takes 2/0.95 kWh per hour out until 5 kWh, all of it into the grid
    cfg = _cfg()
    data = _inputs(cfg, [0.3] * 5, soc=80.0, sell=[0.05] * 5)
    sol = _solve(cfg, data, _o("export", 0, 4, soc_pct=50.0, kw=2.0))
    assert sol.soc_kwh[:4] == pytest.approx([8 - 2 / 0.95, 5.0, 5.0, 5.0], abs=1e-6)
    assert sol.grid_export_kw == pytest.approx(sol.battery_discharge_kw, abs=1e-6)
    assert sol.battery_charge_kw.max() < 1e-6
    assert ovr.violations(sol.outputs, data.index) == []


WINDOW_PRICES = np.full(24, 0.40)
WINDOW_PRICES[4:12] = [0.30, 0.10, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30]  # 10:00-18:00


def test_water_runs_in_its_override_and_the_day_counts_it():
    # 6 kWh a day at up to 3 kW in 10:00-18:00; "heat water now" at 07:00 (outside the
    # window) runs 3 kW there and the other 3 kWh go to the cheapest window hour (11:00)
    heater = {"power_kw": 3.0, "daily_kwh": 6.0, "modulating": True,
              "window": {"from": "10:00", "to": "18:00"}}
    cfg = _cfg(battery={"capacity_kwh": 10, "max_soc_pct": 0, "min_soc_pct": 0,
                        "final_soc_pct": 0}, water_heater=heater)
    data = _inputs(cfg, WINDOW_PRICES)
    sol = _solve(cfg, data, _o("water", 1, 2))
    power = sol.device_kw["water_heater"]
    assert power[1] == pytest.approx(3.0, abs=1e-6)
    assert power[5] == pytest.approx(3.0, abs=1e-6)
    assert power.sum() == pytest.approx(6.0, abs=1e-6)
    assert sol.energy_cost_eur == pytest.approx(3 * 0.40 + 3 * 0.10, abs=1e-6)


def test_load_override_runs_an_on_off_load_as_asked():
    # a 2 kW x 2 h dishwasher (window 18:00-06:00) run at 08:00-10:00 by hand: nothing more
    dishwasher = {"name": "dishwasher", "power_kw": 2.0, "run_h": 2,
                  "window": {"from": "18:00", "to": "06:00"}}
    cfg = _cfg(battery={"capacity_kwh": 10, "max_soc_pct": 0, "min_soc_pct": 0,
                        "final_soc_pct": 0}, loads=[dishwasher])
    data = _inputs(cfg, WINDOW_PRICES)
    sol = _solve(cfg, data, _o("load", 2, 4, target="dishwasher"))
    power = sol.device_kw["dishwasher"]
    assert sorted(np.flatnonzero(power > 1e-6)) == [2, 3]
    assert set(np.round(power, 6)) <= {0.0, 2.0}


def test_no_overrides_is_the_plan_it_always_was():
    cfg = _cfg()
    data = _inputs(cfg, [0.3, 0.5, 0.1, 0.5], load=[1.0] * 4)
    plain = model.solve(data, cfg)
    past = _o("hold", -5, -1)  # over before the horizon: not in the problem
    again = model.solve(data, cfg, extra={"overrides": [past]})
    # the same problem, solved again: the same numbers (the model is compiled once)
    assert again.objective_eur == pytest.approx(plain.objective_eur, abs=1e-9)
    assert again.battery_discharge_kw == pytest.approx(plain.battery_discharge_kw, abs=1e-9)
    assert again.outputs["overrides_report"] == []


def test_schedule_carries_the_overrides():
    cfg = _cfg()
    data = _inputs(cfg, [0.3, 0.5, 0.5, 0.3], load=[1.0] * 4)
    sol = _solve(cfg, data, _o("hold", 1, 3, reason="guests"))
    plan = plan_build.build(data, sol, cfg)
    schedule = plan_build.to_schedule(plan, cfg, START)
    doc = json.loads(schedule.to_json())
    assert doc["version_minor"] == 3
    (entry,) = doc["overrides"]
    assert entry["kind"] == "hold" and entry["reason"] == "guests"
    assert entry["start"] == "2026-05-01T07:00:00Z" and entry["shortfall_kwh"] == 0.0
    assert sched.from_json(schedule.to_json()) == schedule


# --- parsing --------------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc)  # 16:30 in Berlin


def test_parse_time_local_clock_iso_and_now():
    tz = "Europe/Berlin"
    assert ovr.parse_time("now", NOW, tz, "--from") == NOW
    assert ovr.parse_time("18:00", NOW, tz, "--from") == NOW.replace(hour=17, minute=0)
    # --to is the first such time after --from: 08:00 tomorrow
    start = ovr.parse_time("18:00", NOW, tz, "--from")
    assert ovr.parse_time("08:00", NOW, tz, "--to", after=start) == datetime(
        2026, 12, 2, 7, 0, tzinfo=timezone.utc)
    assert ovr.parse_time("2026-12-01T20:00Z", NOW, tz, "--to") == NOW.replace(hour=20,
                                                                                 minute=0)
    with pytest.raises(ov.OverrideError, match="--from: expected 'now'"):
        ovr.parse_time("teatime", NOW, tz, "--from")
    assert ovr.parse_duration("90m") == timedelta(minutes=90)


def test_make_checks_names_against_the_config():
    cfg = config.from_mapping({"site": {"timezone": "UTC"}})
    with pytest.raises(ov.OverrideError, match="NAME: no deferrable load 'pool'"):
        ovr.make(cfg, NOW, "load", "pool", "now", duration="1h")
    with pytest.raises(ov.OverrideError, match="water: no water_heater"):
        ovr.make(cfg, NOW, "water", None, "now", duration="1h")
    with pytest.raises(ov.OverrideError, match="--to: the override needs an end"):
        ovr.make(cfg, NOW, "hold")
    with pytest.raises(ov.OverrideError, match="soc_pct: only for charge and export"):
        ovr.make(cfg, NOW, "hold", duration="1h", soc_pct=50)
    o = ovr.make(cfg, NOW, "charge", None, "now", duration="2h", soc_pct=80, by="me@pi")
    assert (o.end - o.start, o.created_by) == (timedelta(hours=2), "me@pi")


# --- SQL ------------------------------------------------------------------------------------

def test_store_round_trip_clear_and_expiry(db_url):  # noqa: F811 - the fixture
    with Store(db_url) as store:
        a = sql.add(store, ov.Override("hold", NOW, NOW + timedelta(hours=2), reason="guests",
                                       created_by="anna@pi", created_at=NOW), NOW)
        b = sql.add(store, ov.Override("charge", NOW, NOW + timedelta(hours=1), soc_pct=80.0,
                                       kw=2.5, created_by="anna@pi", created_at=NOW), NOW)
        assert (a.id, b.id) == (1, 2)
        got = sql.listing(store, NOW)
        assert [o.kind for o in got] == ["hold", "charge"]
        assert got[1].soc_pct == 80.0 and got[1].kw == 2.5 and got[0].reason == "guests"
        assert got[0].start == NOW and got[0].created_by == "anna@pi"
        # expiring by itself: 90 minutes later only the hold is left
        later = NOW + timedelta(minutes=90)
        assert [o.id for o in sql.listing(store, later)] == [1]
        assert [o.id for o in sql.in_force(store, NOW, later)] == [1, 2]
        assert sql.clear(store, later, "bob@pi", 1) == 1
        assert sql.clear(store, later, "bob@pi", 1) == 0  # already cleared
        assert sql.listing(store, later) == []
        assert len(sql.listing(store, later, expired=True)) == 2  # the history keeps them
        # pruned with the rest of the history once over for longer than keep_days
        store.prune(pd.Timestamp(NOW + timedelta(days=400)))
        assert sql.listing(store, later, expired=True) == []


# --- CLI -> planner -> executor ---------------------------------------------------------------

def _night_config(site_dir):
    # a night: no PV, 1.5 kW load, dear evening prices: the plan covers the load from the
    # battery (SoC 50 %)
    return site_dir(config={"site": {"timezone": "UTC"}}, hours=24,
                    start="2026-05-01T00:00:00Z", pv=np.zeros(24), load=np.full(24, 1.5),
                    prices=np.full(24, 0.40))


def test_override_round_trip_cli_planner_executor(site_dir):
    cfg_path = _night_config(site_dir)
    runner = CliRunner()
    now = "2026-05-01T10:00:00Z"
    base = ["--config", str(cfg_path), "--now", now]
    r = runner.invoke(main, ["plan", *base])
    assert r.exit_code == 0, r.output
    free = sched.read(cfg_path.parent / "schedule.json")
    assert free.slots[0].battery_discharge_kw > 1.0  # the plan discharges now

    r = runner.invoke(main, ["override", "add", "hold", "--from", "now", "--for", "3h",
                             "--reason", "keep it for tonight", *base])
    assert r.exit_code == 0, r.output
    assert "override #1" in r.output
    file_doc = json.loads((cfg_path.parent / ov.FILE_NAME).read_text())
    assert file_doc["overrides"][0]["kind"] == "hold"
    r = runner.invoke(main, ["override", "list", *base])
    assert "keep it for tonight" in r.output and "[in force]" in r.output

    # the executor obeys the file at once, before any new plan: the simulated battery
    # stays put although the (old) plan says discharge
    t0 = datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)
    clock = [t0]
    plant = Plant(50.0, 10.0, t0, profile=lambda now: (0.0, 1500.0))
    ex = Executor(SimulatedDriver(clock=lambda: clock[0], plant=plant),
                  PlanTracker(FileSource(str(cfg_path.parent / "schedule.json"))),
                  Limits(max_plan_age_s=7200, interval_s=10), str(cfg_path.parent / "p.json"),
                  clock=lambda: clock[0], overrides_path=str(cfg_path.parent / ov.FILE_NAME))
    for _ in range(30):
        d = ex.tick()
        assert isinstance(d, Apply), d.reason
        assert d.setpoint.battery_power_w <= 1e-6, d.reason
        assert "override #1 hold" in d.reason
        clock[0] += timedelta(seconds=10)
    assert plant.soc_pct == pytest.approx(50.0, abs=0.01)

    # the next plan is made with it: no discharge for three hours, the override listed
    r = runner.invoke(main, ["plan", *base])
    assert r.exit_code == 0, r.output
    assert "override #1: hold" in r.output
    held = sched.read(cfg_path.parent / "schedule.json")
    assert [s.battery_discharge_kw for s in held.slots[:3]] == [0.0, 0.0, 0.0]
    assert held.overrides[0]["reason"] == "keep it for tonight"
    # the report shows it, from the database as from the plan (plan_history.overrides)
    with Store(config.load(cfg_path).storage.url) as store:
        html = report_html.render(store.load())
    assert 'id="overrides"' in html and "keep it for tonight" in html

    # cleared: the file is empty again and the executor follows the plan
    r = runner.invoke(main, ["override", "clear", "1", *base])
    assert r.exit_code == 0, r.output
    assert json.loads((cfg_path.parent / ov.FILE_NAME).read_text()) == {"overrides": []}
    r = runner.invoke(main, ["override", "clear", "1", *base])
    assert r.exit_code == 2 and "no override #1" in r.output


def test_override_cli_bad_input_names_the_option(site_dir):
    cfg_path = _night_config(site_dir)
    r = CliRunner().invoke(main, ["override", "add", "hold", "--from", "18:00", "--to",
                                  "soon", "--config", str(cfg_path)])
    assert r.exit_code == 2
    assert "--to: expected 'now'" in r.output
    r = CliRunner().invoke(main, ["override", "add", "load", "pool", "--for", "1h",
                                  "--config", str(cfg_path)])
    assert r.exit_code == 2 and "NAME: no deferrable load 'pool'" in r.output
