"""PV and load nowcasts: what was measured in the last hours, blended into the first hours of
the forecasts (``forecast.nowcast``; issue 10).

One implementation for ``helios plan`` and the backtest's forecaster
(:class:`planner.evaluate.forecast.RealForecaster`), so a backtest figure is a figure of what
production plans on:

* **PV**: the clear-sky index of the last ``pv_window_h`` hours of complete slots before the
  current slot (Σ measured PV / Σ clear-sky power of the arrays, :func:`clearsky_index`;
  none when the sun was too low to tell, capped at :data:`PV_INDEX_CAP` × the forecast's own
  highest index) replaces the forecast's with weight ``exp(-lead / tau_h)`` (:func:`fade`), lead 0
  for the current slot;
* **load**: the mean load of the last ``load_window_h`` hours of complete slots replaces the
  forecast with the same weight.

In production (:func:`apply`) the measurements are the executor's rows in the
``measurements`` table (``pv_power_w``, ``load_power_w``; simulated rows never count), put on
the slot grid (slot means). Without measurements, with too few (fewer than half the window's
slots), or when the newest is older than ``max_age_s``, there is no nowcast and the PV/load
input status says why. A forecast that is already a stand-in (the degraded fallback) is not
nowcast, as in the backtest.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from planner.core.errors import StorageError
from planner.history.store import Store, from_db_time, measurements, real_measurement, to_db_time
from planner.inputs.types import InputStatus
from planner.providers.pv.openmeteo import OpenMeteoPv, PvArray, clearsky_power_kw

__all__ = ["PV_INDEX_CAP", "PV_INDEX_MIN_SHARE", "apply", "clearsky_index", "fade",
           "pv_arrays", "window_slots"]

#: slots whose clear-sky energy is below this share of the array's clear-sky peak give no
#: index (dawn and dusk ratios are noise)
PV_INDEX_MIN_SHARE = 0.1
#: the clear-sky index is clipped to [0, this × the forecast's own index]
PV_INDEX_CAP = 2.0
#: a nominal array when the PV provider has none (the index absorbs size and orientation)
NOMINAL_ARRAY = PvArray(kwp=1.0, tilt_deg=30.0, azimuth_deg=180.0)


def window_slots(hours: float, slot_s: int) -> int:
    """Slots in a window of ``hours``."""
    return int(round(hours * 3600 / slot_s))


def fade(forecast: np.ndarray, recent, slot_s: int, tau_h: float) -> np.ndarray:
    """``recent`` (a number or one per slot) blended into ``forecast`` with weight
    ``exp(-lead / tau_h)``, lead 0 for the first slot."""
    lead_h = np.arange(len(forecast)) * (slot_s / 3600.0)
    weight = np.exp(-lead_h / tau_h)
    return weight * recent + (1.0 - weight) * forecast


def clearsky_index(pv_kw: np.ndarray, clearsky_kw: np.ndarray, min_clearsky_sum_kw: float,
                   cap: float) -> float | None:
    """Σ ``pv_kw`` / Σ ``clearsky_kw`` clipped at ``cap``; None when Σ clear-sky is below
    ``min_clearsky_sum_kw`` (the sun too low to tell)."""
    cs = float(clearsky_kw.sum())
    if cs < min_clearsky_sum_kw:
        return None
    return min(float(pv_kw.sum()) / cs, cap)


def pv_arrays(cfg) -> tuple[tuple[PvArray, ...], float]:
    """The arrays whose clear-sky power the PV index is measured against, and the forecast's
    confidence factor: the ``openmeteo`` provider's arrays and ``confidence_pct``, else
    :data:`NOMINAL_ARRAY` and 1."""
    options = cfg.pv.options if cfg.pv is not None and cfg.pv.type == "openmeteo" else None
    if isinstance(options, OpenMeteoPv.Config):
        return options._arrays, options.confidence_pct / 100.0
    return (NOMINAL_ARRAY,), 1.0


def clearsky_peak_kw(site, arrays: tuple[PvArray, ...], year: int) -> float:
    """The arrays' highest clear-sky power on the summer solstice of ``year``. [kW]"""
    day = f"{year}-06-21" if site.latitude >= 0 else f"{year}-12-21"
    idx = pd.date_range(pd.Timestamp(day, tz="UTC"), periods=96, freq="15min")
    return float(np.max(clearsky_power_kw(site.latitude, site.longitude, idx, 900, arrays)))


def _read(cfg, since: pd.Timestamp, now: pd.Timestamp) -> pd.DataFrame | str:
    """The real measurements in ``[since, now]`` (kW), or why there are none."""
    store = Store.from_config(cfg)
    db = store.url.database
    if store.url.get_backend_name() == "sqlite" and db not in (None, "", ":memory:") \
            and not Path(db).exists():
        return f"no measurements database ({db})"
    q = (sa.select(measurements.c.measured_at, measurements.c.pv_power_w,
                   measurements.c.load_power_w)
         .where(measurements.c.measured_at >= to_db_time(since),
                measurements.c.measured_at <= to_db_time(now), real_measurement())
         .order_by(measurements.c.measured_at))
    try:
        with store:
            store.ensure_schema()
            with store.engine.connect() as conn:
                rows = conn.execute(q).all()
    except (StorageError, sa.exc.SQLAlchemyError) as exc:
        return f"cannot read measurements ({str(exc).splitlines()[0][:200]})"
    index = pd.DatetimeIndex([from_db_time(r[0]) for r in rows], name="ts_utc")
    return pd.DataFrame({"pv_kw": [np.nan if r[1] is None else r[1] / 1000.0 for r in rows],
                         "load_kw": [np.nan if r[2] is None else r[2] / 1000.0 for r in rows]},
                        index=index, dtype=float)


