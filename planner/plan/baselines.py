"""What the same home would pay without Helios: two baselines on the plan's own inputs.

* ``no_battery``: PV covers the load first, the rest is imported; surplus PV is exported.
* ``self_consumption``: a battery run the way an inverter does by itself — charge from PV
  surplus, discharge to cover the load, within the power and SoC limits and with the same
  efficiencies; it never charges from the grid and never discharges into it.

Both use the same slots, prices (after the tariff), forecasts, start SoC, grid limits and
export switch as the plan. Like the plan, they curtail PV rather than export it at a negative
sell price (PV could be curtailed without a battery too, so the savings shown are what the
battery and the planning earn, not what curtailment earns).

Costs are compared as *net cost* = grid bill + battery wear − value of the change in stored
energy, with the change valued like the planner values energy left at the horizon end
(:func:`stored_energy_value`). Without that last term a plan that empties the battery at the
end would look cheaper than one that keeps it full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.config import HeliosConfig
from planner.inputs.gather import Inputs

#: below this a flow is treated as zero [kW]
_TOL_KW = 1e-9


@dataclass(frozen=True)
class Baseline:
    """One simulated strategy: flows per slot [kW], SoC at slot end [kWh] and its costs [EUR]."""

    name: str
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    pv_used_kw: np.ndarray
    unserved_kw: np.ndarray
    soc_kwh: np.ndarray
    soc_start_kwh: float
    bill_eur: float
    wear_eur: float
    stored_value_eur: float

    @property
    def net_cost_eur(self) -> float:
        """Grid bill + wear − value of the energy added to the battery. [EUR]"""
        return self.bill_eur + self.wear_eur - self.stored_value_eur


@dataclass(frozen=True)
class Comparison:
    """The plan's net cost next to both baselines, and what the plan saves. [EUR]"""

    plan_bill_eur: float
    plan_wear_eur: float
    plan_stored_value_eur: float
    no_battery: Baseline
    self_consumption: Baseline

    @property
    def plan_net_cost_eur(self) -> float:
        """Grid bill + wear − value of the energy added to the battery. [EUR]"""
        return self.plan_bill_eur + self.plan_wear_eur - self.plan_stored_value_eur

    @property
    def savings_vs_no_battery_eur(self) -> float:
        """Net cost of the no-battery baseline minus the plan's. [EUR]"""
        return self.no_battery.net_cost_eur - self.plan_net_cost_eur

    @property
    def savings_vs_self_consumption_eur(self) -> float:
        """Net cost of plain self-consumption minus the plan's. [EUR]"""
        return self.self_consumption.net_cost_eur - self.plan_net_cost_eur

    def as_dict(self) -> dict:
        """Plain numbers for the history table and the report (EUR, rounded to 1e-6)."""

        def part(bill: float, wear: float, stored: float) -> dict:
            return {"bill_eur": round(bill, 6), "wear_eur": round(wear, 6),
                    "stored_value_eur": round(stored, 6),
                    "net_cost_eur": round(bill + wear - stored, 6)}

        return {
            "plan": part(self.plan_bill_eur, self.plan_wear_eur, self.plan_stored_value_eur),
            "no_battery": part(self.no_battery.bill_eur, self.no_battery.wear_eur,
                               self.no_battery.stored_value_eur),
            "self_consumption": part(self.self_consumption.bill_eur,
                                     self.self_consumption.wear_eur,
                                     self.self_consumption.stored_value_eur),
        }


