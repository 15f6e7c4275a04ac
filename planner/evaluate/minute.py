r"""1-minute truth inside the plan's slots: minute data and the physics stepped per minute.

The plan works on slot averages (15 min or 1 h); the meter and the executor do not. A kettle
draws 2 kW for three minutes and a cloud halves the PV for five; averaged over the slot both
vanish, and a backtest judged on slot averages credits a plan with self-consumption it cannot
have had (Pinter et al. 2025, arXiv 2510.25373: 15–60-min averages overstated MPC's advantage
over a rule by 69 %). This module gives the backtest
(:func:`planner.evaluate.loop.run_backtest`,
``Options.minute``) the truth at the meter's resolution:

* **Minute data** (:class:`MinuteData`, one row of ``k = slot_s / 60`` minutes per slot):
  recorded 1-minute CSVs (:func:`read_minute_csv`, the planner's CSV format ``ts_utc`` +
  ``pv_kw`` / ``load_kw``) or seeded synthetic minutes on top of the slot profile
  (:func:`synthetic_load`, :func:`synthetic_pv`), which keep every slot's mean. The slot
  series the planner and the slot-level judge see is then *conformed* to the minute means
  (:meth:`MinuteData.conform`; a no-op up to rounding for synthetic data), so both
  resolutions judge the same energy.
* **The physics per minute** (:class:`MinuteSteps`, the
  :class:`planner.evaluate.physics.FineSteps` hook):
  :func:`planner.evaluate.physics.step` once per minute on a
  per-minute
  :class:`~planner.evaluate.physics.Home` (``slot_s=60``) with the minute's PV and load, the
  control law recomputed every minute (the executor does it every 10 s on live readings). Import
  and export are averaged separately, so both can be non-zero in one slot; with the prices
  constant inside a slot, the per-slot bill (buy·import − sell·export) *is* the per-minute
  settlement.
* **The baselines as minute rules** (:class:`MinuteRule`): self-consumption and the price
  rule act on the minute's net load, as a real inverter's rule does.
* **Perfect foresight at minute level** (:func:`perfect_foresight_minutes`): the
  perfect-foresight LP on the minute data, solved per day with the slot-level optimum's SoC
  pinned at the day boundaries; see its docstring for why this is the fair limit.

Why not ``richardsonpy`` or ``rampdemand``: both are on PyPI, but they synthesise a whole
household from occupancy statistics, not minutes under a given profile: their output would
have to be rescaled slot by slot to keep the recorded means, which turns their appliance
powers into arbitrary multiples, and they would add a dependency to the planner for a
backtest option. :func:`synthetic_load` is a small, documented generator of the same kind of
appliance pulses that keeps each slot's energy exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from executor.control import intent_battery, power_to_target
from executor.schedule import intent_band
from planner.core import timegrid
from planner.core.errors import DataError
from planner.evaluate.forecast import ar1
from planner.evaluate.metrics import compare, energy_residual_kwh, metrics
from planner.evaluate.perfect import Terms, perfect_foresight
from planner.evaluate.physics import TOL, Home, PlanIntent, Series, Trace, simulate, step
from planner.evaluate.strategies import NoBattery, PriceRule, Replay, SelfConsumption
from planner.providers.files.csv import read_series

MINUTE_S = 60

#: appliance pulses of :func:`synthetic_load`: (name, power kW, shortest, longest run min)
APPLIANCES = (
    ("fridge", 0.1, 5.0, 15.0),
    ("lighting/electronics", 0.3, 5.0, 30.0),
    ("kettle", 2.0, 2.0, 4.0),
    ("hob/oven element", 2.5, 3.0, 8.0),
    ("washing machine heater", 2.2, 8.0, 15.0),
    ("heat pump compressor", 2.5, 6.0, 15.0),
)
#: share of a slot's load above the always-on floor that is spread evenly (not pulses)
LOAD_SMOOTH_SHARE = 0.25
#: the always-on floor is this quantile of the period's slot loads (capped at each slot's mean)
LOAD_FLOOR_QUANTILE = 0.05
#: a pulse is drawn only from appliances up to this multiple of the slot's excess load
LOAD_PULSE_RATIO = 3.0
#: days either side of a slot whose PV at the same time of day make its clear-sky-like cap
PV_CLEAR_DAYS = 15
#: correlation time of the 1-minute cloud pattern [min]
PV_CLOUD_TAU_MIN = 4.0
#: log-amplitude of the cloud pattern at a clear-sky index of 0.5 (0 at 0 and 1)
PV_CLOUD_SIGMA = 1.6
#: the minute-level perfect-foresight LPs (:func:`perfect_foresight_minutes`): each keeps
#: this much [h] ...
PF_WINDOW_H = 24.0
#: ... of a window solved this much [h] further, pinned at its end
PF_LOOKAHEAD_H = 12.0


# ============================================================================================
# minute data


@dataclass(frozen=True)
class MinuteData:
    """PV and load per minute for the slots ``[start, start + n)`` of a series.

    ``pv_kw`` and ``load_kw`` have shape ``(n, k)``, ``k = slot_s / 60``; ``source`` says
    where each came from (for the summary).
    """

    start: int
    slot_s: int
    pv_kw: np.ndarray
    load_kw: np.ndarray
    source: dict

    @property
    def n(self) -> int:
        """Slots covered."""
        return self.pv_kw.shape[0]

    @property
    def k(self) -> int:
        """Minutes per slot."""
        return self.pv_kw.shape[1]

    def scaled(self, pv_scale: float) -> MinuteData:
        """The same minutes with PV × ``pv_scale`` (a what-if scenario)."""
        return replace(self, pv_kw=self.pv_kw * pv_scale) if pv_scale != 1.0 else self

    def conform(self, series: Series) -> Series:
        """``series`` with PV and load of the covered slots set to the minute means."""
        w = slice(self.start, self.start + self.n)
        pv = series.pv_kw.copy()
        load = series.load_kw.copy()
        pv[w] = self.pv_kw.mean(axis=1)
        load[w] = self.load_kw.mean(axis=1)
        return replace(series, pv_kw=pv, load_kw=load)


def _minutes_per_slot(slot_s: int) -> int:
    if slot_s % MINUTE_S or slot_s < MINUTE_S:
        raise DataError(f"minute truth needs a slot length in whole minutes, got {slot_s} s")
    return slot_s // MINUTE_S


def synthetic_load(load_kw: np.ndarray, slot_s: int, rng: np.random.Generator) -> np.ndarray:
    """Seeded 1-minute household load under slot means ``load_kw``; each slot's mean kept.

    Per slot with mean ``L`` over ``k`` minutes: an always-on floor ``f`` (the
    :data:`LOAD_FLOOR_QUANTILE` of the slot loads, at most ``L``) in every minute; of the
    energy above it, :data:`LOAD_SMOOTH_SHARE` is spread evenly and the rest is placed as
    rectangular appliance pulses (:data:`APPLIANCES`: kettle, hob, washing-machine heater,
    heat-pump compressor, lighting, fridge) at random start times, each drawn among the
    appliances of at most :data:`LOAD_PULSE_RATIO` × the slot's excess ``L − f``, so a night
    slot gets fridge-sized pulses and an evening slot kettle-sized ones. A pulse that would
    overshoot the slot's remaining energy is cut short. The pulses' energy adds up to the
    slot's exactly, so the mean is kept to rounding. [kW], shape ``(n, k)``.
    """
    k = _minutes_per_slot(slot_s)
    load_kw = np.asarray(load_kw, dtype=float)
    n = len(load_kw)
    floor = float(np.quantile(load_kw, LOAD_FLOOR_QUANTILE)) if n else 0.0
    f = np.minimum(load_kw, floor)
    out = np.repeat(f[:, None], k, axis=1)
    excess = load_kw - f
    out += (LOAD_SMOOTH_SHARE * excess)[:, None]
    powers = np.array([a[1] for a in APPLIANCES])
    short = np.array([a[2] for a in APPLIANCES])
    long_ = np.array([a[3] for a in APPLIANCES])
    minutes = np.arange(k, dtype=float)
    for i in np.flatnonzero(excess > 1e-12):
        left = (1.0 - LOAD_SMOOTH_SHARE) * excess[i] * k  # kW·min still to place
        allowed = np.flatnonzero(powers <= max(LOAD_PULSE_RATIO * excess[i], powers.min()))
        row = out[i]
        while left > 1e-12:
            a = allowed[rng.integers(len(allowed))]
            p = powers[a]
            d = min(rng.uniform(short[a], long_[a]), float(k), left / p)
            s = rng.uniform(0.0, k - d)
            row += p * np.clip(np.minimum(minutes + 1.0, s + d) - np.maximum(minutes, s), 0.0,
                               1.0)
            left -= p * d
    return out


def _clear_cap(pv_kw: np.ndarray, index: pd.DatetimeIndex, slot_s: int) -> np.ndarray:
    """A clear-sky-like envelope per slot: the highest PV at that time of day within
    ± :data:`PV_CLEAR_DAYS` days (the data's own clear days). [kW]"""
    s = pd.Series(np.asarray(pv_kw, dtype=float), index=index)
    key = ((index - index.normalize()).total_seconds() // slot_s).astype(int)
    window = 2 * PV_CLEAR_DAYS + 1
    cap = s.groupby(np.asarray(key)).transform(
        lambda x: x.rolling(window, center=True, min_periods=1).max())
    return np.maximum(cap.to_numpy(), s.to_numpy())


def minute_pv_cap(pv_kw: np.ndarray, index: pd.DatetimeIndex, slot_s: int,
                  cap_kw: np.ndarray | None = None) -> np.ndarray:
    """The clear-sky-like cap of :func:`synthetic_pv` per minute, shape ``(n, k)``. [kW]

    The slot envelope (:func:`_clear_cap`, or ``cap_kw``) interpolated linearly between slot
    centres, raised by a factor in a slot where its mean would be below the slot's PV (at
    the envelope's peak, where the interpolation cuts the corner).
    """
    k = _minutes_per_slot(slot_s)
    n = len(pv_kw)
    cap_slot = _clear_cap(pv_kw, index, slot_s) if cap_kw is None else np.asarray(cap_kw)
    centres = np.arange(n) * k + k / 2.0
    cap = np.interp(np.arange(n * k) + 0.5, centres, cap_slot).reshape(n, k)
    mean_cap = cap.mean(axis=1)
    short = pv_kw > mean_cap
    flat = short & (mean_cap <= 1e-12)
    cap[flat] = pv_kw[flat, None]
    lift = short & ~flat
    cap[lift] *= (pv_kw[lift] / mean_cap[lift])[:, None]
    return cap


def synthetic_pv(pv_kw: np.ndarray, index: pd.DatetimeIndex, slot_s: int,
                 rng: np.random.Generator, cap_kw: np.ndarray | None = None) -> np.ndarray:
    """Seeded 1-minute PV with cloud variability under slot means ``pv_kw``; means kept.

    The cap is clear-sky-like: per slot the highest PV at that time of day within
    ± :data:`PV_CLEAR_DAYS` days (``cap_kw`` overrides it), interpolated linearly between
    slot centres to the minutes and raised where needed so that its slot mean is at least
    the slot's PV. The minute PV is ``cap × min(1, λ·w)``: ``w = exp(σ·z)`` with ``z`` a
    unit AR(1) series (correlation time :data:`PV_CLOUD_TAU_MIN` min) and
    ``σ = PV_CLOUD_SIGMA · 4κ(1 − κ)`` for the slot's clear-sky index ``κ = pv / mean cap``
    (broken clouds vary most, clear and overcast slots little); ``λ`` is found per slot by
    bisection so that the slot mean is the slot's PV. So PV never exceeds the cap and a clear
    slot follows it. [kW], shape ``(n, k)``.
    """
    k = _minutes_per_slot(slot_s)
    pv_kw = np.asarray(pv_kw, dtype=float)
    n = len(pv_kw)
    if n == 0:
        return np.zeros((0, k))
    cap = minute_pv_cap(pv_kw, index, slot_s, cap_kw)
    mean_cap = cap.mean(axis=1)
    kappa = np.clip(np.divide(pv_kw, mean_cap, out=np.zeros(n), where=mean_cap > 0), 0, 1)
    sigma = PV_CLOUD_SIGMA * 4.0 * kappa * (1.0 - kappa)
    z = ar1(rng, n * k, MINUTE_S, PV_CLOUD_TAU_MIN * MINUTE_S).reshape(n, k)
    w = np.exp(sigma[:, None] * z)
    w /= w.mean(axis=1, keepdims=True)
    # bisection on log λ: mean(cap·min(1, λw)) rises from 0 to mean(cap) >= pv
    lo = np.full(n, -30.0)
    hi = np.full(n, 30.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        m = (cap * np.minimum(1.0, np.exp(mid)[:, None] * w)).mean(axis=1)
        below = m < pv_kw
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    out = cap * np.minimum(1.0, np.exp(hi)[:, None] * w)
    got = out.mean(axis=1)
    fix = got > 0
    out[fix] *= (pv_kw[fix] / got[fix])[:, None]  # the last rounding: a factor 1 ± 1e-12
    out[pv_kw <= 0] = 0.0
    return np.minimum(out, cap)


def read_minute_csv(path: str, column: str, index: pd.DatetimeIndex, slot_s: int) -> np.ndarray:
    """A recorded 1-minute CSV (``ts_utc`` + ``column``) on the minutes of the slots
    ``index``; shape ``(len(index), k)``. [kW]

    Raises
    ------
    ProviderConfigError, DataError, MissingSlotsError
        Unreadable file, not 1-minute data, or a minute of the period not covered.
    """
    k = _minutes_per_slot(slot_s)
    what = f"minute {column.removesuffix('_kw')} (csv)"
    ts = read_series(path, column, what, True)
    if ts.resolution_s != MINUTE_S:
        raise DataError(f"{what}: {path}: resolution {ts.resolution_s} s; expected 60 s")
    minutes = timegrid.make_index(index[0], len(index) * k, MINUTE_S)
    values = timegrid.to_slot_grid(ts.values, MINUTE_S, minutes, MINUTE_S, "mean", what)
    return np.asarray(values, dtype=float).reshape(len(index), k)


def minute_data(series: Series, start: int, stop: int, seed: int = 0,
                pv: np.ndarray | str | None = "synthetic",
                load: np.ndarray | str | None = "synthetic",
                sources: dict | None = None) -> MinuteData:
    """Minute data for slots ``[start, stop)`` of ``series``.

    ``pv`` and ``load``: ``"synthetic"`` (:func:`synthetic_pv`, :func:`synthetic_load`, from
    ``seed``), ``None`` (the slot value held flat over its minutes) or recorded minutes of
    shape ``(stop − start, k)`` (:func:`read_minute_csv`).
    """
    k = _minutes_per_slot(series.slot_s)
    w = slice(start, stop)
    rng_load, rng_pv = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    out = {}
    src = dict(sources or {})
    for name, given in (("pv", pv), ("load", load)):
        slot = getattr(series, f"{name}_kw")[w]
        if isinstance(given, str) and given == "synthetic":
            if name == "load":
                arr = synthetic_load(slot, series.slot_s, rng_load)
            else:
                arr = synthetic_pv(slot, series.index[w], series.slot_s, rng_pv)
            src.setdefault(name, f"synthetic (seed {seed})")
        elif given is None:
            arr = np.repeat(slot[:, None], k, axis=1)
            src.setdefault(name, "flat (slot value held)")
        else:
            arr = np.asarray(given, dtype=float)
            if arr.shape != (stop - start, k):
                raise DataError(f"minute {name}: expected shape {(stop - start, k)}, got "
                                f"{arr.shape}")
            src.setdefault(name, "recorded")
        out[name] = arr
    return MinuteData(start, series.slot_s, out["pv"], out["load"], src)


# ============================================================================================
# the physics per minute


class RuleIntent(NamedTuple):
    """A baseline's per-minute law (:class:`MinuteRule`): an intent with the baseline's
    reserve, below which it never discharges. Its first four fields are an intent tuple."""

    intent: str
    low: float
    high: float
    target_kwh: float
    reserve_kwh: float


class MinuteSteps:
    """:class:`planner.evaluate.physics.FineSteps`: every slot in 1-minute steps of
    :func:`planner.evaluate.physics.step`, with the control law recomputed every minute.

    * ``intent`` (4-tuple ``(intent, low, high, target_kwh)``): :func:`step` applies
      :func:`executor.control.intent_battery` on the minute's net load, with
      ``power_to_target`` over one minute towards the slot's planned end SoC — the time to
      the next decision, as the executor computes it per tick.
    * a :class:`RuleIntent` (:class:`MinuteRule`): the same law, and never a discharge
      below ``reserve_kwh`` (the baselines' reserve).
    * ``grid_setpoint_kw``: the grid is held per minute, the battery takes ``net − G``
      (``guard`` as in :func:`step`).
    * otherwise the battery setpoint is held for the whole slot.

    Returns :func:`step`'s tuple as slot averages (import and export averaged separately)
    and the SoC at the slot end. ``record=True`` keeps every minute's row in ``rows``.
    """

    def __init__(self, data: MinuteData, series: Series, record: bool = False):
        self.data = data
        self.start = data.start
        self.k = data.k
        self.pv = data.pv_kw.tolist()
        self.load = data.load_kw.tolist()
        self.ok = series.grid_ok.tolist()
        self.sell = series.sell_eur_per_kwh.tolist()
        self._homes: dict[Home, Home] = {}
        self.record = record
        self.rows: list[tuple] = []

    def minute_home(self, home: Home) -> Home:
        """``home`` with 1-minute steps."""
        found = self._homes.get(home)
        if found is None:
            found = self._homes[home] = replace(home, slot_s=MINUTE_S)
        return found

    def step_slot(self, t: int, home: Home, soc_kwh: float, setpoint_kw: float,
                  pv_cap_kw: float, grid_setpoint_kw: float | None, guard: bool,
                  intent: tuple | None) -> tuple[float, ...]:
        """Slot ``t`` in 1-minute steps; the slot averages in :func:`step`'s order."""
        j = t - self.start
        if not 0 <= j < self.data.n:
            raise DataError(f"minute data cover slots {self.start}..{self.start + self.data.n}"
                            f", not {t}")
        hm = self.minute_home(home)
        dt = hm.dt_h
        eta_c, eta_d = hm.charge_efficiency, hm.discharge_efficiency
        pv, load, ok, sell = self.pv[j], self.load[j], self.ok[t], self.sell[t]
        rule = isinstance(intent, RuleIntent)
        law = None if rule else intent
        imp = exp = ch = dis = used = uns = 0.0
        e = soc_kwh
        for m in range(self.k):
            sp = setpoint_kw
            if rule:
                name, low, high, target, reserve = intent
                need = load[m] - (pv[m] if pv_cap_kw >= pv[m] else pv_cap_kw)
                sp = intent_battery(name, low, high, need,
                                    power_to_target(e, target, dt, eta_c, eta_d))
                if sp > 0.0:
                    sp = min(sp, max(e - reserve, 0.0) * eta_d / dt)
            row = step(hm, e, sp, pv_cap_kw, pv[m], load[m], ok, sell, grid_setpoint_kw,
                           guard, law)
            if self.record:
                self.rows.append((t, m, pv[m], load[m], *row))
            imp += row[0]
            exp += row[1]
            ch += row[2]
            dis += row[3]
            used += row[4]
            uns += row[5]
            e = row[6]
        k = self.k
        return imp / k, exp / k, ch / k, dis / k, used / k, uns / k, e


class MinuteRule:
    """A baseline (:class:`~planner.evaluate.strategies.SelfConsumption`,
    :class:`~planner.evaluate.strategies.PriceRule`) as a rule on the minute's readings.

    It decides like the wrapped strategy and also gives :class:`MinuteSteps` the per-minute
    law as a :class:`RuleIntent`:
    self-consumption is ``self_consume`` (the battery covers the minute's net load, never below
    the reserve), the price rule's cheap slots are ``charge_grid`` at full power up to the
    maximum SoC, its dear slots self-consumption and the others ``hold`` (surplus PV charges,
    nothing discharges). At slot level the same rules act on the slot's averages.
    """

    control = "intent"

    def __init__(self, base, home: Home):
        self.base = base
        self.name = base.name
        self.home = home
        self.intent: tuple = ()

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """The wrapped strategy's decision; the minute law in ``intent``."""
        out = self.base.decide(t, soc_kwh)
        h = self.home
        ch, dis = -h.max_charge_kw, h.max_discharge_kw
        if isinstance(self.base, PriceRule) and self.base.charge[t]:
            self.intent = RuleIntent("charge_grid", ch, ch, h.max_kwh, h.reserve_kwh)
        elif isinstance(self.base, PriceRule) and not self.base.dear[t]:
            self.intent = RuleIntent("hold", ch, 0.0, soc_kwh, h.reserve_kwh)
        else:
            self.intent = RuleIntent("self_consume", ch, dis, soc_kwh, h.reserve_kwh)
        return out


class PlanIntents:
    """A fixed plan (a trace's flows) followed by intent, like the executor would."""

    control = "intent"

    def __init__(self, name: str, plan: Trace, start: int, home: Home,
                 pv_cap_kw: np.ndarray | None = None):
        self.name = name
        self.start = start
        self.plan = plan
        self.home = home
        n = len(plan.index)
        self.cap = (np.full(n, math.inf) if pv_cap_kw is None else np.asarray(pv_cap_kw))
        self.intent: tuple = ()

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """The plan's intent for slot ``t`` (target: its planned end SoC)."""
        p, j, h = self.plan, t - self.start, self.home
        self.intent = PlanIntent(*intent_band(
            p.battery_charge_kw[j], p.battery_discharge_kw[j], p.grid_import_kw[j],
            p.grid_export_kw[j], h.max_charge_kw, h.max_discharge_kw), float(p.soc_kwh[j]),
            float(p.grid_import_kw[j] - p.grid_export_kw[j]))
        return (float(p.battery_discharge_kw[j] - p.battery_charge_kw[j]), float(self.cap[j]),
                None)


# ============================================================================================
# perfect foresight at minute level


def minute_series(series: Series, data: MinuteData) -> Series:
    """The covered slots as a 1-minute :class:`~planner.evaluate.physics.Series` (prices and grid
    held per slot, PV and load per minute)."""
    k = data.k
    w = slice(data.start, data.start + data.n)
    first = series.index[data.start]
    index = pd.date_range(first, periods=data.n * k, freq=f"{MINUTE_S}s")
    rep = lambda a: np.repeat(a[w], k)  # noqa: E731
    return Series.build(index, MINUTE_S, rep(series.spot_eur_per_kwh),
                            rep(series.buy_eur_per_kwh), rep(series.sell_eur_per_kwh),
                            data.pv_kw.ravel(), data.load_kw.ravel(),
                            ~rep(series.grid_ok))


def to_slots(trace: Trace, k: int, index: pd.DatetimeIndex, name: str) -> Trace:
    """A 1-minute trace as slot averages (SoC at each slot's end)."""
    n = len(trace.index) // k
    avg = lambda a: np.asarray(a).reshape(n, k).mean(axis=1)  # noqa: E731
    return Trace(name, index, trace.soc_start_kwh, avg(trace.grid_import_kw),
                     avg(trace.grid_export_kw), avg(trace.battery_charge_kw),
                     avg(trace.battery_discharge_kw), avg(trace.pv_used_kw),
                     avg(trace.unserved_kw), np.asarray(trace.soc_kwh)[k - 1::k].copy(),
                     dict(trace.info))


def perfect_foresight_minutes(home: Home, series: Series, data: MinuteData,
                              soc_start_kwh: float, terms: Terms, slot_pf: Trace,
                              chunk_h: float = PF_WINDOW_H,
                              lookahead_h: float = PF_LOOKAHEAD_H) -> Trace:
    """The perfect-foresight limit at the meter's resolution, as slot averages.

    The fair limit at minute level knows every minute: it may charge in the minute a cloud
    passes and discharge in the minute the kettle runs, import in one minute and export in
    the next, as the meter settles them. Replaying the slot-level optimum through the minute
    physics (reported too, ``perfect_foresight_slot_plan``) is *not* a limit: a plan of slot
    averages cannot follow the minutes, so a minute rule can beat it. So this solves the
    planner's LP (:func:`planner.evaluate.perfect.perfect_foresight`) on the 1-minute data. A year
    at 1 minute (≈4 M columns) is too big for one LP, so it is solved in rolling windows:
    each LP covers ``chunk_h + lookahead_h`` hours from the SoC reached so far, with the
    stored energy at its end pinned to the slot-level optimum's SoC at that instant (a soft
    target: every kWh above or below costs ≥ half the soft-target penalty, far above any
    energy price, so the pin holds wherever it is feasible), and only its first ``chunk_h``
    hours are kept; the last LP takes the period's own terms. That is a feasible minute
    schedule with every minute known, optimal up to the pins: a limit that can only be
    slightly conservative. The lookahead matters: on three DE 2016 days (May, synthetic
    minutes) pinned windows without it (6 h or 24 h) found 1.4 % less saving than one LP
    over the three days, because the minute optimum's SoC at midnight differs from the slot
    optimum's; with 24 h kept + 12 h ahead (:data:`PF_WINDOW_H`, :data:`PF_LOOKAHEAD_H`)
    the result equals the 3-day LP (to 2e-6 EUR), at ≈0.7 s a day (≈4 min a year).
    """
    k = data.k
    hm = replace(home, slot_s=MINUTE_S)
    ms = minute_series(series, data)
    n = data.n
    per = max(1, int(round(chunk_h * 3600 / series.slot_s)))
    parts = []
    e = soc_start_kwh
    problems = set()
    ahead = max(0, int(round(lookahead_h * 3600 / series.slot_s)))
    for a in range(0, n, per):
        b = min(n, a + per)
        z = min(n, b + ahead)  # solved to z, kept to b
        if z < n:
            # end exactly at the pin: below it costs the soft penalty W (less M), above it
            # M = W / 2 per kWh (a negative end value), both far above any energy price
            pin = float(slot_pf.soc_kwh[z - 1])
            t = replace(terms, end_value_eur_per_kwh=-terms.penalty_eur_per_kwh / 2,
                        final_kwh=pin, final_weight_eur_per_kwh=terms.penalty_eur_per_kwh)
        else:
            t = terms
        tr, _ = perfect_foresight(hm, ms, a * k, z * k, e, t)
        problems.add(tr.info.get("problem"))
        keep = (b - a) * k
        tr = replace(tr, **{f: getattr(tr, f)[:keep] for f in (
            "index", "grid_import_kw", "grid_export_kw", "battery_charge_kw",
            "battery_discharge_kw", "pv_used_kw", "unserved_kw", "soc_kwh")})
        parts.append(tr)
        e = tr.soc_end_kwh
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    whole = Trace("perfect_foresight", ms.index, soc_start_kwh, cat("grid_import_kw"),
                      cat("grid_export_kw"), cat("battery_charge_kw"),
                      cat("battery_discharge_kw"), cat("pv_used_kw"), cat("unserved_kw"),
                      cat("soc_kwh"),
                      {"problem": "+".join(sorted(p for p in problems if p)),
                       "windows": len(parts), "window_h": chunk_h, "lookahead_h": lookahead_h,
                       "resolution_s": MINUTE_S})
    index = series.index[data.start:data.start + n]
    return to_slots(whole, k, index, "perfect_foresight")


# ============================================================================================
# every strategy at minute truth


@dataclass
class MinuteResult:
    """Every strategy judged at 1-minute truth: slot-average traces, metrics, comparison."""

    traces: dict[str, Trace]
    metrics: dict[str, dict]
    comparison: dict
    info: dict

    def summary(self) -> dict:
        """JSON-ready: sources, the metrics, the comparison and each run's info."""
        return {**self.info, "strategies": self.metrics, "comparison": self.comparison,
                "runs": {name: tr.info for name, tr in self.traces.items()}}


#: the minute-level strategies after :data:`planner.evaluate.loop.STRATEGY_ORDER`
SLOT_PLAN_RUNS = ("perfect_foresight_slot_plan", "perfect_foresight_slot_plan_intent")


def judge(home: Home, series: Series, start: int, stop: int, soc_start_kwh: float,
          terms: Terms, slot_traces: dict[str, Trace], data: MinuteData,
          make_helios, timezone: str, progress=None) -> MinuteResult:
    """Helios, the baselines and perfect foresight, each run through :class:`MinuteSteps`.

    * ``helios``: a fresh closed loop (``make_helios()``): it plans on slot averages as
      always, re-plans from the SoC the minute physics left, and its executor applies the
      control law every minute.
    * ``no_battery``; ``self_consumption`` and ``price_rule`` as minute rules
      (:class:`MinuteRule`).
    * ``perfect_foresight``: :func:`perfect_foresight_minutes`, the limit at minute level;
      the ``share_of_perfect_foresight`` here is of *its* savings.
    * ``perfect_foresight_slot_plan``: the slot-level optimum replayed with its battery
      powers held per slot (``control="battery"``), and ``…_intent``: the same plan followed
      by intent (:class:`PlanIntents`). Not limits — what perfect *slot* foresight earns at
      the meter; ``share_of_slot_plan`` compares Helios with the better of the two.

    The bill is per minute (prices constant within a slot, import and export averaged
    separately). ``energy_residual_kwh`` per run checks conservation.
    """
    if data.start != start or data.n != stop - start:
        raise DataError(f"minute data cover slots {data.start}..{data.start + data.n}, the "
                        f"run {start}..{stop}")
    t0 = time.perf_counter()
    fine = MinuteSteps(data, series)
    traces: dict[str, Trace] = {}
    traces["helios"] = simulate(home, series, start, stop, soc_start_kwh, make_helios(),
                                    progress, fine=fine)
    traces["no_battery"] = simulate(home.without_battery(), series, start, stop,
                                        soc_start_kwh, NoBattery(), fine=fine)
    traces["self_consumption"] = simulate(
        home, series, start, stop, soc_start_kwh,
        MinuteRule(SelfConsumption(home, series), home), fine=fine)
    traces["price_rule"] = simulate(
        home, series, start, stop, soc_start_kwh,
        MinuteRule(PriceRule(home, series, timezone), home), fine=fine)
    t_pf = time.perf_counter()
    pf = slot_traces["perfect_foresight"]
    traces["perfect_foresight"] = perfect_foresight_minutes(home, series, data, soc_start_kwh,
                                                            terms, pf)
    traces["perfect_foresight"].info["run_s"] = round(time.perf_counter() - t_pf, 3)
    w = slice(start, stop)
    cap = np.where(pf.pv_used_kw < series.pv_kw[w] - TOL, pf.pv_used_kw, np.inf)
    replay = Replay(SLOT_PLAN_RUNS[0], start, pf.battery_charge_kw,
                        pf.battery_discharge_kw, cap)
    traces[SLOT_PLAN_RUNS[0]] = simulate(home, series, start, stop, soc_start_kwh, replay,
                                             fine=fine)
    traces[SLOT_PLAN_RUNS[1]] = simulate(
        home, series, start, stop, soc_start_kwh,
        PlanIntents(SLOT_PLAN_RUNS[1], pf, start, home, cap), fine=fine)
    for tr in traces.values():
        tr.info["energy_residual_kwh"] = round(
            energy_residual_kwh(tr, series, start, home), 9)
    table = {name: metrics(tr, series, start, home, terms) for name, tr in traces.items()}
    comparison = compare({k: v for k, v in table.items() if k not in SLOT_PLAN_RUNS})
    nb = table["no_battery"]["net_cost_eur"]
    plan = min(table[k]["net_cost_eur"] for k in SLOT_PLAN_RUNS)
    for row_name, row in comparison.items():
        cost = table[row_name]["net_cost_eur"]
        row["share_of_slot_plan"] = (round((nb - cost) / (nb - plan), 6)
                                     if abs(nb - plan) > 1e-9 else None)
    info = {"resolution_s": MINUTE_S, "source": dict(data.source),
            "run_s": round(time.perf_counter() - t0, 3)}
    return MinuteResult(traces, table, comparison, info)
