"""The water heater (issue 13, item 1): hand-computed optima on small horizons.

Hourly slots from midnight UTC (site timezone UTC unless a test is about local time), no grid
hurdle, so each optimum can be worked out by hand: the heater takes the cheapest slots of its
window, PV surplus first; never outside the window; the daily energy exactly; the energy
already delivered today subtracted; on/off in whole power steps; and the battery discharges
into it only when that pays after its losses and wear (one objective, no rule).
"""

from __future__ import annotations

import dataclasses
import sqlite3

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from executor import plansource
from executor import schedule as sched
from planner import config
from planner.cli.main import main
from planner.core.errors import ConfigError, OptimizationError
from planner.history.store import Store
from planner.inputs import gather
from planner.optimize import model
from planner.optimize.components.deferrable import day_of_slots
from planner.optimize.components.water_heater import heater_spec
from planner.plan import baselines, build, run
from planner.plan import record as plan_record
from planner.report import html as report_html

START = pd.Timestamp("2026-05-01T00:00Z")
NO_BATTERY = {"max_soc_pct": 0}  # a battery that can hold nothing


def _cfg(heater: dict | None = None, battery: dict | None = None, tz: str = "UTC"):
    """A lossless, empty battery without wear or terminal value; the heater 1 kW, 2 kWh/day."""
    b = {"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5, "charge_efficiency": 1,
         "discharge_efficiency": 1, "min_soc_pct": 0, "max_soc_pct": 100, "final_soc_pct": 0}
    h = {"power_kw": 1.0, "daily_kwh": 2.0, "window": {"from": "02:00", "to": "06:00"}}
    doc = {"site": {"timezone": tz}, "battery": {**b, **(battery or {})},
           "planning": {"grid_hurdle_eur_per_kwh": 0.0}}
    if heater is not False:
        doc["water_heater"] = {**h, **(heater or {})}
    return config.from_mapping(doc)


def _inputs(cfg, buy, sell=None, pv=None, load=None, soc_pct=0.0, start=START, slot_s=3600):
    n = len(buy)
    buy = np.asarray(buy, dtype=float)
    sell = np.zeros(n) if sell is None else np.asarray(sell, dtype=float)
    pv = np.zeros(n) if pv is None else np.asarray(pv, dtype=float)
    load = np.zeros(n) if load is None else np.asarray(load, dtype=float)
    return gather.from_arrays(start, slot_s, buy, pv, load, soc_pct, cfg, buy_eur_per_kwh=buy,
                              sell_eur_per_kwh=sell)


def _balance_kw(data, sol) -> float:
    supply = sol.pv_used_kw + sol.grid_import_kw + sol.battery_discharge_kw + sol.unserved_kw
    demand = (data.load_kw + sol.battery_charge_kw + sol.grid_export_kw
              + sum(sol.device_kw.values()))
    return float(np.abs(supply - demand).max())


PRICES = [0.10, 0.50, 0.20, 0.30, 0.25, 0.40, 0.10, 0.15]  # window: slots 2..5


