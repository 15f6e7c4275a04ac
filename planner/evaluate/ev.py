"""The electric car in the backtest: when it is at home, what it drives, how it is charged.

* **The profile** (:class:`EvProfile`): per slot, plugged in at home for the whole slot or
  not, and the energy the car uses driving in that slot. :func:`commuter` generates one
  (by default: away on weekdays 07:30–18:00 local, 7 kWh a trip, home and plugged in the rest
  of the time); :func:`read_profile` reads one from a CSV (``ts_utc,plugged[,use_kwh]``).
  The profile is the truth; the planner only knows the ``ev:`` config (its weekly departure
  and arrival times, ``trip_kwh``) and the car's SoC and plugged state now.
* **The car** (:class:`Car`): the physics of one slot — the charger delivers what it is asked
  for while the car is plugged in, rounded as the executor rounds a current (below half the
  6 A minimum: nothing; below the minimum: the minimum), never above the car's charge limit;
  the SoC at every departure is recorded against the target.
* **The car's baselines** (:func:`at_plugin`, :func:`cheapest_hours`): the car charged alone,
  whatever the house does: at full power from plug-in until the target, or in the cheapest
  slots (buy price) of each plug-in session, enough for the target by the departure. The
  home battery is then planned separately, with the car's power as part of the load.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner.config import HeliosConfig
from planner.core.errors import DataError
from planner.evaluate.physics import Series, Trace
from planner.optimize.components.ev import EvSpec, availability
from planner.optimize.model import ev_spec

__all__ = ["COMMUTER", "RULES", "Car", "Cars", "EvProfile", "at_plugin", "cheapest_hours",
           "commuter", "compare", "make_profile", "read_profile", "with_load"]

#: the default profile: the car leaves on weekdays at 07:30 and is back at 18:00
COMMUTER = "commuter"
#: a departure counts as met within this of the target [percentage points]
MET_TOL_PCT = 0.5


@dataclass(frozen=True)
class EvProfile:
    """Where the car is per slot (the truth): ``plugged`` (1 = at home and plugged in the
    whole slot) and ``use_kwh`` (energy used driving in the slot)."""

    plugged: np.ndarray
    use_kwh: np.ndarray
    source: str

    def __post_init__(self):
        if self.plugged.shape != self.use_kwh.shape:
            raise DataError("ev profile: plugged and use_kwh differ in length")
        if (self.use_kwh < 0).any():
            raise DataError("ev profile use_kwh: expected values >= 0")

    def sessions(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Plug-in sessions ``[a, b)`` (runs of plugged slots) inside ``[start, stop)``."""
        p = self.plugged[start:stop] > 0
        edges = np.diff(np.r_[0, p.astype(int), 0])
        return [(start + int(a), start + int(b)) for a, b in
                zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]


def commuter(index: pd.DatetimeIndex, slot_s: int, tz: str, trip_kwh: float = 7.0,
             departure: object = None, arrival: object = "18:00") -> EvProfile:
    """A commuter: leaves at ``departure`` (default weekdays 07:30 local, none at weekends),
    back and plugged in at ``arrival``; each trip uses ``trip_kwh`` (counted in the first slot
    away). Times as in ``ev.departure``/``ev.arrival`` (``"HH:MM"`` or per weekday)."""
    if departure is None:
        departure = {d: "07:30" for d in ("mon", "tue", "wed", "thu", "fri")}
    spec = EvSpec(departure=departure, arrival=arrival, trip_kwh=trip_kwh, tz=tz)
    av = availability(index, slot_s, spec, plugged_now=True)
    use = np.zeros(len(index))
    for _, ended in av.departures:
        if ended < len(index):
            use[ended] += trip_kwh
    return EvProfile(av.plugged.copy(), use, f"commuter ({trip_kwh:g} kWh a trip)")


