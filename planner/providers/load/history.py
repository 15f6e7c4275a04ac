"""Load forecast learned from the site's measured history (issue 4).

Model (day-ahead, hourly, in the site's local time):

* **profile**: the median load per local hour of day, separately for weekdays and weekends
  (Saturday, Sunday), over the last ``window_days`` days;
* **recent level**: the profile is scaled by mean(last 7 days) / mean(profile over those
  days), clipped to [0.7, 1.3], so a holiday week or a new appliance shifts the level;
* **baseload**: the 5th percentile of the window is a floor (fridge, standby never stop);
* ``safety_margin_pct`` is added explicitly on top (plan for a bit more load than expected).

History comes from the ``measurements`` table (``load_power_w``) or a CSV export
(``ts_utc`` + ``load_kw``, or an hourly energy column ending in ``_kwh``). With less than
``min_days`` of history the provider reports :class:`ProviderUnavailable` and
:mod:`planner.inputs.degraded` plans on the default profile, flagged.

:func:`walk_forward` evaluates the model the way it is used: every day at local midnight, fit
on the history before it, forecast the day, compare with what happened and with the naive
"same time yesterday" forecast (``helios forecast load --evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from executor.configspec import opt
from planner.core.errors import DataError, ProviderConfigError, ProviderUnavailable, StorageError
from planner.history.store import (
    Store,
    from_db_time,
    measurements,
    real_measurement,
    to_db_time,
)
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries

NAME = "load (history)"
LEVEL_CLIP = (0.7, 1.3)


def hourly_history(series: pd.Series) -> pd.Series:
    """Any regular load series [kW] → hourly means (UTC), gaps left as NaN."""
    s = series.astype(float)
    return s.resample("1h").mean()


@dataclass(frozen=True)
class LoadModel:
    """A fitted profile: kW by (is_weekend, local hour), level factor and baseload floor."""

    profile_kw: np.ndarray  # shape (2, 24)
    level: float
    baseload_kw: float

    def table_kw(self) -> np.ndarray:
        """The forecast by (is_weekend, local hour): profile × level, floored at the
        baseload. [kW], shape (2, 24)"""
        return np.maximum(self.profile_kw * self.level, self.baseload_kw)

    def predict(self, starts: pd.DatetimeIndex, tz) -> np.ndarray:
        """Hourly load for interval starts (UTC). [kW]"""
        local = starts.tz_convert(tz)
        weekend = (local.day_of_week.to_numpy() >= 5).astype(int)
        return self.table_kw()[weekend, local.hour.to_numpy()]


def fit(history_kw: pd.Series, tz, window_days: int = 28) -> LoadModel:
    """Fit :class:`LoadModel` on the last ``window_days`` of an hourly series [kW] (UTC)."""
    h = history_kw.dropna()
    h = h[h.index >= h.index[-1] - pd.Timedelta(days=window_days)]
    local = h.index.tz_convert(tz)
    weekend = local.day_of_week >= 5
    profile = np.empty((2, 24))
    overall = h.groupby(local.hour).median().reindex(range(24))
    overall = overall.fillna(h.median())
    for w in (0, 1):
        part = h[weekend == bool(w)]
        med = part.groupby(part.index.tz_convert(tz).hour).median().reindex(range(24))
        profile[w] = med.fillna(overall).to_numpy()
    recent = h[h.index >= h.index[-1] - pd.Timedelta(days=7)]
    rl = recent.index.tz_convert(tz)
    expected = profile[(rl.day_of_week >= 5).astype(int), rl.hour].mean()
    level = float(np.clip(recent.mean() / expected, *LEVEL_CLIP)) if expected > 0 else 1.0
    return LoadModel(profile, level, float(np.quantile(h, 0.05)))


def walk_forward(history_kw: pd.Series, tz, start: pd.Timestamp, end: pd.Timestamp,
                 window_days: int = 28, min_days: int = 7) -> dict:
    """Day-ahead walk-forward test of :func:`fit` against "same time yesterday".

    Every local day in ``[start, end)``: fit on the data before local midnight, forecast the
    day's hours, score the hours that were measured (and have yesterday's value).

    Returns
    -------
    dict
        ``days``, ``hours``, ``mae_kw``, ``rmse_kw``, ``naive_mae_kw``, ``naive_rmse_kw``,
        ``skill_mae`` and ``skill_rmse`` (1 - model / naive; > 0 = better than naive),
        ``mean_load_kw``.
    """
    h = hourly_history(history_kw)
    days = pd.date_range(start.tz_convert(tz).normalize(), end.tz_convert(tz).normalize(),
                         freq="D", inclusive="left")
    preds, truth, naive = [], [], []
    used = 0
    for day in days:
        day_utc = day.tz_convert("UTC")
        past = h[h.index < day_utc].dropna()
        if len(past) < min_days * 24:
            continue
        idx = pd.date_range(day_utc, (day + pd.Timedelta(days=1)).normalize().tz_convert("UTC"),
                            freq="1h", inclusive="left")
        actual = h.reindex(idx)
        yesterday = h.reindex(idx - pd.Timedelta(hours=24)).to_numpy()
        ok = ~np.isnan(actual.to_numpy()) & ~np.isnan(yesterday)
        if not ok.any():
            continue
        model = fit(past, tz, window_days)
        preds.append(model.predict(idx, tz)[ok])
        truth.append(actual.to_numpy()[ok])
        naive.append(yesterday[ok])
        used += 1
    if not used:
        raise DataError(f"{NAME}: no day in {start:%Y-%m-%d}..{end:%Y-%m-%d} with "
                        f"{min_days} days of history before it")
    p, t, n = (np.concatenate(x) for x in (preds, truth, naive))
    mae, rmse = float(np.mean(np.abs(p - t))), float(np.sqrt(np.mean((p - t) ** 2)))
    nmae, nrmse = float(np.mean(np.abs(n - t))), float(np.sqrt(np.mean((n - t) ** 2)))
    return {"days": used, "hours": len(t), "mae_kw": mae, "rmse_kw": rmse,
            "naive_mae_kw": nmae, "naive_rmse_kw": nrmse, "skill_mae": 1 - mae / nmae,
            "skill_rmse": 1 - rmse / nrmse, "mean_load_kw": float(t.mean())}


def read_csv_history(path: str, column: str) -> pd.Series:
    """A CSV export → load [kW] by UTC interval start (``*_kwh`` columns: energy per row)."""
    try:
        frame = pd.read_csv(path, usecols=["ts_utc", column])
    except FileNotFoundError:
        raise ProviderConfigError(NAME, f"file not found: {path}") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ProviderConfigError(NAME, f"cannot read {path} (need ts_utc and {column}): "
                                  f"{exc}") from None
    index = pd.to_datetime(frame["ts_utc"], utc=True, format="ISO8601")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    s = pd.Series(values, index=pd.DatetimeIndex(index, name="ts_utc")).sort_index()
    s = s[~s.index.duplicated()]
    if column.endswith("_kwh") and len(s) > 1:
        step_h = float(pd.Series(s.index).diff().median().total_seconds()) / 3600.0
        s = s / step_h
    return s


def read_measured_history(cfg, since: pd.Timestamp) -> pd.Series:
    """``measurements.load_power_w`` since ``since`` → load [kW] (UTC)."""
    try:
        with Store.from_config(cfg) as store:
            store.ensure_schema()
            with store.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(measurements.c.measured_at, measurements.c.load_power_w)
                    .where(measurements.c.measured_at >= to_db_time(since),
                           measurements.c.load_power_w.is_not(None),
                           real_measurement())  # never learn from a simulated plant
                    .order_by(measurements.c.measured_at)).all()
    except (StorageError, sa.exc.SQLAlchemyError) as exc:
        raise ProviderUnavailable(NAME, f"cannot read measurements ({exc})") from None
    if not rows:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    index = pd.DatetimeIndex([from_db_time(r[0]) for r in rows], name="ts_utc")
    return pd.Series([r[1] / 1000.0 for r in rows], index=index)


@register("load", "history")
class HistoryLoad:
    """Load forecast from measured history: weekday/weekend hourly profile, recent level,
    baseload floor, explicit safety margin. [kW]"""

    @dataclass(frozen=True)
    class Config:
        history_from: str = opt("measurements", "Where history comes from",
                          choices=("measurements", "csv"))
        path: str | None = opt(None, "CSV export (history_from: csv): ts_utc + column", path=True)
        column: str = opt("load_kw", "CSV column: load_kw [kW] or an hourly *_kwh column")
        window_days: int = opt(28, "Days of history in the profile", "d", ge=7, le=365)
        min_days: int = opt(7, "Less history than this: default profile (degraded)", "d",
                            ge=1)
        safety_margin_pct: float = opt(10.0, "Added to the forecast", "%", ge=0, le=100)

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config
        self.context = context
        if config.history_from == "csv" and not config.path:
            raise ProviderConfigError(NAME, "history_from: csv needs load.path")

    def history(self, until: pd.Timestamp) -> pd.Series:
        """Hourly measured load before ``until`` [kW] (UTC)."""
        if self.config.history_from == "csv":
            raw = read_csv_history(self.config.path, self.config.column)
        else:
            raw = read_measured_history(self.context.config, until - pd.Timedelta(
                days=self.config.window_days + 1))
        raw = raw[raw.index < until]
        return hourly_history(raw) if len(raw) else raw

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """Hourly forecast covering ``[start, end)``. [kW]"""
        tz = self.context.site.tz
        h = self.history(self.context.now).dropna()
        days = len(h) / 24.0
        if days < self.config.min_days:
            raise ProviderUnavailable(NAME, f"only {days:.1f} days of measured load "
                                      f"(min_days is {self.config.min_days})")
        model = fit(h, tz, self.config.window_days)
        idx = pd.date_range(start.floor("h"), end.ceil("h"), freq="1h", inclusive="left",
                            name="ts_utc")
        kw = model.predict(idx, tz) * (1 + self.config.safety_margin_pct / 100.0)
        return TimeSeries(pd.Series(kw, index=idx, name="load_kw"), 3600,
                          f"history profile ({days:.0f} d, level {model.level:.2f}, "
                          f"+{self.config.safety_margin_pct:g} %)")