def test_heater_takes_the_cheapest_slots_of_its_window_and_nothing_outside():
    # window 02:00-06:00: 0.20, 0.30, 0.25, 0.40 -> slots 2 and 4 (the 0.10 slots 0 and 6
    # are cheaper but closed): 2 kWh for 0.20 + 0.25 = 0.45 EUR
    cfg = _cfg(battery=NO_BATTERY)
    data = _inputs(cfg, PRICES)
    sol = model.solve(data, cfg)
    heater = sol.device_kw["water_heater"]
    np.testing.assert_allclose(heater, [0, 0, 1, 0, 1, 0, 0, 0], atol=1e-6)
    assert sol.energy_cost_eur == pytest.approx(0.45, abs=1e-6)
    assert sol.outputs["water_heater_need_kwh"] == pytest.approx(2.0)
    assert sol.outputs["water_heater_shortfall_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert _balance_kw(data, sol) <= 1e-6
    # no heater: the same house costs nothing (no load)
    assert model.solve(data, _cfg(heater=False, battery=NO_BATTERY)).energy_cost_eur == \
        pytest.approx(0.0, abs=1e-9)


def test_heater_uses_pv_surplus_first():
    # 1.5 kW of PV in slot 5 (the dearest import of the window, 0.40) with 0.5 kW of load: the
    # 1 kW surplus would be sold at 0.05, so heating with it costs 0.05/kWh of lost export;
    # the second kWh is the cheapest import of the window (slot 2, 0.20)
    cfg = _cfg(battery=NO_BATTERY)
    pv = np.zeros(8)
    pv[5] = 1.5
    load = np.zeros(8)
    load[5] = 0.5
    data = _inputs(cfg, PRICES, sell=[0.05] * 8, pv=pv, load=load)
    sol = model.solve(data, cfg)
    heater = sol.device_kw["water_heater"]
    np.testing.assert_allclose(heater, [0, 0, 1, 0, 0, 1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(sol.grid_export_kw, 0.0, atol=1e-6)
    assert sol.energy_cost_eur == pytest.approx(0.20, abs=1e-6)
    assert _balance_kw(data, sol) <= 1e-6


def test_daily_energy_met_exactly_and_delivered_energy_subtracted():
    cfg = _cfg(battery=NO_BATTERY, heater={"daily_kwh": 2.5})
    data = _inputs(cfg, PRICES)
    m = model.get_model(model.ModelSpec.from_config(cfg, data.n, data.slot_s))
    sol = m.solve(data, cfg)
    heater = sol.device_kw["water_heater"]
    assert heater.sum() == pytest.approx(2.5, abs=1e-6)
    np.testing.assert_allclose(heater, [0, 0, 1, 0.5, 1, 0, 0, 0], atol=1e-6)  # 0.3 < 0.4
    # a re-plan after 1.0 kWh was delivered today: 1.5 kWh left, in slots 2 and 4
    sol = m.solve(data, cfg, extra={"water_heater": 1.0})
    np.testing.assert_allclose(sol.device_kw["water_heater"], [0, 0, 1, 0, 0.5, 0, 0, 0],
                               atol=1e-6)
    assert sol.outputs["water_heater_need_kwh"] == pytest.approx(1.5)
    # more than the day's energy delivered already: nothing more today
    sol = m.solve(data, cfg, extra={"water_heater": {"delivered_kwh": 3.0}})
    np.testing.assert_allclose(sol.device_kw["water_heater"], 0.0, atol=1e-6)
    assert model.solve(data, cfg, extra={"water_heater": 1.0}).outputs[
        "water_heater_need_kwh"] == pytest.approx(1.5)


def test_on_off_heater_runs_in_whole_power_steps():
    # 2.5 kWh at 1 kW on/off: three whole hours (2.5 rounded up to whole steps), the three
    # cheapest of the window (0.20, 0.25, 0.30); modulating takes exactly 2.5
    cfg = _cfg(battery=NO_BATTERY, heater={"daily_kwh": 2.5, "modulating": False})
    data = _inputs(cfg, PRICES)
    sol = model.solve(data, cfg)
    heater = sol.device_kw["water_heater"]
    np.testing.assert_allclose(heater, [0, 0, 1, 1, 1, 0, 0, 0], atol=1e-6)
    assert sol.exact_milp and "MILP" in sol.solver
    assert _balance_kw(data, sol) <= 1e-6
    # 15-min slots, 3 kW: 0.75 kWh steps; 6 kWh = 8 steps exactly, after 1 kWh delivered 7
    cfg = _cfg(battery=NO_BATTERY, heater={"power_kw": 3.0, "daily_kwh": 6.0,
                                            "modulating": False})
    prices = np.tile([0.3, 0.2, 0.25, 0.1], 8)
    data = _inputs(cfg, prices, slot_s=900)
    for delivered, steps in ((0.0, 8), (1.0, 7)):
        sol = model.solve(data, cfg, extra={"water_heater": delivered})
        heater = sol.device_kw["water_heater"]
        assert set(np.round(heater, 6)) <= {0.0, 3.0}
        assert int(round(heater.sum() / 3.0)) == steps
        assert _balance_kw(data, sol) <= 1e-6


def test_battery_holds_in_cheap_window_while_the_heater_imports():
    # the battery starts full (2 kWh, 95 % each way); the heater's window (02:00-06:00) is
    # cheap (0.10), the evening dear (0.40, 0.95 kW of load in slots 6 and 7 = what the full
    # battery gives): the heater imports at 0.10 and the battery keeps its energy for the
    # evening (heating from it and recharging would only lose 5 %); nothing is bought at 0.40
    cfg = _cfg(battery={"capacity_kwh": 2, "charge_efficiency": 0.95,
                        "discharge_efficiency": 0.95})
    prices = [0.30, 0.30, 0.10, 0.10, 0.10, 0.10, 0.40, 0.40]
    load = [0, 0, 0, 0, 0, 0, 0.95, 0.95]
    data = _inputs(cfg, prices, load=load, soc_pct=100.0)
    sol = model.solve(data, cfg)
    np.testing.assert_allclose(sol.battery_discharge_kw[:6], 0.0, atol=1e-6)
    np.testing.assert_allclose(sol.battery_charge_kw, 0.0, atol=1e-6)
    np.testing.assert_allclose(sol.battery_discharge_kw[6:], 0.95, atol=1e-6)
    assert sol.device_kw["water_heater"].sum() == pytest.approx(2.0, abs=1e-6)
    assert sol.energy_cost_eur == pytest.approx(0.20, abs=1e-6)


@pytest.mark.parametrize("price, via_battery", [(0.12, False), (0.16, False), (0.20, True)])
def test_battery_feeds_the_heater_only_when_it_pays_after_losses(price, via_battery):
    # slot 0 costs 0.10 (the heater's window is closed), slot 1 ``price`` (window open, 1 kWh).
    # Through the battery (90 % each way, wear 0.02 per kWh in and out) one kWh for the heater
    # costs 0.10 / 0.81 + 0.02 x (1 / 0.81 + 1) = 0.1681 EUR: at 0.12 and 0.16 the heater
    # imports directly, at 0.20 the battery charges at 0.10 and discharges into it
    cfg = _cfg(battery={"charge_efficiency": 0.9, "discharge_efficiency": 0.9,
                        "cycle_cost_eur_per_kwh": 0.02},
               heater={"daily_kwh": 1.0, "window": {"from": "01:00", "to": "02:00"}})
    data = _inputs(cfg, [0.10, price, 0.50])
    sol = model.solve(data, cfg)
    np.testing.assert_allclose(sol.device_kw["water_heater"], [0, 1, 0], atol=1e-6)
    through = 0.10 / 0.81 + 0.02 * (1 / 0.81 + 1)
    if via_battery:
        assert sol.battery_discharge_kw[1] == pytest.approx(1.0, abs=1e-6)
        assert sol.grid_import_kw[1] == pytest.approx(0.0, abs=1e-6)
        assert sol.objective_eur == pytest.approx(through, abs=1e-6)
    else:
        np.testing.assert_allclose(sol.battery_discharge_kw, 0.0, atol=1e-6)
        assert sol.grid_import_kw[1] == pytest.approx(1.0, abs=1e-6)
        assert sol.objective_eur == pytest.approx(price, abs=1e-6)
    assert _balance_kw(data, sol) <= 1e-6


def test_days_ahead_and_deferral():
    # 48 h; window 10:00-12:00 both days, 2 kWh/day at 1 kW
    prices = np.full(48, 0.30)
    prices[[10, 11, 34, 35]] = 0.20
    prices[[13, 37]] = 0.05  # cheap just after the window: only with deferral
    cfg = _cfg(battery=NO_BATTERY, heater={"window": {"from": "10:00", "to": "12:00"}})
    data = _inputs(cfg, prices)
    heater = model.solve(data, cfg).device_kw["water_heater"]
    assert sorted(np.flatnonzero(heater > 1e-6)) == [10, 11, 34, 35]
    # plan_days_ahead 0: today only, tomorrow is left to a later run
    cfg0 = _cfg(battery=NO_BATTERY, heater={"window": {"from": "10:00", "to": "12:00"},
                                             "plan_days_ahead": 0})
    heater = model.solve(data, cfg0).device_kw["water_heater"]
    assert sorted(np.flatnonzero(heater > 1e-6)) == [10, 11]
    # deferred up to 2 h: 13:00 (0.05) is cheapest, then one of 10/11 (0.20)
    cfgd = _cfg(battery=NO_BATTERY, heater={"window": {"from": "10:00", "to": "12:00"},
                                             "defer_up_to_hours": 2})
    heater = model.solve(data, cfgd).device_kw["water_heater"]
    assert heater[13] == pytest.approx(1.0) and heater[37] == pytest.approx(1.0)
    assert heater.sum() == pytest.approx(4.0)
    assert heater[[12, 14, 36, 38]].max() <= 1e-6 or heater[[10, 11]].sum() == \
        pytest.approx(1.0)


def test_a_day_not_wholly_inside_the_horizon_is_left_to_a_later_run():
    # horizon 00:00-04:00, window 02:00-06:00: today's period ends after the horizon
    cfg = _cfg(battery=NO_BATTERY)
    data = _inputs(cfg, [0.1, 0.1, 0.1, 0.1])
    sol = model.solve(data, cfg)
    np.testing.assert_allclose(sol.device_kw["water_heater"], 0.0, atol=1e-9)
    assert sol.outputs["water_heater_need_kwh"] == 0.0


def test_window_is_local_time_and_dst_safe():
    # Europe/Berlin, 29 March 2026: 02:00 does not exist (CET -> CEST). The local day starts
    # at 2026-03-28T23:00Z and has 23 hourly slots; the window 01:00-04:00 holds 01:00 and
    # 03:00 only, so 2 kWh at 1 kW take exactly those two slots
    tz = "Europe/Berlin"
    cfg = _cfg(battery=NO_BATTERY, tz=tz, heater={"window": {"from": "01:00", "to": "04:00"}})
    start = pd.Timestamp("2026-03-28T23:00Z")
    data = _inputs(cfg, np.full(24, 0.3), start=start)
    heater = model.solve(data, cfg).device_kw["water_heater"]
    local_hours = data.index.tz_convert(tz).hour
    on = local_hours[heater > 1e-6].tolist()
    assert on == [1, 3]
    assert heater.sum() == pytest.approx(2.0)
    # autumn (25 October 2026): 02:00-03:00 happens twice, the window 02:00-03:00 has 2 h
    spec = heater_spec(cfg.water_heater.__class__(window={"from": "02:00", "to": "03:00"}), tz)
    idx = pd.date_range("2026-10-24T22:00Z", periods=26, freq="1h")
    day, today, planned = day_of_slots(idx, 3600, spec)
    assert int((day == today).sum()) == 2 and planned == [today]
    # a window that crosses midnight belongs to the day it starts on
    spec = heater_spec(cfg.water_heater.__class__(window={"from": "22:00", "to": "02:00"}), tz)
    idx = pd.date_range("2026-05-01T18:00Z", periods=12, freq="1h")  # 20:00 .. 07:00 local
    day, today, planned = day_of_slots(idx, 3600, spec)
    hours = idx.tz_convert(tz).hour
    assert sorted(hours[day == today].tolist()) == [0, 1, 22, 23] and planned == [today]


def test_model_without_devices_is_unchanged():
    cfg = _cfg(heater=False)
    spec = model.ModelSpec.from_config(cfg, 8, 3600)
    assert spec.devices == ()
    m = model.get_model(spec)
    assert m.devices == () and m.problem.discrete == []
    assert m.lp.is_dpp()


def test_water_heater_config_is_checked_naming_the_key():
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"water_heater": {"power_kw": 0, "window": {"from": "9"},
                                              "modulating": True, "min_run_h": 1}})
    text = str(info.value)
    assert "water_heater.power_kw" in text
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"water_heater": {"window": {"from": "9", "till": "10:00"},
                                              "min_run_h": 1}})
    text = str(info.value)
    for key in ("water_heater.window.from", "water_heater.window.till",
                "water_heater.window.to", "water_heater.min_run_h"):
        assert key in text
    cfg = config.from_mapping({"water_heater": {"power_kw": 2, "daily_run_h": 1.5}})
    assert cfg.water_heater.energy_kwh == pytest.approx(3.0)
    assert config.from_mapping({}).water_heater is None


