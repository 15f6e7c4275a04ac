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
from planner.evaluate.physics import Series
from planner.inputs import degraded, nowcast
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


#: days of measured PV behind the clear-sky index of the ``real`` PV forecast
PV_INDEX_DAYS = 3
#: local hours whose clear-sky energy over those days is below this share of the best hour's
#: take the whole-window clear-sky index (dawn and dusk ratios are noise)
PV_INDEX_MIN_SHARE = nowcast.PV_INDEX_MIN_SHARE
#: the hourly clear-sky index is clipped to [0, this × the whole-window index]
PV_INDEX_CAP = nowcast.PV_INDEX_CAP
#: day-ahead prices for the next local day are known from this local hour on (EPEX / Nord
#: Pool publish ≈ 12:45–13:00 CET)
PRICE_PUBLISH_HOUR = 13


class RealForecaster:
    """Helios's own forecasts at slot ``t`` from the recorded history *before* ``t`` only.

    * **Load**: :func:`planner.providers.load.history.fit` (weekday/weekend median profile per
      local hour, recent level, baseload floor) on the hourly means of the actual load of the
      complete hours before ``t`` — refitted once per hour (production refits every run, which
      would also see the current partial hour; an hourly refit costs ≈2 ms, ≈20 s a year at
      15-min slots). The hourly prediction is held on the slots. The config's
      ``load.safety_margin_pct`` is applied when ``load`` is the ``history`` provider (else
      none), as that provider does. With less than ``min_days`` of history (the run's first
      week when the data start at ``--from``) the load is the degraded mode's default
      profile (:func:`planner.inputs.degraded.default_load_kw`), as in production.
    * **PV**: there is no archived weather forecast for the recorded years, so this is a
      **weather-free** forecast: the site's clear-sky power (pvlib,
      :func:`planner.providers.pv.openmeteo.clearsky_power_kw` for ``site.latitude/longitude``;
      the configured ``pv.arrays`` when ``pv`` is ``openmeteo``, else a nominal 1 kWp south
      array at 30°), precomputed once for the whole series, times a clear-sky index per
      local hour of day: Σ measured PV / Σ clear-sky power over the last
      :data:`PV_INDEX_DAYS` days before the hour (persistence of the recent weather; the ratio
      also absorbs the unknown array size and orientation). Hours with little clear-sky energy
      (< :data:`PV_INDEX_MIN_SHARE` of the best hour) take the whole-window index; every
      index is clipped to [0, :data:`PV_INDEX_CAP` × the whole-window index]. The Open-Meteo
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
        self._fit = history.fit
        hourly = history.hourly_history(pd.Series(s.load_kw, index=s.index))
        self.hourly_load = hourly
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
        self._key = -1
        self._load_table: np.ndarray | None = None
        self._pv_index: np.ndarray | None = None
        self.refits = 0
        self.fit_s = 0.0
        self.degraded_load = 0  # re-plans on the default load profile
        self.fallback_pv = 0  # re-plans on the clear-sky fallback

    def visible_end(self, t: int) -> int:
        """One past the last slot whose price is published at slot ``t``."""
        return int(self._visible[t])

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
        past = self.hourly_load.iloc[max(0, nh - (self.window_days + 1) * 24):nh].dropna()
        self._model = None
        self._load_table = None
        if len(past) >= self.min_days * 24:
            model = self._fit(past, self.cfg.site.tz, self.window_days)
            self._model = model
            self._load_table = model.table_kw()
            self.refits += 1
        self.fit_s += time.perf_counter() - t0
        # PV: clear-sky index per local hour over the last days before this hour
        hs = int(self._hour_slot[t])
        per_day = int(round(86400 / self.series.slot_s))
        w = slice(max(0, hs - self.pv_days * per_day), hs)
        cs = self.clearsky_kw[w]
        total_cs = float(cs.sum())
        self._pv_index = None
        if total_cs > 1e-9:
            pv = self.series.pv_kw[w]
            hours = self.hour[w]
            cs_h = np.bincount(hours, weights=cs, minlength=24)
            pv_h = np.bincount(hours, weights=pv, minlength=24)
            whole = float(pv.sum()) / total_cs
            k = np.full(24, whole)
            ok = cs_h >= PV_INDEX_MIN_SHARE * cs_h.max()
            k[ok] = pv_h[ok] / cs_h[ok]
            self._pv_index = np.clip(k, 0.0, PV_INDEX_CAP * whole)

    def forecast(self, t: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """PV and load forecasts [kW] for slots ``t .. t+m-1`` made at slot ``t``."""
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
        """Refits and fallbacks."""
        return {"load_refits": self.refits, "load_fit_s": round(self.fit_s, 3),
                "replans_default_load": self.degraded_load,
                "replans_clearsky_pv_fallback": self.fallback_pv,
                "load_safety_margin_pct": round(self.load_margin * 100, 6),
                "pv_confidence_pct": round(self.pv_confidence * 100, 6),
                "pv_index_days": self.pv_days}

    def past_day_forecasts(self, t: int, days: int) -> list[tuple[int, int, float, float]]:
        """What this forecaster said at the start of each of the ``days`` local days before
        slot ``t``'s day about that day: ``(start, stop, pv_kwh, load_kwh)`` per day (slots
        ``start .. stop - 1``), oldest first — the error history of a run that starts at
        ``t`` (each forecast sees only the history before its own day; the refit state moves
        back to ``t`` on the next :meth:`forecast`)."""
        codes = self._day_codes()
        day = int(codes[t])
        h = self.series.slot_s / 3600.0
        out = []
        for d in range(max(0, day - days), day):
            start = int(np.searchsorted(codes, d, side="left"))
            stop = int(np.searchsorted(codes, d, side="right"))
            if start == 0:
                continue  # no history before the data's first day
            pv, load = self.forecast(start, stop - start)
            out.append((start, stop, float(pv.sum() * h), float(load.sum() * h)))
        return out

    def _day_codes(self) -> np.ndarray:
        """The local day of every slot (0, 1, ... from the first)."""
        if getattr(self, "_days", None) is None:
            local = self.series.index.tz_convert(self.cfg.site.tz)
            self._days = np.unique(local.date, return_inverse=True)[1]
        return self._days
