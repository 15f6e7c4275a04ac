r"""A deferrable load (EMHASS-like): energy per day inside a local-time window, planned with
the battery in one problem.

Per slot the load draws ``p_t = scale_t · x_t`` (a :class:`Flow`, ``x`` in [0, power]; the
Parameter ``scale`` is 1 inside an enforced window and 0 elsewhere, so the window is a column
bound, not a row). For each local day ``d`` whose energy is planned in this solve:

.. math::

    E_d = \sum_{t \in d} p_t\,\Delta t, \qquad E_d + s_d \ge need_d, \qquad E_d \le hi_d,
    \qquad cost = \sum_d \pi_d\,s_d

``need_d`` is the daily energy (minus what was already delivered today, a per-solve input),
``hi_d`` = ``need_d`` for a modulating load and ``need_d`` rounded up to whole on-slots for an
on/off one; the shortfall ``s_d`` costs ``π_d``: the soft-target penalty for a must-run load
(missing energy is reported as a violation) or ``value_eur_per_kwh`` for an only-if-cheap load
(it runs only where a kWh costs less). Nothing else is said about *when* it runs: the cheapest
slots, PV surplus first, and not from the battery when the round trip costs more than it saves
all come from the objective, with the battery's efficiencies and wear in the same problem.

Which slots belong to day ``d`` is read on the local wall clock (``site.timezone``), so a DST
day has an hour more or less of window and the day boundaries stay at local midnight: a slot
whose start lies in ``[from, to + defer)`` after day ``d``'s midnight (``to <= from`` crosses
midnight; the span is capped at 24 h). A day is planned once its whole period is inside the
horizon and it is at most ``days_ahead`` days after today; its slots are closed otherwise (it
is planned by a later run). The rows are one per possible day (``K = ⌈horizon / 24 h⌉ + 2``),
with the slot membership as a Parameter matrix, so the problem compiles once per shape.

On/off (``modulating: false``) adds binaries: ``x = power · δ``, ``δ ≤ open`` and, for a
minimum run of ``L`` slots, start-ups ``σ_t ∈ [0, 1]`` (continuous: integral whenever ``δ``
is) with ``σ_t ≥ δ_t − δ_{t−1}``, ``σ_t ≤ δ_t``, ``σ_t ≤ 1 − δ_{t−1}`` and the turn-on
inequalities ``Σ_{τ=t−L+1..t} σ_τ ≤ δ_t`` (Rajan & Takriti 2005). They are the component's
:attr:`Component.discrete` constraints: the builder solves the LP relaxation first (for the
duals), tries :meth:`DeferrableLoad.round_relaxation` and then the MILP, and only for
configurations that have such a device. Exactness: tests/planner/test_on_off_exact.py
(every on/off pattern enumerated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from planner.config.devices import LoadConfig, parse_window
from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Component, Context, Flow, put

__all__ = ["DeferrableLoad", "LoadSpec", "day_of_slots", "load_spec"]

@dataclass(frozen=True)
class LoadSpec:
    """What fixes a deferrable load's behaviour (hashable: part of the model's spec)."""

    name: str
    power_kw: float
    need_kwh: float  # per day
    from_min: int  # window start, minutes after local midnight
    to_min: int  # window end (<= from_min: the next day)
    tz: str
    defer_min: int = 0  # the day's energy may come this long after the window's end
    modulating: bool = True
    min_run_h: float = 0.0  # on/off only
    value_eur_per_kwh: float | None = None  # None: must run
    days_ahead: int = 1
    #: the water heater's tank (:class:`~planner.optimize.components.water_heater.TankSpec`)
    tank: Any = None

    @property
    def end_min(self) -> int:
        """End of a day's period, minutes after that day's midnight (span at most 24 h)."""
        end = self.to_min if self.to_min > self.from_min else self.to_min + 1440
        return min(end + self.defer_min, self.from_min + 1440)


def load_spec(cfg: LoadConfig, tz: str) -> LoadSpec:
    """The spec of one ``loads:`` entry."""
    start, end = parse_window(cfg.window)
    return LoadSpec(cfg.name, cfg.power_kw, cfg.need_kwh, start, end, tz,
                    modulating=cfg.modulating, min_run_h=cfg.min_run_h,
                    value_eur_per_kwh=cfg.value_eur_per_kwh, days_ahead=cfg.days_ahead)


def _local(index: pd.DatetimeIndex, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """(local day number since 1970, local minute of day) of each timestamp."""
    naive = index.tz_convert(tz).tz_localize(None)
    days = naive.to_numpy().astype("datetime64[D]").astype(np.int64)
    return days, np.asarray(naive.hour * 60 + naive.minute)


def day_of_slots(index: pd.DatetimeIndex, slot_s: int, spec: LoadSpec
                 ) -> tuple[np.ndarray, int, list[int]]:
    """Each slot's local day (``-1``: outside every window), today's day number and the days
    planned in this solve (whole period inside the horizon, at most ``days_ahead`` after
    today)."""
    days, minute = _local(index, spec.tz)
    start, end = spec.from_min, spec.end_min
    this_day = (minute >= start) & (minute < end)
    from_yesterday = ~this_day & (minute + 1440 < end)
    day = np.where(this_day, days, np.where(from_yesterday, days - 1, -1))
    today = int(day[0]) if day[0] >= 0 else int(days[0])
    end_days, end_minute = _local(pd.DatetimeIndex([index[-1] + pd.Timedelta(seconds=slot_s)]),
                                  spec.tz)
    planned = [int(d) for d in np.unique(day[day >= 0])
               if d <= today + spec.days_ahead
               and (end_days[0] - d) * 1440 + end_minute[0] >= end]
    return day, today, planned


class DeferrableLoad(Component):
    """A load with a daily energy inside its window (see the module docstring).

    Per-solve input (``Context.extra[name]``): the energy already delivered today [kWh] (a
    number, or ``{"delivered_kwh": x}``), subtracted from today's need at a re-plan.
    """

    #: a flexible device: its power per slot is ``schedule.json``'s ``devices.<name>.power_kw``
    device = True

    def __init__(self, spec: LoadSpec):
        super().__init__(spec.name)
        self.spec = spec
        self.discrete: list = []
        self.planned_days: list[int] = []
        self.today = 0
        self._unrounded: tuple[np.ndarray, np.ndarray] | None = None
        #: the slots a manual override runs the load in (:meth:`force_open`)
        self.forced = np.zeros(0, dtype=bool)

    def build(self, n: int, dt_h: float) -> None:
        """The power flow, one energy row pair per possible day, binaries for on/off."""
        super().build(n, dt_h)
        s, name = self.spec, self.name
        k = int(math.ceil(n * dt_h / 24.0)) + 2
        self.run = Flow(f"{name}_power", n, s.power_kw)
        self.member = cp.Parameter((k, n), nonneg=True, name=f"{name}_member_h")
        self.need = cp.Parameter(k, nonneg=True, name=f"{name}_need_kwh")
        self.hi = cp.Parameter(k, nonneg=True, name=f"{name}_hi_kwh")
        self.penalty = cp.Parameter(k, nonneg=True, name=f"{name}_penalty")
        self.short = cp.Variable(k, bounds=[0, None], name=f"{name}_shortfall_kwh")
        energy = self.member @ self.run.x
        self.constraints = [energy + self.short >= self.need, energy <= self.hi]
        self.cost = self.penalty @ self.short
        self.bus_kw = -self.run.kw
        self.flows = [self.run]
        self.discrete = []
        if not s.modulating:
            self.open = cp.Parameter(n, nonneg=True, name=f"{name}_open")
            on = self.on = cp.Variable(n, boolean=True, name=f"{name}_on")
            self.discrete = [self.run.x == s.power_kw * on, on <= self.open]
            blocks = int(round(s.min_run_h / dt_h))
            if blocks > 1:
                self.on0 = cp.Parameter(name=f"{name}_on_at_start")
                previous = cp.hstack([cp.reshape(self.on0, (1,), order="C"), on[:-1]])
                # start-ups: continuous, exact at integer ``on`` (σ = max(0, δ_t − δ_{t−1})),
                # and the turn-on inequalities of Rajan & Takriti (2005), tighter in the LP
                start = cp.Variable(n, bounds=[0.0, 1.0], name=f"{name}_start")
                extra = [start <= on, start <= 1 - previous]
                recent = start
                for j in range(1, min(blocks, n)):
                    recent = recent + cp.hstack([np.zeros(j), start[:n - j]])
                self.discrete += [start >= on - previous, recent <= on, *extra]

    def _input(self, ctx: Context) -> dict:
        given = ctx.extra.get(self.name, {})
        return {"delivered_kwh": float(given)} if isinstance(given, (int, float)) else given

    def set_inputs(self, ctx: Context) -> None:
        """Open slots, day membership, needs and penalties for this solve's slots."""
        s, n, dt = self.spec, self.n, self.dt_h
        if ctx.index is None:
            raise ValueError(f"{self.name}: the context has no slot times (Context.index)")
        extra = self._input(ctx)
        self._unrounded = None
        self.forced = np.zeros(n, dtype=bool)
        day, today, planned = day_of_slots(ctx.index, int(round(dt * 3600)), s)
        k = self.need.shape[0]
        planned = planned[:k]
        self.planned_days, self.today = planned, today
        member = np.zeros((k, n))
        need, hi = np.zeros(k), np.zeros(k)
        step = s.power_kw * dt
        for row, d in enumerate(planned):
            member[row] = (day == d) * dt
            want = s.need_kwh - (float(extra.get("delivered_kwh", 0.0)) if d == today else 0.0)
            need[row] = max(0.0, want)
            hi[row] = need[row] if s.modulating else step * math.ceil(need[row] / step - 1e-9)
        open_ = member.sum(axis=0) > 0
        self.run.set_limit(np.where(open_, s.power_kw, 0.0))
        put(self.member, member)
        put(self.need, need)
        put(self.hi, hi)
        penalty = (ctx.site.soft_penalty_eur_per_kwh if s.value_eur_per_kwh is None
                   else s.value_eur_per_kwh)
        put(self.penalty, np.full(k, penalty))
        if not s.modulating:
            put(self.open, open_.astype(float))
            if hasattr(self, "on0"):
                put(self.on0, 1.0 if extra.get("on_at_start") else 0.0)

    def force_open(self, slots: np.ndarray, kw: np.ndarray) -> None:
        """A manual override (:mod:`~planner.optimize.components.override`) runs the load at
        ``kw`` in ``slots``: open them on top of the window and count that energy towards its
        day (outside every window: the first planned day; the rest of the day's need is
        planned as usual); the override's slots leave the
        day's energy rows, so forcing more than the day needs can never be infeasible.
        Called after :meth:`set_inputs`."""
        forced = np.asarray(slots, dtype=bool)
        self.forced = self.forced | forced
        energy = np.where(forced, np.asarray(kw, dtype=float) * self.dt_h, 0.0)
        member = np.asarray(self.member.value, dtype=float).copy()
        inside = member > 0
        given = inside.astype(float) @ energy
        if self.planned_days:  # outside every window: counted towards the first planned day
            given[0] += float(energy[~inside.any(axis=0)].sum())
        member[:, forced] = 0.0
        put(self.member, member)
        put(self.need, np.clip(self.need.value - given, 0.0, None))
        put(self.hi, np.clip(self.hi.value - given, 0.0, None))
        self.run.set_limit(np.where(forced | (self.run.limit_kw > 0), self.spec.power_kw, 0.0))
        if not self.spec.modulating:
            put(self.open, np.maximum(self.open.value, forced.astype(float)))

    def earliest_kw(self) -> np.ndarray:
        """The same days' energy at full power from the start of each window (the baselines'
        heater/load: what a timer or thermostat without a plan would do; the window's rows as
        they were before :meth:`round_relaxation`). [kW]"""
        member, hi = self.unrounded()
        out = np.zeros(self.n)
        step = self.spec.power_kw * self.dt_h
        for row in range(member.shape[0]):
            left = hi[row]
            for t in np.flatnonzero(member[row] > 0):
                if left <= 1e-12:
                    break
                take = min(step, left)
                out[t] = take / self.dt_h
                left -= take
        return out

    def unrounded(self) -> tuple[np.ndarray, np.ndarray]:
        """The energy rows' membership and upper bounds as :meth:`set_inputs` (and
        :meth:`force_open`) made them, before any :meth:`round_relaxation`."""
        if getattr(self, "_unrounded", None) is not None:
            return self._unrounded
        return (np.asarray(self.member.value, dtype=float),
                np.asarray(self.hi.value, dtype=float))

    def relaxation_ok(self) -> bool:
        """The LP's power is already on/off (0 or ``power_kw`` in every open slot) and every
        run is at least the minimum block (a run cut by the horizon's end excepted)."""
        if self.spec.modulating:
            return True
        power = self.spec.power_kw
        x = self.run.value
        on = x > power / 2
        if np.abs(np.where(on, power - x, x)).max(initial=0.0) > 1e-6:
            return False
        blocks = int(round(self.spec.min_run_h / self.dt_h))
        if blocks <= 1 or not on.any():
            return True
        edges = np.diff(np.concatenate(([0], on.astype(int), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lengths = np.where(ends >= self.n, blocks, ends - starts)
        at_start = (starts == 0) & (float(self.on0.value) > 0.5)
        return bool(np.all((lengths >= blocks) | at_start))

    def round_relaxation(self, price: np.ndarray | None = None) -> bool:
        """On/off: per planned day, the LP's energy rounded to ``k`` whole on-slots, put in
        the ``k`` open slots the relaxation used most (one contiguous run of ``k`` when a
        minimum block applies: the one the relaxation used most, the cheaper at ``price``
        among equals); those slots' limit stays, the others close and the day's
        need and upper bound become ``k`` slots' energy, so the LP can only run them at full
        power (or fall short, penalised: never infeasible); an override's slots stay open. A
        tank (:class:`~planner.optimize.components.water_heater.WaterHeater` rounds it), a day
        too short for its block: no rounding (the MILP decides)."""
        s = self.spec
        if s.modulating:
            return True
        if getattr(s, "tank", None) is not None:
            return False
        member, hi = self.unrounded()
        self._unrounded = (member, hi)
        x = np.asarray(self.run.value, dtype=float)
        step = s.power_kw * self.dt_h
        blocks = int(round(s.min_run_h / self.dt_h))
        if blocks > 1 and float(self.on0.value) > 0.5:
            return False  # a run going on at the start: the MILP keeps its block rule
        limit = np.zeros(self.n)
        need = np.zeros_like(hi)
        for row in range(member.shape[0]):
            slots = np.flatnonzero(member[row] > 0)
            if not len(slots) or hi[row] <= 1e-12:
                continue
            k = min(int(math.ceil(float(member[row] @ x) / step - 1e-6)),
                    int(round(hi[row] / step)))
            if k <= 0:
                continue
            if blocks > 1:
                if k < blocks:
                    return False
                runs = [slots[i:i + k] for i in range(len(slots) - k + 1)
                        if slots[i + k - 1] - slots[i] == k - 1]
                if not runs:
                    return False
                # the run the relaxation used most, the cheaper one (price) among equals
                cheap = price if price is not None and np.isfinite(price).all() else None
                chosen = max(runs, key=lambda r: (round(float(x[r].sum()), 6),
                                                  -float(cheap[r].sum()) if cheap is not None
                                                  else 0.0))
            else:
                chosen = slots[np.argsort(-x[slots], kind="stable")[:k]]
            limit[chosen] = s.power_kw
            need[row] = k * step
        limit[self.forced] = s.power_kw  # an override's slots stay open (they left the rows)
        # the energy rows count ``x``, not the bus power: a closed slot must leave them too,
        # or the rounded LP would get energy for free there (a relaxation, not a restriction)
        member = np.where(limit > 0, member, 0.0)
        self.run.set_limit(limit)
        put(self.member, member)
        put(self.need, need)
        put(self.hi, need)
        return True

    def outputs(self) -> dict[str, Any]:
        """``<name>_power_kw`` per slot (+ = drawn from the bus); ``<name>_need_kwh`` and
        ``<name>_shortfall_kwh`` summed over the days planned in this solve."""
        power = self.run.value
        need = np.asarray(self.need.value, dtype=float)
        delivered = np.asarray(self.member.value, dtype=float) @ power
        return {
            f"{self.name}_power_kw": power,
            f"{self.name}_earliest_kw": self.earliest_kw(),
            f"{self.name}_need_kwh": float(need.sum()),
            f"{self.name}_shortfall_kwh": float(np.clip(need - delivered, 0.0, None).sum()),
        }
