"""Load forecast from measured history: profile, fallback, walk-forward skill (issue 4)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from click.testing import CliRunner

from planner import config
from planner.cli.main import main
from planner.history.store import Store
from planner.inputs import gather as inputs
from planner.providers.load.history import walk_forward

TZ = ZoneInfo("Europe/Berlin")


def synthetic(days: int, start: str = "2026-03-01T00:00Z", seed: int = 3) -> pd.Series:
    """Hourly load [kW]: evening peak, more at weekends, noise."""
    idx = pd.date_range(start, periods=days * 24, freq="1h", tz="UTC")
    local = idx.tz_convert(TZ)
    hour = local.hour.to_numpy()
    base = 0.3 + 0.6 * np.exp(-((hour - 19) ** 2) / 6) + 0.3 * np.exp(-((hour - 7) ** 2) / 2)
    base = base * np.where(local.day_of_week >= 5, 1.3, 1.0)
    noise = np.random.default_rng(seed).gamma(2.0, 0.1, len(idx))
    return pd.Series(base + noise, index=idx, name="load_kw")


def test_walk_forward_beats_same_time_yesterday_on_a_weekly_pattern():
    s = synthetic(70)
    r = walk_forward(s, TZ, s.index[0] + pd.Timedelta(days=28), s.index[-1])
    assert r["days"] == 42 and r["hours"] > 41 * 24
    assert r["skill_mae"] > 0.1 and r["mae_kw"] < r["naive_mae_kw"]


def _site(site_dir, tmp_path, **load):
    return config.load(site_dir(start="2026-05-01T00:00:00Z", config={
        "load": {"type": "history", "min_days": 7, "safety_margin_pct": 10, **load},
        "storage": {"url": f"sqlite:///{tmp_path / 'h.db'}"}}))


def test_history_from_measurements_with_safety_margin(site_dir, tmp_path):
    cfg = _site(site_dir, tmp_path)
    hist = synthetic(21, start="2026-04-10T00:00Z")
    with Store.from_config(cfg) as store:
        store.add_measurements({"measured_at": t, "load_power_w": v * 1000}
                               for t, v in hist.items())
    got = inputs.gather(cfg, pd.Timestamp("2026-05-01T00:00Z"))
    st = next(s for s in got.status if s.kind == "load")
    assert not st.degraded and "history profile" in st.source and "+10 %" in st.source
    local = got.index.tz_convert(TZ)
    evening = got.load_kw[(local.hour == 19) & (local.day_of_week < 5)].mean()
    night = got.load_kw[(local.hour == 3) & (local.day_of_week < 5)].mean()
    assert evening > 1.8 * night
    assert 0.9 * 1.1 * 0.9 < evening / (0.3 + 0.6 + 0.2) < 1.3


def test_short_history_falls_back_to_default_profile_flagged(site_dir, tmp_path):
    cfg = _site(site_dir, tmp_path)
    with Store.from_config(cfg) as store:
        store.add_measurements({"measured_at": t, "load_power_w": 500.0}
                               for t in pd.date_range("2026-04-29", periods=48, freq="1h",
                                                      tz="UTC"))
    got = inputs.gather(cfg, pd.Timestamp("2026-05-01T00:00Z"))
    st = next(s for s in got.status if s.kind == "load")
    assert st.degraded and "only 2.0 days of measured load" in st.detail


def test_forecast_load_evaluate_cli_on_a_csv_export(site_dir, tmp_path):
    s = synthetic(60)
    pd.DataFrame({"ts_utc": s.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "load_kwh": s.to_numpy()}).to_csv(tmp_path / "export.csv", index=False)
    path = site_dir(config={"load": {"type": "history", "history_from": "csv",
                                     "path": "export.csv", "column": "load_kwh"}})
    res = CliRunner().invoke(main, ["forecast", "load", "--evaluate", "--days", "30",
                                    "--config", str(path), "--now", "2026-06-01T00:00Z"])
    assert res.exit_code == 0, res.output
    assert "30 days, 720 hours scored" in res.output
    assert "skill  +" in res.output
    res = CliRunner().invoke(main, ["forecast", "load", "--config", str(path), "--now",
                                    "2026-04-20T00:00Z", "--hours", "24"])
    assert res.exit_code == 0 and "kWh" in res.output, res.output