# --------------------------------------------------------------------------------------------
# the plan, schedule.json and the baselines


def test_plan_checks_balance_with_devices_and_schedule_round_trip():
    cfg = _cfg(battery=NO_BATTERY)
    data = _inputs(cfg, PRICES)
    result = run.plan_inputs(data, cfg, START)
    plan = result.plan
    np.testing.assert_allclose(plan.devices["water_heater"], [0, 0, 1, 0, 1, 0, 0, 0],
                               atol=1e-6)
    back = sched.from_json(result.schedule.to_json())
    assert back.version_minor >= 2
    assert [s.devices["water_heater"]["power_kw"] for s in back.slots] == \
        [0, 0, 1, 0, 1, 0, 0, 0]
    # the slot's balance holds only with the heater counted
    assert all(abs(s.grid_import_kw + s.pv_used_kw - s.load_kw - s.devices["water_heater"][
        "power_kw"]) <= 1e-4 for s in back.slots)
    broken = dataclasses.replace(plan.solution, device_kw={})
    with pytest.raises(OptimizationError, match="energy balance"):
        build.check(data, broken, cfg)
    assert build.device_energy_kwh(plan, cfg.site.tz) == {"water_heater": {"2026-05-01": 2.0}}
    assert "water_heater: 2.0 kWh planned" in run.summary(result, cfg)
    # baselines heat the same 2 kWh from the window's start (02:00, 03:00: 0.20 + 0.30)
    comparison = baselines.compare(plan, cfg)
    assert comparison.no_battery.bill_eur == pytest.approx(0.50, abs=1e-6)
    assert comparison.plan_bill_eur == pytest.approx(0.45, abs=1e-6)
    assert comparison.savings_vs_no_battery_eur == pytest.approx(0.05, abs=1e-6)


