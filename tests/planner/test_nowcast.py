"""`helios plan` blends the last hours' measured PV and load into its forecasts (forecast.nowcast),
with the backtest's own implementation (planner/inputs/nowcast.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.evaluate.forecast import RealForecaster
from planner.evaluate.physics import Series
from planner.history.store import Store
from planner.inputs import gather as inputs
from planner.inputs import nowcast
from planner.plan import run

NOW = pd.Timestamp("2026-05-01T12:00Z")


def _rows(now: pd.Timestamp, hours: float, pv_kw, load_kw, simulated: bool = False):
    """One measurement a minute over the ``hours`` before ``now``; pv_kw(t)/load_kw(t) in kW."""
    stamps = pd.date_range(now - pd.Timedelta(hours=hours), now, freq="1min", inclusive="left")
    return [{"measured_at": t, "pv_power_w": 1000.0 * pv_kw(t),
             "load_power_w": 1000.0 * load_kw(t), "simulated": simulated} for t in stamps]


def _cfg(site_dir, tmp_path, **nowcast_keys):
    extra = {"storage": {"url": f"sqlite:///{tmp_path / 'h.db'}"}}
    if nowcast_keys:
        extra["forecast"] = {"nowcast": nowcast_keys}
    return config.load(site_dir(config=extra))


def _forecast_kw(cfg, column: str) -> pd.Series:
    """The CSV forecast [kW] by hour (the site_dir fixture's hourly file)."""
    path = cfg.pv.options.path if column == "pv_kw" else cfg.load.options.path
    frame = pd.read_csv(path)
    return pd.Series(frame[column].to_numpy(),
                     index=pd.DatetimeIndex(pd.to_datetime(frame["ts_utc"], utc=True)))


def test_no_measurements_leave_the_plan_unchanged(site_dir, tmp_path):
    cfg = _cfg(site_dir, tmp_path)
    off = _cfg(site_dir, tmp_path, pv=False, load=False)
    got, ref = run.plan_once(cfg, NOW), run.plan_once(off, NOW)
    assert np.array_equal(got.plan.inputs.pv_kw, ref.plan.inputs.pv_kw)
    assert np.array_equal(got.plan.inputs.load_kw, ref.plan.inputs.load_kw)
    # the same problem (its optimum may be another of equal cost)
    assert got.plan.solution.objective_eur == pytest.approx(ref.plan.solution.objective_eur)
    assert not (tmp_path / "h.db").exists()  # looking for measurements creates no database
    status = {s.kind: s for s in got.plan.inputs.status}
    assert "no PV nowcast: no measurements database" in status["pv"].detail
    assert "no load nowcast: no measurements database" in status["load"].detail
    assert not status["pv"].degraded and not status["load"].degraded
    assert "no PV nowcast" in run.summary(got, cfg)


def test_pv_at_half_the_forecast_lowers_the_first_hours(site_dir, tmp_path):
    cfg = _cfg(site_dir, tmp_path)
    fc = _forecast_kw(cfg, "pv_kw")
    with Store.from_config(cfg) as store:
        store.add_measurements(_rows(NOW, 2, lambda t: 0.5 * fc[t.floor("h")], lambda t: 0.8))
    got = run.plan_once(cfg, NOW)
    ref = run.plan_once(_cfg(site_dir, tmp_path, pv=False, load=False), NOW)
    pv, pv_ref = got.plan.inputs.pv_kw, ref.plan.inputs.pv_kw
    assert pv[0] == pytest.approx(0.5 * pv_ref[0], rel=0.2)  # lead 0: the measured index
    assert np.all(pv[:8] < 0.8 * pv_ref[:8])  # the first two hours clearly lower
    assert pv[4 * 12] == pytest.approx(pv_ref[4 * 12], abs=0.02)  # 12 h on: the forecast
    # the load nowcast: 0.8 kW measured, lead 0 takes it exactly, then fades into the forecast
    load, load_ref = got.plan.inputs.load_kw, ref.plan.inputs.load_kw
    assert load[0] == pytest.approx(0.8)
    weight = np.exp(-np.arange(len(load)) * 0.25 / 3.0)
    assert load == pytest.approx(weight * 0.8 + (1 - weight) * load_ref)
    status = {s.kind: s for s in got.plan.inputs.status}
    assert "PV nowcast: clear-sky index" in status["pv"].detail
    assert "load nowcast: 0.80 kW over the last 1 h" in status["load"].detail
    # the plan lowers what it expects to export or store from PV accordingly
    assert got.plan.solution.pv_used_kw[:4].sum() < ref.plan.solution.pv_used_kw[:4].sum()


def test_stale_simulated_or_sparse_measurements_give_no_nowcast(site_dir, tmp_path):
    cfg = _cfg(site_dir, tmp_path)
    with Store.from_config(cfg) as store:
        # a simulated plant's rows are never learned from
        store.add_measurements(_rows(NOW, 2, lambda t: 0.1, lambda t: 3.0, simulated=True))
    status = {s.kind: s for s in inputs.gather(cfg, NOW).status}
    assert "no PV nowcast: no measurements" in status["pv"].detail
    with Store.from_config(cfg) as store:
        store.add_measurements(_rows(NOW - pd.Timedelta(minutes=40), 2, lambda t: 0.1,
                                     lambda t: 3.0))
    got = inputs.gather(cfg, NOW)
    status = {s.kind: s for s in got.status}
    assert "no load nowcast: the newest measurement is 2460 s old (max_age_s is 900)" \
        in status["load"].detail
    # with a longer max_age_s the rows (to 11:20) cover 2 of the last hour's 4 slots: enough
    got = inputs.gather(_cfg(site_dir, tmp_path, max_age_s=3600), NOW)
    assert got.load_kw[0] == pytest.approx(3.0)
    got = inputs.gather(_cfg(site_dir, tmp_path, max_age_s=3600, load_window_h=6), NOW)
    assert "measurements in only 9 of the last 24 slots" in \
        {s.kind: s for s in got.status}["load"].detail


def test_bad_nowcast_key_is_named(site_dir):
    with pytest.raises(Exception, match=r"forecast\.nowcast\.tau_h"):
        config.load(site_dir(config={"forecast": {"nowcast": {"tau_h": 0}}}))


def test_the_backtest_forecaster_uses_the_same_nowcast(site_dir):
    """RealForecaster's blends are nowcast.fade/clearsky_index with the config's settings."""
    cfg = config.load(site_dir(config={"forecast": {"nowcast": {"tau_h": 1.5,
                                                                "load_window_h": 0.5}}}))
    n = 96 * 10
    index = pd.date_range("2026-05-01", periods=n, freq="15min", tz="UTC")
    rng = np.random.default_rng(3)
    load = 0.5 + rng.uniform(0, 1, n)
    series = Series(index=index, slot_s=900, spot_eur_per_kwh=np.full(n, 0.1),
                    buy_eur_per_kwh=np.full(n, 0.3), sell_eur_per_kwh=np.full(n, 0.1),
                    pv_kw=np.zeros(n), load_kw=load, grid_ok=np.ones(n, dtype=bool),
                    outage_start=np.full(n, -1))
    real = RealForecaster(cfg, series)
    assert real.load_tau_h == 1.5 and real.pv_tau_h == 1.5 and real.load_window_h == 0.5
    t = 96 * 8
    _, got = real.forecast(t, 16)
    real.load_tau_h = 0.0
    _, profile = real.forecast(t, 16)
    recent = load[t - 2:t].mean()
    assert got == pytest.approx(nowcast.fade(profile, recent, 900, 1.5))
    assert got[0] == pytest.approx(recent)


def test_measured_pv_counts_when_the_forecast_expects_none(site_dir, tmp_path):
    """A forecast of no PV at all (snow on the weather model) does not cap the measured index
    at 0: the measurement is all there is."""
    cfg = config.load(site_dir(config={"storage": {"url": f"sqlite:///{tmp_path / 'h.db'}"}},
                               pv=np.zeros(48)))
    with Store.from_config(cfg) as store:
        store.add_measurements(_rows(NOW, 2, lambda t: 2.0, lambda t: 0.5))
    got = inputs.gather(cfg, NOW)
    assert got.pv_kw[0] > 1.0 and got.pv_kw[4 * 12] == pytest.approx(0.0, abs=0.05)
