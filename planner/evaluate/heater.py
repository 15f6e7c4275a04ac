"""The water heater in the backtest (issue 13): what it takes per slot and its two baselines.

* **The heater** (:class:`Heater`): the physics of one slot without a tank — the element
  takes what it is asked for, at most ``power_kw``, only inside a heater day's period
  (``window`` + ``defer_up_to_hours``, read on the local wall clock as the planner reads it)
  and never more than the day's energy still missing (its thermostat cuts off when the
  water is hot). What it took since the start of the current day's period is the
  ``delivered_kwh`` the planner gets at every re-plan, as production integrates it from the
  heater's measured power (:mod:`planner.plan.heater`).
* **The heater's baselines** (house planned by Helios alone, the heater part of the load):
  ``fixed``: a timer switches the element on at a fixed local time every day
  (``--heater-fixed``, default 02:00) at ``power_kw`` until the day's energy is in;
  ``thermostat``: no control, the element reheats as hot water is drawn: the day's energy
  spread over a draw profile by local hour (:data:`THERMOSTAT_PCT`, morning and evening
  draws), each hour's energy as the hour's mean power: without a tank model the reheating
  follows the draws (a thermostat at the start of the window would be a timer at the
  window's start, i.e. the ``fixed`` baseline again). Both ignore ``window``: they are what
  happens without Helios.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from planner.config import HeliosConfig
from planner.config.devices import parse_window
from planner.core.errors import DataError
from planner.evaluate.physics import Series, Trace
from planner.optimize.components.deferrable import LoadSpec, day_of_slots
from planner.optimize.components.water_heater import heater_spec

__all__ = ["RULES", "STRATEGIES", "THERMOSTAT_PCT", "Heater", "Heaters", "compare",
           "fixed_kw", "thermostat_kw", "with_load"]

#: thermostat-only: share of the day's reheating per local hour 0..23 [%] (a morning and an
#: evening draw, as bench/heater_year.py)
THERMOSTAT_PCT = (0,) * 6 + (10, 20, 10) + (0,) * 9 + (10, 20, 20, 10) + (0,) * 2
#: the heater's baselines, and their strategy names in the backtest
RULES = ("fixed", "thermostat")
STRATEGIES = ("helios_heater_fixed", "helios_heater_thermostat")
#: a heater day counts as met within this of its energy [kWh]
MET_TOL_KWH = 1e-3


def _local_days(index: pd.DatetimeIndex, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """(local day number, local minute of day) of each slot."""
    naive = index.tz_convert(tz).tz_localize(None)
    return (naive.to_numpy().astype("datetime64[D]").astype(np.int64),
            np.asarray(naive.hour * 60 + naive.minute))


def fixed_kw(index: pd.DatetimeIndex, slot_s: int, tz: str, at: str, power_kw: float,
             daily_kwh: float) -> np.ndarray:
    """A timer: from local time ``at`` (``"HH:MM"``) of every local day at ``power_kw`` until
    ``daily_kwh`` is in (the last slot partly; past midnight it goes on into the next day's
    slots, which then start their own day at ``at``). [kW]"""
    start_min, _ = parse_window({"from": at, "to": at})
    dt = slot_s / 3600.0
    days, minute = _local_days(index, tz)
    out = np.zeros(len(index))
    left, current = 0.0, None
    for t in range(len(index)):
        if minute[t] + slot_s / 60 > start_min and days[t] != current:  # (DST: the next)
            current, left = days[t], daily_kwh
        if left > 1e-12:
            out[t] = min(power_kw, left / dt)
            left -= out[t] * dt
    return out


def thermostat_kw(index: pd.DatetimeIndex, tz: str, daily_kwh: float,
                  share_pct=THERMOSTAT_PCT) -> np.ndarray:
    """The thermostat alone: ``daily_kwh`` per local day along ``share_pct`` (per local hour,
    normalised), as the hour's mean power. [kW]"""
    share = np.asarray(share_pct, dtype=float)
    if share.shape != (24,) or (share < 0).any() or share.sum() <= 0:
        raise DataError("water_heater draw profile: expected 24 shares >= 0, not all 0")
    hours = np.asarray(index.tz_convert(tz).hour)
    return daily_kwh * (share / share.sum())[hours]  # kWh per hour = kW


@dataclass
class Heater:
    """The heater's state through a run; :meth:`step` is one slot of its physics."""

    spec: LoadSpec
    day: np.ndarray  # each slot's heater day (-1: outside every period)
    dt_h: float
    taken: dict[int, float] = field(default_factory=dict)  # kWh per heater day

    @classmethod
    def make(cls, spec: LoadSpec, series: Series) -> Heater:
        day, _today, _planned = day_of_slots(series.index, series.slot_s, spec)
        return cls(spec, day, series.dt_h)

    def delivered_kwh(self, t: int) -> float:
        """Energy taken since the start of slot ``t``'s heater day (0 outside). [kWh]"""
        d = int(self.day[t])
        return self.taken.get(d, 0.0) if d >= 0 else 0.0

    def step(self, t: int, want_kw: float) -> float:
        """One slot: the power the element draws from the house. [kW]"""
        d = int(self.day[t])
        if d < 0 or want_kw <= 0:
            return 0.0
        left = max(0.0, self.spec.need_kwh - self.taken.get(d, 0.0))
        kw = float(min(want_kw, self.spec.power_kw, left / self.dt_h))
        if kw <= 1e-9:
            return 0.0
        self.taken[d] = self.taken.get(d, 0.0) + kw * self.dt_h
        return kw

    def summary(self, first_day: int, last_day: int) -> dict:
        """Heater days whose whole period lies in the run (``first_day..last_day``): count,
        met, the energy missing."""
        days = range(first_day, last_day + 1)
        short = [max(0.0, self.spec.need_kwh - self.taken.get(d, 0.0)) for d in days]
        return {"heater_days": len(short),
                "heater_days_met": sum(s <= MET_TOL_KWH for s in short),
                "heater_shortfall_kwh": float(sum(short))}