def test_energy_that_does_not_fit_the_window_is_a_violation():
    # 6 kWh in a 4 h window at 1 kW: 4 kWh delivered, 2 kWh reported missing
    cfg = _cfg(battery=NO_BATTERY, heater={"daily_kwh": 6.0})
    result = run.plan_inputs(_inputs(cfg, PRICES), cfg, START)
    np.testing.assert_allclose(result.plan.devices["water_heater"][2:6], 1.0, atol=1e-6)
    (v,) = [v for v in result.schedule.violations if v.kind == "device_energy"]
    assert v.amount == pytest.approx(2.0, abs=1e-4) and "water_heater" in v.message


def test_plan_history_stores_the_devices_and_the_sql_source_returns_them(tmp_path):
    cfg = _cfg(battery=NO_BATTERY)
    result = run.plan_inputs(_inputs(cfg, PRICES), cfg, START)
    record = plan_record.record_from_result(result, cfg)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with Store(url) as store:
        plan_id = store.save(record)
        back = store.load(plan_id)
        np.testing.assert_allclose(back.devices["water_heater"], [0, 0, 1, 0, 1, 0, 0, 0])
        assert list(back.devices.index) == list(back.slots.index)
        # a plan without devices stores none and loads an empty frame
        plain = _cfg(heater=False, battery=NO_BATTERY)
        other = run.plan_inputs(_inputs(plain, PRICES), plain, START)
        store.save(plan_record.record_from_result(other, plain))
        assert len(store.load().devices.columns) == 0
        store.save(record)  # the newest plan has the heater again
    schedule = plansource.SqlSource(url).fetch()
    assert schedule.version_minor == 2
    assert [s.devices["water_heater"]["power_kw"] for s in schedule.slots] == \
        [0, 0, 1, 0, 1, 0, 0, 0]
    assert schedule.slots[0].intent == result.schedule.slots[0].intent


