"""The clear-sky index of a weather-free PV forecast, from measured PV and clear-sky power only
(issue 10).

A pure function of the past: arrays of measured PV, the arrays' clear-sky power and the
local hour of each slot, all *before* the moment of the forecast. The backtest's forecaster
(:class:`planner.evaluate.forecast.RealForecaster`) calls it; production can call it on the
executor's measurements the same way (:mod:`planner.inputs.nowcast` puts them on the slot
grid).

* :func:`hourly_index` — Σ measured / Σ clear-sky per local hour over a window; hours with
  little clear-sky energy take the whole window's index; clipped.
* :func:`blend_weight` — the weight ``w`` of the short (recent) index against the long
  (climatological) one that minimised the squared PV error over the last ``fit_days`` days:
  each of those days predicted from the days before it, so the weight is a forecast from the
  forecaster's own error history (weather persistence: ≈0.3–0.5 in changeable months,
  0 in long steady spells).
* :func:`blended_index` — ``w`` × short index + (1 − ``w``) × long index.
* :func:`today_index` — the index of the day so far (since local midnight) and the share of
  the day's clear-sky energy already seen: after sunrise the day's own index predicts the
  rest of the day.
"""

from __future__ import annotations

import numpy as np

from planner.inputs.nowcast import PV_INDEX_CAP, PV_INDEX_MIN_SHARE, clearsky_index

__all__ = ["BLEND_WEIGHT_DEFAULT", "blend_weight", "blended_index", "hourly_index",
           "today_index"]

#: the blend weight while no past day can be scored (the first days of the history)
BLEND_WEIGHT_DEFAULT = 0.5


def hourly_index(pv_kw: np.ndarray, clearsky_kw: np.ndarray, hour: np.ndarray,
                 min_share: float = PV_INDEX_MIN_SHARE,
                 cap: float = PV_INDEX_CAP) -> np.ndarray | None:
    """The clear-sky index per local hour (24 values) over the window: Σ ``pv_kw`` /
    Σ ``clearsky_kw`` of the slots of that hour. Hours whose clear-sky energy is below
    ``min_share`` of the best hour's take the whole window's index; every index is clipped to
    [0, ``cap`` × the whole window's]. None when the window has no clear-sky energy."""
    total_cs = float(clearsky_kw.sum())
    if total_cs <= 1e-9:
        return None
    cs_h = np.bincount(hour, weights=clearsky_kw, minlength=24)
    pv_h = np.bincount(hour, weights=pv_kw, minlength=24)
    whole = float(pv_kw.sum()) / total_cs
    k = np.full(24, whole)
    ok = cs_h >= min_share * cs_h.max()
    k[ok] = pv_h[ok] / cs_h[ok]
    return np.clip(k, 0.0, cap * whole)


def blended_index(pv_kw: np.ndarray, clearsky_kw: np.ndarray, hour: np.ndarray, per_day: int,
                  short_days: int, long_days: int, weight: float) -> np.ndarray | None:
    """``weight`` × the :func:`hourly_index` of the last ``short_days`` days + (1 − ``weight``)
    × that of the last ``long_days`` days (the arrays' ends; as much as there is). The short
    one alone when the long one has no more data; None when neither has daylight."""
    n = len(pv_kw)
    s = slice(max(0, n - short_days * per_day), n)
    l_ = slice(max(0, n - long_days * per_day), n)
    short = hourly_index(pv_kw[s], clearsky_kw[s], hour[s])
    long = hourly_index(pv_kw[l_], clearsky_kw[l_], hour[l_])
    if short is None:
        return long
    if long is None:
        return short
    return weight * short + (1.0 - weight) * long


def blend_weight(pv_kw: np.ndarray, clearsky_kw: np.ndarray, hour: np.ndarray, per_day: int,
                 short_days: int, long_days: int, fit_days: int) -> float:
    """The weight of the short index in :func:`blended_index` that minimised the squared PV
    error of the last ``fit_days`` days (of ``per_day`` slots) before the arrays' end, each
    day's index taken from the days before it: ``w = Σ d·r / Σ d²`` with ``d`` = clear-sky ×
    (short − long index) and ``r`` = measured − clear-sky × long index, clipped to [0, 1].
    :data:`BLEND_WEIGHT_DEFAULT` while no day can be scored (too little history)."""
    n = len(pv_kw)
    num = den = 0.0
    for j in range(1, fit_days + 1):
        lo, hi = n - j * per_day, n - (j - 1) * per_day
        if lo - short_days * per_day < 0:
            break
        past = slice(max(0, lo - long_days * per_day), lo)
        recent = slice(lo - short_days * per_day, lo)
        short = hourly_index(pv_kw[recent], clearsky_kw[recent], hour[recent])
        long = hourly_index(pv_kw[past], clearsky_kw[past], hour[past])
        if short is None or long is None:
            continue
        h = hour[lo:hi]
        cs = clearsky_kw[lo:hi]
        d = cs * (short[h] - long[h])
        r = pv_kw[lo:hi] - cs * long[h]
        num += float(d @ r)
        den += float(d @ d)
    if den <= 1e-12:
        return BLEND_WEIGHT_DEFAULT
    return float(np.clip(num / den, 0.0, 1.0))


def today_index(pv_kw: np.ndarray, clearsky_kw: np.ndarray, day_clearsky_kw_sum: float,
                cap: float = np.inf,
                min_share: float = PV_INDEX_MIN_SHARE) -> tuple[float, float] | None:
    """The clear-sky index of today so far (``pv_kw``/``clearsky_kw``: today's slots before
    now; :func:`planner.inputs.nowcast.clearsky_index`, clipped at ``cap``) and the share of
    the day's clear-sky energy (``day_clearsky_kw_sum``, the whole local day, known in
    advance) already seen; None before ``min_share`` of it."""
    if day_clearsky_kw_sum <= 1e-9:
        return None
    k = clearsky_index(pv_kw, clearsky_kw, min_share * day_clearsky_kw_sum, cap)
    if k is None:
        return None
    return k, float(clearsky_kw.sum()) / day_clearsky_kw_sum
