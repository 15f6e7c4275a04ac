r"""A battery: charge and discharge on the AC side, the state of charge, its soft targets.

.. math::

    e_t = e_{t-1} + (\eta_c\,ch_t - dis_t/\eta_d)\,\Delta t, \qquad
    lo_t \le e_t \le hi_t, \qquad e_t + r_t \ge reserve, \qquad e_T + f \ge final

The hard SoC bounds are ``soc = lo + (width / capacity) ⊙ z`` with ``z`` in [0, capacity]
(a column bound, no row: docs/architecture.md, decision 1; ``z`` in kWh rather than in
[0, 1] keeps the columns scaled like the flows: the year-long perfect-foresight LP solves in
5.6 s instead of 12.7 s on SE3 2023); a start outside [min, max] widens them to the start
("never drain further", decision 4). The reserve shortfall ``r`` and final shortfall ``f``
are soft at ``soft_penalty_eur_per_kwh``, one unit for both: EUR per kWh below the target
per hour it lasts — ``r_t`` weighted by the slot's hours, ``f`` by :data:`FINAL_TARGET_H`
(so the optimum does not depend on the slot length); without a final target the energy left at the
end is worth the context's terminal value, taken on a variable ``e_T`` because
``value · (lo + width ⊙ z)`` would multiply Parameters (decision 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Component, Context, Exclusive, Flow, put, values

#: the final SoC shortfall costs ``soft_penalty_eur_per_kwh`` (EUR per kWh per hour below a
#: target) for this long: a kWh short at the horizon end weighs like a kWh below the reserve
#: for one hour [h]
FINAL_TARGET_H = 1.0


class Battery(Component):
    """Charge and discharge :class:`Flow`\\ s (bounded by the configured maxima, live
    per-slot limits below them), SoC, wear.

    The efficiencies shape the SoC equation and the capacity and power maxima are column
    bounds, so they are structural (one compiled problem per set). ``start_above_max``: the
    variant with a soft upper bound (``soc − overshoot <= max``, n extra rows) for a start
    above ``max_soc_pct``, compiled only in that rare case (decision 4).
    """

    def __init__(self, capacity_kwh: float, charge_efficiency: float,
                 discharge_efficiency: float, max_charge_kw: float, max_discharge_kw: float,
                 start_above_max: bool = False, name: str = "battery"):
        super().__init__(name)
        self.capacity_kwh = capacity_kwh
        self.max_charge_kw, self.max_discharge_kw = max_charge_kw, max_discharge_kw
        self.eta_c, self.eta_d = charge_efficiency, discharge_efficiency
        self.start_above_max = start_above_max
        self.overshoot = None

    def build(self, n: int, dt_h: float) -> None:
        """Flows, SoC, dynamics, soft reserve/final targets, wear and terminal value."""
        super().build(n, dt_h)
        name = self.name
        self.ch = Flow(f"{name}_charge", n, self.max_charge_kw)
        self.dis = Flow(f"{name}_discharge", n, self.max_discharge_kw)
        p = self.params = {
            "soc0": cp.Parameter(name=f"{name}_soc0_kwh"),
            "lo": cp.Parameter(n, name=f"{name}_soc_lo_kwh"),
            # (hi - lo) / capacity: the SoC window as a share of the z column's bound
            "width": cp.Parameter(n, nonneg=True, name=f"{name}_soc_width"),
            "reserve": cp.Parameter(n, name=f"{name}_reserve_kwh"),
            "final": cp.Parameter(name=f"{name}_final_kwh"),
            "final_weight": cp.Parameter(nonneg=True, name=f"{name}_final_weight"),
            "max_kwh": cp.Parameter(name=f"{name}_max_kwh"),
            "penalty": cp.Parameter(nonneg=True, name=f"{name}_penalty"),
            # wear × the flows' scale per slot (wear × scale × x would not be DPP)
            "wear_ch": cp.Parameter(n, nonneg=True, name=f"{name}_wear_charge"),
            "wear_dis": cp.Parameter(n, nonneg=True, name=f"{name}_wear_discharge"),
            # may be negative: a penalty on energy left (the minute-level pinned windows)
            "end_value": cp.Parameter(name=f"{name}_end_value"),
        }
        self.z = cp.Variable(n, bounds=[0, self.capacity_kwh],
                             name=f"{name}_soc_position_kwh")
        self.short = cp.Variable(n, bounds=[0, None], name=f"{name}_reserve_shortfall_kwh")
        self.end = cp.Variable(name=f"{name}_soc_end_kwh")
        self.final_short = cp.Variable(bounds=[0, None], name=f"{name}_final_shortfall_kwh")
        self.soc = p["lo"] + cp.multiply(p["width"], self.z)
        previous = cp.hstack([cp.reshape(p["soc0"], (1,), order="C"), self.soc[:-1]])
        self.dynamics = (self.soc - previous
                         == (self.eta_c * self.ch.kw - self.dis.kw / self.eta_d) * dt_h)
        self.constraints = [
            self.dynamics,
            self.soc + self.short >= p["reserve"],
            self.end == self.soc[n - 1],
            self.end + self.final_short >= p["final"],
        ]
        self.cost = (dt_h * (p["wear_ch"] @ self.ch.x + p["wear_dis"] @ self.dis.x)
                     + dt_h * p["penalty"] * cp.sum(self.short)
                     + p["final_weight"] * self.final_short)
        if self.start_above_max:
            # after a start above max_soc_pct the hard bound is the start SoC; coming back
            # down is wanted, so staying or going above max_soc_pct costs like the reserve
            self.overshoot = cp.Variable(n, bounds=[0, None], name=f"{name}_overshoot_kwh")
            self.constraints.append(self.soc - self.overshoot <= p["max_kwh"])
            self.cost = self.cost + dt_h * p["penalty"] * cp.sum(self.overshoot)
        self.terminal_value = p["end_value"] * self.end
        self.bus_kw = self.dis.kw - self.ch.kw
        self.flows = [self.ch, self.dis]
        self.exclusive = [Exclusive(self.ch, self.dis)]

    def set_inputs(self, ctx: Context) -> None:
        """SoC bounds and targets from the site, live power limits, terminal value."""
        s, p, n = ctx.site, self.params, self.n
        soc0 = ctx.soc_start_kwh
        lo, hi = s.soc_bounds_kwh(soc0)
        self.ch.set_limit(ctx.charge_kw)
        self.dis.set_limit(ctx.discharge_kw)
        put(p["soc0"], soc0)
        put(p["lo"], np.full(n, lo))
        put(p["width"], np.full(n, (hi - lo) / self.capacity_kwh))
        reserve = np.full(n, s.reserve_kwh)
        if ctx.active_n is not None:  # padding slots hold the last SoC: no reserve there
            reserve[ctx.active_n:] = lo
        put(p["reserve"], reserve)
        put(p["max_kwh"], s.max_kwh)
        put(p["penalty"], s.soft_penalty_eur_per_kwh)
        put(p["wear_ch"], s.wear_eur_per_kwh * self.ch.scale.value)
        put(p["wear_dis"], s.wear_eur_per_kwh * self.dis.scale.value)
        put(p["end_value"], ctx.terminal_value_eur_per_kwh)
        if s.final_kwh is not None:
            put(p["final"], s.final_kwh)
            put(p["final_weight"], s.soft_penalty_eur_per_kwh * FINAL_TARGET_H)
        else:
            put(p["final"], 0.0)
            put(p["final_weight"], 0.0)
        self._wear = s.wear_eur_per_kwh

    def duals(self) -> dict[str, np.ndarray]:
        """``<name>_energy_value_eur_per_kwh``: the SoC equation's dual, the marginal value
        of one kWh stored at the end of each slot (NaN when the solver gives none)."""
        d = self.dynamics.dual_value
        value = np.asarray(d, dtype=float) if d is not None else np.full(self.n, np.nan)
        return {f"{self.name}_energy_value_eur_per_kwh": value}

    def outputs(self) -> dict[str, Any]:
        """Flows, SoC at each slot end, shortfalls, wear and the terminal value."""
        p, name = self.params, self.name
        ch, dis = self.ch.value, self.dis.value
        lo, width = p["lo"].value, p["width"].value
        hi = lo + width * self.capacity_kwh
        overshoot = values(self.overshoot) if self.overshoot is not None else np.zeros(self.n)
        # self.soc's value, as cvxpy evaluates it (lo + width ⊙ z), without its expression tree
        soc = np.clip(lo + width * np.asarray(self.z.value, dtype=float).reshape(-1), lo, hi)
        return {
            f"{name}_charge_kw": ch,
            f"{name}_discharge_kw": dis,
            f"{name}_soc_kwh": soc,
            f"{name}_soc_start_kwh": float(p["soc0"].value),
            f"{name}_reserve_shortfall_kwh": values(self.short),
            f"{name}_overshoot_kwh": overshoot,
            f"{name}_final_shortfall_kwh": float(max(0.0, self.final_short.value)),
            f"{name}_terminal_value_eur_per_kwh": float(p["end_value"].value),
            f"{name}_wear_cost_eur": float(self.dt_h * self._wear * np.sum(ch + dis)),
        }


@dataclass(frozen=True)
class BatterySpec:
    """A further battery (``batteries:``): its own figures, not the site's. The capacity,
    power maxima and efficiencies are structural (column bounds, the SoC equation); the SoC
    bounds, reserve, wear and start SoC are Parameters."""

    name: str
    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    min_soc_pct: float = 10.0
    max_soc_pct: float = 100.0
    reserve_soc_pct: float | None = None
    wear_eur_per_kwh: float = 0.0
    #: the start SoC when no per-solve value is given (``extra[name]["soc_pct"]``) [%]
    soc_pct: float = 50.0

    def soc_bounds_kwh(self, soc0_kwh: float) -> tuple[float, float]:
        """[min, max] widened to contain the start ("never drain further")."""
        cap = self.capacity_kwh
        return (min(self.min_soc_pct / 100 * cap, soc0_kwh),
                max(self.max_soc_pct / 100 * cap, soc0_kwh))


class SpecBattery(Battery):
    """One more battery on the home bus, from its own :class:`BatterySpec` (the home battery
    stays :class:`Battery`, read from the site). A device: its power per slot is
    ``<name>_power_kw`` = charge − discharge (+ = drawn from the bus, schedule.json's sign)
    and ``<name>_soc_pct`` the SoC at each slot's end. Charge and discharge are an
    :class:`Exclusive` pair like the home battery's. No final SoC target; the energy left is
    worth its own η_d × the context's price quantile. In the baselines it stays idle."""

    device = True

    def __init__(self, spec: BatterySpec):
        super().__init__(spec.capacity_kwh, spec.charge_efficiency, spec.discharge_efficiency,
                         spec.max_charge_kw, spec.max_discharge_kw, name=spec.name)
        self.spec = spec

    def set_inputs(self, ctx: Context) -> None:
        """SoC bounds, reserve and wear from the spec; start SoC from ``ctx.extra[name]``
        (``{"soc_pct": x}``) or the spec; terminal value η_d × the price quantile."""
        s, p, n = self.spec, self.params, self.n
        given = ctx.extra.get(self.name) or {}
        soc_pct = float(np.clip(given.get("soc_pct", s.soc_pct), 0.0, 100.0))
        soc0 = soc_pct / 100 * s.capacity_kwh
        lo, hi = s.soc_bounds_kwh(soc0)
        self.ch.set_limit(np.full(n, s.max_charge_kw))
        self.dis.set_limit(np.full(n, s.max_discharge_kw))
        reserve_pct = max(s.reserve_soc_pct if s.reserve_soc_pct is not None
                          else s.min_soc_pct, s.min_soc_pct)
        put(p["soc0"], soc0)
        put(p["lo"], np.full(n, lo))
        put(p["width"], np.full(n, (hi - lo) / s.capacity_kwh))
        put(p["reserve"], np.full(n, reserve_pct / 100 * s.capacity_kwh))
        put(p["max_kwh"], s.max_soc_pct / 100 * s.capacity_kwh)
        put(p["penalty"], ctx.site.soft_penalty_eur_per_kwh)
        put(p["wear_ch"], s.wear_eur_per_kwh * self.ch.scale.value)
        put(p["wear_dis"], s.wear_eur_per_kwh * self.dis.scale.value)
        buy = ctx.buy_eur_per_kwh
        with_grid = buy[ctx.import_kw > 0] if (ctx.import_kw > 0).any() else buy
        q = float(np.quantile(with_grid, ctx.site.terminal_value_quantile)) if buy.size else 0.0
        put(p["end_value"], max(0.0, s.discharge_efficiency * q))
        put(p["final"], 0.0)
        put(p["final_weight"], 0.0)
        self._wear = s.wear_eur_per_kwh

    def outputs(self) -> dict[str, Any]:
        """The battery's outputs plus ``<name>_power_kw`` and ``<name>_soc_pct``."""
        out = super().outputs()
        name = self.name
        out[f"{name}_power_kw"] = out[f"{name}_charge_kw"] - out[f"{name}_discharge_kw"]
        out[f"{name}_soc_pct"] = np.clip(out[f"{name}_soc_kwh"] / self.spec.capacity_kwh * 100,
                                         0.0, 100.0)
        # the baselines (plan/baselines.py) run every device "the plain way": this one idles
        out[f"{name}_earliest_kw"] = np.zeros(self.n)
        return out
