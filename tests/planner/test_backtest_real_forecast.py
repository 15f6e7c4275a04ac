"""``--forecast real`` in the backtest: Helios's own forecasters on the history before each
re-plan, day-ahead prices only once published, no look-ahead.

Real data: the CoSSMic summer week (Konstanz, PV/load, CC-BY) with the DK1 2023-07-02 prices
(Energinet, CC-BY) repeated over the week, hourly slots so that a week's closed loop stays
around a second or two.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from backtest_data import DATA_DIR, summer_week, week_series, write_week_prices

from planner import config
from planner.evaluate.forecast import RealForecaster
from planner.evaluate.heater import Heater
from planner.evaluate.loop import Options, run_backtest
from planner.evaluate.metrics import energy_residual_kwh, objective_eur
from planner.evaluate.mpc import CONTROLS, MpcStrategy
from planner.evaluate.physics import Home, Series, step
from planner.inputs import pvindex
from planner.optimize.model import device_specs
from planner.providers.load import history

TARIFF = {"buy": "(price + 0.15) * 1.19", "sell": "price"}
KONSTANZ = {"timezone": "Europe/Berlin", "latitude": 47.66, "longitude": 9.18}


def _cfg(load: dict | None = None, planning: dict | None = None, pv: dict | None = None):
    data = {
        "site": KONSTANZ,
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02},
        "planning": {"slot_s": 3600, "horizon_h": 48, **(planning or {})},
        "tariff": TARIFF,
    }
    if load is not None:
        data["load"] = load
    if pv is not None:
        data["pv"] = pv
    return config.from_mapping(data)


@pytest.fixture(scope="module")
def week():
    """The summer week (168 h from local midnight 2016-05-06) with DK1 prices repeated."""
    return summer_week()


def _real(cfg, series) -> MpcStrategy:
    return MpcStrategy(cfg, series, "real")


HISTORY_2D = {"type": "history", "min_days": 2, "safety_margin_pct": 10}


def _local_hour(series, t, tz="Europe/Berlin") -> int:
    return series.index[t].tz_convert(tz).hour


def test_prices_visible_at_noon_end_today_after_13h_end_tomorrow(week):
    cfg = _cfg()
    series = week_series(week, cfg)
    mpc = _real(cfg, series)
    tz = cfg.site.tz
    for t in range(24, 96):
        seen, _ = mpc.inputs_at(t, 5.0)
        now_local = series.index[t].tz_convert(tz)
        end_local = seen.end.tz_convert(tz)
        days = 2 if now_local.hour >= 13 else 1
        assert end_local == (now_local.normalize() + pd.Timedelta(days=days)), now_local
    # at 12:00 local: 12 h to midnight; at 14:00 local: 10 h + 24 h
    noon = next(t for t in range(24, 48) if _local_hour(series, t) == 12)
    assert mpc.inputs_at(noon, 5.0)[0].n == 12
    assert mpc.inputs_at(noon + 2, 5.0)[0].n == 34
    # never beyond planning.horizon_h
    short = _cfg(planning={"horizon_h": 24})
    mpc24 = _real(short, week_series(week, short))
    assert mpc24.inputs_at(noon + 2, 5.0)[0].n == 24
    assert mpc24.inputs_at(noon, 5.0)[0].n == 12


def test_price_visibility_over_the_autumn_dst_day():
    # 15-min slots over 2016-10-29/31 in Berlin (the 30th has 25 h)
    cfg = _cfg(planning={"slot_s": 900})
    index = pd.date_range("2016-10-28T22:00Z", "2016-11-01T23:00Z", freq="15min",
                          inclusive="left")
    n = len(index)
    flat = np.full(n, 0.1)
    series = Series.build(index, 900, flat, flat, flat, np.zeros(n), np.ones(n))
    real = RealForecaster(cfg, series)
    at = index.get_loc(pd.Timestamp("2016-10-29T12:00Z"))  # 14:00 CEST on the 29th
    assert index[real.visible_end(at)] == pd.Timestamp("2016-10-30T23:00Z")  # 31st 00:00 CET
    at = index.get_loc(pd.Timestamp("2016-10-30T11:45Z"))  # 12:45 CET on the 30th
    assert index[real.visible_end(at)] == pd.Timestamp("2016-10-30T23:00Z")
    at = index.get_loc(pd.Timestamp("2016-10-30T12:00Z"))  # 13:00 CET on the 30th
    assert index[real.visible_end(at)] == pd.Timestamp("2016-10-31T23:00Z")


def test_the_planner_never_sees_the_future(week):
    cfg = _cfg(load=HISTORY_2D)
    base = week_series(week, cfg)
    rng = np.random.default_rng(7)
    n = base.n
    for t in (5, 30, 61, 100, 137, 150):
        vis = _real(cfg, base).real.visible_end(t)
        spot = week[1].copy()
        spot[vis:] = rng.uniform(-0.2, 0.5, n - vis)  # prices not yet published
        pv, load = week[2].copy(), week[3].copy()
        pv[t:] = rng.uniform(0, 8, n - t)  # the present and the future
        load[t:] = rng.uniform(0, 5, n - t)
        other = week_series(week, cfg, spot=spot, pv=pv, load=load)
        a, _ = _real(cfg, base).inputs_at(t, 4.0)
        b, _ = _real(cfg, other).inputs_at(t, 4.0)
        assert a.index.equals(b.index)
        for name in ("spot_eur_per_kwh", "buy_eur_per_kwh", "sell_eur_per_kwh", "pv_kw",
                     "load_kw"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        # whereas the perfect-forecast planner does see them
        pa, _ = MpcStrategy(cfg, base).inputs_at(t, 4.0)
        pb, _ = MpcStrategy(cfg, other).inputs_at(t, 4.0)
        assert not np.array_equal(pa.load_kw, pb.load_kw)


def test_load_forecast_is_the_history_model_fitted_before_the_replan(week):
    cfg = _cfg(load=HISTORY_2D)
    series = week_series(week, cfg)
    mpc = _real(cfg, series)
    mpc.real.load_tau_h = 0.0  # the model alone (the nowcast is checked below)
    tz = cfg.site.tz
    load = pd.Series(series.load_kw, index=series.index)
    checked = 0
    for t in range(0, 150, 7):
        seen, _ = mpc.inputs_at(t, 5.0)
        past = history.hourly_history(load[load.index < series.index[t].floor("h")]).dropna()
        if len(past) < 2 * 24:  # too little history: the degraded default profile
            from planner.inputs import degraded

            np.testing.assert_array_equal(seen.load_kw, degraded.default_load_kw(cfg.site,
                                                                                 seen.index))
            continue
        want = history.fit(past, tz, 28).predict(seen.index, tz) * 1.10
        np.testing.assert_allclose(seen.load_kw, want, rtol=1e-12)
        checked += 1
    assert checked >= 10
    # no safety margin unless the config's load provider is the history one (as it adds it)
    plain = _cfg()
    assert RealForecaster(plain, week_series(week, plain)).load_margin == 0.0
    assert mpc.real.load_margin == pytest.approx(0.10)


def test_pv_forecast_is_clearsky_times_the_blended_index(week):
    """The index per local hour: w x the last day's + (1 - w) x the last 30 days' (here: all
    the days there are), w fitted at local midnight on the days before it."""
    cfg = _cfg()
    series = week_series(week, cfg)
    mpc = _real(cfg, series)
    real = mpc.real
    assert (real.pv_days, real.pv_long_days, real.pv_fit_days) == (1, 30, 30)
    t = 24 * 4 + 3  # 03:00 local on day 5: no sun yet today, no nowcast, no intraday
    seen, _ = mpc.inputs_at(t, 5.0)
    midnight = t - 3
    w = pvindex.blend_weight(series.pv_kw[:midnight], real.clearsky_kw[:midnight],
                             real.hour[:midnight], 24, 1, 30, 30)
    assert real.pv_weight == w
    assert 0.0 <= w <= 1.0
    # the index of a bright midday hour: measured / clear-sky over the last day and all days
    h = 12
    sel = real.hour[:t] == h
    k_long = series.pv_kw[:t][sel].sum() / real.clearsky_kw[:t][sel].sum()
    k_short = series.pv_kw[t - 24:t][sel[t - 24:]].sum() / \
        real.clearsky_kw[t - 24:t][sel[t - 24:]].sum()
    j = next(j for j in range(seen.n) if real.hour[t + j] == h)
    assert seen.pv_kw[j] == pytest.approx(real.clearsky_kw[t + j]
                                          * (w * k_short + (1 - w) * k_long))
    assert (seen.pv_kw >= 0).all()
    night = real.clearsky_kw[t:t + seen.n] == 0
    assert (seen.pv_kw[night] == 0).all()
    # the forecast is of the right size for this 10-kWp-class house (sunny May week)
    assert 10 < seen.pv_kw.sum() < 3 * series.pv_kw[t:t + seen.n].sum() + 10


def test_blend_weight_minimises_the_squared_error_of_the_past_days():
    """One slot a day (hour 12, clear-sky 1 kW): indices 0.2, 0.8, 0.5, 0.575. Day 3 from the
    day before (0.5) and the two before (0.65): d = -0.15, r = -0.075; day 2: 0.8 and 0.5,
    d = 0.3, r = 0. w = 0.01125 / 0.1125 = 0.1."""
    hour = np.full(4, 12)
    cs = np.ones(4)
    pv = np.array([0.2, 0.8, 0.5, 0.575])
    assert pvindex.blend_weight(pv, cs, hour, 1, 1, 2, 2) == pytest.approx(0.1)
    # the last day alone: halfway between persistence and the long index
    assert pvindex.blend_weight(pv, cs, hour, 1, 1, 2, 1) == pytest.approx(0.5)
    # persistence exact: w = 1; beyond it clipped
    assert pvindex.blend_weight(np.array([0.2, 0.8, 0.5, 0.5]), cs, hour, 1, 1, 2, 1) \
        == pytest.approx(1.0)
    assert pvindex.blend_weight(np.array([0.2, 0.8, 0.5, 0.3]), cs, hour, 1, 1, 2, 1) == 1.0
    # no day to score (no day before the first): the default
    assert pvindex.blend_weight(pv[:1], cs[:1], hour[:1], 1, 1, 2, 2) \
        == pvindex.BLEND_WEIGHT_DEFAULT
    # the blended index at the end: 0.1 x 0.575 + 0.9 x (0.5 + 0.575) / 2
    k = pvindex.blended_index(pv, cs, hour, 1, 1, 2, 0.1)
    assert k[12] == pytest.approx(0.1 * 0.575 + 0.9 * 0.5375)


def test_today_index_is_the_day_so_far_and_its_share_of_the_sun():
    cs = np.array([0.0, 1.0, 3.0])
    assert pvindex.today_index(np.array([0.0, 0.5, 1.5]), cs, 10.0) == \
        pytest.approx((0.5, 0.4))
    # before a tenth of the day's clear-sky energy: nothing to tell
    assert pvindex.today_index(np.array([0.0, 0.5]), cs[:2], 10.1) is None
    assert pvindex.today_index(np.zeros(0), np.zeros(0), 0.0) is None


def test_the_rest_of_today_takes_the_day_so_far(week):
    """At 11:00 the slots to midnight are share x today's index + (1 - share) x the hourly
    index (share: today's clear-sky energy before 11:00 / the whole day's); tomorrow is the
    hourly index; nothing from 11:00 on is read."""
    cfg = _cfg()
    series = week_series(week, cfg)
    t = next(k for k in range(4 * 24, 6 * 24) if _local_hour(series, k) == 11)
    real = RealForecaster(cfg, series)
    real.nowcast = False
    m = 30
    pv, _ = real.forecast(t, m)
    real.pv_intraday = False
    pv0, _ = real.forecast(t, m)
    d0 = t - 11
    cs = real.clearsky_kw
    k_today = series.pv_kw[d0:t].sum() / cs[d0:t].sum()
    share = cs[d0:t].sum() / cs[d0:d0 + 24].sum()
    rest = 13  # 11:00 .. 23:00
    with np.errstate(invalid="ignore", divide="ignore"):
        index0 = np.where(cs[t:t + m] > 0, pv0 / cs[t:t + m], 0.0)
    want = cs[t:t + m] * np.r_[share * k_today + (1 - share) * index0[:rest], index0[rest:]]
    np.testing.assert_allclose(pv, want, rtol=1e-9, atol=1e-12)
    assert not np.allclose(pv, pv0)
    np.testing.assert_array_equal(pv[rest:], pv0[rest:])
    other = replace(series, pv_kw=np.r_[series.pv_kw[:t], series.pv_kw[t:] * 0 + 7.0])
    again = RealForecaster(cfg, other)
    again.nowcast = False
    np.testing.assert_array_equal(again.forecast(t, m)[0], pv)


def test_real_run_conserves_energy_and_never_beats_perfect_foresight(week):
    cfg = _cfg(load=HISTORY_2D)
    series = week_series(week, cfg)
    n = 24 + 48
    for control in CONTROLS:
        result = run_backtest(cfg, series, 24, n,
                                       Options(forecast="real", control=control))
        home = result.home
        for name, trace in result.traces.items():
            assert abs(energy_residual_kwh(trace, series, 24, home)) < 1e-9, name
        limit = result.traces["perfect_foresight"].info["lp_objective_eur"]
        helios = objective_eur(result.traces["helios"], series, 24, home,
                                        result.terms)
        assert helios >= limit - 1e-6
        info = result.traces["helios"].info
        assert info["forecast"] == "real"
        assert info["solves"] == n - 24
        assert info["failed_solves"] == 0
        # the horizon follows the published prices (hourly slots: 11..35 h, DST aside) and
        # every re-plan runs padded in one model of the longest
        lengths = {MpcStrategy(cfg, series, "real").inputs_at(t, 5)[0].n
                   for t in range(24, n)}
        assert 10 <= min(lengths) <= 12 and 34 <= max(lengths) <= 36
        assert info["compiled_models"] == 1
        lo, hi = info["compiled_sizes_min_max"]
        assert lo == hi and max(lengths) <= hi <= 36
        for key in ("pv_mae_kw", "load_mae_kw", "pv_bias_kw", "load_now_mae_kw"):
            assert info[key] >= 0 or key.endswith("bias_kw")
        assert info["load_refits"] > 0


def test_real_run_with_a_device_keeps_one_model_per_horizon_length(week):
    # a water heater reads local-time windows: its model is not paddable, so the real mode
    # compiles one model per horizon length (the padded single model is the plain house's)
    doc = {"site": KONSTANZ, "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02},
           "planning": {"slot_s": 3600, "horizon_h": 48}, "tariff": TARIFF,
           "load": HISTORY_2D, "water_heater": {"power_kw": 2.0, "daily_kwh": 4.0}}
    cfg = config.from_mapping(doc)
    series = week_series(week, cfg)
    spec = device_specs(cfg)[0]
    strategy = MpcStrategy(cfg, series, "real", heater=Heater.make(spec, series))
    assert strategy._pad_n is None
    lengths = {strategy.inputs_at(t, 5)[0].n for t in range(24, 48)}
    assert len(lengths) > 1
    assert {strategy.model_for(m).spec.n for m in lengths} == lengths
    assert strategy.compiled == len(lengths)
    plain = MpcStrategy(_cfg(load=HISTORY_2D), series, "real")
    assert {plain.model_for(m).spec.n for m in lengths} == {plain._pad_n}
    assert plain.compiled == 1 and plain._pad_n >= max(lengths)


def test_perfect_and_noisy_results_do_not_depend_on_the_real_mode(week):
    # the perfect mode still sees the whole 48 h and the unchanged model cache
    cfg = _cfg()
    series = week_series(week, cfg)
    mpc = MpcStrategy(cfg, series)
    assert mpc.inputs_at(10, 5.0)[0].n == 48
    assert "pv_mae_kw" not in mpc.stats()
    with pytest.raises(ValueError, match="perfect, noisy, real"):
        MpcStrategy(cfg, series, "oracle")


HOME = Home(slot_s=3600, capacity_kwh=10, min_kwh=1, max_kwh=10, reserve_kwh=1,
                     max_charge_kw=5, max_discharge_kw=5, charge_efficiency=0.9,
                     discharge_efficiency=0.9, max_import_kw=10, max_export_kw=10,
                     wear_eur_per_kwh=0.0)


def test_hybrid_control_never_discharges_into_the_grid_beyond_the_plan():
    def run(setpoint, grid, pv, load, guard):
        return step(HOME, 5.0, setpoint, np.inf, pv, load, True, 0.05, grid, guard)

    # plan: 3 kW surplus, charge 1 kW, export 2 kW; actually only 0.5 kW surplus
    imp, exp, ch, dis, *_ = run(-1.0, -2.0, 1.0, 0.5, guard=False)
    assert dis == pytest.approx(1.5) and exp == pytest.approx(2.0)  # grid control: drains
    imp, exp, ch, dis, *_ = run(-1.0, -2.0, 1.0, 0.5, guard=True)
    assert (dis, imp) == (0.0, 0.0) and ch == pytest.approx(0.5) and exp == 0.0
    # plan: cover 0.5 kW of load; actually 1.5 kW: the battery covers it (as grid control)
    imp, exp, ch, dis, *_ = run(0.5, 0.0, 0.0, 1.5, guard=True)
    assert dis == pytest.approx(1.5) and imp == 0.0
    # plan: charge 2 kW from PV surplus; actually no PV: no charging from the grid (the
    # battery covers the load instead, as with grid control)
    imp, exp, ch, dis, *_ = run(-2.0, 0.0, 2.5, 0.5, guard=True)
    assert ch == pytest.approx(2.0) and imp == 0.0
    imp, exp, ch, dis, *_ = run(-2.0, 0.0, 0.0, 0.5, guard=True)
    assert ch == 0.0 and dis == pytest.approx(0.5) and imp == 0.0
    # a planned grid charge still happens
    imp, exp, ch, dis, *_ = run(-4.0, 4.5, 0.0, 0.5, guard=True)
    assert ch == pytest.approx(4.0) and imp == pytest.approx(4.5)


def test_hybrid_control_with_perfect_forecasts_is_the_plan(week):
    cfg = _cfg()
    series = week_series(week, cfg)
    out = {}
    for control in CONTROLS:
        result = run_backtest(cfg, series, 0, 24, Options(control=control))
        out[control] = result.metrics["helios"]["net_cost_eur"]
    assert out["hybrid"] == pytest.approx(out["battery"], abs=1e-6)
    assert out["grid"] == pytest.approx(out["battery"], abs=1e-6)


def test_cli_forecast_real_reports_the_mode_and_the_forecast_errors(tmp_path):
    import json

    import yaml
    from click.testing import CliRunner

    from planner.cli.main import main

    write_week_prices(tmp_path / "prices.csv")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({
        "site": KONSTANZ, "planning": {"slot_s": 3600, "horizon_h": 48},
        "battery": {"capacity_kwh": 10}, "tariff": TARIFF}))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "backtest", "--prices", str(tmp_path / "prices.csv"),
        "--pv", str(DATA_DIR / "cossmic_summer_week_pv_1h.csv"),
        "--load", str(DATA_DIR / "cossmic_summer_week_load_1h.csv"),
        "--config", str(tmp_path / "config.yaml"), "--from", "2016-05-06", "--to",
        "2016-05-07", "--forecast", "real", "--control", "hybrid", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "forecasts real" in result.stdout
    assert "forecast errors over every horizon slot" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["forecast"] == "real"
    assert summary["options"]["control"] == "hybrid"
    assert summary["runs"]["helios"]["forecast"] == "real"
    assert summary["runs"]["helios"]["load_mae_kw"] > 0
    assert "published" in summary["planner"]["horizon_policy"]
    assert "weather-free" in (out / "report.html").read_text()


def test_nowcasts_blend_the_last_hours_into_the_forecast(week):
    """Load: the last hour's mean with weight exp(-lead/3 h) over the history model; PV: the
    clear-sky index of the last 2 h over the hour-of-day index. Nothing at or after the
    re-plan slot is read (the data after it are changed: the forecast stays the same)."""
    cfg = _cfg(load=HISTORY_2D)
    series = week_series(week, cfg)
    per_h = 3600 // series.slot_s
    t = next(k for k in range(3 * 24 * per_h, 6 * 24 * per_h) if series.index[k].hour == 11)
    mpc = _real(cfg, series)
    base = mpc.real
    nc = cfg.forecast.nowcast  # the defaults: helios plan's nowcast (planner/inputs/nowcast.py)
    assert (nc.pv_window_h, nc.load_window_h, nc.tau_h) == (2.0, 1.0, 3.0)
    m = 8
    pv, load = base.forecast(t, m)
    base.load_tau_h, base.nowcast = 0.0, False
    pv0, load0 = base.forecast(t, m)
    lead_h = np.arange(m) / per_h
    recent = float(series.load_kw[t - per_h:t].mean())
    weight = np.exp(-lead_h / nc.tau_h)
    np.testing.assert_allclose(load, (weight * recent + (1 - weight) * load0 / 1.10) * 1.10,
                               rtol=1e-9)
    k = int(nc.pv_window_h * per_h)
    cs_now = base.clearsky_kw[t:t + m]
    k_recent = float(series.pv_kw[t - k:t].sum() / base.clearsky_kw[t - k:t].sum())
    w_pv = np.exp(-lead_h / nc.tau_h)
    index0 = np.where(cs_now > 0, pv0 / np.maximum(cs_now, 1e-12), 0.0)
    np.testing.assert_allclose(pv, cs_now * (w_pv * k_recent + (1 - w_pv) * index0),
                               rtol=1e-6, atol=1e-9)
    assert not np.allclose(pv, pv0) and not np.allclose(load, load0)
    # causality: change everything from slot t on, the forecast made at t is the same
    other = replace(series, load_kw=np.r_[series.load_kw[:t], series.load_kw[t:] * 3],
                    pv_kw=np.r_[series.pv_kw[:t], series.pv_kw[t:] * 0])
    pv2, load2 = _real(cfg, other).real.forecast(t, m)
    np.testing.assert_allclose(pv2, pv)
    np.testing.assert_allclose(load2, load)


def _hourly_with_gaps(days: int = 45, seed: int = 3) -> pd.Series:
    """Hourly load [kW] over the spring DST change, with ties, scattered gaps, a two-day gap
    and a weekend without its 03:00 hours (the weekday/overall fallbacks of the fit)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2016-03-01", periods=days * 24, freq="1h", tz="UTC")
    values = np.round(rng.gamma(2.0, 0.3, len(index)), 1)  # rounded: many equal values
    values[rng.random(len(index)) < 0.05] = np.nan
    values[500:548] = np.nan
    local = index.tz_convert("Europe/Berlin")
    values[(local.day_of_week >= 5) & (local.hour == 3)] = np.nan
    return pd.Series(values, index=index)


