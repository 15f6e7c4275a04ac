r"""1-minute truth for the backtest: minute PV and load inside the plan's slots.

The plan works on slot averages (15 min or 1 h); the meter and the executor do not. The
minute data (:class:`MinuteData`, one row of ``k = slot_s / 60`` minutes per slot) are
recorded 1-minute CSVs (:func:`read_minute_csv`, the planner's CSV format ``ts_utc`` +
``pv_kw`` / ``load_kw``) or seeded synthetic minutes on top of the slot profile
(:func:`synthetic_load`, :func:`synthetic_pv`), which keep every slot's mean. The slot series
the planner and the slot-level judge see is then *conformed* to the minute means
(:meth:`MinuteData.conform`; a no-op up to rounding for synthetic data), so both resolutions
judge the same energy. :mod:`planner.evaluate.minute` steps the physics per minute on them.

Why not ``richardsonpy`` or ``rampdemand``: both are on PyPI, but they synthesise a whole
household from occupancy statistics, not minutes under a given profile: their output would
have to be rescaled slot by slot to keep the recorded means, which turns their appliance
powers into arbitrary multiples, and they would add a dependency to the planner for a
backtest option. :func:`synthetic_load` is a small, documented generator of the same kind of
appliance pulses that keeps each slot's energy exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from planner.core import timegrid
from planner.core.errors import DataError
from planner.evaluate.forecast import ar1
from planner.evaluate.physics import Series
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
