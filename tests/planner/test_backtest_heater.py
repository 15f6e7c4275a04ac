"""The water heater in the backtest (issue 13): its physics, its two baselines (a timer, the
thermostat alone) and the heater planned with the house in closed loop.

Data: the CoSSMic summer week (2016-05-06 Fri .. 05-12 Thu, CC-BY) with DK1 prices of
2023-07-02 (Energinet, CC-BY), hourly slots (see tests/backtest_data.py).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml
from backtest_data import summer_week, week_series, write_week_prices
from click.testing import CliRunner

from planner import config
from planner.cli.main import main
from planner.core.errors import DataError
from planner.evaluate import heater as bt_heater
from planner.evaluate.loop import Options, run_backtest
from planner.evaluate.metrics import energy_residual_kwh
from planner.evaluate.mpc import MpcStrategy
from planner.optimize.components.water_heater import heater_spec

TZ = "Europe/Berlin"
HEATER = {"power_kw": 3.0, "daily_kwh": 6.0, "modulating": True,
          "window": {"from": "10:00", "to": "18:00"}}


def _cfg(heater: dict | None = HEATER, horizon_h: int = 24):
    return config.from_mapping({
        "site": {"timezone": TZ},
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02},
        "planning": {"slot_s": 3600, "horizon_h": horizon_h},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
        **({"water_heater": heater} if heater else {}),
    })


@pytest.fixture(scope="module")
def week():
    return summer_week()


def _local(index):
    return index.tz_convert(TZ)


def _per_local_day(index, kw):
    return pd.Series(kw, index=_local(index).date).groupby(level=0).sum()


# --------------------------------------------------------------------------------------------
# the baselines and the heater's physics


def test_timer_heats_from_its_local_time_until_the_day_energy_is_in():
    index = pd.date_range("2016-05-05T22:00Z", periods=3 * 24, freq="1h")  # Fri..Sun local
    kw = bt_heater.fixed_kw(index, 3600, TZ, "02:00", 2.5, 6.0)
    hours = _local(index).strftime("%H")
    on = kw > 0
    assert sorted(set(hours[on])) == ["02", "03", "04"]
    assert kw[on].tolist() == pytest.approx([2.5, 2.5, 1.0] * 3)
    assert _per_local_day(index, kw).tolist() == pytest.approx([6.0] * 3)
    # 15-min slots, 3 kW: 02:00..04:00 exactly
    q = pd.date_range("2016-05-05T22:00Z", periods=96, freq="15min")
    kw_q = bt_heater.fixed_kw(q, 900, TZ, "02:00", 3.0, 6.0)
    assert _local(q[kw_q > 0]).strftime("%H:%M").tolist()[::7] == ["02:00", "03:45"]
    assert kw_q.sum() * 0.25 == pytest.approx(6.0)


def test_timer_on_the_spring_dst_day_starts_at_the_next_local_slot():
    index = pd.date_range("2016-03-26T23:00Z", periods=23, freq="1h")  # 27 Mar, 23 h long
    kw = bt_heater.fixed_kw(index, 3600, TZ, "02:00", 3.0, 6.0)
    assert _local(index[kw > 0]).strftime("%H").tolist() == ["03", "04"]
    with pytest.raises(ValueError):
        bt_heater.fixed_kw(index, 3600, TZ, "2 am", 3.0, 6.0)


def test_thermostat_spreads_the_day_energy_over_the_morning_and_evening_draws():
    index = pd.date_range("2016-05-05T22:00Z", periods=2 * 24, freq="1h")
    kw = bt_heater.thermostat_kw(index, TZ, 6.0)
    assert _per_local_day(index, kw).tolist() == pytest.approx([6.0, 6.0])
    hours = set(_local(index[kw > 0]).hour)
    assert hours == {6, 7, 8, 18, 19, 20, 21}
    assert kw.max() == pytest.approx(1.2)  # 20 % of 6 kWh in an hour
    with pytest.raises(DataError, match="draw profile"):
        bt_heater.thermostat_kw(index, TZ, 6.0, [0] * 24)


def test_heater_runs_only_in_its_window_at_most_its_power_and_stops_when_the_water_is_hot(
        week):
    cfg = _cfg()
    series = week_series(week, cfg)
    h = bt_heater.Heater.make(heater_spec(cfg.water_heater, TZ), series)
    hours = _local(series.index).hour
    t10 = int(np.flatnonzero(hours == 10)[0])
    assert h.step(t10 - 1, 3.0) == 0.0  # 09:00: outside the window
    assert h.step(t10, 5.0) == 3.0  # capped at power_kw
    assert h.delivered_kwh(t10 + 1) == pytest.approx(3.0)
    assert h.step(t10 + 1, 2.0) == 2.0
    assert h.step(t10 + 2, 3.0) == pytest.approx(1.0)  # only what the day still needs
    assert h.step(t10 + 3, 3.0) == 0.0
    assert h.delivered_kwh(t10 + 4) == pytest.approx(6.0)
    assert h.delivered_kwh(t10 + 24) == 0.0  # the next day starts from nothing
    assert h.delivered_kwh(t10 - 1) == 0.0  # outside every period: nothing counts
    assert h.summary(int(h.day[t10]), int(h.day[t10 + 24])) == {
        "heater_days": 2, "heater_days_met": 1, "heater_shortfall_kwh": pytest.approx(6.0)}


def test_a_replan_asks_only_for_what_the_heater_has_not_yet_taken_today(week):
    cfg = _cfg()
    series = week_series(week, cfg)
    h = bt_heater.Heater.make(heater_spec(cfg.water_heater, TZ), series)
    hours = _local(series.index).hour
    t10 = int(np.flatnonzero(hours == 10)[0])
    h.step(t10, 3.0)
    h.step(t10 + 1, 1.0)  # 4 kWh taken today
    mpc = MpcStrategy(cfg, series, heater=h)
    sol = mpc.replan(t10 + 2, 5.0)
    today = _local(series.index[t10 + 2:t10 + 2 + len(sol.device_kw["water_heater"])]).day
    plan = sol.device_kw["water_heater"]
    assert plan[today == today[0]].sum() == pytest.approx(2.0, abs=1e-6)
    assert mpc.heater_kw(t10 + 2) == pytest.approx(plan[0])


# --------------------------------------------------------------------------------------------
# closed loop


@pytest.fixture(scope="module")
def result(week):
    cfg = _cfg()
    return run_backtest(cfg, week_series(week, cfg), 0, 96, Options(soc_start_pct=50))


def test_helios_meets_the_day_energy_exactly_and_only_inside_the_window(result):
    tr = result.traces["helios"]
    hours = _local(tr.index).hour
    assert tr.heater_kw is not None
    assert (tr.heater_kw[(hours < 10) | (hours >= 18)] == 0).all()
    assert tr.heater_kw.max() <= 3.0 + 1e-9
    assert _per_local_day(tr.index, tr.heater_kw).tolist() == pytest.approx([6.0] * 4,
                                                                             abs=1e-6)
    st = result.metrics["helios"]
    assert (st["heater_days"], st["heater_days_met"]) == (4, 4)
    assert st["heater_shortfall_kwh"] == pytest.approx(0.0, abs=1e-6)


def test_the_baselines_take_the_same_energy_and_the_costs_are_consistent(result, week):
    cfg = _cfg()
    series = week_series(week, cfg)
    m, wh = result.metrics, result.info["water_heater"]
    for name in ("helios", "helios_heater_fixed", "helios_heater_thermostat", "no_battery",
                 "self_consumption", "price_rule", "perfect_foresight"):
        assert m[name]["heater_kwh"] == pytest.approx(24.0, abs=1e-6), name
        tr = result.traces[name]
        s = bt_heater.with_load(series, 0, tr.heater_kw)
        assert abs(energy_residual_kwh(tr, s, 0, result.home)) < 1e-6, name
        assert m[name]["heater_cost_at_buy_eur"] == pytest.approx(
            float((tr.heater_kw * series.buy_eur_per_kwh[:96]).sum()), abs=1e-5)
        bill = float((series.buy_eur_per_kwh[:96] * tr.grid_import_kw
                      - series.sell_eur_per_kwh[:96] * tr.grid_export_kw).sum())
        assert m[name]["bill_eur"] == pytest.approx(bill, abs=1e-5), name
    # the classic baselines run with the heater on its thermostat
    assert result.traces["no_battery"].heater_kw.tolist() == \
        result.traces["helios_heater_thermostat"].heater_kw.tolist()
    for rule, name in (("fixed", "helios_heater_fixed"),
                       ("thermostat", "helios_heater_thermostat")):
        assert wh[f"savings_vs_{rule}_eur"] == pytest.approx(
            m[name]["net_cost_eur"] - m["helios"]["net_cost_eur"], abs=1e-6)
        # perfect forecasts: one plan for house and heater is never dearer than either rule
        assert wh[f"savings_vs_{rule}_eur"] >= -1e-6
    # in the cheapest slots of its window: the heater's energy costs less than the timer's
    assert m["helios"]["heater_cost_at_buy_eur"] < m["helios_heater_thermostat"][
        "heater_cost_at_buy_eur"]


@pytest.mark.parametrize("gap_eur", [0.0, 0.01])
def test_on_off_heater_runs_at_full_power_or_not_at_all(week, gap_eur):
    """Exact (gap 0) or within planning.on_off_gap_eur (the default 0.01): on/off at full
    power, the day's energy met (whether a re-plan needed the MILP or its rounded relaxation
    was already good enough is the solver's business)."""
    cfg = _cfg({**HEATER, "modulating": False}, horizon_h=12)
    cfg = replace(cfg, planning=replace(cfg.planning, on_off_gap_eur=gap_eur))
    r = run_backtest(cfg, week_series(week, cfg), 0, 48, Options(soc_start_pct=50))
    kw = r.traces["helios"].heater_kw
    assert set(np.round(kw, 6)) <= {0.0, 3.0}
    assert _per_local_day(r.traces["helios"].index, kw).tolist() == pytest.approx([6.0, 6.0])