def read_profile(path: str | Path, index: pd.DatetimeIndex) -> EvProfile:
    """A CSV ``ts_utc,plugged[,use_kwh]`` (one row per slot of ``index``; ``plugged`` 0/1 =
    at home and plugged in the whole slot, ``use_kwh`` energy driven in the slot, default 0).

    Raises
    ------
    DataError
        Unreadable, a missing column, or slots of the period missing (naming the first).
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"--ev-profile {path}: cannot read ({exc})") from None
    for col in ("ts_utc", "plugged"):
        if col not in frame.columns:
            raise DataError(f"--ev-profile {path}: column {col!r} missing (expected "
                            "ts_utc,plugged[,use_kwh])")
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(frame["ts_utc"], utc=True))
    except (ValueError, TypeError) as exc:
        raise DataError(f"--ev-profile {path}: ts_utc: {exc}") from None
    frame.index = stamps
    frame = frame[~frame.index.duplicated()]
    missing = index.difference(frame.index)
    if len(missing):
        raise DataError(f"--ev-profile {path}: no row for {missing[0].isoformat()} "
                        f"({len(missing)} slots missing)")
    rows = frame.loc[index]
    plugged = pd.to_numeric(rows["plugged"], errors="coerce").to_numpy(float)
    use = (pd.to_numeric(rows["use_kwh"], errors="coerce").to_numpy(float)
           if "use_kwh" in rows.columns else np.zeros(len(index)))
    if not np.isfinite(plugged).all() or not np.isin(plugged, (0.0, 1.0)).all():
        raise DataError(f"--ev-profile {path}: plugged: expected 0 or 1 in every row")
    if not np.isfinite(use).all():
        raise DataError(f"--ev-profile {path}: use_kwh: expected numbers in every row")
    return EvProfile(plugged, use, str(path))


def make_profile(option: str, index: pd.DatetimeIndex, slot_s: int, spec: EvSpec) -> EvProfile:
    """``--ev-profile``: ``commuter`` (the generator with ``ev.trip_kwh``) or a CSV path."""
    if option == COMMUTER:
        return commuter(index, slot_s, spec.tz, spec.trip_kwh)
    return read_profile(option, index)


@dataclass
class Car:
    """The car's state through a run; :meth:`step` is one slot of its physics."""

    spec: EvSpec
    profile: EvProfile
    dt_h: float
    soc_kwh: float
    target_pct: float | None = None  # None: spec.target_soc_pct (capped at max_soc_pct)
    departures: list[dict] = field(default_factory=list)
    stranded_kwh: float = 0.0  # driving energy the battery did not have

    @classmethod
    def start(cls, spec: EvSpec, profile: EvProfile, dt_h: float, soc_pct: float) -> Car:
        """A car at ``soc_pct`` [%]."""
        return cls(spec, profile, dt_h, soc_pct / 100 * spec.capacity_kwh)

    @property
    def target_kwh(self) -> float:
        """The energy wanted at a departure. [kWh]"""
        s = self.spec
        pct = s.target_soc_pct if self.target_pct is None else self.target_pct
        return min(pct, s.max_soc_pct) / 100 * s.capacity_kwh

    @property
    def soc_pct(self) -> float:
        """The state of charge now. [%]"""
        return 100 * self.soc_kwh / self.spec.capacity_kwh

    def deliverable_kw(self, t: int, want_kw: float) -> float:
        """What the charger delivers in slot ``t`` when asked for ``want_kw``: 0 when not
        plugged in; the executor's current rounding; never above the charge limit. [kW]"""
        s = self.spec
        if self.profile.plugged[t] <= 0 or want_kw <= 0:
            return 0.0
        kw = min(want_kw, s.max_charge_kw)
        if kw < s.min_kw / 2:
            return 0.0
        kw = max(kw, s.min_kw)
        room = s.max_soc_pct / 100 * s.capacity_kwh - self.soc_kwh
        return float(min(kw, max(room, 0.0) / (s.charge_efficiency * self.dt_h)))

    def step(self, t: int, want_kw: float, at: pd.Timestamp | None = None) -> float:
        """One slot: charge, record a departure (the slot after the last plugged one), drive.
        Returns the power drawn from the house [kW]."""
        p = self.profile
        if t > 0 and p.plugged[t - 1] > 0 and p.plugged[t] <= 0:
            self.departures.append({"departure": at, "soc_pct": self.soc_pct,
                                    "shortfall_kwh": max(0.0, self.target_kwh - self.soc_kwh)})
        kw = self.deliverable_kw(t, want_kw)
        self.soc_kwh += kw * self.spec.charge_efficiency * self.dt_h
        use = float(p.use_kwh[t])
        if use > self.soc_kwh:
            self.stranded_kwh += use - self.soc_kwh
        self.soc_kwh = max(self.soc_kwh - use, 0.0)
        return kw

    def summary(self, soc_start_kwh: float) -> dict:
        """Departures (count, met, lowest SoC, shortfall), SoC at the start and end."""
        socs = [d["soc_pct"] for d in self.departures]
        target = 100 * self.target_kwh / self.spec.capacity_kwh
        return {"ev_departures": len(socs),
                "ev_departures_met": sum(s >= target - MET_TOL_PCT for s in socs),
                "ev_departure_soc_min_pct": min(socs) if socs else None,
                "ev_departure_soc_mean_pct": float(np.mean(socs)) if socs else None,
                "ev_shortfall_kwh": float(sum(d["shortfall_kwh"] for d in self.departures)),
                "ev_stranded_kwh": self.stranded_kwh,
                "ev_soc_start_kwh": soc_start_kwh, "ev_soc_end_kwh": self.soc_kwh}


