r"""An electric car: charged from the house's AC bus while it is plugged in, by its departures.

Per slot the charger draws ``p_t = plugged_t · x_t`` (a :class:`Flow`, ``x`` in
[0, max_charge_kw]; ``plugged`` is 1 in a slot the car is at home and plugged in for the
whole slot, 0 otherwise: a column bound, no row). The car's energy [kWh] at the end of slot
``t`` is

.. math::

    E_t = E_0 + \eta\,\Delta t \sum_{\tau \le t} p_\tau - \sum_{d_k \le t} trip_k
    \qquad E_t \le E_{max}

(``trip_k``: the energy the car uses between departure ``k`` and coming home). Each departure
``k`` inside the horizon (and the "minimum SoC now" deadline, row 0) is a **soft** target:

.. math::

    \eta\,\Delta t \sum_{t < d_k} p_t + s_k \ge target_k - E_0 + \sum_{j < k} trip_j,
    \qquad cost = \sum_k \pi_k\,s_k

with ``π`` the shortfall penalty per kWh. The sums ``Σ_{t<d_k} plugged_t · x_t`` are one
Parameter matrix ``W`` (rows × slots, ``η Δt`` where slot ``t`` ends before ``d_k`` and the
car is plugged in, 0 elsewhere) times ``x``, so the problem stays DPP and compiles once per
shape. Nothing else says *when* it charges: the cheapest and sunniest slots before each
departure, and not from the home battery when its round trip costs more than it saves, come
from the objective. A target that cannot be met (not enough plugged-in hours at full power)
makes every plugged-in slot before the departure charge at full power; what is still missing
is the reported shortfall (``ev_shortfall_kwh``).

"Minimum SoC now" (``min_soc_now_pct``): charge at once to N %, whatever the price. The
deadline is the end of the earliest plugged-in slot by which N % is reachable at full power,
and its row costs ten times the shortfall penalty, so it is met at full power from now.

Departures and home-comings are read on the local wall clock (``tz``): ``departure: "07:30"``
is 07:30 local on every day (or per weekday), so the number of slots before a departure on a
DST day follows the clock (2026-03-29 07:30 Europe/Berlin is 05:30 UTC, 2026-10-25 07:30 is
06:30 UTC). A slot is usable only when the car is plugged in for all of it: a slot that a
departure cuts in two is not, nor is a slot in which the car comes home. After a departure the
car is away until the next arrival (``arrival: "18:00"``: plugged in again then).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Component, Context, Flow, put

__all__ = ["NAME", "WEEKDAYS", "Ev", "EvSpec", "availability", "minutes"]

NAME = "ev"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: "minimum SoC now" outweighs a departure's target by this factor
MIN_NOW_WEIGHT = 10.0
#: inside the "minimum SoC now" deadline an earlier slot is preferred by this per slot
URGENCY_EUR_PER_KWH = 1e-6
#: the charger current per phase below which a car does not charge (IEC 61851: 6 A) [A]
MIN_CURRENT_A = 6.0
VOLTAGE_V = 230.0
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def minutes(text: object, key: str) -> int | None:
    """``"HH:MM"`` → minutes after local midnight; None for ``None`` (no departure that day).

    Raises
    ------
    ValueError
        Malformed, naming ``key``.
    """
    if text is None:
        return None
    m = _HHMM.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{key}: expected a local time \"HH:MM\" or null, got {text!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _weekly(value: object, key: str) -> tuple[int | None, ...]:
    """One time for every day, or ``{mon: "07:30", ..., sun: null}`` (missing days: none)."""
    if isinstance(value, dict):
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"{key}: expected weekday keys {', '.join(WEEKDAYS)}, "
                             f"got {sorted(unknown)}")
        return tuple(minutes(value.get(d), f"{key}.{d}") for d in WEEKDAYS)
    return (minutes(value, key),) * 7


@dataclass(frozen=True)
class EvSpec:
    """What fixes the car's behaviour (hashable: part of a model's spec).

    ``departure`` / ``arrival``: ``"HH:MM"`` local, or a mapping weekday → ``"HH:MM"`` | None;
    ``trip_kwh``: energy used per trip (the car comes home with that much less). The live
    state (SoC, plugged in now, a one-off target) comes per solve through
    ``Context.extra["ev"]`` (:meth:`Ev.set_inputs`).
    """

    capacity_kwh: float = 60.0
    max_charge_kw: float = 11.0
    phases: int = 3
    min_charge_kw: float | None = None  # None: 6 A × phases × 230 V
    charge_efficiency: float = 0.9
    soc_pct: float = 50.0  # when no live SoC is given
    max_soc_pct: float = 100.0  # the car's charge limit
    target_soc_pct: float = 80.0
    departure: Any = "07:30"
    arrival: Any = "18:00"
    trip_kwh: float = 7.0
    shortfall_penalty_eur_per_kwh: float = 1.0
    tz: str = "Europe/Berlin"

    def __post_init__(self):
        for key in ("capacity_kwh", "max_charge_kw", "charge_efficiency"):
            if not getattr(self, key) > 0:
                raise ValueError(f"ev.{key}: expected a value > 0, got {getattr(self, key)!r}")
        if self.charge_efficiency > 1:
            raise ValueError(f"ev.charge_efficiency: expected a value <= 1, "
                             f"got {self.charge_efficiency!r}")
        if self.phases not in (1, 3):
            raise ValueError(f"ev.phases: expected 1 or 3, got {self.phases!r}")
        for key in ("soc_pct", "max_soc_pct", "target_soc_pct"):
            if not 0 <= getattr(self, key) <= 100:
                raise ValueError(f"ev.{key}: expected 0..100 %, got {getattr(self, key)!r}")
        if self.min_kw > self.max_charge_kw:
            raise ValueError(f"ev.min_charge_kw: expected <= max_charge_kw "
                             f"({self.max_charge_kw:g}), got {self.min_kw:g}")
        if isinstance(self.departure, dict) or isinstance(self.arrival, dict):
            # a dict is not hashable: keep the parsed weekly tuples instead
            object.__setattr__(self, "departure", _weekly(self.departure, "ev.departure"))
            object.__setattr__(self, "arrival", _weekly(self.arrival, "ev.arrival"))
        self.weekly()  # validate

    @property
    def min_kw(self) -> float:
        """The lowest power the car charges at (6 A × phases × 230 V by default). [kW]"""
        if self.min_charge_kw is not None:
            return self.min_charge_kw
        return MIN_CURRENT_A * self.phases * VOLTAGE_V / 1000.0

    def weekly(self) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
        """(departure, arrival) minutes after local midnight, Monday first."""
        dep = self.departure if isinstance(self.departure, tuple) else _weekly(
            self.departure, "ev.departure")
        arr = self.arrival if isinstance(self.arrival, tuple) else _weekly(
            self.arrival, "ev.arrival")
        return dep, arr


@dataclass(frozen=True)
class Availability:
    """Where the car is in one solve: plugged in per slot, the departures it leaves at."""

    plugged: np.ndarray  # 1.0 = plugged in for the whole slot
    departures: list[tuple[pd.Timestamp, int]]  # (UTC instant, number of slots ended by then)


def _events(start: pd.Timestamp, end: pd.Timestamp, spec: EvSpec,
            one_off: pd.Timestamp | None) -> list[tuple[pd.Timestamp, str]]:
    """Departures and arrivals in (start, end], sorted, from the local weekly times."""
    dep, arr = spec.weekly()
    tz = spec.tz
    day = start.tz_convert(tz).normalize().tz_localize(None) - pd.Timedelta(days=1)
    last = end.tz_convert(tz).normalize().tz_localize(None) + pd.Timedelta(days=1)
    events = []
    while day <= last:
        for times, kind in ((dep, "departure"), (arr, "arrival")):
            m = times[day.weekday()]
            if m is None:
                continue
            local = (day + pd.Timedelta(minutes=m)).tz_localize(
                tz, ambiguous=True, nonexistent="shift_forward")
            at = local.tz_convert("UTC")
            if start < at <= end:
                events.append((at, kind))
        day += pd.Timedelta(days=1)
    if one_off is not None:
        # a one-off "by" time replaces the first scheduled departure
        first = next((i for i, (_, k) in enumerate(events) if k == "departure"), None)
        if first is not None:
            events.pop(first)
        events.append((one_off, "departure"))
    order = {"arrival": 0, "departure": 1}
    return sorted(events, key=lambda e: (e[0], order[e[1]]))


def availability(index: pd.DatetimeIndex, slot_s: int, spec: EvSpec, plugged_now: bool,
                 one_off: pd.Timestamp | None = None) -> Availability:
    """Plugged in per slot and the departures, from the state now and the weekly times.

    The car is plugged in now or not (``plugged_now``); it leaves at each departure it is
    at home for and is plugged in again at the next arrival. A departure while it is away is
    ignored (it left early); a slot is usable only when the car is plugged in all of it.
    """
    n = len(index)
    starts = index.tz_convert("UTC")
    step = pd.Timedelta(seconds=slot_s)
    events = _events(starts[0], starts[-1] + step, spec, one_off)
    state = np.empty(n, dtype=bool)  # plugged in at the slot's start
    cut = np.zeros(n, dtype=bool)  # some event inside the slot
    departures = []
    home = plugged_now
    ends = starts + step
    e = 0
    for t in range(n):
        while e < len(events) and events[e][0] <= starts[t]:
            home = _apply(events[e], home, departures, ends)
            e += 1
        state[t] = home
        while e < len(events) and events[e][0] < ends[t]:
            cut[t] = True
            home = _apply(events[e], home, departures, ends)
            e += 1
    while e < len(events):
        home = _apply(events[e], home, departures, ends)
        e += 1
    return Availability((state & ~cut).astype(float), departures)


def _apply(event: tuple[pd.Timestamp, str], home: bool, departures: list,
           ends: pd.DatetimeIndex) -> bool:
    at, kind = event
    if kind == "arrival":
        return True
    if home:
        departures.append((at, int(ends.searchsorted(at, side="right"))))
    return False


class Ev(Component):
    """The car (see the module docstring).

    Per-solve input ``Context.extra["ev"]`` (all optional): ``soc_pct`` (now),
    ``plugged_in`` (now; default True), ``plugged`` (an array of 0/1 per slot: overrides the
    weekly times), ``target_soc_pct`` + ``by`` (a one-off target: an aware datetime that
    replaces the next departure), ``min_soc_now_pct`` (charge at once to N %).
    """

    #: a flexible device: its power per slot is ``schedule.json``'s ``devices.ev.power_kw``
    device = True

    def __init__(self, spec: EvSpec, name: str = NAME):
        super().__init__(name)
        self.spec = spec
        self.rows = 0
        self.availability: Availability | None = None
        self._targets = np.zeros(0)
        self._soc0 = 0.0
        self._trips = np.zeros(0)

    def build(self, n: int, dt_h: float) -> None:
        """The charge flow, the SoC cap and one soft-target row per possible departure."""
        super().build(n, dt_h)
        s, name = self.spec, self.name
        # row 0: "minimum SoC now"; then at most one departure per day of horizon (+ 2)
        k = self.rows = int(math.ceil(n * dt_h / 24.0)) + 3
        self.charge = Flow(f"{name}_power", n, s.max_charge_kw)
        self.weights = cp.Parameter((k, n), nonneg=True, name=f"{name}_charged_by_kwh_per_kw")
        self.need = cp.Parameter(k, name=f"{name}_need_kwh")
        self.penalty = cp.Parameter(k, nonneg=True, name=f"{name}_penalty")
        self.headroom = cp.Parameter(n, name=f"{name}_headroom_kwh")
        self.short = cp.Variable(k, bounds=[0, None], name=f"{name}_shortfall_kwh")
        # a tie-break towards "now" inside the minimum-SoC-now deadline (1e-6 EUR/kWh/slot)
        self.urgency = cp.Parameter(n, nonneg=True, name=f"{name}_urgency")
        stored = s.charge_efficiency * dt_h * cp.cumsum(self.charge.kw)
        self.constraints = [self.weights @ self.charge.x + self.short >= self.need,
                            stored <= self.headroom]
        self.cost = self.penalty @ self.short + self.urgency @ self.charge.x
        self.bus_kw = -self.charge.kw
        self.flows = [self.charge]

    def set_inputs(self, ctx: Context) -> None:
        """Plugged-in slots, departure rows, targets, headroom for this solve."""
        s, n, dt, k = self.spec, self.n, self.dt_h, self.rows
        if ctx.index is None:
            raise ValueError(f"{self.name}: the context has no slot times (Context.index)")
        extra = dict(ctx.extra.get(self.name) or {})
        cap = s.capacity_kwh
        soc0 = float(np.clip(extra.get("soc_pct", s.soc_pct), 0.0, 100.0)) / 100 * cap
        by = extra.get("by")
        by = pd.Timestamp(by).tz_convert("UTC") if isinstance(by, (datetime, str)) else None
        av = availability(ctx.index, int(round(dt * 3600)), s,
                          bool(extra.get("plugged_in", True)), by)
        plugged = av.plugged
        if extra.get("plugged") is not None:
            plugged = np.asarray(extra["plugged"], dtype=float)
            if plugged.shape != (n,):
                raise ValueError(f"extra.{self.name}.plugged: expected {n} values, "
                                 f"got {plugged.shape}")
        self.availability = Availability(plugged, av.departures[:k - 1])
        self.charge.set_limit(plugged * s.max_charge_kw)
        eta_dt = s.charge_efficiency * dt
        # the energy used by each trip leaves the car at its departure
        trips = np.zeros(n)
        for _, ended in self.availability.departures:
            if ended < n:
                trips[ended:] += s.trip_kwh
        weights, need, penalty = np.zeros((k, n)), np.zeros(k), np.zeros(k)
        targets = np.zeros(k)
        target_pct = float(extra.get("target_soc_pct", s.target_soc_pct))
        pi = s.shortfall_penalty_eur_per_kwh
        for row, (_, ended) in enumerate(self.availability.departures, start=1):
            weights[row, :ended] = eta_dt * plugged[:ended]
            used = s.trip_kwh * (row - 1)  # trips before this departure
            targets[row] = min(target_pct, s.max_soc_pct) / 100 * cap
            need[row] = targets[row] - soc0 + used
            penalty[row] = pi
        min_now = extra.get("min_soc_now_pct")
        urgency = np.zeros(n)
        if min_now is not None:
            targets[0] = min(float(min_now), s.max_soc_pct) / 100 * cap
            missing = targets[0] - soc0
            if missing > 0:
                reach = np.cumsum(eta_dt * s.max_charge_kw * plugged)
                deadline = int(min(np.searchsorted(reach, missing - 1e-9) + 1, n))
                weights[0, :deadline] = eta_dt * plugged[:deadline]
                need[0] = missing
                penalty[0] = MIN_NOW_WEIGHT * pi
                urgency[:deadline] = URGENCY_EUR_PER_KWH * dt * np.arange(1, deadline + 1)
        put(self.urgency, urgency)
        put(self.weights, weights)
        put(self.need, need)
        put(self.penalty, penalty)
        # a car above its charge limit already: no more, but not infeasible
        put(self.headroom, max(s.max_soc_pct / 100 * cap, soc0) - soc0 + trips)
        self._targets, self._soc0, self._trips = targets, soc0, trips

    def soc_kwh(self) -> np.ndarray:
        """The car's energy at the end of each slot (0 at worst while it is away). [kWh]"""
        s = self.spec
        stored = s.charge_efficiency * self.dt_h * np.cumsum(self.charge.value)
        return np.clip(self._soc0 + stored - self._trips, 0.0, s.capacity_kwh)

    def sessions(self) -> list[dict[str, Any]]:
        """Per departure: its UTC time, the SoC then [%], the target and the shortfall [kWh]."""
        s, out = self.spec, []
        stored = s.charge_efficiency * self.dt_h * np.cumsum(
            np.concatenate([[0.0], self.charge.value]))
        for row, (at, ended) in enumerate(self.availability.departures, start=1):
            energy = self._soc0 + stored[ended] - s.trip_kwh * (row - 1)
            out.append({"departure": at, "soc_pct": 100 * energy / s.capacity_kwh,
                        "target_soc_pct": 100 * self._targets[row] / s.capacity_kwh,
                        "shortfall_kwh": max(0.0, self._targets[row] - energy)})
        return out

    def outputs(self) -> dict[str, Any]:
        """``ev_power_kw`` (+ = drawn from the bus), ``ev_soc_pct`` (slot end), ``ev_plugged``
        (1 = plugged in the whole slot), ``ev_shortfall_kwh`` (summed over the departures),
        ``ev_departure_soc_pct`` (at the first departure; NaN without one) and
        ``ev_min_now_shortfall_kwh``."""
        s, name = self.spec, self.name
        sessions = self.sessions()
        short0 = 0.0
        if self.need.value[0] > 0:
            stored = float(self.weights.value[0] @ self.charge.x.value)
            short0 = max(0.0, float(self.need.value[0]) - stored)
        return {
            f"{name}_power_kw": self.charge.value,
            f"{name}_soc_pct": 100 * self.soc_kwh() / s.capacity_kwh,
            f"{name}_plugged": self.availability.plugged.copy(),
            f"{name}_shortfall_kwh": float(sum(x["shortfall_kwh"] for x in sessions)),
            f"{name}_departure_soc_pct": sessions[0]["soc_pct"] if sessions else float("nan"),
            f"{name}_min_now_shortfall_kwh": short0,
        }