def test_fit_hourly_is_the_history_fit_bit_for_bit():
    """The numpy fit of the backtest's hourly refits gives history.fit's model exactly
    (profile, level, baseload), gaps, ties and the DST change included."""
    from planner.evaluate.forecast import fit_hourly

    tz = "Europe/Berlin"
    load = _hourly_with_gaps()
    local = load.index.tz_convert(tz)
    hour = local.hour.to_numpy().astype(np.int64)
    weekend = (local.day_of_week.to_numpy() >= 5).astype(np.int64)
    values = load.to_numpy()
    checked = 0
    for window_days in (7, 28):
        for nh in range(3 * 24, len(load) + 1, 13):
            a = max(0, nh - (window_days + 1) * 24)
            past = load.iloc[a:nh].dropna()
            if len(past) < 48:
                continue
            want = history.fit(past, tz, window_days)
            got = fit_hourly(values[a:nh], hour[a:nh], weekend[a:nh], window_days)
            np.testing.assert_array_equal(got.profile_kw, want.profile_kw)
            assert got.level == want.level and got.baseload_kw == want.baseload_kw, nh
            checked += 1
    assert checked > 100
    # a local hour with no data at all takes the window's median (history.fit's fallback)
    no_noon = values.copy()
    no_noon[local.hour == 12] = np.nan
    want = history.fit(pd.Series(no_noon, index=load.index).dropna(), tz, 28)
    got = fit_hourly(no_noon, hour, weekend, 28)
    np.testing.assert_array_equal(got.profile_kw, want.profile_kw)
    assert got.profile_kw[0, 12] == np.nanmedian(no_noon[-29 * 24:])


