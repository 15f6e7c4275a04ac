"""1-minute truth (planner.evaluate.minute): the generators keep the slot means, energy is
conserved per minute and per slot, flat minutes reproduce the slot-level backtest exactly,
the minute rules never move battery energy to or from the grid, and ``helios backtest --minute``.

Data: the CoSSMic summer week (CC-BY) with DK1 2023-07-02 prices (Energinet, CC-BY), hourly
slots (60 minutes each), one to two days so every run stays around a second or two.
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
from planner.evaluate import minute, minute_truth
from planner.evaluate.loop import Options, run_backtest
from planner.evaluate.metrics import energy_residual_kwh
from planner.evaluate.physics import Home, simulate, step
from planner.evaluate.strategies import PriceRule, SelfConsumption

TARIFF = {"buy": "(price + 0.15) * 1.19", "sell": "price"}
SLOTS = 36


def _cfg():
    return config.from_mapping({
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02},
        "planning": {"slot_s": 3600, "horizon_h": 12},
        "tariff": TARIFF,
    })


@pytest.fixture(scope="module")
def series():
    return week_series(summer_week(48), _cfg())


@pytest.fixture(scope="module")
def data(series):
    return minute_truth.minute_data(series, 0, SLOTS, seed=3)


# --------------------------------------------------------------------------------------------
# the minute data


def test_synthetic_minutes_keep_every_slot_mean_and_the_pv_cap(series, data):
    assert data.pv_kw.shape == data.load_kw.shape == (SLOTS, 60)
    np.testing.assert_allclose(data.load_kw.mean(axis=1), series.load_kw[:SLOTS], atol=1e-9)
    np.testing.assert_allclose(data.pv_kw.mean(axis=1), series.pv_kw[:SLOTS], atol=1e-9)
    assert (data.load_kw >= 0).all() and (data.pv_kw >= 0).all()
    assert (data.pv_kw[series.pv_kw[:SLOTS] == 0] == 0).all()  # no PV at night
    # the cap: never above the clear-sky-like envelope (the data's own best days)
    cap = minute_truth.minute_pv_cap(series.pv_kw[:SLOTS], series.index[:SLOTS], 3600)
    assert np.all(data.pv_kw <= cap * (1 + 1e-9))
    envelope = minute_truth._clear_cap(series.pv_kw[:SLOTS], series.index[:SLOTS], 3600)
    assert cap.max() <= 1.02 * envelope.max()
    # appliance pulses: minutes well above the slot mean, and kettle-sized ones
    assert (data.load_kw.max(axis=1) > 1.5 * series.load_kw[:SLOTS]).sum() > SLOTS // 3
    assert data.load_kw.max() >= 2.0
    # clouds: the PV varies inside partly cloudy slots
    day = series.pv_kw[:SLOTS] > 0.5
    assert (data.pv_kw[day].std(axis=1) > 0.05).any()
    # seeded
    again = minute_truth.minute_data(series, 0, SLOTS, seed=3)
    np.testing.assert_array_equal(again.load_kw, data.load_kw)
    np.testing.assert_array_equal(again.pv_kw, data.pv_kw)
    assert not np.array_equal(minute_truth.minute_data(series, 0, SLOTS, seed=4).load_kw,
                              data.load_kw)


def test_recorded_minute_csv_is_read_onto_the_slots(tmp_path, series, data):
    index = pd.date_range(series.index[0], periods=SLOTS * 60, freq="60s")
    path = tmp_path / "load_1min.csv"
    pd.DataFrame({"ts_utc": index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "load_kw": data.load_kw.ravel()}).to_csv(path, index=False)
    got = minute_truth.read_minute_csv(str(path), "load_kw", series.index[:SLOTS], 3600)
    np.testing.assert_allclose(got, data.load_kw)
    with pytest.raises(Exception, match="minute load"):  # does not cover the slots
        minute_truth.read_minute_csv(str(path), "load_kw", series.index[:SLOTS + 1], 3600)


# --------------------------------------------------------------------------------------------
# the physics per minute


@pytest.fixture(scope="module")
def result(series, data):
    return run_backtest(_cfg(), series, 0, SLOTS, Options(minute="recorded"),
                                 minute=data)


def test_energy_is_conserved_per_slot_at_minute_truth(result, series):
    fine = result.info["minute"]
    assert set(fine.traces) == {"helios", "no_battery", "self_consumption", "price_rule",
                                "perfect_foresight", *minute.SLOT_PLAN_RUNS}
    home = result.home
    for name, tr in fine.traces.items():
        assert abs(energy_residual_kwh(tr, series, 0, home)) < 1e-9, name
        assert np.all(tr.soc_kwh >= home.min_kwh - 1e-9), name
        assert np.all(tr.soc_kwh <= home.max_kwh + 1e-9), name
        # per minute import and export may alternate inside a slot: no exclusivity here
        assert np.all(tr.grid_import_kw >= 0) and np.all(tr.grid_export_kw >= 0)
    nb = fine.traces["no_battery"]
    assert (np.minimum(nb.grid_import_kw, nb.grid_export_kw) > 0.01).any()  # mixing happens
    # the bill is per minute: slot prices × minute-averaged import and export
    m = fine.metrics["no_battery"]
    bill = float(np.sum(series.buy_eur_per_kwh[:SLOTS] * nb.grid_import_kw
                        - series.sell_eur_per_kwh[:SLOTS] * nb.grid_export_kw))
    assert m["bill_eur"] == pytest.approx(bill, abs=1e-6)
    assert json.dumps(fine.summary())  # JSON-ready


def test_every_minute_balances(series, data, result):
    steps = minute.MinuteSteps(data, series, record=True)
    home = result.home
    pv_slot = result.traces["perfect_foresight"]
    for strategy in (minute.MinuteRule(SelfConsumption(home, series), home),
                     minute.PlanIntents("pf", pv_slot, 0, home)):
        simulate(home, series, 0, SLOTS, 5.0, strategy, fine=steps)
    rows = np.array([r[2:] for r in steps.rows])
    pv, load, imp, exp, ch, dis, used, uns, soc = rows.T
    np.testing.assert_allclose(used + imp + dis + uns, load + ch + exp, atol=1e-9)
    assert np.all(used <= pv + 1e-12)
    assert np.all(np.minimum(imp, exp) == 0) and np.all(np.minimum(ch, dis) == 0)  # per minute
    # SoC moves by the minute's DC energy
    prev = np.r_[5.0, soc[:-1]]
    first = np.r_[True, np.diff(np.array([r[0] for r in steps.rows])) < 0]  # a new run starts
    prev[first] = 5.0
    np.testing.assert_allclose(soc - prev, (0.95 * ch - dis / 0.95) / 60, atol=1e-9)


def test_self_consumption_per_minute_never_moves_battery_energy_to_or_from_the_grid(series,
                                                                                      data):
    cfg = _cfg()
    home = Home.from_config(cfg)
    steps = minute.MinuteSteps(data, series, record=True)
    for base in (SelfConsumption(home, series),
                 PriceRule(home, series, "Europe/Berlin")):
        steps.rows.clear()
        simulate(home, series, 0, SLOTS, 5.0, minute.MinuteRule(base, home),
                          fine=steps)
        rows = np.array([r[2:] for r in steps.rows])
        pv, load, imp, exp, ch, dis = rows.T[:6]
        assert np.all(dis <= np.maximum(load - pv, 0) + 1e-9)  # discharge covers load only
        assert np.all(exp[dis > 1e-9] < 1e-9)  # never exports battery energy
        if isinstance(base, SelfConsumption):
            assert np.all(ch <= np.maximum(pv - load, 0) + 1e-9)  # charges from PV only
            assert np.all(imp[ch > 1e-9] < 1e-9)
            assert (ch > 0).any() and (dis > 0).any()


def test_flat_minutes_reproduce_the_slot_level_backtest(series):
    flat = minute_truth.minute_data(series, 0, SLOTS, pv=None, load=None)
    r = run_backtest(_cfg(), series, 0, SLOTS, Options(minute="recorded"),
                              minute=flat)
    fine = r.info["minute"]
    for name in ("helios", "no_battery", "self_consumption", "price_rule", "perfect_foresight"):
        assert fine.metrics[name]["net_cost_eur"] == pytest.approx(
            r.metrics[name]["net_cost_eur"], abs=1e-6), name
        np.testing.assert_allclose(fine.traces[name].soc_kwh, r.traces[name].soc_kwh,
                                   atol=1e-6, err_msg=name)
    for name in minute.SLOT_PLAN_RUNS:  # the slot plan, per minute: the slot optimum again
        assert fine.metrics[name]["net_cost_eur"] == pytest.approx(
            r.metrics["perfect_foresight"]["net_cost_eur"], abs=1e-6), name
    assert fine.comparison["helios"]["share_of_perfect_foresight"] == pytest.approx(
        r.comparison["helios"]["share_of_perfect_foresight"], abs=1e-6)


def test_intent_targets_are_reached_per_minute_and_held(series):
    home = Home.from_config(_cfg())
    flat = minute_truth.minute_data(series, 0, SLOTS, pv=None, load=None)
    steps = minute.MinuteSteps(flat, series, record=True)
    # charge from the grid at up to 5 kW towards 6 kWh: reached after ~42 min, then held
    out = steps.step_slot(0, home, 3.0, 0.0, np.inf, None, False,
                          ("charge_grid", -5.0, -5.0, 6.0))
    assert out[6] == pytest.approx(6.0, abs=1e-9)
    per_min = np.array([r[6] for r in steps.rows])  # charge per minute
    assert per_min[0] == pytest.approx(5.0) and per_min[-1] == 0.0
    # the same slot at slot level charges 3.16 kW over the whole hour to the same end SoC
    slot = step(home, 3.0, 0.0, np.inf, series.pv_kw[0], series.load_kw[0], True,
                         series.sell_eur_per_kwh[0], None, False,
                         ("charge_grid", -5.0, -5.0, 6.0))
    assert slot[6] == pytest.approx(6.0) and slot[2] == pytest.approx(out[2])


def test_minute_perfect_foresight_is_at_least_as_good_as_the_slot_plan(result):
    fine = result.info["minute"]
    pf = fine.metrics["perfect_foresight"]["objective_eur"]
    for name, m in fine.metrics.items():
        assert m["objective_eur"] >= pf - 1e-6, name
    assert fine.traces["perfect_foresight"].info["windows"] == 2  # 24 h kept, 12 h ahead
    c = fine.comparison["helios"]
    assert 0 < c["share_of_perfect_foresight"] <= 1 + 1e-9
    assert c["share_of_slot_plan"] is not None


# --------------------------------------------------------------------------------------------
# helios backtest --minute


@pytest.fixture
def site(tmp_path):
    write_week_prices(tmp_path / "prices.csv")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "site": {"timezone": "Europe/Berlin"},
        "planning": {"slot_s": 3600, "horizon_h": 12},
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02},
        "tariff": TARIFF,
    }))
    return tmp_path


def _args(site, data_dir, *extra):
    return ["backtest", "--prices", str(site / "prices.csv"),
            "--pv", str(data_dir / "cossmic_summer_week_pv_1h.csv"),
            "--load", str(data_dir / "cossmic_summer_week_load_1h.csv"),
            "--config", str(site / "config.yaml"),
            "--from", "2016-05-06", "--to", "2016-05-07", *extra]


def test_cli_minute_synthetic(site, data_dir):
    out = site / "out"
    res = CliRunner().invoke(main, _args(site, data_dir, "--minute", "synthetic",
                                         "--minute-seed", "2", "--out", str(out)))
    assert res.exit_code == 0, res.output
    assert "1-minute truth" in res.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["minute"] == "synthetic"
    assert summary["minute"]["source"] == {"pv": "synthetic (seed 2)",
                                           "load": "synthetic (seed 2)"}
    res_ = summary["resolution"]
    assert set(res_) == {"slot", "minute"}
    for r in res_.values():
        assert r["share_of_perfect_foresight"] is not None
    assert "minute" not in summary["period"]
    for tr in summary["minute"]["runs"].values():
        assert abs(tr["energy_residual_kwh"]) < 1e-9
    rows = pd.read_csv(out / "slots_minute.csv")
    assert len(rows) == 24 and "perfect_foresight_slot_plan_soc_kwh" in rows
    page = (out / "report.html").read_text()
    # the minute section, and its tables in the page itself (the charts are uPlot, inlined)
    assert "Judged at 1-minute truth" in page and 'id="minute"' in page


def test_cli_minute_recorded(site, data_dir):
    index = pd.date_range("2016-05-05T22:00Z", periods=24 * 60, freq="60s")
    ts = index.strftime("%Y-%m-%dT%H:%M:%SZ")
    rng = np.random.default_rng(0)
    pd.DataFrame({"ts_utc": ts, "load_kw": 0.3 + rng.exponential(0.4, len(ts))}).to_csv(
        site / "load_1min.csv", index=False)
    res = CliRunner().invoke(main, _args(site, data_dir, "--minute-load",
                                         str(site / "load_1min.csv"), "--json", "-q"))
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["options"]["minute"] == "recorded"
    src = summary["minute"]["source"]
    assert src["load"].startswith("recorded") and src["pv"].startswith("flat")
    # the slot series is the recorded minutes' means: both resolutions see the same energy
    assert summary["strategies"]["helios"]["load_kwh"] == pytest.approx(
        summary["minute"]["strategies"]["helios"]["load_kwh"])
    res = CliRunner().invoke(main, _args(site, data_dir, "--minute-pv",
                                         str(site / "load_1min.csv"), "-q"))
    assert res.exit_code == 3  # wrong column: unreadable data