def with_load(series: Series, start: int, *kws: np.ndarray | None) -> Series:
    """``series`` with devices' power (slots ``start``…) added to the load."""
    kws = tuple(k for k in kws if k is not None)
    if not kws:
        return series
    load = series.load_kw.copy()
    for kw in kws:
        load[start:start + len(kw)] += kw
    return replace(series, load_kw=load)


@dataclass
class Heaters:
    """The heater of one backtest: its spec, and the two baselines' power per slot."""

    spec: LoadSpec
    series: Series
    start: int
    stop: int
    fixed_at: str
    kw: dict[str, np.ndarray] = field(default_factory=dict)
    _series: dict[str, Series] = field(default_factory=dict)

    @classmethod
    def make(cls, cfg: HeliosConfig, series: Series, start: int, stop: int,
             options: Any) -> Heaters:
        """From ``cfg.water_heater`` and ``options.heater_fixed`` (``"HH:MM"``)."""
        wh = cfg.water_heater
        if wh.tank is not None:
            raise DataError("water_heater.tank: the backtest simulates the heater without a "
                            "tank (daily energy in its window); remove tank: for the backtest")
        spec = heater_spec(wh, cfg.site.timezone)
        out = cls(spec, series, start, stop, options.heater_fixed)
        w = series.index[start:stop]
        try:
            out.kw["fixed"] = fixed_kw(w, series.slot_s, spec.tz, options.heater_fixed,
                                       spec.power_kw, spec.need_kwh)
        except ValueError as exc:
            raise DataError(f"--heater-fixed: {exc}") from None
        out.kw["thermostat"] = thermostat_kw(w, spec.tz, spec.need_kwh)
        return out

    def heater(self) -> Heater:
        """A fresh heater (nothing taken yet)."""
        return Heater.make(self.spec, self.series)

    def series_with(self, series: Series, rule: str) -> Series:
        """``series`` with the heater run by ``rule`` in the load (kept)."""
        found = self._series.get(rule)
        if found is None:
            found = self._series[rule] = with_load(series, self.start, self.kw[rule])
        return found

    def days(self) -> tuple[int, int]:
        """The first and last heater day whose whole period lies in ``[start, stop)``."""
        day = self.heater().day
        inside = day[self.start:self.stop]
        ds = np.unique(inside[inside >= 0])
        before = set(day[:self.start][day[:self.start] >= 0].tolist())
        after = set(day[self.stop:][day[self.stop:] >= 0].tolist())
        whole = [int(d) for d in ds if d not in before and d not in after]
        return (whole[0], whole[-1]) if whole else (0, -1)

    def metrics(self, trace: Trace, start: int) -> dict:
        """The heater's figures of one trace: energy, its cost at the buy price, per local
        day (min and max), and the days met (Helios: per heater day)."""
        kw = trace.heater_kw if trace.heater_kw is not None else np.zeros(len(trace.index))
        dt = self.series.dt_h
        buy = self.series.buy_eur_per_kwh[start:start + len(kw)]
        days, _ = _local_days(trace.index, self.spec.tz)
        per_day = pd.Series(kw * dt).groupby(days).sum()
        out = {"heater_kwh": float(kw.sum() * dt),
               "heater_cost_at_buy_eur": float((kw * buy).sum() * dt),
               "heater_day_min_kwh": float(per_day.min()) if len(per_day) else 0.0,
               "heater_day_max_kwh": float(per_day.max()) if len(per_day) else 0.0,
               **(trace.info.get("water_heater") or {})}
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


def compare(table: dict[str, dict]) -> dict:
    """Helios (house and heater in one plan) vs the house planned alone with the heater on a
    timer or on its thermostat: EUR saved (net cost), and the heater's own energy cost at the
    buy price under each."""
    h = table["helios"]
    out = {}
    for name, rule in zip(STRATEGIES, RULES, strict=True):
        if name in table:
            out[f"savings_vs_{rule}_eur"] = round(table[name]["net_cost_eur"]
                                                  - h["net_cost_eur"], 6)
            out[f"heater_cost_{rule}_eur"] = table[name]["heater_cost_at_buy_eur"]
            out[f"heater_kwh_{rule}"] = table[name]["heater_kwh"]
    out["heater_cost_helios_eur"] = h["heater_cost_at_buy_eur"]
    out["heater_kwh_helios"] = h["heater_kwh"]
    return out