def test_a_heater_with_a_tank_is_refused_naming_the_key(week):
    cfg = _cfg({**HEATER, "tank": {"capacity_kwh": 8}})
    with pytest.raises(DataError, match="water_heater.tank"):
        run_backtest(cfg, week_series(week, cfg), 0, 24, Options())


# --------------------------------------------------------------------------------------------
# the CLI


def test_cli_backtest_with_a_water_heater_section(tmp_path, data_dir):
    write_week_prices(tmp_path / "prices.csv")
    cfg = {"site": {"timezone": TZ}, "planning": {"slot_s": 3600, "horizon_h": 12},
           "battery": {"capacity_kwh": 10}, "tariff": {"buy": "(price + 0.15) * 1.19",
                                                       "sell": "price"},
           "water_heater": HEATER}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    args = ["backtest", "--prices", str(tmp_path / "prices.csv"),
            "--pv", str(data_dir / "cossmic_summer_week_pv_1h.csv"),
            "--load", str(data_dir / "cossmic_summer_week_load_1h.csv"),
            "--config", str(tmp_path / "config.yaml"), "--from", "2016-05-06",
            "--to", "2016-05-08", "-q", "--out", str(tmp_path / "out")]
    done = CliRunner().invoke(main, [*args, "--heater-fixed", "03:00"])
    assert done.exit_code == 0, done.output
    assert "water heater (3 kW, 6 kWh/day, modulating)" in done.stdout
    assert "a timer at 03:00" in done.stdout and "heater days met 2/2" in done.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["water_heater"]["fixed_at"] == "03:00"
    assert summary["options"]["heater_fixed"] == "03:00"
    assert {"helios_heater_fixed", "helios_heater_thermostat"} <= set(summary["strategies"])
    assert "Water heater" in (tmp_path / "out" / "report.html").read_text()
    slots = pd.read_csv(tmp_path / "out" / "slots.csv")
    assert slots["helios_heater_kw"].sum() == pytest.approx(12.0, abs=1e-5)
    fixed = slots["helios_heater_fixed_heater_kw"].to_numpy()
    local = pd.to_datetime(slots["ts_utc"], utc=True).dt.tz_convert(TZ)
    assert sorted(set(local[fixed > 0].dt.hour)) == [3, 4]
    bad = CliRunner().invoke(main, [*args, "--heater-fixed", "25:00"])
    assert bad.exit_code != 0 and "--heater-fixed" in bad.output