def _run(car: Car, start: int, stop: int, index: pd.DatetimeIndex, want) -> np.ndarray:
    out = np.zeros(stop - start)
    for i, t in enumerate(range(start, stop)):
        out[i] = car.step(t, want(t), index[t])
    return out


def at_plugin(car: Car, start: int, stop: int, index: pd.DatetimeIndex) -> np.ndarray:
    """The car charged at full power from plug-in until the target. Steps ``car``. [kW]"""
    eta_dt = car.spec.charge_efficiency * car.dt_h
    return _run(car, start, stop, index,
                lambda t: min(car.spec.max_charge_kw, (car.target_kwh - car.soc_kwh) / eta_dt))


def cheapest_hours(car: Car, start: int, stop: int, index: pd.DatetimeIndex,
                   buy_eur_per_kwh: np.ndarray) -> np.ndarray:
    """The car charged alone in the cheapest slots (buy price) of each plug-in session,
    enough for the target by its departure; the last slot's power at least the minimum.
    The session's prices are known at plug-in (generous to this baseline: a Friday-evening
    session sees Monday's prices). Steps ``car``. [kW]"""
    s = car.spec
    eta_dt = s.charge_efficiency * car.dt_h
    want = np.zeros(len(buy_eur_per_kwh))
    begins = {a: b for a, b in car.profile.sessions(start, stop)}

    def plan(t: int) -> float:
        b = begins.get(t)
        if b is not None or (t == start and car.profile.plugged[t] > 0):
            if b is None:  # plugged in at the start: the session already running
                b = next(z for a, z in car.profile.sessions(start, stop) if a <= t < z)
            need = (car.target_kwh - car.soc_kwh) / eta_dt  # [kW x slots]
            for k in sorted(range(t, b), key=lambda k: (buy_eur_per_kwh[k], k)):
                if need <= 1e-9:
                    break
                want[k] = max(min(s.max_charge_kw, need), s.min_kw)
                need -= want[k]
        return float(want[t])

    return _run(car, start, stop, index, plan)


#: the car's baselines: charged at plug-in, in the cheapest hours before departure
RULES = ("at_plugin", "cheapest")


