"""The baselines and the replay: strategies that decide a battery setpoint per slot.

:class:`NoBattery`, :class:`SelfConsumption` (charge from surplus, discharge to cover the
load) and :class:`PriceRule` (charge from the grid in the cheapest slots of each local day,
discharge to cover the load in its dearer half) are the baselines Helios is compared with;
:class:`Replay` follows a fixed schedule (the perfect-foresight optimum). Each is run through
the physics by :func:`planner.evaluate.physics.simulate`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from executor import plant
from planner.evaluate.physics import Home, Series


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
        """Setpoint = load − PV (the battery takes or gives the difference), discharging no
        deeper than the reserve (:func:`executor.plant.self_consumption_kw`)."""
        h = self.home
        return (plant.self_consumption_kw(self.net[t], soc_kwh, h.reserve_kwh,
                                          h.discharge_efficiency, h.dt_h), math.inf, None)


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
            h = self.home
            return (plant.self_consumption_kw(want, soc_kwh, h.reserve_kwh,
                                              h.discharge_efficiency, h.dt_h), math.inf, None)
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
