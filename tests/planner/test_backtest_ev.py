"""The electric car in the backtest: the commuter profile, the CSV profile, the car's physics,
its two baselines (at plug-in, cheapest hours) and the car planned with the house in closed loop.

Data: the CoSSMic summer week (2016-05-06 Fri .. 05-12 Thu, CC-BY) with DK1 prices of
2023-07-02 (Energinet, CC-BY), hourly slots (see tests/backtest_data.py).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from backtest_data import summer_week, week_series, write_week_prices
from click.testing import CliRunner

from planner import config
from planner.cli.main import main
from planner.core.errors import DataError
from planner.evaluate import ev as bt_ev
from planner.evaluate.loop import Options, run_backtest
from planner.evaluate.metrics import energy_residual_kwh
from planner.optimize.components.ev import EvSpec

TZ = "Europe/Berlin"
EV = {"capacity_kwh": 60, "max_charge_kw": 11, "charge_efficiency": 0.9,
      "vehicle": {"type": "manual", "soc_pct": 80}, "target_soc_pct": 80, "trip_kwh": 7,
      "departure": {"mon": "07:30", "tue": "07:30", "wed": "07:30", "thu": "07:30",
                    "fri": "07:30", "sat": None, "sun": None},
      "arrival": "18:00"}


def _cfg(ev: dict | None = EV):
    return config.from_mapping({
        "site": {"timezone": TZ},
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02},
        "planning": {"slot_s": 3600, "horizon_h": 24},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
        **({"ev": ev} if ev else {}),
    })


@pytest.fixture(scope="module")
def week():
    return summer_week()


def _local_hours(index, mask):
    return sorted({t.tz_convert(TZ).strftime("%a %H") for t in index[mask]})


# --------------------------------------------------------------------------------------------
# the profile


def test_commuter_is_away_on_weekdays_0730_to_1800_local_and_uses_7_kwh_a_trip():
    index = pd.date_range("2016-05-05T22:00Z", periods=7 * 96, freq="15min")  # Fri..Thu
    p = bt_ev.commuter(index, 900, TZ)
    local = index.tz_convert(TZ)
    away = p.plugged == 0
    # Friday 2016-05-06: away from 07:30 to 18:00 local = 05:30..16:00 UTC (CEST)
    fri = (local.day == 6)
    assert local[fri & away][0].strftime("%H:%M") == "07:30"
    assert local[fri & away][-1].strftime("%H:%M") == "17:45"
    # the weekend at home; five weekday trips of 7 kWh, each in the first slot away
    assert not away[(local.day == 7) | (local.day == 8)].any()
    assert p.use_kwh.sum() == pytest.approx(5 * 7)
    assert set(local[p.use_kwh > 0].strftime("%a %H:%M")) == {
        "Fri 07:30", "Mon 07:30", "Tue 07:30", "Wed 07:30", "Thu 07:30"}
    assert away.sum() == 5 * 42  # 10.5 h a weekday


def test_commuter_departure_follows_the_wall_clock_on_a_dst_day():
    index = pd.date_range("2026-03-29T00:00Z", periods=2 * 96, freq="15min")  # Sun, Mon
    p = bt_ev.commuter(index, 900, TZ, departure="07:30")
    first = index[np.flatnonzero(p.use_kwh)[0]]
    assert first == pd.Timestamp("2026-03-29T05:30Z")  # 07:30 CEST on the switch day


def test_read_profile_csv_and_its_errors(tmp_path):
    index = pd.date_range("2026-05-01T00:00Z", periods=4, freq="1h")
    path = tmp_path / "car.csv"
    path.write_text("ts_utc,plugged,use_kwh\n" + "".join(
        f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{p},{u}\n"
        for t, p, u in zip(index, (1, 0, 0, 1), (0, 3, 2, 0), strict=True)))
    p = bt_ev.read_profile(path, index)
    assert p.plugged.tolist() == [1, 0, 0, 1] and p.use_kwh.tolist() == [0, 3, 2, 0]
    assert p.sessions(0, 4) == [(0, 1), (3, 4)]
    with pytest.raises(DataError, match="no row for 2026-05-01T04:00:00"):
        bt_ev.read_profile(path, pd.date_range("2026-05-01T00:00Z", periods=5, freq="1h"))
    bad = tmp_path / "bad.csv"
    bad.write_text("ts_utc,use_kwh\n2026-05-01T00:00:00Z,0\n")
    with pytest.raises(DataError, match="column 'plugged' missing"):
        bt_ev.read_profile(bad, index[:1])
    bad.write_text("ts_utc,plugged\n2026-05-01T00:00:00Z,0.5\n")
    with pytest.raises(DataError, match="plugged: expected 0 or 1"):
        bt_ev.read_profile(bad, index[:1])


# --------------------------------------------------------------------------------------------
# the car and its baselines


def _car(plugged, use, soc_pct=50.0, **spec):
    prof = bt_ev.EvProfile(np.asarray(plugged, float), np.asarray(use, float), "test")
    return bt_ev.Car.start(EvSpec(**{"capacity_kwh": 60, "max_charge_kw": 11, **spec}),
                           prof, 1.0, soc_pct)


def test_car_rounds_like_the_executor_caps_at_its_limit_and_records_departures():
    low = _car([1, 0], [0, 0], soc_pct=50)
    min_kw = low.spec.min_kw  # 6 A x 3 x 230 V
    assert low.deliverable_kw(0, min_kw / 2 - 0.01) == 0.0  # below half the minimum: off
    assert low.deliverable_kw(0, 1.5 * min_kw / 2) == pytest.approx(min_kw)  # up to min
    assert low.deliverable_kw(1, 11) == 0.0  # away
    car = _car([1, 1, 1, 0, 0], [0, 0, 0, 5, 0], soc_pct=90, max_soc_pct=95)
    # 3 kWh of room to the 95 % limit at 0.9 efficiency: 3.33 kW for one hour, then nothing
    assert car.step(0, 11) == pytest.approx(3 / 0.9)
    assert car.soc_pct == pytest.approx(95)
    assert car.step(1, 11) == 0.0
    car.step(2, 0)
    car.step(3, 0)  # leaves: SoC recorded at the departure, then 5 kWh driven
    assert car.departures[0]["soc_pct"] == pytest.approx(95)
    assert car.soc_kwh == pytest.approx(57 - 5)
    s = car.summary(54.0)
    assert s["ev_departures"] == 1 and s["ev_departures_met"] == 1


def test_baselines_at_plugin_full_power_first_and_cheapest_hours_in_the_session():
    plugged = [0, 1, 1, 1, 1, 0]
    buy = np.array([0.3, 0.4, 0.1, 0.3, 0.2, 0.3])
    index = pd.date_range("2026-05-01T00:00Z", periods=6, freq="1h")
    a = bt_ev.at_plugin(_car(plugged, [0] * 6, soc_pct=50), 0, 6, index)
    # 30 -> 48 kWh: 20 kW x h from the grid at 0.9: 11 then 9
    assert a.tolist() == pytest.approx([0, 11, 9, 0, 0, 0])
    car = _car(plugged, [0] * 6, soc_pct=50)
    c = bt_ev.cheapest_hours(car, 0, 6, index, buy)
    assert c.tolist() == pytest.approx([0, 0, 11, 0, 9, 0])  # the 0.1 and 0.2 slots
    assert car.departures[0]["soc_pct"] == pytest.approx(80)
    assert (c * buy).sum() < (a * buy).sum()


# --------------------------------------------------------------------------------------------
# closed loop


@pytest.fixture(scope="module")
def result(week):
    cfg = _cfg()
    return run_backtest(cfg, week_series(week, cfg), 0, 96, Options(soc_start_pct=50))


def test_the_car_is_planned_with_the_house_and_every_departure_is_met(result):
    tr = result.traces["helios"]
    st = result.metrics["helios"]
    plugged = bt_ev.commuter(result.traces["helios"].index, 3600, TZ).plugged
    assert tr.ev_kw is not None and (tr.ev_kw[plugged[:96] == 0] == 0).all()
    assert st["ev_departures"] == 2  # Fri and Mon of the first four days (Fri..Mon)
    assert st["ev_departures_met"] == 2
    for name in ("helios_ev_at_plugin", "helios_ev_cheapest"):
        assert result.metrics[name]["ev_departures_met"] == 2
    # Sunday's negative prices: the joint plan fills the car then (the rules cannot)
    assert st["ev_cost_at_buy_eur"] < result.metrics["helios_ev_cheapest"]["ev_cost_at_buy_eur"]
    # perfect forecasts: one plan for house and car is never dearer than either baseline
    ev = result.info["ev"]
    assert ev["savings_vs_at_plugin_eur"] >= -1e-6
    assert ev["savings_vs_cheapest_eur"] >= -1e-6
    # the classic baselines run with the car charged at plug-in
    assert result.traces["no_battery"].ev_kw.tolist() == \
        result.traces["helios_ev_at_plugin"].ev_kw.tolist()


def test_energy_is_conserved_with_the_car_in_the_load(result, week):
    cfg = _cfg()
    series = week_series(week, cfg)
    for name, tr in result.traces.items():
        s = bt_ev.with_load(series, 0, tr.ev_kw)
        assert abs(energy_residual_kwh(tr, s, 0, result.home)) < 1e-6, name


def test_cli_backtest_with_an_ev_section_and_a_csv_profile(tmp_path, data_dir, week):
    write_week_prices(tmp_path / "prices.csv")
    cfg = {"site": {"timezone": TZ}, "planning": {"slot_s": 3600, "horizon_h": 12},
           "battery": {"capacity_kwh": 10}, "tariff": {"buy": "(price + 0.15) * 1.19",
                                                       "sell": "price"}, "ev": EV}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    index = week[0]
    prof = bt_ev.commuter(index, 3600, TZ)
    rows = pd.DataFrame({"ts_utc": index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "plugged": prof.plugged.astype(int), "use_kwh": prof.use_kwh})
    rows.to_csv(tmp_path / "car.csv", index=False)
    args = ["backtest", "--prices", str(tmp_path / "prices.csv"),
            "--pv", str(data_dir / "cossmic_summer_week_pv_1h.csv"),
            "--load", str(data_dir / "cossmic_summer_week_load_1h.csv"),
            "--config", str(tmp_path / "config.yaml"), "--from", "2016-05-06",
            "--to", "2016-05-08", "-q", "--out", str(tmp_path / "out")]
    done = CliRunner().invoke(main, [*args, "--ev-profile", str(tmp_path / "car.csv")])
    assert done.exit_code == 0, done.output
    assert "electric car" in done.stdout and "departures met 1/1" in done.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ev"]["profile"].endswith("car.csv")
    assert {"helios_ev_at_plugin", "helios_ev_cheapest"} <= set(summary["strategies"])
    assert "Electric car" in (tmp_path / "out" / "report.html").read_text()
    slots = pd.read_csv(tmp_path / "out" / "slots.csv")
    assert "helios_ev_kw" in slots.columns and slots["helios_ev_kw"].sum() > 0
    # the commuter generator gives the same car
    done2 = CliRunner().invoke(main, [*args, "--json"])
    assert done2.exit_code == 0, done2.output
    assert json.loads(done2.stdout)["strategies"]["helios"]["ev_charge_kwh"] == \
        pytest.approx(summary["strategies"]["helios"]["ev_charge_kwh"], abs=1e-6)
    bad = CliRunner().invoke(main, [*args, "--ev-profile", str(tmp_path / "missing.csv")])
    assert bad.exit_code == 3 and "--ev-profile" in bad.output