def _grid(inputs: Inputs, cfg: HeliosConfig, net_kw: np.ndarray, pv_spill_kw: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grid flows for a residual demand ``net_kw`` (>0 import) and PV ``pv_spill_kw`` left over.

    Returns (import, export, curtailed PV, unserved load), all [kW] per slot.
    """
    g = cfg.grid
    max_export = g.max_export_kw if g.export_enabled else 0.0
    imp = np.minimum(np.maximum(net_kw, 0.0), g.max_import_kw)
    unserved = np.maximum(net_kw, 0.0) - imp
    sell_ok = inputs.sell_eur_per_kwh >= 0.0
    exp = np.where(sell_ok, np.minimum(pv_spill_kw, max_export), 0.0)
    curtailed = pv_spill_kw - exp
    return imp, exp, curtailed, unserved


def _costs(inputs: Inputs, imp: np.ndarray, exp: np.ndarray) -> float:
    return float(np.sum(inputs.buy_eur_per_kwh * imp - inputs.sell_eur_per_kwh * exp)
                 * inputs.dt_h)


def no_battery(inputs: Inputs, cfg: HeliosConfig) -> Baseline:
    """The home without a battery: PV → load → grid, surplus exported (or curtailed)."""
    n = inputs.n
    pv, load = inputs.pv_kw, inputs.load_kw
    direct = np.minimum(pv, load)
    imp, exp, curtailed, unserved = _grid(inputs, cfg, load - direct, pv - direct)
    soc0 = inputs.soc_start_pct / 100.0 * cfg.battery.capacity_kwh
    zeros = np.zeros(n)
    return Baseline("no_battery", imp, exp, zeros, zeros.copy(), pv - curtailed, unserved,
                    np.full(n, soc0), soc0, _costs(inputs, imp, exp), 0.0, 0.0)


def self_consumption(inputs: Inputs, cfg: HeliosConfig,
                     terminal_value_eur_per_kwh: float = 0.0) -> Baseline:
    """A battery in plain self-consumption, simulated slot by slot.

    PV surplus charges the battery (up to ``max_charge_kw`` and ``max_soc_pct``), a deficit
    is covered by discharging (up to ``max_discharge_kw`` and down to the reserve SoC, or
    ``min_soc_pct`` when no reserve is set); what is left goes to or comes from the grid.
    """
    b = cfg.battery
    n, dt = inputs.n, inputs.dt_h
    cap = b.capacity_kwh
    eta_c, eta_d = b.charge_efficiency, b.discharge_efficiency
    soc0 = inputs.soc_start_pct / 100.0 * cap
    floor = (b.reserve_soc_pct if b.reserve_soc_pct is not None else b.min_soc_pct) / 100 * cap
    ceiling = b.max_soc_pct / 100.0 * cap
    pv, load = inputs.pv_kw, inputs.load_kw
    charge = np.zeros(n)
    discharge = np.zeros(n)
    soc = np.zeros(n)
    e = soc0
    for t in range(n):
        surplus = pv[t] - load[t]
        if surplus > _TOL_KW:
            room_kw = max(ceiling - e, 0.0) / (eta_c * dt)
            charge[t] = min(surplus, b.max_charge_kw, room_kw)
            e += eta_c * charge[t] * dt
        elif surplus < -_TOL_KW:
            avail_kw = max(e - floor, 0.0) * eta_d / dt
            discharge[t] = min(-surplus, b.max_discharge_kw, avail_kw)
            e -= discharge[t] / eta_d * dt
        soc[t] = e
    direct = np.minimum(pv, load)
    net = load - direct - discharge
    spill = pv - direct - charge
    imp, exp, curtailed, unserved = _grid(inputs, cfg, net, spill)
    wear = float(b.wear_cost_eur_per_kwh * np.sum(charge + discharge) * dt)
    stored = terminal_value_eur_per_kwh * (soc[-1] - soc0) if n else 0.0
    return Baseline("self_consumption", imp, exp, charge, discharge, pv - curtailed, unserved,
                    soc, soc0, _costs(inputs, imp, exp), wear, float(stored))


def stored_energy_value(inputs: Inputs, cfg: HeliosConfig) -> float:
    """Value of one kWh left in the battery at the horizon end. [EUR/kWh]

    The planner's own terminal value: discharge efficiency × the configured quantile of the
    horizon's buy prices, never negative. Used even when ``battery.final_soc_pct`` replaces it
    in the optimisation, so that every run is compared the same way.
    """
    q = float(np.quantile(inputs.buy_eur_per_kwh, cfg.planning.terminal_value_quantile))
    return max(0.0, cfg.battery.discharge_efficiency * q)


def compare(plan, cfg: HeliosConfig) -> Comparison:
    """The plan (a :class:`planner.plan.build.Plan`) against both baselines on its own inputs."""
    inputs = plan.inputs
    sol = plan.solution
    value = stored_energy_value(inputs, cfg)
    soc_end = float(sol.soc_kwh[-1]) if len(sol.soc_kwh) else sol.soc_start_kwh
    return Comparison(
        plan_bill_eur=float(sol.energy_cost_eur),
        plan_wear_eur=float(sol.wear_cost_eur),
        plan_stored_value_eur=value * (soc_end - float(sol.soc_start_kwh)),
        no_battery=no_battery(inputs, cfg),
        self_consumption=self_consumption(inputs, cfg, value),
    )