def test_load_refits_are_history_fit_on_the_hours_before_bit_for_bit(week):
    """Each hourly refit is history.fit on the complete hours before the re-plan, exactly
    (the backtest fits with numpy), and the default profile before min_days of history."""
    cfg = _cfg(load={**HISTORY_2D, "window_days": 7})
    series = week_series(week, cfg)
    real = RealForecaster(cfg, series)
    hourly = pd.Series(series.load_kw, index=series.index)
    fitted = 0
    for t in range(series.n):
        past = hourly[hourly.index < series.index[t].floor("h")]
        model = real.load_model(t)
        if len(past) < 2 * 24:
            assert model is None, t
            continue
        want = history.fit(past, cfg.site.tz, 7)
        np.testing.assert_array_equal(model.profile_kw, want.profile_kw)
        assert (model.level, model.baseload_kw) == (want.level, want.baseload_kw), t
        fitted += 1
    assert fitted == series.n - 48 and real.refits == fitted


def test_forecast_time_is_counted_in_the_stats(week):
    cfg = _cfg(load=HISTORY_2D)
    mpc = _real(cfg, week_series(week, cfg))
    for t in range(0, 72):
        mpc.inputs_at(t, 5.0)
    stats = mpc.stats()
    assert stats["load_refits"] > 0
    assert stats["forecast_s"] > 0 and stats["load_fit_s"] > 0
    assert "forecast_s" not in MpcStrategy(cfg, week_series(week, cfg)).stats()
