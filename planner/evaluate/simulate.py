r"""Closed-loop simulation of the home: physics, strategies, the perfect-foresight limit, metrics.

The *home* is PV, a load, a battery (AC-side power limits, charge/discharge efficiencies,
SoC limits) and a grid connection (import/export limits, export switch, outages). The
simulator runs it slot by slot against the **actual** PV and load; a *strategy* decides, at
the start of each slot, a battery setpoint (and, optionally, a PV curtailment cap). Strategies:

* :class:`MpcStrategy` — Helios itself: re-plans every ``replan_every`` slots with the
  compiled planner model (:mod:`planner.optimize.model`, Parameters refilled, never rebuilt
  per step),
  seeing only forecasts (perfect, perfect × seeded Gaussian noise, or ``real``: Helios's
  own forecasters run on the recorded history before each re-plan, with day-ahead prices
  only once published, see :class:`RealForecaster`), and executes the plan's slot for "now";
* :class:`NoBattery`, :class:`SelfConsumption` (charge from surplus, discharge to cover the
  load) and :class:`PriceRule` (charge from the grid in the cheapest slots of each local day,
  discharge to cover the load in its dearer half) — the baselines;
* :func:`perfect_foresight` — one LP over the whole period with every actual value known:
  the limit no strategy can beat (replayed through the same physics).

Physics of one slot (:func:`step`), all powers AC side, ``P`` = battery power (+ discharge,
− charge), ``need = load − pv_used``::

    grid = need − P − unserved          (> 0 import, < 0 export; never both)
    soc' = soc + (eta_c·charge − discharge/eta_d)·dt

The setpoint is clamped to the power limits and to what the SoC allows (hard
``[min_soc, max_soc]``, widened to the current SoC when it is outside). When the grid
cannot take the rest (import/export limit, export switched off, export at a negative sell
price, an outage) the battery deviates from its setpoint the way a backup/ESS inverter does:
it discharges more to cover the load (what it cannot cover is *unserved*) or charges more
from surplus PV (what it cannot take is curtailed). PV is also curtailed when the strategy
says so (the plan curtails in that slot). Energy is conserved exactly::

    Σ (pv + import + unserved)·dt = Σ (load + export + curtailed)·dt + Δsoc + losses

Costs are compared as **net cost** = grid bill + battery wear − value of the energy added to
the battery over the period (valued at ``end_value_eur_per_kwh``, the planner's own terminal
value for the period's last horizon), so that emptying the battery at the end is no saving.
The perfect-foresight LP minimises exactly the same quantity plus the planner's penalties
(unserved load, reserve and final-SoC shortfall); :func:`objective_eur` evaluates it for any
trace, so "no strategy beats the limit" is a plain comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd

from executor.control import guard_battery, intent_battery, power_to_target
from executor.schedule import intent_band
from planner.config import HeliosConfig
from planner.core.errors import DataError, InfeasibleError, OptimizationError, SolverFailedError
from planner.inputs.gather import Inputs
from planner.optimize import model as model_mod

#: what the closed loop's planner can see of PV and load (see :class:`MpcStrategy`)
FORECASTS = ("perfect", "noisy", "real")
#: what the simulated executor holds at the plan's value (see :class:`MpcStrategy`)
CONTROLS = ("intent", "battery", "grid", "hybrid")
#: flows below this count as zero (exclusivity, "at min SoC") [kW or kWh]
TOL = 1e-6
#: a slot "at min SoC" ends within this of the minimum [kWh]
AT_MIN_TOL_KWH = 0.01


# ============================================================================================
# the home and the data


@dataclass(frozen=True)
class Home:
    """Physical limits of the simulated site (from the config; AC-side figures)."""

    slot_s: int
    capacity_kwh: float
    min_kwh: float
    max_kwh: float
    reserve_kwh: float  # self-consumption and the price rule never discharge below this
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float
    discharge_efficiency: float
    max_import_kw: float
    max_export_kw: float  # 0 when export is switched off
    wear_eur_per_kwh: float

    @property
    def dt_h(self) -> float:
        """Slot length. [h]"""
        return self.slot_s / 3600.0

    @classmethod
    def from_config(cls, cfg: HeliosConfig) -> Home:
        """The home described by ``cfg`` (battery, grid, slot length)."""
        b, g = cfg.battery, cfg.grid
        cap = b.capacity_kwh
        reserve_pct = b.reserve_soc_pct if b.reserve_soc_pct is not None else b.min_soc_pct
        return cls(
            slot_s=cfg.planning.slot_s,
            capacity_kwh=cap,
            min_kwh=b.min_soc_pct / 100 * cap,
            max_kwh=b.max_soc_pct / 100 * cap,
            reserve_kwh=max(reserve_pct, b.min_soc_pct) / 100 * cap,
            max_charge_kw=b.max_charge_kw,
            max_discharge_kw=b.max_discharge_kw,
            charge_efficiency=b.charge_efficiency,
            discharge_efficiency=b.discharge_efficiency,
            max_import_kw=g.max_import_kw,
            max_export_kw=g.max_export_kw if g.export_enabled else 0.0,
            wear_eur_per_kwh=b.wear_cost_eur_per_kwh,
        )

    def without_battery(self) -> Home:
        """The same site with the battery disconnected (no power in or out)."""
        return replace(self, max_charge_kw=0.0, max_discharge_kw=0.0)


@dataclass(frozen=True)
class Series:
    """The actual data on the slot grid (arrays of equal length, UTC slot starts).

    ``grid_ok`` is False in outage slots; ``outage_start`` gives, for every outage slot,
    the index of the first slot of its outage (−1 elsewhere), so a strategy can tell how far
    ahead it was announced.
    """

    index: pd.DatetimeIndex
    slot_s: int
    spot_eur_per_kwh: np.ndarray
    buy_eur_per_kwh: np.ndarray
    sell_eur_per_kwh: np.ndarray
    pv_kw: np.ndarray
    load_kw: np.ndarray
    grid_ok: np.ndarray
    outage_start: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.index)
        for name in ("spot_eur_per_kwh", "buy_eur_per_kwh", "sell_eur_per_kwh", "pv_kw",
                     "load_kw", "grid_ok", "outage_start"):
            arr = getattr(self, name)
            if np.shape(arr) != (n,):
                raise DataError(f"series {name}: expected {n} values, got {np.shape(arr)}")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise DataError(f"series {name}: contains non-finite values")
        if (self.pv_kw < 0).any() or (self.load_kw < 0).any():
            raise DataError("series: pv_kw and load_kw must be >= 0")

    @property
    def n(self) -> int:
        """Number of slots."""
        return len(self.index)

    @property
    def dt_h(self) -> float:
        """Slot length. [h]"""
        return self.slot_s / 3600.0

    @classmethod
    def build(cls, index: pd.DatetimeIndex, slot_s: int, spot, buy, sell, pv_kw, load_kw,
              outage=None) -> Series:
        """Make a series; ``outage`` is a boolean mask of slots without grid (default none)."""
        n = len(index)
        down = np.zeros(n, dtype=bool) if outage is None else np.asarray(outage, dtype=bool)
        start = np.full(n, -1, dtype=np.int64)
        current = -1
        for i in np.flatnonzero(down):
            if i == 0 or not down[i - 1]:
                current = i
            start[i] = current
        return cls(index, slot_s, np.asarray(spot, float), np.asarray(buy, float),
                   np.asarray(sell, float), np.asarray(pv_kw, float),
                   np.asarray(load_kw, float), ~down, start)

    def scaled(self, pv_scale: float = 1.0) -> Series:
        """The same series with PV multiplied by ``pv_scale`` (a bigger or smaller array)."""
        return replace(self, pv_kw=self.pv_kw * pv_scale)


# ============================================================================================
# the physics of one slot


class PlanIntent(NamedTuple):
    """A plan slot as the executor follows it (:func:`step`'s ``intent``)."""

    intent: str
    low_kw: float  # battery band, + = discharge
    high_kw: float
    target_kwh: float  # planned SoC at slot end
    grid_kw: float | None = None  # planned grid power, + = import


def step(home: Home, soc_kwh: float, setpoint_kw: float, pv_cap_kw: float, pv_kw: float,
         load_kw: float, grid_ok: bool, sell_eur_per_kwh: float,
         grid_setpoint_kw: float | None = None, guard: bool = False,
         intent: tuple | None = None) -> tuple[float, ...]:
    """Run one slot: the battery follows ``setpoint_kw`` as far as the physics allow.

    Parameters
    ----------
    soc_kwh
        Stored energy at the start of the slot. [kWh]
    setpoint_kw
        Wanted battery power, + discharge / − charge (AC side). [kW]
    pv_cap_kw
        Use at most this much PV (``inf``: no curtailment wanted) unless the load needs it. [kW]
    pv_kw, load_kw
        Actual PV and load. [kW]
    grid_ok
        False during an outage: no import, no export.
    sell_eur_per_kwh
        Actual sell price; below 0 nothing is exported (PV is curtailed instead).
    grid_setpoint_kw
        When given, the inverter holds the grid at this power instead (+ import, − export;
        the executor's Victron mode): the battery takes ``load − pv − grid_setpoint_kw``, so
        it absorbs the forecast error; ``setpoint_kw`` is then ignored.
    guard
        With ``grid_setpoint_kw``: the battery absorbs the error only between the plan's
        battery power and what the site needs, ``load − pv``: it discharges more than planned
        only to cover the load (never into the grid) and charges more than planned only from
        PV surplus (never from the grid). ``setpoint_kw`` is the plan's battery power then.
    intent
        ``(intent, battery_min_kw, battery_max_kw, target_kwh)``: the executor's control law
        (:func:`executor.control.intent_battery`) on the slot's actual net load, with the
        slot's planned end SoC as the target; ``setpoint_kw`` and ``grid_setpoint_kw`` are
        then ignored.

    Returns
    -------
    (import_kw, export_kw, charge_kw, discharge_kw, pv_used_kw, unserved_kw, soc_end_kwh)
    """
    dt = home.slot_s / 3600.0
    eta_c, eta_d = home.charge_efficiency, home.discharge_efficiency
    floor = min(home.min_kwh, soc_kwh)
    ceiling = max(home.max_kwh, soc_kwh)
    dis_max = min(home.max_discharge_kw, max(soc_kwh - floor, 0.0) * eta_d / dt)
    ch_max = min(home.max_charge_kw, max(ceiling - soc_kwh, 0.0) / (eta_c * dt))
    imp_max = home.max_import_kw if grid_ok else 0.0
    exp_max = home.max_export_kw if (grid_ok and sell_eur_per_kwh >= 0.0) else 0.0
    pv_used = min(pv_kw, pv_cap_kw) if pv_cap_kw < pv_kw else pv_kw
    unserved = 0.0
    need = load_kw - pv_used
    if intent is not None:
        to_target = power_to_target(soc_kwh, intent[3], dt, eta_c, eta_d)
        grid_plan = intent.grid_kw if isinstance(intent, PlanIntent) else None
        setpoint_kw = intent_battery(intent[0], intent[1], intent[2], need, to_target, 0.0,
                                     grid_plan)
    elif grid_setpoint_kw is not None:
        wanted = need - grid_setpoint_kw
        setpoint_kw = guard_battery(wanted, setpoint_kw, need) if guard else wanted
    if need - imp_max > dis_max and pv_used < pv_kw:  # curtailing would leave load unserved
        pv_used = min(pv_kw, pv_used + (need - imp_max - dis_max))
        need = load_kw - pv_used
    if need - imp_max > dis_max:  # short even with the battery at full discharge
        power = dis_max
    elif need + exp_max < -ch_max:  # surplus the grid and the battery cannot take
        power = -ch_max
        pv_used = max(0.0, pv_used + need + exp_max + ch_max)
        need = load_kw - pv_used
    else:
        power = min(max(setpoint_kw, -ch_max, need - imp_max), dis_max, need + exp_max)
    grid = need - power
    if grid > imp_max:  # what neither the grid nor the battery can supply
        unserved = grid - imp_max
        grid = imp_max
    elif grid < -exp_max:  # rounding only: the limits hold exactly
        grid = -exp_max
    imp = grid if grid > 0.0 else 0.0
    exp = -grid if grid < 0.0 else 0.0
    ch = -power if power < 0.0 else 0.0
    dis = power if power > 0.0 else 0.0
    soc = soc_kwh + (eta_c * ch - dis / eta_d) * dt
    soc = min(max(soc, floor), ceiling)  # rounding only: the clamps above keep it inside
    return imp, exp, ch, dis, pv_used, unserved, soc


# ============================================================================================
# traces and strategies


class FineSteps(Protocol):
    """Physics inside a slot at a finer resolution than the plan (``planner.evaluate.minute``)."""

    def step_slot(self, t: int, home: Home, soc_kwh: float, setpoint_kw: float,
                  pv_cap_kw: float, grid_setpoint_kw: float | None, guard: bool,
                  intent: tuple | None) -> tuple[float, ...]:
        """Slot ``t`` stepped finely; returns :func:`step`'s tuple as slot averages."""
        ...


@dataclass
class Trace:
    """What happened in each simulated slot (arrays over the period) and how it was decided."""

    name: str
    index: pd.DatetimeIndex
    soc_start_kwh: float
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    pv_used_kw: np.ndarray
    unserved_kw: np.ndarray
    soc_kwh: np.ndarray  # at the end of each slot
    info: dict = field(default_factory=dict)

    @property
    def soc_end_kwh(self) -> float:
        """Stored energy at the end of the period. [kWh]"""
        return float(self.soc_kwh[-1]) if len(self.soc_kwh) else self.soc_start_kwh


class Strategy(Protocol):
    """Decides the battery setpoint for slot ``t`` given the stored energy at its start."""

    name: str

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """(battery setpoint [kW], + discharge / − charge; PV cap [kW], ``inf`` for none;
        grid setpoint [kW], + import, or None to follow the battery setpoint)."""
        ...


class NoBattery:
    """The home without a battery (simulate it with :meth:`Home.without_battery`)."""

    name = "no_battery"

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """Nothing to decide."""
        return 0.0, math.inf, None


class SelfConsumption:
    """Charge from PV surplus, discharge to cover the load, never below the reserve SoC."""

    name = "self_consumption"

    def __init__(self, home: Home, series: Series):
        self.home = home
        self.net = (series.load_kw - series.pv_kw).tolist()

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """Setpoint = load − PV (the battery takes or gives the difference)."""
        want = self.net[t]
        if want > 0.0:
            want = min(want, _above_reserve_kw(self.home, soc_kwh))
        return want, math.inf, None


def _above_reserve_kw(home: Home, soc_kwh: float) -> float:
    return max(soc_kwh - home.reserve_kwh, 0.0) * home.discharge_efficiency / home.dt_h


class PriceRule:
    """The usual rule-based heuristic: cheapest slots charge, dearer slots discharge.

    Per local calendar day (site time zone, the day-ahead market's day): the ``k`` cheapest
    slots charge from the grid at full power, with ``k`` the slots needed to fill the battery
    from min to max SoC — but only when the day's spread pays for the losses and wear (mean of
    the ``k`` dearest buy prices × η_c·η_d − 2 × wear > mean of the ``k`` cheapest). PV surplus
    always charges. The battery discharges to cover the load (never to export) only in slots
    priced above the day's median; otherwise it holds.
    """

    name = "price_rule"

    def __init__(self, home: Home, series: Series, timezone: str):
        self.home = home
        n = series.n
        buy = series.buy_eur_per_kwh
        usable = max(home.max_kwh - home.min_kwh, 0.0)
        per_slot = home.max_charge_kw * home.charge_efficiency * home.dt_h
        k = max(1, math.ceil(usable / per_slot)) if per_slot > 0 else 0
        charge = np.zeros(n, dtype=bool)
        dear = np.zeros(n, dtype=bool)
        days = series.index.tz_convert(timezone).normalize()
        codes, _ = pd.factorize(days)
        eta = home.charge_efficiency * home.discharge_efficiency
        for day in range(codes.max() + 1 if n else 0):
            slots = np.flatnonzero(codes == day)
            prices = buy[slots]
            order = np.argsort(prices, kind="stable")
            dear[slots] = prices >= np.median(prices)
            kk = min(k, len(slots) // 2)
            if kk == 0:
                continue
            cheap_mean = float(prices[order[:kk]].mean())
            dear_mean = float(prices[order[-kk:]].mean())
            if dear_mean * eta - 2 * home.wear_eur_per_kwh > cheap_mean:
                charge[slots[order[:kk]]] = True
        self.charge = charge.tolist()
        self.dear = dear.tolist()
        self.net = (series.load_kw - series.pv_kw).tolist()

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """Full charge in a cheap slot; else store surplus, cover the load only when dear."""
        if self.charge[t]:
            return -self.home.max_charge_kw, math.inf, None
        want = self.net[t]
        if want <= 0.0:
            return want, math.inf, None
        if self.dear[t]:
            return min(want, _above_reserve_kw(self.home, soc_kwh)), math.inf, None
        return 0.0, math.inf, None


class Replay:
    """Follow a fixed schedule (e.g. the perfect-foresight optimum) slot by slot."""

    def __init__(self, name: str, start: int, charge_kw, discharge_kw, pv_cap_kw):
        self.name = name
        self.start = start
        self.setpoint = (np.asarray(discharge_kw) - np.asarray(charge_kw)).tolist()
        self.cap = np.asarray(pv_cap_kw, dtype=float).tolist()

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """The schedule's slot ``t``."""
        j = t - self.start
        return self.setpoint[j], self.cap[j], None


class _PlannerModel(model_mod.Model):
    """The planner's compiled model; with outages announced to it, priced as grid-less slots.

    Until the model has per-slot grid limits, an announced outage slot is given to the planner
    as buy = the unserved-load penalty and sell = −penalty: importing there costs exactly as
    much as leaving load unserved and exporting is never worth it, so the plan keeps the
    energy the outage needs. Only the terminal value must not see those prices: it is taken
    from the buy prices of the slots with grid, as the planner itself would with real limits.
    """

    grid_mask: np.ndarray | None = None  # True where the planner knows the grid is up

    def set_inputs(self, inputs: Inputs, cfg: HeliosConfig) -> None:
        """Fill the Parameters; terminal value from the slots with grid only."""
        super().set_inputs(inputs, cfg)
        mask = self.grid_mask
        if mask is None or mask.all() or cfg.battery.final_soc_pct is not None:
            return
        buy = inputs.buy_eur_per_kwh[mask] if mask.any() else np.zeros(1)
        q = float(np.quantile(buy, cfg.planning.terminal_value_quantile))
        self.params["end_value"].value = max(0.0, self.spec.discharge_efficiency * q)


def _ar1(rng: np.random.Generator, n: int, slot_s: int, tau_s: float = 3 * 3600) -> np.ndarray:
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
PV_INDEX_MIN_SHARE = 0.1
#: the hourly clear-sky index is clipped to [0, this × the whole-window index]
PV_INDEX_CAP = 2.0
#: day-ahead prices for the next local day are known from this local hour on (EPEX / Nord
#: Pool publish ≈ 12:45–13:00 CET)
PRICE_PUBLISH_HOUR = 13
#: PV nowcast: the clear-sky index of the last PV_NOWCAST_WINDOW_H hours (what the executor
#: measured) replaces the hour-of-day index with weight exp(-lead / PV_NOWCAST_TAU_H)
PV_NOWCAST_WINDOW_H = 2.0
PV_NOWCAST_TAU_H = 3.0
#: load nowcast: the last hour's mean load replaces the profile with weight exp(-lead / τ)
LOAD_NOWCAST_TAU_H = 3.0


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
    * **Prices**: day-ahead prices for the next local day (site time zone) become visible at
      :data:`PRICE_PUBLISH_HOUR`:00 local; before that the planner sees prices to the end of
      today only. :meth:`visible_end` gives the slot where the visible prices end.
    """

    def __init__(self, cfg: HeliosConfig, series: Series):
        from planner.inputs import degraded
        from planner.providers.load import history
        from planner.providers.pv.openmeteo import OpenMeteoPv, PvArray, clearsky_power_kw

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
        pv_cfg = cfg.pv.options if cfg.pv is not None and cfg.pv.type == "openmeteo" else None
        if isinstance(pv_cfg, OpenMeteoPv.Config):
            arrays = pv_cfg._arrays
            self.pv_confidence = pv_cfg.confidence_pct / 100.0
            self._peak = pv_cfg.peak_kw
        else:
            arrays = (PvArray(kwp=1.0, tilt_deg=30.0, azimuth_deg=180.0),)
            self.pv_confidence = 1.0
            self._peak = 0.0
        self.arrays = arrays
        self.clearsky_kw = clearsky_power_kw(cfg.site.latitude, cfg.site.longitude, s.index,
                                             s.slot_s, arrays)
        self._fallback_pv = lambda w: degraded.clearsky_pv_kw(cfg.site, s.index[w], self._peak)
        self._cs_peak = float(np.max(self.clearsky_kw)) if len(self.clearsky_kw) else 0.0
        self.nowcast = True  # blend in the PV measured in the last hours (PV_NOWCAST_*)
        self.load_tau_h = LOAD_NOWCAST_TAU_H  # > 0: blend in the last hour's mean load
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
                k = int(round(3600 / self.series.slot_s))
                recent = float(self.series.load_kw[max(0, t - k):t].mean())
                lead_h = np.arange(m) * (self.series.slot_s / 3600.0)
                weight = np.exp(-lead_h / self.load_tau_h)
                load = weight * recent + (1.0 - weight) * load
            if self.load_margin:
                load = load * (1.0 + self.load_margin)
        if self._pv_index is None:
            pv = self._fallback_pv(w)
            self.fallback_pv += 1
        else:
            index = self._pv_index[self.hour[w]]
            recent = self._recent_index(t)
            if recent is not None:
                lead_h = np.arange(m) * (self.series.slot_s / 3600.0)
                weight = np.exp(-lead_h / PV_NOWCAST_TAU_H)
                index = weight * recent + (1.0 - weight) * index
            pv = self.clearsky_kw[w] * index
        if self.pv_confidence != 1.0:
            pv = pv * self.pv_confidence
        return pv, load

    def _recent_index(self, t: int) -> float | None:
        """Clear-sky index measured over the last :data:`PV_NOWCAST_WINDOW_H` hours before
        slot ``t`` (None when the sun was too low to tell)."""
        if not self.nowcast:
            return None
        k = int(round(PV_NOWCAST_WINDOW_H * 3600 / self.series.slot_s))
        w = slice(max(0, t - k), t)
        cs = float(self.clearsky_kw[w].sum())
        if cs < PV_INDEX_MIN_SHARE * self._cs_peak * k:
            return None
        whole_cap = PV_INDEX_CAP * float(np.max(self._pv_index))
        return min(float(self.series.pv_kw[w].sum()) / cs, whole_cap)

    def stats(self) -> dict:
        """Refits and fallbacks."""
        return {"load_refits": self.refits, "load_fit_s": round(self.fit_s, 3),
                "replans_default_load": self.degraded_load,
                "replans_clearsky_pv_fallback": self.fallback_pv,
                "load_safety_margin_pct": round(self.load_margin * 100, 6),
                "pv_confidence_pct": round(self.pv_confidence * 100, 6),
                "pv_index_days": self.pv_days}


class MpcStrategy:
    """Helios in the loop: re-plan every ``replan_every`` slots, execute the plan's slot.

    The planner sees prices as they are (day-ahead), PV and load as forecasts: ``perfect``
    (the actual values), ``real`` (:class:`RealForecaster`: Helios's load forecaster and a
    weather-free clear-sky × recent-index PV forecast, fitted on the history before each
    re-plan; prices only once published) or ``noisy``: for target slot ``j`` seen ``h`` slots ahead,
    ``actual_j × (1 + σ · e_j · min(1, √((h + 1) / H24)))``, clipped at 0, where ``e`` is a
    seeded AR(1) series with unit variance and a 3 h correlation time (separate for PV and
    load), ``σ`` = ``noise_pct`` % and ``H24`` the slots in 24 h. So, like a real forecast, the
    error is correlated in time, the same target looks the same from one re-plan to the next,
    and it shrinks as the slot comes closer (≈ σ/10 for the current 15-min slot, which the
    executor measures anyway; the full σ from a day ahead). Outages are announced
    ``outage_notice_h`` hours before they start (0: the planner learns of one when it has
    begun).

    ``control`` says what the executor holds: ``battery`` (the plan's battery power; the grid
    takes the forecast error), ``grid`` (the plan's grid power, as the Victron grid-setpoint
    path does; the battery takes the error) or ``hybrid`` (the grid power, but the battery
    never discharges into the grid or charges from it beyond the plan: see ``guard`` in
    :func:`step`; not what the executor does today). Identical with perfect forecasts.

    The horizon is ``planning.horizon_h``; with ``perfect`` and ``noisy`` it shrinks only
    where the data end (the last horizon of the data); with ``real`` it is, like
    ``helios plan``'s, min(``horizon_h``, the last published price), so it varies between
    re-plans (≈11–35 h). One compiled model per slot count, each built once and reused.

    Forecast errors (``noisy``, ``real``) are tallied per re-plan against the actual values:
    :meth:`stats` gives the MAE and bias over every forecast slot and for the current slot.
    """

    name = "helios"

    def __init__(self, cfg: HeliosConfig, series: Series, forecast: str = "perfect",
                 noise_pct: float = 0.0, seed: int = 0, replan_every: int = 1,
                 outage_notice_h: float = 48.0, control: str = "intent",
                 nowcast: bool = False):
        if forecast not in FORECASTS:
            raise ValueError(f"forecast: expected one of {', '.join(FORECASTS)}, got "
                             f"{forecast!r}")
        if control not in CONTROLS:
            raise ValueError(f"control: expected one of {', '.join(CONTROLS)}, got "
                             f"{control!r}")
        self.control = control
        self.nowcast = nowcast
        self.hedge = 0.0
        self._hedged = False
        # > 0: two-stage scenario plans (planner.optimize.scenarios), as helios plan makes them
        self.scenario_spread = cfg.planning.scenario_pv_spread
        self._scenario_models: dict = {}
        self.scenario_fallbacks = 0
        self.guard = control == "hybrid"
        if replan_every < 1:
            raise ValueError("replan_every must be >= 1")
        if forecast == "perfect" and cfg.planning.grid_hurdle_eur_per_kwh > 0:
            # the grid hurdle prices the value of deciding later on a better forecast; a
            # planner that is told its forecasts are exact has no better forecast to wait for
            cfg = replace(cfg, planning=replace(cfg.planning, grid_hurdle_eur_per_kwh=0.0))
        self.cfg = cfg
        self.series = series
        self.forecast = forecast
        self.noise = noise_pct / 100.0
        self.every = replan_every
        self.horizon = max(1, int(round(cfg.planning.horizon_h * 3600 / series.slot_s)))
        if forecast == "noisy":
            rng = np.random.default_rng(seed)
            self._err_pv = _ar1(rng, series.n, series.slot_s)
            self._err_load = _ar1(rng, series.n, series.slot_s)
            day = 86400 / series.slot_s
            self._lead = np.minimum(1.0, np.sqrt((np.arange(self.horizon) + 1) / day))
        self.real = RealForecaster(cfg, series) if forecast == "real" else None
        # forecast error tallies: [Σ|e| all slots, Σe all slots, n all, Σ|e| now, Σe now, n now]
        self._err = {"pv": np.zeros(6), "load": np.zeros(6)}
        self.notice = int(round(outage_notice_h * 3600 / series.slot_s))
        self.penalty = cfg.planning.unserved_penalty_eur_per_kwh
        self.any_outage = not bool(series.grid_ok.all())
        self.cap = cfg.battery.capacity_kwh
        self._models: dict[int, _PlannerModel] = {}
        self.compiled = 0
        self._t0 = -1
        self._m = 0
        self.solves = 0
        self.fallback_solves = 0  # solved only by the fallback solvers
        self.failed_solves = 0  # no solver managed: the previous plan was kept
        self.failures: list[str] = []
        solver_order = ("clarabel", "ecos", "highs")
        first = next(x for x in solver_order if x != cfg.planning.solver)
        self._fallback_cfg = replace(cfg, planning=replace(cfg.planning, solver=first))
        self.milp_solves = 0
        self.intent_counts: dict[str, int] = {}
        self.solve_s = 0.0
        self.max_solve_s = 0.0

    def model_for(self, m: int) -> _PlannerModel:
        """The compiled model for ``m`` slots (built once).

        With ``perfect``/``noisy`` forecasts shorter models only appear at the end of the data,
        each for one re-plan, with ``m`` falling: they are dropped when the next one is built
        (≈1.2 MB each). With ``real`` the horizon follows the published prices and every size
        recurs daily: each is kept (≈100 sizes at 15-min slots, ≈120 MB).
        """
        found = self._models.get(m)
        if found is None:
            if m < self.horizon and self.real is None:
                for size in [k for k in self._models if k < self.horizon]:
                    del self._models[size]
            spec = model_mod.ModelSpec.from_config(self.cfg, m, self.series.slot_s)
            found = self._models[m] = _PlannerModel(spec)
            self.compiled += 1
        return found

    def inputs_at(self, t: int, soc_kwh: float) -> tuple[Inputs, np.ndarray | None]:
        """What the planner sees at slot ``t``: prices, forecasts, SoC (and the grid mask)."""
        s = self.series
        m = min(self.horizon, s.n - t)
        if self.real is not None:
            m = min(m, self.real.visible_end(t) - t)
        window = slice(t, t + m)
        pv, load = s.pv_kw[window], s.load_kw[window]
        if self.forecast == "noisy" and self.noise > 0:
            scale = self.noise * self._lead[:m]
            pv = np.maximum(pv * (1.0 + scale * self._err_pv[window]), 0.0)
            load = np.maximum(load * (1.0 + scale * self._err_load[window]), 0.0)
        elif self.real is not None:
            pv, load = self.real.forecast(t, m)
            if self.nowcast and t > 0:
                # the current slot from the latest measurement (the executor's last reading):
                # the load of the slot just ended, PV scaled by the clear-sky change
                pv, load = pv.copy(), load.copy()
                load[0] = s.load_kw[t - 1]
                cs0, cs1 = self.real.clearsky_kw[t - 1], self.real.clearsky_kw[t]
                if cs0 > 1e-3:
                    pv[0] = s.pv_kw[t - 1] * min(cs1 / cs0, 2.0)
        if self.forecast != "perfect":
            for kind, fc, actual in (("pv", pv, s.pv_kw[window]), ("load", load,
                                                                     s.load_kw[window])):
                e = fc - actual
                tally = self._err[kind]
                tally[0] += float(np.abs(e).sum())
                tally[1] += float(e.sum())
                tally[2] += len(e)
                tally[3] += abs(float(e[0]))
                tally[4] += float(e[0])
                tally[5] += 1
        buy, sell = s.buy_eur_per_kwh[window], s.sell_eur_per_kwh[window]
        mask = None
        if self.any_outage:
            down = ~s.grid_ok[window]
            known = down & (s.outage_start[window] - t <= self.notice)
            if known.any():
                buy = np.where(known, self.penalty, buy)
                sell = np.where(known, -self.penalty, sell)
                mask = ~known
        inputs = Inputs(s.index[window], s.slot_s, s.spot_eur_per_kwh[window], buy, sell,
                        pv, load, soc_kwh / self.cap * 100.0, s.index[t])
        return inputs, mask

    def replan(self, t: int, soc_kwh: float) -> model_mod.Solution | None:
        """Solve at slot ``t`` and keep the plan.

        When the solve fails it is retried with the other solvers first (Clarabel, ECOS,
        then HiGHS); when that fails too, nothing changes — as in production, where a failed
        ``helios plan`` leaves the previous schedule — and the old plan is followed while it
        lasts (then: battery idle). Both are counted in :meth:`stats`.
        """
        inputs, mask = self.inputs_at(t, soc_kwh)
        mdl = self.model_for(inputs.n)
        mdl.grid_mask = mask
        try:
            sol = None
            if self.scenario_spread > 0 and mask is None and inputs.n > 4:
                sol = self._scenario_solve(inputs)
            if sol is None:
                sol = mdl.solve(inputs, self.cfg)
        except (OptimizationError, ValueError) as exc:
            # ValueError: cvxpy cannot unpack a solution HiGHS reported as UNKNOWN
            self.failures.append(f"{inputs.index[0].isoformat()}: {exc}"[:300])
            try:
                sol = mdl.solve(inputs, self._fallback_cfg)
                self.fallback_solves += 1
            except (OptimizationError, ValueError) as exc2:
                self.failures.append(f"{inputs.index[0].isoformat()}: fallback: {exc2}"[:300])
                self.failed_solves += 1
                return None
        self.solves += 1
        self.milp_solves += sol.exact_milp
        self.solve_s += sol.solve_s
        self.max_solve_s = max(self.max_solve_s, sol.solve_s)
        self._t0, self._m = t, inputs.n
        self._setpoint = (sol.battery_discharge_kw - sol.battery_charge_kw).tolist()
        self._grid = (sol.grid_import_kw - sol.grid_export_kw).tolist()
        self._sol = sol
        self._hedged = False
        if self.hedge > 0 and self.control == "intent" and inputs.n > 1:
            self._hedged = self._hedge(mdl, inputs, sol)
        curtails = sol.pv_used_kw < inputs.pv_kw - TOL
        self._pv_cap = np.where(curtails, sol.pv_used_kw, math.inf).tolist()
        return sol

    def decide(self, t: int, soc_kwh: float) -> tuple[float, float, float | None]:
        """Re-plan when due, then the plan's setpoint for slot ``t``."""
        j = t - self._t0
        if self._t0 < 0 or j >= self.every or j >= self._m:
            if self.replan(t, soc_kwh) is not None:
                j = 0
            elif self._t0 < 0 or j >= self._m:  # no plan covers this slot: stay idle
                b = self.cfg.battery  # (the executor releases: self-consumption)
                self.intent = ("self_consume", -b.max_charge_kw, b.max_discharge_kw, soc_kwh)
                return 0.0, math.inf, None
        grid = self._grid[j] if self.control != "battery" else None
        if self.control == "intent":
            sol = self._sol
            b = self.cfg.battery
            if j == 0 and self._hedged:
                self.intent = PlanIntent("self_consume", -b.max_charge_kw, b.max_discharge_kw,
                                         float(sol.soc_kwh[j]), float(self._grid[j]))
                self.intent_counts["hedged"] = self.intent_counts.get("hedged", 0) + 1
                return self._setpoint[j], self._pv_cap[j], grid
            self.intent = PlanIntent(*intent_band(
                sol.battery_charge_kw[j], sol.battery_discharge_kw[j], sol.grid_import_kw[j],
                sol.grid_export_kw[j], b.max_charge_kw, b.max_discharge_kw),
                float(sol.soc_kwh[j]), float(self._grid[j]))
            self.intent_counts[self.intent[0]] = self.intent_counts.get(self.intent[0], 0) + 1
        return self._setpoint[j], self._pv_cap[j], grid

    def _scenario_solve(self, inputs: Inputs):
        """The two-stage scenario plan (:func:`planner.optimize.scenarios.solve`, every
        compiled size kept), or None (use the plain plan) when it splits a flow pair or fails."""
        from planner.optimize import scenarios

        sol = scenarios.solve(inputs, self.cfg, self.scenario_spread, self._scenario_models)
        if sol is None:
            self.scenario_fallbacks += 1
        return sol

    def _hedge(self, mdl, inputs: Inputs, sol) -> bool:
        """True when a PV scenario (forecast × (1 ± hedge) after the current hour) would
        self-consume in the first slot while the plan does not: then the first slot
        self-consumes (deviate from the reactive rule only when every scenario agrees)."""
        b = self.cfg.battery
        first = intent_band(sol.battery_charge_kw[0], sol.battery_discharge_kw[0],
                            sol.grid_import_kw[0], sol.grid_export_kw[0], b.max_charge_kw,
                            b.max_discharge_kw)[0]
        if first == "self_consume":
            return False
        k = int(round(3600 / self.series.slot_s))
        for scale in (1.0 - self.hedge, 1.0 + self.hedge):
            pv = inputs.pv_kw.copy()
            pv[k:] *= scale
            alt = mdl.solve(replace(inputs, pv_kw=pv), self.cfg)
            self.solves += 1
            intent = intent_band(alt.battery_charge_kw[0], alt.battery_discharge_kw[0],
                                 alt.grid_import_kw[0], alt.grid_export_kw[0],
                                 b.max_charge_kw, b.max_discharge_kw)[0]
            if intent == "self_consume":
                return True
        return False

    def stats(self) -> dict:
        """Solve counts and times."""
        return {"solves": self.solves, "milp_solves": self.milp_solves,
                "fallback_solves": self.fallback_solves, "failed_solves": self.failed_solves,
                "failures": self.failures[:10],
                "solve_s": round(self.solve_s, 3), "max_solve_ms": round(self.max_solve_s * 1e3, 2),
                "compiled_models": self.compiled, **self.forecast_stats()}

    def forecast_stats(self) -> dict:
        """Forecast errors seen by the planner (empty with perfect forecasts). [kW]

        ``<pv|load>_mae_kw`` and ``_bias_kw`` (forecast − actual) over every slot of every
        re-plan's horizon; ``_now_mae_kw`` and ``_now_bias_kw`` for the re-plan's first slot.
        """
        if self.forecast == "perfect":
            return {}
        out: dict = {}
        for kind, (a_all, b_all, n_all, a_now, b_now, n_now) in self._err.items():
            if n_all:
                out[f"{kind}_mae_kw"] = round(float(a_all / n_all), 6)
                out[f"{kind}_bias_kw"] = round(float(b_all / n_all), 6)
                out[f"{kind}_now_mae_kw"] = round(float(a_now / n_now), 6)
                out[f"{kind}_now_bias_kw"] = round(float(b_now / n_now), 6)
        if self.real is not None:
            out.update(self.real.stats())
            out["compiled_sizes_min_max"] = sorted(self._models)[:1] + sorted(self._models)[-1:]
        return out


# ============================================================================================
# running a strategy


def simulate(home: Home, series: Series, start: int, stop: int, soc_start_kwh: float,
             strategy: Strategy, progress: Callable[[int], None] | None = None,
             progress_every: int = 96, fine: FineSteps | None = None) -> Trace:
    """Run ``strategy`` on slots ``[start, stop)`` of ``series`` from ``soc_start_kwh``.

    ``progress(k)`` is called with the number of slots done since the last call. With
    ``fine`` each slot's physics run in finer steps (e.g. 1-minute truth) with the same
    control law, and the slot's row is their aggregate.
    """
    if not 0 <= start < stop <= series.n:
        raise DataError(f"simulation slots [{start}, {stop}) outside the data (0..{series.n})")
    n = stop - start
    out = np.zeros((7, n))
    pv = series.pv_kw.tolist()
    load = series.load_kw.tolist()
    ok = series.grid_ok.tolist()
    sell = series.sell_eur_per_kwh.tolist()
    e = soc_start_kwh
    guard = bool(getattr(strategy, "guard", False))
    by_intent = getattr(strategy, "control", None) == "intent"
    t0 = time.perf_counter()
    done = 0
    for i, t in enumerate(range(start, stop)):
        setpoint, cap, grid = strategy.decide(t, e)
        intent = strategy.intent if by_intent else None
        if fine is None:
            row = step(home, e, setpoint, cap, pv[t], load[t], ok[t], sell[t], grid, guard,
                       intent)
        else:
            row = fine.step_slot(t, home, e, setpoint, cap, grid, guard, intent)
        out[:, i] = row
        e = row[6]
        if progress is not None and (i + 1) % progress_every == 0:
            progress(i + 1 - done)
            done = i + 1
    if progress is not None and n > done:
        progress(n - done)
    info = {"run_s": round(time.perf_counter() - t0, 3)}
    if hasattr(strategy, "stats"):
        info.update(strategy.stats())
    return Trace(strategy.name, series.index[start:stop], soc_start_kwh, out[0], out[1],
                 out[2], out[3], out[4], out[5], out[6], info)


# ============================================================================================
# the perfect-foresight limit


@dataclass(frozen=True)
class Terms:
    """The numbers that define cost comparisons for one period (same for every strategy)."""

    end_value_eur_per_kwh: float  # each kWh added to the battery over the period is worth this
    final_kwh: float  # soft final SoC target (0 and weight 0 when none)
    final_weight_eur_per_kwh: float
    reserve_kwh: float
    penalty_eur_per_kwh: float  # per kWh and slot below the reserve
    unserved_penalty_eur_per_kwh: float

    @classmethod
    def for_period(cls, cfg: HeliosConfig, series: Series, start: int, stop: int) -> Terms:
        """The planner's own terms for the period ``[start, stop)``.

        The terminal value is the planner's (η_d × the configured quantile of the buy
        prices) over the period's last planning horizon; 0 with a final SoC target.
        """
        b, pl = cfg.battery, cfg.planning
        cap = b.capacity_kwh
        horizon = max(1, int(round(pl.horizon_h * 3600 / series.slot_s)))
        reserve_pct = b.reserve_soc_pct if b.reserve_soc_pct is not None else b.min_soc_pct
        if b.final_soc_pct is not None:
            value, final, weight = 0.0, b.final_soc_pct / 100 * cap, pl.soft_penalty_eur_per_kwh
        else:
            tail = series.buy_eur_per_kwh[max(start, stop - horizon):stop]
            q = float(np.quantile(tail, pl.terminal_value_quantile))
            value, final, weight = max(0.0, b.discharge_efficiency * q), 0.0, 0.0
        return cls(value, final, weight, max(reserve_pct / 100 * cap, b.min_soc_pct / 100 * cap),
                   pl.soft_penalty_eur_per_kwh, pl.unserved_penalty_eur_per_kwh)


def perfect_foresight(home: Home, series: Series, start: int, stop: int, soc_start_kwh: float,
                      terms: Terms) -> tuple[Trace, float]:
    """The optimum over the whole period with every actual value known: one LP.

    Same formulation as the planner (balance, SoC recursion, power and SoC bounds, soft
    reserve/final targets, unserved load) with per-slot grid limits (0 in outages), built
    with sparse matrices and solved by HiGHS. Where the LP would charge and discharge (or
    import and export) in the same slot — only ever worth it where buying pays (buy < 0) or
    selling beats buying — those slots get binaries (a MILP), so the optimum is physical.

    Returns the optimum replayed through :func:`step` (a :class:`Trace` named
    ``perfect_foresight``) and its objective value (see :func:`objective_eur`). [EUR]
    """
    import scipy.sparse as sp  # late: only the backtest needs scipy.optimize
    from scipy.optimize import Bounds, LinearConstraint, milp

    n, dt = stop - start, home.dt_h
    w = slice(start, stop)
    buy, sell = series.buy_eur_per_kwh[w], series.sell_eur_per_kwh[w]
    pv, load, ok = series.pv_kw[w], series.load_kw[w], series.grid_ok[w]
    eta_c, eta_d = home.charge_efficiency, home.discharge_efficiency
    lo = min(home.min_kwh, soc_start_kwh)
    hi = max(home.max_kwh, soc_start_kwh)
    # columns: imp exp ch dis pv u soc r (n each), then f
    nv = 8 * n + 1
    col = {name: k * n for k, name in enumerate(("imp", "exp", "ch", "dis", "pv", "u", "soc",
                                                  "r"))}
    rows, cols, vals = [], [], []

    def put(r0: int, block: str, coef, offset: int = 0, length: int = n) -> None:
        idx = np.arange(length)
        rows.append(r0 + idx + offset)
        cols.append(col[block] + idx)
        vals.append(np.broadcast_to(np.asarray(coef, dtype=float), (length,)))

    # balance rows 0..n-1: pv + imp + dis + u - ch - exp = load
    for block, coef in (("pv", 1), ("imp", 1), ("dis", 1), ("u", 1), ("ch", -1), ("exp", -1)):
        put(0, block, coef)
    # dynamics rows n..2n-1: soc_t - soc_{t-1} - eta_c dt ch + dt/eta_d dis = [soc0, 0, ...]
    put(n, "soc", 1.0)
    if n > 1:
        rows.append(n + 1 + np.arange(n - 1))
        cols.append(col["soc"] + np.arange(n - 1))
        vals.append(np.full(n - 1, -1.0))
    put(n, "ch", -eta_c * dt)
    put(n, "dis", dt / eta_d)
    # reserve rows 2n..3n-1: soc + r >= reserve; final row 3n: soc_{n-1} + f >= final
    put(2 * n, "soc", 1.0)
    put(2 * n, "r", 1.0)
    rows += [np.array([3 * n, 3 * n])]
    cols += [np.array([col["soc"] + n - 1, nv - 1])]
    vals += [np.array([1.0, 1.0])]
    a = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(3 * n + 1, nv))
    lower = np.concatenate([load, np.r_[soc_start_kwh, np.zeros(n - 1)],
                            np.full(n, terms.reserve_kwh), [terms.final_kwh]])
    upper = np.concatenate([load, np.r_[soc_start_kwh, np.zeros(n - 1)],
                            np.full(n + 1, np.inf)])
    cost = np.zeros(nv)
    cost[col["imp"]:col["imp"] + n] = dt * buy
    cost[col["exp"]:col["exp"] + n] = -dt * sell
    cost[col["ch"]:col["dis"] + n] = dt * home.wear_eur_per_kwh
    cost[col["u"]:col["u"] + n] = dt * terms.unserved_penalty_eur_per_kwh
    cost[col["r"]:col["r"] + n] = dt * terms.penalty_eur_per_kwh
    cost[nv - 1] = terms.final_weight_eur_per_kwh
    cost[col["soc"] + n - 1] -= terms.end_value_eur_per_kwh
    exp_max = np.where(ok & (sell >= 0), home.max_export_kw, 0.0)
    imp_max = np.where(ok, home.max_import_kw, 0.0)
    lb = np.zeros(nv)
    ub = np.full(nv, np.inf)
    ub[col["imp"]:col["imp"] + n] = imp_max
    ub[col["exp"]:col["exp"] + n] = exp_max
    ub[col["ch"]:col["ch"] + n] = home.max_charge_kw
    ub[col["dis"]:col["dis"] + n] = home.max_discharge_kw
    ub[col["pv"]:col["pv"] + n] = pv
    lb[col["soc"]:col["soc"] + n] = lo
    ub[col["soc"]:col["soc"] + n] = hi

    def run(binaries: np.ndarray | None) -> np.ndarray:
        if binaries is None or not binaries.any():
            res = milp(cost, constraints=LinearConstraint(a, lower, upper),
                       bounds=Bounds(lb, ub))
        else:
            # exclusive pairs in the flagged slots: ch <= C b, dis <= D (1 - b),
            # imp <= I g, exp <= E (1 - g); binaries appended after the continuous columns
            k = np.flatnonzero(binaries)
            m = len(k)
            ext = sp.hstack([a, sp.csr_matrix((a.shape[0], 2 * m))]).tocsr()
            r_idx = np.arange(m)
            pairs = [("ch", home.max_charge_kw, 0, -1.0), ("dis", home.max_discharge_kw, 0, 1.0),
                     ("imp", imp_max[k], m, -1.0), ("exp", exp_max[k], m, 1.0)]
            blocks, up = [], []
            for block, big, boff, sign in pairs:
                big = np.broadcast_to(np.asarray(big, dtype=float), (m,))
                rr = np.concatenate([r_idx, r_idx])
                cc = np.concatenate([col[block] + k, nv + boff + r_idx])
                vv = np.concatenate([np.ones(m), sign * big])
                blocks.append(sp.csr_matrix((vv, (rr, cc)), shape=(m, nv + 2 * m)))
                up.append(np.zeros(m) if sign < 0 else big.copy())
            big_a = sp.vstack([ext] + blocks).tocsr()
            cons = LinearConstraint(big_a, np.concatenate([lower, np.full(4 * m, -np.inf)]),
                                    np.concatenate([upper] + up))
            integrality = np.concatenate([np.zeros(nv), np.ones(2 * m)])
            res = milp(np.concatenate([cost, np.zeros(2 * m)]), constraints=cons,
                       bounds=Bounds(np.concatenate([lb, np.zeros(2 * m)]),
                                     np.concatenate([ub, np.ones(2 * m)])),
                       integrality=integrality,
                       options={"mip_rel_gap": 1e-9})
        if res.status != 0 or res.x is None:
            if res.status == 2:
                raise InfeasibleError(f"perfect-foresight problem infeasible: {res.message}")
            raise SolverFailedError(f"perfect-foresight problem: {res.message}")
        return res.x[:nv]

    x = run(None)
    ch, dis = x[col["ch"]:col["ch"] + n], x[col["dis"]:col["dis"] + n]
    imp, exp = x[col["imp"]:col["imp"] + n], x[col["exp"]:col["exp"] + n]
    split = (np.minimum(ch, dis) > TOL) | ((np.minimum(imp, exp) > TOL) & (sell > buy))
    exact = "LP"
    if split.any():
        x = run(split | (buy < 0) | (sell > buy))
        exact = "MILP"
    ch, dis = x[col["ch"]:col["ch"] + n], x[col["dis"]:col["dis"] + n]
    pv_used = x[col["pv"]:col["pv"] + n]
    cap = np.where(pv_used < pv - TOL, pv_used, np.inf)
    replay = Replay("perfect_foresight", start, np.clip(ch, 0, None), np.clip(dis, 0, None), cap)
    trace = simulate(home, series, start, stop, soc_start_kwh, replay)
    optimum = float(cost @ x)
    trace.info.update({"problem": exact, "lp_objective_eur": round(optimum, 6)})
    return trace, optimum


# ============================================================================================
# metrics


def _parts(trace: Trace, series: Series, start: int, home: Home) -> dict:
    w = slice(start, start + len(trace.index))
    dt = home.dt_h
    bill = float(np.sum(series.buy_eur_per_kwh[w] * trace.grid_import_kw
                        - series.sell_eur_per_kwh[w] * trace.grid_export_kw) * dt)
    wear = float(home.wear_eur_per_kwh * np.sum(trace.battery_charge_kw
                                                + trace.battery_discharge_kw) * dt)
    return {"bill": bill, "wear": wear}


def objective_eur(trace: Trace, series: Series, start: int, home: Home, terms: Terms) -> float:
    """The planner's objective evaluated on a trace (what the perfect-foresight LP minimises).

    bill + wear + penalties (unserved load, reserve and final shortfall) − end value × final
    stored energy. [EUR]
    """
    p = _parts(trace, series, start, home)
    dt = home.dt_h
    short = np.maximum(terms.reserve_kwh - trace.soc_kwh, 0.0)
    final_short = max(terms.final_kwh - trace.soc_end_kwh, 0.0)
    return (p["bill"] + p["wear"] + dt * terms.penalty_eur_per_kwh * float(short.sum())
            + dt * terms.unserved_penalty_eur_per_kwh * float(trace.unserved_kw.sum())
            + terms.final_weight_eur_per_kwh * final_short
            - terms.end_value_eur_per_kwh * trace.soc_end_kwh)


def metrics(trace: Trace, series: Series, start: int, home: Home, terms: Terms) -> dict:
    """Totals of one trace (energies in kWh, money in EUR, rounded for output).

    ``net_cost_eur`` = bill + wear − end value × (final − start stored energy).
    ``equivalent_cycles`` = DC energy in and out / (2 × capacity). ``self_consumption_ratio``
    = share of the PV that is used on site (not exported, not curtailed);
    ``self_sufficiency_ratio`` = share of the load not imported.
    """
    dt = home.dt_h
    w = slice(start, start + len(trace.index))
    p = _parts(trace, series, start, home)
    stored = terms.end_value_eur_per_kwh * (trace.soc_end_kwh - trace.soc_start_kwh)
    pv_kwh = float(series.pv_kw[w].sum() * dt)
    load_kwh = float(series.load_kw[w].sum() * dt)
    imp = float(trace.grid_import_kw.sum() * dt)
    exp = float(trace.grid_export_kw.sum() * dt)
    ch = float(trace.battery_charge_kw.sum() * dt)
    dis = float(trace.battery_discharge_kw.sum() * dt)
    curtailed = float((series.pv_kw[w] - trace.pv_used_kw).sum() * dt)
    cap = home.capacity_kwh
    dc = ch * home.charge_efficiency + dis / home.discharge_efficiency
    at_min = trace.soc_kwh <= home.min_kwh + AT_MIN_TOL_KWH
    if home.max_charge_kw == 0 and home.max_discharge_kw == 0:
        at_min = np.zeros(len(trace.soc_kwh), dtype=bool)  # no battery: not "at min SoC"
    out = {
        "net_cost_eur": p["bill"] + p["wear"] - stored,
        "bill_eur": p["bill"],
        "wear_eur": p["wear"],
        "stored_value_eur": stored,
        "objective_eur": objective_eur(trace, series, start, home, terms),
        "grid_import_kwh": imp,
        "grid_export_kwh": exp,
        "pv_kwh": pv_kwh,
        "pv_curtailed_kwh": curtailed,
        "load_kwh": load_kwh,
        "unserved_kwh": float(trace.unserved_kw.sum() * dt),
        "battery_charge_kwh": ch,
        "battery_discharge_kwh": dis,
        "throughput_kwh": ch + dis,
        "equivalent_cycles": dc / (2 * cap) if cap > 0 else 0.0,
        "self_consumption_ratio": (max(0.0, 1 - (exp + curtailed) / pv_kwh) if pv_kwh > 0
                                   else 0.0),
        "self_sufficiency_ratio": max(0.0, 1 - imp / load_kwh) if load_kwh > 0 else 0.0,
        "hours_at_min_soc": float(at_min.sum() * dt),
        "soc_start_kwh": trace.soc_start_kwh,
        "soc_end_kwh": trace.soc_end_kwh,
    }
    return {k: round(v, 6) for k, v in out.items()}


def energy_residual_kwh(trace: Trace, series: Series, start: int, home: Home) -> float:
    """Energy in − energy out − stored − losses over the trace; 0 when energy is conserved."""
    dt = home.dt_h
    w = slice(start, start + len(trace.index))
    pv = series.pv_kw[w]
    inflow = float((pv + trace.grid_import_kw + trace.unserved_kw).sum() * dt)
    curtailed = pv - trace.pv_used_kw
    outflow = float((series.load_kw[w] + trace.grid_export_kw + curtailed).sum() * dt)
    ch, dis = trace.battery_charge_kw, trace.battery_discharge_kw
    losses = float(((1 - home.charge_efficiency) * ch
                    + (1 / home.discharge_efficiency - 1) * dis).sum() * dt)
    return inflow - outflow - (trace.soc_end_kwh - trace.soc_start_kwh) - losses


# ============================================================================================
# one backtest: every strategy on the same data


@dataclass(frozen=True)
class Options:
    """How the closed loop sees the future and how often it re-plans."""

    forecast: str = "perfect"  # perfect | noisy | real
    noise_pct: float = 10.0
    seed: int = 0
    replan_every: int = 1
    outage_notice_h: float = 48.0
    control: str = "intent"  # intent | battery | grid | hybrid: how the executor follows
    soc_start_pct: float = 50.0
    noisy_too: bool = False  # also run the planner with noisy forecasts (for comparison)
    # also judge every strategy at 1-minute truth (planner.evaluate.minute): off | synthetic (seeded
    # minutes under the slot profile) | recorded (minute data given to run_backtest)
    minute: str = "off"
    minute_seed: int = 0


@dataclass
class Result:
    """All strategies' traces on one period, their metrics and the comparisons."""

    traces: dict[str, Trace]
    metrics: dict[str, dict]
    comparison: dict
    terms: Terms
    home: Home
    start: int
    info: dict


STRATEGY_ORDER = ("helios", "no_battery", "self_consumption", "price_rule", "perfect_foresight")


def run_backtest(cfg: HeliosConfig, series: Series, start: int, stop: int,
                 options: Options = Options(),
                 progress: Callable[[int], None] | None = None, minute=None) -> Result:
    """Helios in closed loop, the three baselines and the perfect-foresight limit.

    ``progress`` receives slot counts of the Helios run(s) (the long part). With
    ``options.minute`` (``synthetic``, or ``minute``: a :class:`planner.evaluate.minute.MinuteData`)
    every strategy is also judged at 1-minute truth (:func:`planner.evaluate.minute.judge`; the slot
    series is first conformed to the minute means): ``info["minute"]`` holds that
    :class:`planner.evaluate.minute.MinuteResult`.
    """
    t_all = time.perf_counter()
    home = Home.from_config(cfg)
    if series.slot_s != home.slot_s:
        raise DataError(f"series slot {series.slot_s} s differs from planning.slot_s "
                        f"{home.slot_s} s")
    if minute is None and options.minute == "synthetic":
        from planner.evaluate import minute as minute_mod
        minute = minute_mod.minute_data(series, start, stop, options.minute_seed)
    elif minute is None and options.minute != "off":
        raise ValueError(f"minute: {options.minute!r} needs the minute data")
    if minute is not None:
        series = minute.conform(series)
    soc0 = min(max(options.soc_start_pct, 0.0), 100.0) / 100 * home.capacity_kwh
    terms = Terms.for_period(cfg, series, start, stop)
    traces: dict[str, Trace] = {}

    def mpc(forecast: str) -> MpcStrategy:
        return MpcStrategy(cfg, series, forecast, options.noise_pct, options.seed,
                           options.replan_every, options.outage_notice_h, options.control)

    traces["helios"] = simulate(home, series, start, stop, soc0, mpc(options.forecast),
                                progress)
    traces["helios"].info["forecast"] = options.forecast
    if options.noisy_too and options.forecast == "perfect":
        traces["helios_noisy"] = simulate(home, series, start, stop, soc0, mpc("noisy"))
        traces["helios_noisy"].info["forecast"] = "noisy"
    traces["no_battery"] = simulate(home.without_battery(), series, start, stop, soc0,
                                    NoBattery())
    traces["self_consumption"] = simulate(home, series, start, stop, soc0,
                                          SelfConsumption(home, series))
    traces["price_rule"] = simulate(home, series, start, stop, soc0,
                                    PriceRule(home, series, cfg.site.timezone))
    t_pf = time.perf_counter()
    traces["perfect_foresight"], _ = perfect_foresight(home, series, start, stop, soc0,
                                                             terms)
    traces["perfect_foresight"].info["run_s"] = round(time.perf_counter() - t_pf, 3)
    table = {name: metrics(tr, series, start, home, terms) for name, tr in traces.items()}
    comparison = compare(table)
    info = {"run_s": round(time.perf_counter() - t_all, 3), "slots": stop - start,
            "slot_s": series.slot_s, "start": series.index[start].isoformat(),
            "end": (series.index[stop - 1] + pd.Timedelta(seconds=series.slot_s)).isoformat()}
    if minute is not None:
        from planner.evaluate import minute as minute_mod
        info["minute"] = minute_mod.judge(home, series, start, stop, soc0, terms, traces,
                                          minute, lambda: mpc(options.forecast),
                                          cfg.site.timezone, progress)
        info["run_s"] = round(time.perf_counter() - t_all, 3)
    return Result(traces, table, comparison, terms, home, start, info)


def compare(table: dict[str, dict]) -> dict:
    """Savings of each Helios run vs each baseline, and its share of the possible savings.

    ``share_of_perfect_foresight`` = (no-battery net cost − Helios) / (no-battery − perfect
    foresight): 1.0 means Helios earned everything a battery could earn on these data.
    """
    out = {}
    pf = table["perfect_foresight"]["net_cost_eur"]
    nb = table["no_battery"]["net_cost_eur"]
    for name in [k for k in table if k.startswith("helios")]:
        cost = table[name]["net_cost_eur"]
        row = {f"savings_vs_{b}_eur": round(table[b]["net_cost_eur"] - cost, 6)
               for b in ("no_battery", "self_consumption", "price_rule", "perfect_foresight")}
        possible = nb - pf
        row["share_of_perfect_foresight"] = (round((nb - cost) / possible, 6)
                                             if abs(possible) > 1e-9 else None)
        out[name] = row
    return out
