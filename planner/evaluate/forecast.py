"""What the closed loop's planner sees of the future: noise and Helios's own forecasters.

:func:`ar1` is the seeded, time-correlated error of the ``noisy`` forecasts;
:class:`RealForecaster` runs Helios's own forecasters on the recorded history before each
re-plan (``--forecast real``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from planner.config import HeliosConfig
from planner.core.site import quantile
from planner.evaluate.physics import Series
from planner.inputs import degraded, nowcast, pvindex
from planner.providers.load import history
from planner.providers.pv.openmeteo import clearsky_power_kw


def ar1(rng: np.random.Generator, n: int, slot_s: int, tau_s: float = 3 * 3600) -> np.ndarray:
    """A stationary AR(1) series with unit variance and correlation time ``tau_s``."""
    phi = math.exp(-slot_s / tau_s)
    shocks = rng.standard_normal(n) * math.sqrt(1 - phi * phi)
    out = np.empty(n)
    x = rng.standard_normal()
    for i in range(n):
        x = phi * x + shocks[i]
        out[i] = x
    return out


#: days of measured PV behind the recent (short) clear-sky index of the ``real`` PV forecast
PV_INDEX_DAYS = 1
#: days behind the long (climatological) clear-sky index it is blended with
PV_INDEX_LONG_DAYS = 30
#: past days whose squared PV error sets the blend weight (refitted at each local midnight)
PV_BLEND_FIT_DAYS = 30
#: blend the index of today so far into the rest of today
PV_INTRADAY = True
#: local hours whose clear-sky energy over those days is below this share of the best hour's
#: take the whole-window clear-sky index (dawn and dusk ratios are noise)
PV_INDEX_MIN_SHARE = nowcast.PV_INDEX_MIN_SHARE
#: the hourly clear-sky index is clipped to [0, this × the whole-window index]
PV_INDEX_CAP = nowcast.PV_INDEX_CAP
#: day-ahead prices for the next local day are known from this local hour on (EPEX / Nord
#: Pool publish ≈ 12:45–13:00 CET)
PRICE_PUBLISH_HOUR = 13


def _median_by_group(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """The median of ``values`` per ``group`` (0 .. n_groups-1), NaN for an empty group:
    pandas' groupby median (the two middle values' mean for an even count), one sort."""
    counts = np.bincount(group, minlength=n_groups)
    ordered = values[np.lexsort((values, group))]
    starts = np.cumsum(counts) - counts
    last = max(len(ordered) - 1, 0)
    lo = np.minimum(starts + (counts - 1) // 2, last)
    hi = np.minimum(starts + counts // 2, last)
    if not len(ordered):
        return np.full(n_groups, np.nan)
    return np.where(counts > 0, (ordered[lo] + ordered[hi]) / 2, np.nan)


def fit_hourly(load_kw: np.ndarray, local_hour: np.ndarray, weekend: np.ndarray,
               window_days: int) -> history.LoadModel:
    """:func:`planner.providers.load.history.fit` on consecutive hourly means given as arrays
    (NaN: no data; each hour's local hour of day and weekend flag precomputed), in numpy.

    The same model bit for bit (tests/planner/test_backtest_real_forecast.py compares them):
    the last ``window_days`` before the last measured hour, the median per local hour
    (weekday/weekend, an empty hour from both together, then the window's median), the
    level of the last 7 days clipped to :data:`~planner.providers.load.history.LEVEL_CLIP`,
    the 5th percentile as the floor. ≈0.25 ms instead of ≈2.5 ms of pandas groupbys, which
    matters at one refit per hour over a year."""
    ok = ~np.isnan(load_kw)
    at = np.arange(len(load_kw))
    last = int(at[ok][-1])
    keep = ok & (at >= last - window_days * 24)
    v, hour, wk = load_kw[keep], local_hour[keep], weekend[keep]
    overall = _median_by_group(v, hour, 24)
    if np.isnan(overall).any():  # an hour without data: the window's median
        overall = np.where(np.isnan(overall), np.median(v), overall)
    profile = _median_by_group(v, wk * 24 + hour, 48).reshape(2, 24)
    profile = np.where(np.isnan(profile), overall, profile)
    recent = at[keep] >= last - 7 * 24
    expected = profile[wk[recent], hour[recent]].mean()
    level = float(np.clip(v[recent].mean() / expected, *history.LEVEL_CLIP)) \
        if expected > 0 else 1.0
    return history.LoadModel(profile, level, quantile(v, 0.05))


class RealForecaster:
    """Helios's own forecasts at slot ``t`` from the recorded history *before* ``t`` only.

    * **Load**: :func:`planner.providers.load.history.fit` (weekday/weekend median profile per
      local hour, recent level, baseload floor) on the hourly means of the actual load of the
      complete hours before ``t`` — refitted once per hour (production refits every run, which
      would also see the current partial hour), in numpy (:func:`fit_hourly`, the same
      model bit for bit: ≈0.25 ms a refit, ≈2 s a year; ``history.fit``'s pandas ≈20 s).
      The hourly prediction is held on the slots. The config's
      ``load.safety_margin_pct`` is applied when ``load`` is the ``history`` provider (else
      none), as that provider does. With less than ``min_days`` of history (the run's first
      week when the data start at ``--from``) the load is the degraded mode's default
      profile (:func:`planner.inputs.degraded.default_load_kw`), as in production.
    * **PV**: there is no archived weather forecast for the recorded years, so this is a
      **weather-free** forecast: the site's clear-sky power (pvlib,
      :func:`planner.providers.pv.openmeteo.clearsky_power_kw` for ``site.latitude/longitude``;
      the configured ``pv.arrays`` when ``pv`` is ``openmeteo``, else a nominal 1 kWp south
      array at 30°), precomputed once for the whole series, times a clear-sky index per
      local hour of day (:mod:`planner.inputs.pvindex`, the ratio absorbing the unknown array
      size and orientation): ``w`` × the index of the last :data:`PV_INDEX_DAYS` day before
      the hour (Σ measured PV / Σ clear-sky power per local hour: persistence of the recent
      weather) + (1 − ``w``) × that of the last :data:`PV_INDEX_LONG_DAYS` days (the season's
      climatology). ``w`` is refitted at each local midnight: the weight that minimised the
      squared PV error of the :data:`PV_BLEND_FIT_DAYS` days before, each day forecast from
      the days before it (:func:`planner.inputs.pvindex.blend_weight`; ≈0.2–0.4, 0 in steady
      spells). Hours with little clear-sky energy (< :data:`PV_INDEX_MIN_SHARE` of the best
      hour) take the whole-window index; every index is clipped to [0,
      :data:`PV_INDEX_CAP` × the whole-window index]. With :data:`PV_INTRADAY` the rest of
      today takes ``s`` × today's index so far + (1 − ``s``) × that index, ``s`` the share of
      the day's clear-sky energy already seen (from a tenth of it on). The Open-Meteo
      ``confidence_pct`` is applied when ``pv`` is ``openmeteo``. Before any daylight is in
      the history, the degraded mode's clear-sky fallback is used. It cannot see tomorrow's
      clouds, so it is a *pessimistic* stand-in for the Open-Meteo forecaster.
    * **Nowcasts** (``forecast.nowcast``, on by default): the clear-sky index of the last
      ``pv_window_h`` and the mean load of the last ``load_window_h`` before ``t`` fade into
      the first hours (:mod:`planner.inputs.nowcast`, the same functions ``helios plan``
      applies to the executor's measurements).
    * **Prices**: day-ahead prices for the next local day (site time zone) become visible at
      :data:`PRICE_PUBLISH_HOUR`:00 local; before that the planner sees prices to the end of
      today only. :meth:`visible_end` gives the slot where the visible prices end.
    """

    def __init__(self, cfg: HeliosConfig, series: Series):
        self.cfg = cfg
        self.series = series
        s = series
        tz = cfg.site.tz
        local = s.index.tz_convert(tz)
        self.hour = local.hour.to_numpy()
        self.weekend = (local.day_of_week.to_numpy() >= 5).astype(np.int64)
        # prices: where the visible prices end, per slot
        dates, codes = np.unique(local.date, return_inverse=True)
        next_midnight = pd.DatetimeIndex(
            [pd.Timestamp(d) + pd.Timedelta(days=k) for k in (1, 2) for d in dates]
        ).tz_localize(tz).tz_convert("UTC")
        nd = len(dates)
        end_today = s.index.searchsorted(next_midnight[:nd])
        end_tomorrow = s.index.searchsorted(next_midnight[nd:])
        self._visible = np.where(self.hour >= PRICE_PUBLISH_HOUR, end_tomorrow[codes],
                                 end_today[codes]).astype(np.int64)
        # load: hourly history, the history provider's settings
        load_cfg = cfg.load.options if cfg.load is not None and cfg.load.type == "history" \
            else None
        defaults = history.HistoryLoad.Config()
        self.window_days = (load_cfg or defaults).window_days
        self.min_days = (load_cfg or defaults).min_days
        self.load_margin = (load_cfg.safety_margin_pct / 100.0) if load_cfg else 0.0
        hourly = history.hourly_history(pd.Series(s.load_kw, index=s.index))
        self.hourly_load = hourly
        # the same as arrays for fit_hourly: each hour's local hour of day and weekend flag
        hourly_local = hourly.index.tz_convert(tz)
        self._hourly_kw = hourly.to_numpy(dtype=float)
        self._hourly_hour = hourly_local.hour.to_numpy().astype(np.int64)
        self._hourly_weekend = (hourly_local.day_of_week.to_numpy() >= 5).astype(np.int64)
        self._hourly_measured = np.concatenate(
            ([0], np.cumsum(~np.isnan(self._hourly_kw)))).astype(np.int64)
        hour_starts = s.index.floor("h")
        # complete hours before each slot's hour (the slot's own hour is not complete yet)
        self._hours_before = hourly.index.searchsorted(hour_starts).astype(np.int64)
        self._hour_slot = s.index.searchsorted(hour_starts).astype(np.int64)
        self._default_load = degraded.default_load_kw(cfg.site, s.index)
        # PV: clear-sky power of the site for the whole series, once
        arrays, self.pv_confidence = nowcast.pv_arrays(cfg)
        self._peak = getattr(cfg.pv.options, "peak_kw", 0.0) \
            if cfg.pv is not None and cfg.pv.type == "openmeteo" else 0.0
        self.arrays = arrays
        self.clearsky_kw = clearsky_power_kw(cfg.site.latitude, cfg.site.longitude, s.index,
                                             s.slot_s, arrays)
        self._fallback_pv = lambda w: degraded.clearsky_pv_kw(cfg.site, s.index[w], self._peak)
        self._cs_peak = float(np.max(self.clearsky_kw)) if len(self.clearsky_kw) else 0.0
        # the nowcasts of helios plan (planner.inputs.nowcast, forecast.nowcast)
        nc = cfg.forecast.nowcast
        self.nowcast = nc.pv  # blend in the PV measured in the last pv_window_h
        self.pv_tau_h = nc.tau_h
        self.pv_window_h = nc.pv_window_h
        self.load_tau_h = nc.tau_h if nc.load else 0.0  # > 0: blend in the recent mean load
        self.load_window_h = nc.load_window_h
        self.pv_days = PV_INDEX_DAYS
        self.pv_long_days = PV_INDEX_LONG_DAYS
        self.pv_fit_days = PV_BLEND_FIT_DAYS
        self.pv_intraday = PV_INTRADAY
        # PV index: local days (first slot, one past the last, clear-sky energy) of every slot
        self._day = codes.astype(np.int64)
        self._day_first = s.index.searchsorted(pd.DatetimeIndex(
            [pd.Timestamp(d) for d in dates]).tz_localize(tz).tz_convert("UTC")).astype(np.int64)
        self._day_end = end_today.astype(np.int64)
        self._day_cs = np.bincount(self._day, weights=self.clearsky_kw, minlength=nd)
        self._weight_day = -1
        self.pv_weight = pvindex.BLEND_WEIGHT_DEFAULT
        self._key = -1
        self._load_table: np.ndarray | None = None
        self._pv_index: np.ndarray | None = None
        self.refits = 0
        self.fit_s = 0.0
        # the forecasting work of the re-plans (forecast, its refits included): CPU time, as
        # the loop's cpu_s (a wall clock around these short calls also catches the
        # preemptions of a loaded machine)
        self.forecast_s = 0.0
        self.degraded_load = 0  # re-plans on the default load profile
        self.fallback_pv = 0  # re-plans on the clear-sky fallback

    def visible_end(self, t: int) -> int:
        """One past the last slot whose price is published at slot ``t``."""
        return int(self._visible[t])

    def max_visible_slots(self) -> int:
        """The most slots ahead whose prices are ever published at once (from the
        publication hour to the end of the next local day)."""
        return int((self._visible - np.arange(len(self._visible))).max(initial=1))

    def load_model(self, t: int):
        """The :class:`~planner.providers.load.history.LoadModel` for slot ``t``, or None (too
        little history: the default profile)."""
        self._refresh(t)
        return self._model

    def _refresh(self, t: int) -> None:
        nh = int(self._hours_before[t])
        if nh == self._key:
            return
        self._key = nh
        t0 = time.perf_counter()
        a = max(0, nh - (self.window_days + 1) * 24)
        self._model = None
        self._load_table = None
        if self._hourly_measured[nh] - self._hourly_measured[a] >= self.min_days * 24:
            model = fit_hourly(self._hourly_kw[a:nh], self._hourly_hour[a:nh],
                               self._hourly_weekend[a:nh], self.window_days)
            self._model = model
            self._load_table = model.table_kw()
            self.refits += 1
        self.fit_s += time.perf_counter() - t0
        # PV: clear-sky index per local hour over the last days before this hour
        self._pv_index = self._index_before(t, int(self._hour_slot[t]))

    def _index_before(self, t: int, hs: int) -> np.ndarray | None:
        """The blended clear-sky index per local hour from the PV before slot ``hs`` (the
        blend weight refitted on the PV before slot ``t``'s local midnight)."""
        per_day = int(round(86400 / self.series.slot_s))
        pv, cs, hour = self.series.pv_kw, self.clearsky_kw, self.hour
        day = int(self._day[t])
        if day != self._weight_day:
            self._weight_day = day
            e = int(self._day_first[day])
            lo = max(0, e - (self.pv_long_days + self.pv_fit_days) * per_day)
            self.pv_weight = pvindex.blend_weight(pv[lo:e], cs[lo:e], hour[lo:e], per_day,
                                                  self.pv_days, self.pv_long_days,
                                                  self.pv_fit_days)
        lo = max(0, hs - max(self.pv_days, self.pv_long_days) * per_day)
        return pvindex.blended_index(pv[lo:hs], cs[lo:hs], hour[lo:hs], per_day, self.pv_days,
                                     self.pv_long_days, self.pv_weight)

    def _with_today(self, t: int, index: np.ndarray) -> np.ndarray:
        """``index`` (per slot from ``t``) with the rest of today's slots blended with today's
        index so far, weighted by the share of the day's clear-sky energy already seen."""
        day = int(self._day[t])
        d0 = int(self._day_first[day])
        got = pvindex.today_index(self.series.pv_kw[d0:t], self.clearsky_kw[d0:t],
                                  float(self._day_cs[day]),
                                  PV_INDEX_CAP * float(np.max(self._pv_index)))
        if got is None:
            return index
        k, seen = got
        rest = min(int(self._day_end[day]) - t, len(index))
        out = index.copy()
        out[:rest] = seen * k + (1.0 - seen) * index[:rest]
        return out

    def forecast(self, t: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """PV and load forecasts [kW] for slots ``t .. t+m-1`` made at slot ``t`` (its CPU
        time counted in :attr:`forecast_s`)."""
        cpu0 = time.process_time()
        out = self._forecast(t, m)
        self.forecast_s += time.process_time() - cpu0
        return out

    def _forecast(self, t: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        self._refresh(t)
        w = slice(t, t + m)
        if self._load_table is None:
            load = self._default_load[w]
            self.degraded_load += 1
        else:
            load = self._load_table[self.weekend[w], self.hour[w]]
            if self.load_tau_h > 0 and t > 0:
                # load nowcast: the last hour's measured mean, fading into the profile
                k = nowcast.window_slots(self.load_window_h, self.series.slot_s)
                recent = float(self.series.load_kw[max(0, t - k):t].mean())
                load = nowcast.fade(load, recent, self.series.slot_s, self.load_tau_h)
            if self.load_margin:
                load = load * (1.0 + self.load_margin)
        if self._pv_index is None:
            pv = self._fallback_pv(w)
            self.fallback_pv += 1
        else:
            index = self._pv_index[self.hour[w]]
            if self.pv_intraday:
                index = self._with_today(t, index)
            recent = self._recent_index(t)
            if recent is not None:
                index = nowcast.fade(index, recent, self.series.slot_s, self.pv_tau_h)
            pv = self.clearsky_kw[w] * index
        if self.pv_confidence != 1.0:
            pv = pv * self.pv_confidence
        return pv, load

    def _recent_index(self, t: int) -> float | None:
        """Clear-sky index measured over the last ``pv_window_h`` hours before slot ``t``
        (None when the sun was too low to tell; :func:`planner.inputs.nowcast.clearsky_index`).
        """
        if not self.nowcast:
            return None
        k = nowcast.window_slots(self.pv_window_h, self.series.slot_s)
        w = slice(max(0, t - k), t)
        whole_cap = PV_INDEX_CAP * float(np.max(self._pv_index))
        return nowcast.clearsky_index(self.series.pv_kw[w], self.clearsky_kw[w],
                                      PV_INDEX_MIN_SHARE * self._cs_peak * k, whole_cap)

    def stats(self) -> dict:
        """Refits, fallbacks and the forecasting time (``forecast_s``: the CPU time of
        everything :meth:`forecast` did, the load refits included; ``load_fit_s``: the
        refits' wall time)."""
        return {"load_refits": self.refits, "load_fit_s": round(self.fit_s, 3),
                "forecast_s": round(self.forecast_s, 3),
                "replans_default_load": self.degraded_load,
                "replans_clearsky_pv_fallback": self.fallback_pv,
                "load_safety_margin_pct": round(self.load_margin * 100, 6),
                "pv_confidence_pct": round(self.pv_confidence * 100, 6),
                "pv_index_days": self.pv_days, "pv_index_long_days": self.pv_long_days,
                "pv_blend_fit_days": self.pv_fit_days, "pv_intraday": self.pv_intraday}

    def past_day_forecasts(self, t: int, days: int) -> list[tuple[int, int, float, float]]:
        """What this forecaster said at the start of each of the ``days`` local days before
        slot ``t``'s day about that day: ``(start, stop, pv_kwh, load_kwh)`` per day (slots
        ``start .. stop - 1``), oldest first — the error history of a run that starts at
        ``t`` (each forecast sees only the history before its own day; the refit state moves
        back to ``t`` on the next :meth:`forecast`)."""
        day = int(self._day[t])
        h = self.series.slot_s / 3600.0
        out = []
        for d in range(max(0, day - days), day):
            start, stop = int(self._day_first[d]), int(self._day_end[d])
            if start == 0:
                continue  # no history before the data's first day
            pv, load = self.forecast(start, stop - start)
            out.append((start, stop, float(pv.sum() * h), float(load.sum() * h)))
        return out