def with_load(series: Series, start: int, ev_kw: np.ndarray | None) -> Series:
    """``series`` with the car's power (slots ``start``…) added to the load."""
    if ev_kw is None:
        return series
    load = series.load_kw.copy()
    load[start:start + len(ev_kw)] += ev_kw
    return replace(series, load_kw=load)


@dataclass
class Cars:
    """The car of one backtest: its spec and profile, and the two baseline charging rules
    run once on it (their power per slot and departure figures)."""

    spec: EvSpec
    profile: EvProfile
    dt_h: float
    start: int
    soc0_kwh: float
    buy_eur_per_kwh: np.ndarray
    kw: dict[str, np.ndarray] = field(default_factory=dict)
    summaries: dict[str, dict] = field(default_factory=dict)
    _series: dict[str, Series] = field(default_factory=dict)

    @classmethod
    def make(cls, cfg: HeliosConfig, series: Series, start: int, stop: int,
             options: Any) -> Cars:
        """From ``cfg.ev`` and ``options.ev_profile`` / ``options.ev_soc_start_pct`` (None:
        the target)."""
        spec = ev_spec(cfg)
        profile = make_profile(options.ev_profile, series.index, series.slot_s, spec)
        pct = options.ev_soc_start_pct
        if pct is None:
            pct = min(spec.target_soc_pct, spec.max_soc_pct)
        out = cls(spec, profile, series.dt_h, start, pct / 100 * spec.capacity_kwh,
                  series.buy_eur_per_kwh)
        for rule in RULES:
            car = out.car()
            if rule == "at_plugin":
                out.kw[rule] = at_plugin(car, start, stop, series.index)
            else:
                out.kw[rule] = cheapest_hours(car, start, stop, series.index,
                                              series.buy_eur_per_kwh)
            out.summaries[rule] = car.summary(out.soc0_kwh)
        return out

    def car(self) -> Car:
        """A fresh car at the start SoC."""
        return Car(self.spec, self.profile, self.dt_h, self.soc0_kwh)

    def series_with(self, series: Series, rule: str) -> Series:
        """``series`` with the car charged by ``rule`` in the load (kept)."""
        found = self._series.get(rule)
        if found is None:
            found = self._series[rule] = with_load(series, self.start, self.kw[rule])
        return found

    def metrics(self, trace: Trace, start: int, end_value_eur_per_kwh: float) -> dict:
        """The car's figures of one trace: energy charged, its cost at the buy price, the
        departures (:meth:`Car.summary`) and the value of the energy added to the car over the
        period (``end_value_eur_per_kwh`` per kWh, as for the home battery: runs that leave
        more in the car are not penalised for it)."""
        kw = trace.ev_kw if trace.ev_kw is not None else np.zeros(len(trace.index))
        buy = self.buy_eur_per_kwh[start:start + len(kw)]
        info = trace.info.get("ev") or {}
        added = info.get("ev_soc_end_kwh", self.soc0_kwh) - self.soc0_kwh
        out = {"ev_charge_kwh": float(kw.sum() * self.dt_h),
               "ev_cost_at_buy_eur": float((kw * buy).sum() * self.dt_h),
               "ev_stored_value_eur": float(end_value_eur_per_kwh * added), **info}
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


def compare(table: dict[str, dict]) -> dict:
    """Helios (house and car in one plan) vs the house planned alone with the car charged at
    plug-in and in the cheapest hours: EUR saved (net cost), and the car's own energy cost
    at the buy price under each."""
    h = table["helios"]
    out = {}
    for name, rule in (("helios_ev_at_plugin", "at_plugin"), ("helios_ev_cheapest", "cheapest")):
        if name in table:
            out[f"savings_vs_{rule}_eur"] = round(table[name]["net_cost_eur"]
                                                  - h["net_cost_eur"], 6)
            out[f"car_cost_{rule}_eur"] = table[name]["ev_cost_at_buy_eur"]
    out["car_cost_helios_eur"] = h["ev_cost_at_buy_eur"]
    return out
