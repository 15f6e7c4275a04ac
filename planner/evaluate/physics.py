r"""The backtest's home: physical limits, the data, one slot of physics, traces, the loop.

The *home* is PV, a load, a battery (AC-side power limits, charge/discharge efficiencies,
SoC limits) and a grid connection (import/export limits, export switch, outages). The
simulator (:func:`simulate`) runs it slot by slot against the **actual** PV and load; a
*strategy* (:class:`Strategy`; :mod:`planner.evaluate.strategies`,
:mod:`planner.evaluate.mpc`) decides, at the start of each slot, a battery setpoint (and,
optionally, a PV curtailment cap).

Physics of one slot (:func:`step`): :func:`executor.plant.step`, the one implementation of
the home on the AC bus that the planner's baselines and the executor's simulated plant run too
(setpoint clamped to the power and SoC limits; import/export limits, export switch, export at
a negative sell price, outages; unserved load and curtailment; energy conserved exactly)::

    Σ (pv + import + unserved)·dt = Σ (load + export + curtailed)·dt + Δsoc + losses

:func:`step` adds the executor's control laws (grid setpoint, guard, intent) that turn a plan
slot into the battery command on the actual PV and load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd

from executor import plant
from executor.control import guard_battery, intent_battery, power_to_target
from planner.config import HeliosConfig
from planner.core.errors import DataError
from planner.core.site import SiteSpec

#: flows below this count as zero (exclusivity, "at min SoC") [kW or kWh]
TOL = 1e-6
#: a slot "at min SoC" ends within this of the minimum [kWh]
AT_MIN_TOL_KWH = 0.01


# ============================================================================================
# the home and the data


@dataclass(frozen=True)
class Home:
    """Physical limits of the simulated site (from the config; AC-side figures).

    It is the :class:`executor.plant.Limits` of :func:`executor.plant.step` (same field names).
    """

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
        return cls.from_spec(SiteSpec.from_config(cfg))

    @classmethod
    def from_spec(cls, spec: SiteSpec) -> Home:
        """The physical part of a :class:`planner.core.site.SiteSpec`."""
        return cls(
            slot_s=spec.slot_s,
            capacity_kwh=spec.capacity_kwh,
            min_kwh=spec.min_kwh,
            max_kwh=spec.max_kwh,
            reserve_kwh=spec.reserve_kwh,
            max_charge_kw=spec.max_charge_kw,
            max_discharge_kw=spec.max_discharge_kw,
            charge_efficiency=spec.charge_efficiency,
            discharge_efficiency=spec.discharge_efficiency,
            max_import_kw=spec.max_import_kw,
            max_export_kw=spec.max_export_kw,
            wear_eur_per_kwh=spec.wear_eur_per_kwh,
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
    #: grid carbon intensity per slot (``helios backtest --carbon``), None without [g/kWh]
    co2_g_per_kwh: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.index)
        for name in ("spot_eur_per_kwh", "buy_eur_per_kwh", "sell_eur_per_kwh", "pv_kw",
                     "load_kw", "grid_ok", "outage_start"):
            arr = getattr(self, name)
            if np.shape(arr) != (n,):
                raise DataError(f"series {name}: expected {n} values, got {np.shape(arr)}")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise DataError(f"series {name}: contains non-finite values")
        co2 = self.co2_g_per_kwh
        if co2 is not None and (np.shape(co2) != (n,) or not np.all(np.isfinite(co2))):
            raise DataError(f"series co2_g_per_kwh: expected {n} finite values")
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
         intent: tuple | None = None) -> plant.Flows:
    """Run one slot: the battery follows ``setpoint_kw`` as far as the physics allow.

    The physics are :func:`executor.plant.step` (``home`` is its limits); this adds the
    executor's control laws that turn a plan slot into a battery command on the actual data.

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
    :class:`executor.plant.Flows`: (import_kw, export_kw, charge_kw, discharge_kw,
    pv_used_kw, unserved_kw, soc_end_kwh)
    """
    dt = home.slot_s / 3600.0
    if intent is not None or (guard and grid_setpoint_kw is not None):
        # the executor's control law on the slot's actual net load (after the plan's PV cap)
        need = load_kw - (pv_cap_kw if pv_cap_kw < pv_kw else pv_kw)
        if intent is not None:
            to_target = power_to_target(soc_kwh, intent[3], dt, home.charge_efficiency,
                                        home.discharge_efficiency)
            grid_plan = intent.grid_kw if isinstance(intent, PlanIntent) else None
            setpoint_kw = intent_battery(intent[0], intent[1], intent[2], need, to_target, 0.0,
                                         grid_plan)
        else:
            setpoint_kw = guard_battery(need - grid_setpoint_kw, setpoint_kw, need)
        grid_setpoint_kw = None
    return plant.step(home, soc_kwh, dt, pv_kw, load_kw, setpoint_kw, pv_cap_kw, grid_ok,
                      sell_eur_per_kwh >= 0.0, grid_setpoint_kw)


# ============================================================================================
# traces and the strategy protocol


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
    #: the electric car's charging power per slot (drawn from the house; None: no car) [kW]
    ev_kw: np.ndarray | None = None
    #: the water heater's power per slot (drawn from the house; None: not simulated) [kW]
    heater_kw: np.ndarray | None = None

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


# ============================================================================================
# running a strategy


def simulate(home: Home, series: Series, start: int, stop: int, soc_start_kwh: float,
             strategy: Strategy, progress: Callable[[int], None] | None = None,
             progress_every: int = 96, fine: FineSteps | None = None) -> Trace:
    """Run ``strategy`` on slots ``[start, stop)`` of ``series`` from ``soc_start_kwh``.

    ``progress(k)`` is called with the number of slots done since the last call. With
    ``fine`` each slot's physics run in finer steps (e.g. 1-minute truth) with the same
    control law, and the slot's row is their aggregate.

    A strategy with a ``car`` (:class:`planner.evaluate.ev.Car`) plans an electric car too:
    after its decision the car draws ``car.step(t, strategy.ev_kw(t))`` from the house, on
    top of the slot's load, so the battery's control law sees it as the executor would. A
    strategy with a ``heater`` (:class:`planner.evaluate.heater.Heater`) likewise: the heater
    draws ``heater.step(t, strategy.heater_kw(t))``.
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
    car = getattr(strategy, "car", None)
    if car is not None and fine is not None:
        raise DataError("an electric car in the backtest is simulated at slot resolution "
                        "only (no --minute)")
    ev_kw = np.zeros(n) if car is not None else None
    heater = getattr(strategy, "heater", None)
    if heater is not None and fine is not None:
        raise DataError("a water heater in the backtest is simulated at slot resolution "
                        "only (no --minute)")
    heater_kw = np.zeros(n) if heater is not None else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    done = 0
    for i, t in enumerate(range(start, stop)):
        setpoint, cap, grid = strategy.decide(t, e)
        intent = strategy.intent if by_intent else None
        if fine is None:
            load_t = load[t]
            if car is not None:
                ev_kw[i] = car.step(t, strategy.ev_kw(t), series.index[t])
                load_t += ev_kw[i]
            if heater is not None:
                heater_kw[i] = heater.step(t, strategy.heater_kw(t))
                load_t += heater_kw[i]
            row = step(home, e, setpoint, cap, pv[t], load_t, ok[t], sell[t], grid, guard,
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
    # cpu_s: this process's CPU time (user + system) over the loop, steadier than the wall
    # time on a shared machine
    info = {"run_s": round(time.perf_counter() - t0, 3),
            "cpu_s": round(time.process_time() - cpu0, 3)}
    if hasattr(strategy, "stats"):
        info.update(strategy.stats())
    return Trace(strategy.name, series.index[start:stop], soc_start_kwh, out[0], out[1],
                 out[2], out[3], out[4], out[5], out[6], info, ev_kw, heater_kw)