def test_report_shows_the_heaters_planned_energy(tmp_path):
    cfg = _cfg(battery=NO_BATTERY)
    result = run.plan_inputs(_inputs(cfg, PRICES), cfg, START)
    record = plan_record.record_from_result(result, cfg)
    html = report_html.render(record)
    assert 'id="devices"' in html and "water_heater" in html
    assert "Fri 01 May: 2.00" in html
    assert "water_heater 1.00" in html  # the slot rows
    # stored and loaded: the same devices table and slot rows
    with Store(f"sqlite:///{tmp_path / 'h.db'}") as store:
        loaded = report_html.render(store.load(store.save(record)))

    def part(page: str) -> str:
        return page[page.index('<table id="devices">'):page.index("<h2>Inputs</h2>")] + \
            page[page.index('<table class="slots"'):page.index("</table>",
                                                                page.index('class="slots"'))]

    assert part(loaded) == part(html)
    plain = _cfg(heater=False, battery=NO_BATTERY)
    other = run.plan_inputs(_inputs(plain, PRICES), plain, START)
    assert 'id="devices"' not in report_html.render(plan_record.record_from_result(other,
                                                                                   plain))


def test_helios_plan_demo_with_a_water_heater(tmp_path):
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(
        "water_heater:\n  power_kw: 3.0\n  daily_kwh: 6.0\n  modulating: true\n"
        "  window: {from: \"10:00\", to: \"18:00\"}\n"
        "loads:\n  - {name: dishwasher, power_kw: 2.0, run_h: 2, min_run_h: 2,\n"
        "     window: {from: \"18:00\", to: \"06:00\"}}\n"
        "report: {path: report.html}\n")
    result = CliRunner().invoke(main, ["plan", "--config", str(cfg_path), "--demo",
                                       "--now", "2026-05-01T10:07:00Z"])
    assert result.exit_code == 0, result.output
    assert "water_heater: 12.0 kWh planned" in result.output
    schedule = sched.read(tmp_path / "schedule.json")
    heater = np.array([s.devices["water_heater"]["power_kw"] for s in schedule.slots])
    dishwasher = np.array([s.devices["dishwasher"]["power_kw"] for s in schedule.slots])
    dt_h = schedule.slot_s / 3600
    assert heater.sum() * dt_h == pytest.approx(12.0, abs=1e-3)  # today and tomorrow
    assert set(np.round(dishwasher, 4)) <= {0.0, 2.0}
    local = pd.DatetimeIndex([s.start for s in schedule.slots]).tz_convert("Europe/Berlin")
    assert all(10 <= h < 18 for h in local.hour[heater > 1e-6])
    for s in schedule.slots:  # the balance of every slot, devices included
        supply = s.pv_used_kw + s.grid_import_kw + s.battery_discharge_kw
        demand = (s.load_kw + s.battery_charge_kw + s.grid_export_kw
                  + sum(d["power_kw"] for d in s.devices.values()))
        assert abs(supply - demand) <= 1e-3
    con = sqlite3.connect(tmp_path / "helios.db")
    rows = con.execute("select device, sum(power_kw) from plan_device group by device "
                       "order by device").fetchall()
    con.close()
    assert [r[0] for r in rows] == ["dishwasher", "water_heater"]
    assert rows[1][1] * dt_h == pytest.approx(12.0, abs=1e-3)
    assert 'id="devices"' in (tmp_path / "report.html").read_text()