def _slot_means(frame: pd.DataFrame | str, column: str, start: pd.Timestamp, k: int,
                slot_s: int, now: pd.Timestamp, max_age_s: int
                ) -> tuple[np.ndarray, pd.DatetimeIndex] | str:
    """The ``k`` complete slots' means before ``start``, or why not."""
    if isinstance(frame, str):
        return frame
    s = frame[column].dropna()
    if s.empty:
        return "no measurements"
    age_s = (now - s.index[-1]).total_seconds()
    if age_s > max_age_s:
        return (f"the newest measurement is {age_s:.0f} s old (max_age_s is {max_age_s})")
    step = pd.Timedelta(seconds=slot_s)
    grid = pd.date_range(start - k * step, periods=k, freq=step)
    means = s[s.index < start].groupby(s[s.index < start].index.floor(step)).mean()
    means = means.reindex(grid)
    if means.notna().sum() * 2 < k:
        return f"measurements in only {int(means.notna().sum())} of the last {k} slots"
    return means.dropna().to_numpy(), grid[means.notna().to_numpy()]


def _with(status: InputStatus, note: str) -> InputStatus:
    detail = f"{status.detail}; {note}" if status.detail else note
    return dataclasses.replace(status, detail=detail)


def apply(cfg, now: pd.Timestamp, index: pd.DatetimeIndex, slot_s: int, pv_kw: np.ndarray,
          load_kw: np.ndarray, pv_status: InputStatus, load_status: InputStatus
          ) -> tuple[np.ndarray, np.ndarray, InputStatus, InputStatus]:
    """PV and load on ``index`` with the nowcasts of ``cfg.forecast.nowcast`` blended in, and
    their statuses with a note of what was done (or why not)."""
    nc = cfg.forecast.nowcast
    if not (nc.pv or nc.load):
        return pv_kw, load_kw, pv_status, load_status
    start = index[0]
    hours = max(nc.pv_window_h if nc.pv else 0.0, nc.load_window_h if nc.load else 0.0)
    frame = _read(cfg, start - pd.Timedelta(hours=hours), now)
    if nc.pv:
        pv_kw, pv_status = _pv(cfg, now, index, slot_s, pv_kw, pv_status, frame)
    if nc.load:
        load_kw, load_status = _load(cfg, now, index, slot_s, load_kw, load_status, frame)
    return pv_kw, load_kw, pv_status, load_status


def _pv(cfg, now, index, slot_s, pv_kw, status, frame):
    nc = cfg.forecast.nowcast
    if status.degraded:
        return pv_kw, _with(status, "no PV nowcast on a stand-in forecast")
    k = window_slots(nc.pv_window_h, slot_s)
    got = _slot_means(frame, "pv_kw", index[0], k, slot_s, now, nc.max_age_s)
    if isinstance(got, str):
        return pv_kw, _with(status, f"no PV nowcast: {got}")
    measured, stamps = got
    site = cfg.site
    arrays, confidence = pv_arrays(cfg)
    cs_past = clearsky_power_kw(site.latitude, site.longitude, stamps, slot_s, arrays)
    cs_now = clearsky_power_kw(site.latitude, site.longitude, index, slot_s, arrays)
    peak = clearsky_peak_kw(site, arrays, now.year)
    day = cs_now >= PV_INDEX_MIN_SHARE * peak
    # the cap: PV_INDEX_CAP x the forecast's own highest index (none when it has no daylight
    # or expects no PV at all: then the measurement is all there is to go by)
    own = float(np.max(pv_kw[day] / (cs_now[day] * confidence))) if day.any() else 0.0
    cap = PV_INDEX_CAP * own if own > 0 else np.inf
    # the window's share of the sun, on the slots measured (k = the whole window)
    minimum = PV_INDEX_MIN_SHARE * peak * len(stamps)
    recent = clearsky_index(measured, cs_past, minimum, cap)
    if recent is None:
        return pv_kw, _with(status, f"no PV nowcast: the sun was too low in the last "
                            f"{nc.pv_window_h:g} h")
    out = np.maximum(fade(pv_kw, recent * cs_now * confidence, slot_s, nc.tau_h), 0.0)
    return out, _with(status, f"PV nowcast: clear-sky index {recent:.2f} over the last "
                      f"{nc.pv_window_h:g} h, fading over {nc.tau_h:g} h")


def _load(cfg, now, index, slot_s, load_kw, status, frame):
    nc = cfg.forecast.nowcast
    if status.degraded:
        return load_kw, _with(status, "no load nowcast on a stand-in forecast")
    k = window_slots(nc.load_window_h, slot_s)
    got = _slot_means(frame, "load_kw", index[0], k, slot_s, now, nc.max_age_s)
    if isinstance(got, str):
        return load_kw, _with(status, f"no load nowcast: {got}")
    recent = float(got[0].mean())
    options = cfg.load.options if cfg.load is not None and cfg.load.type == "history" else None
    margin = options.safety_margin_pct / 100.0 if options is not None else 0.0
    out = fade(load_kw, recent * (1.0 + margin), slot_s, nc.tau_h)
    return out, _with(status, f"load nowcast: {recent:.2f} kW over the last "
                      f"{nc.load_window_h:g} h, fading over {nc.tau_h:g} h")
