"""What the same home would pay without Helios: two baselines on the plan's own inputs.

* ``no_battery``: PV covers the load first, the rest is imported; surplus PV is exported.
* ``self_consumption``: a battery run the way an inverter does by itself — charge from PV
  surplus, discharge to cover the load, within the power and SoC limits and with the same
  efficiencies; it never charges from the grid and never discharges into it.

Both are the plan's slots run through the home's one physics (:func:`executor.plant.step`, the
same code as the backtest and the executor's simulated plant) with the inverter holding the
grid at 0, as a battery inverter does by itself. Both use the same slots, prices (after the
tariff), forecasts, start SoC, grid limits and export switch as the plan. Like the plan, they
curtail PV rather than export it at a negative sell price (PV could be curtailed without a
battery too, so the savings shown are what the battery and the planning earn, not what
curtailment earns).

Flexible devices (water heater, deferrable loads) run in both baselines the simplest honest
way: each day's energy at full power from the start of its window (what a timer or a
thermostat does without a plan), added to the load.

Costs are compared as *net cost* = grid bill + battery wear − value of the change in stored
energy, with the change valued like the planner values energy left at the horizon end
(:func:`stored_energy_value`). Without that last term a plan that empties the battery at the
end would look cheaper than one that keeps it full.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from executor import plant
from planner.config import HeliosConfig
from planner.core.site import SiteSpec
from planner.inputs.gather import Inputs


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


def _run(inputs: Inputs, spec: SiteSpec, limits: plant.PlantLimits) -> tuple:
    """The plan's slots through :func:`executor.plant.step` with the inverter holding the grid
    at 0 (plain self-consumption; with a battery of 0 kW the home alone).

    Returns the flows [kW] per slot as arrays, the SoC at each slot end [kWh] and the start.
    """
    n, dt = inputs.n, inputs.dt_h
    soc0 = inputs.soc_start_pct / 100.0 * spec.capacity_kwh
    pv, load = inputs.pv_kw.tolist(), inputs.load_kw.tolist()
    export_ok = (inputs.sell_eur_per_kwh >= 0.0).tolist()
    rows = []
    e = soc0
    for t in range(n):
        row = plant.step(limits, e, dt, pv[t], load[t], 0.0, math.inf, True, export_ok[t], 0.0)
        rows.append(row)
        e = row.soc_kwh
    cols = np.array(rows, dtype=float).reshape(n, len(plant.Flows._fields)).T
    return (*(np.ascontiguousarray(c) for c in cols), soc0)


def _limits(spec: SiteSpec, battery: bool) -> plant.PlantLimits:
    """The site's limits; the battery's floor is the reserve (self-consumption never goes
    deeper), and without a battery it takes no power."""
    return plant.PlantLimits(
        min_kwh=spec.reserve_kwh, max_kwh=spec.max_kwh,
        max_charge_kw=spec.max_charge_kw if battery else 0.0,
        max_discharge_kw=spec.max_discharge_kw if battery else 0.0,
        charge_efficiency=spec.charge_efficiency,
        discharge_efficiency=spec.discharge_efficiency,
        max_import_kw=spec.max_import_kw, max_export_kw=spec.max_export_kw)


def _costs(inputs: Inputs, imp: np.ndarray, exp: np.ndarray) -> float:
    return float(np.sum(inputs.buy_eur_per_kwh * imp - inputs.sell_eur_per_kwh * exp)
                 * inputs.dt_h)


def no_battery(inputs: Inputs, cfg: HeliosConfig) -> Baseline:
    """The home without a battery: PV → load → grid, surplus exported (or curtailed)."""
    spec = SiteSpec.from_config(cfg)
    imp, exp, ch, dis, used, unserved, soc, soc0 = _run(inputs, spec, _limits(spec, False))
    return Baseline("no_battery", imp, exp, ch, dis, used, unserved, soc, soc0,
                    _costs(inputs, imp, exp), 0.0, 0.0)


def self_consumption(inputs: Inputs, cfg: HeliosConfig,
                     terminal_value_eur_per_kwh: float = 0.0) -> Baseline:
    """A battery in plain self-consumption, simulated slot by slot.

    PV surplus charges the battery (up to ``max_charge_kw`` and ``max_soc_pct``), a deficit
    is covered by discharging (up to ``max_discharge_kw`` and down to the reserve SoC, or
    ``min_soc_pct`` when no reserve is set); what is left goes to or comes from the grid.
    """
    spec = SiteSpec.from_config(cfg)
    imp, exp, ch, dis, used, unserved, soc, soc0 = _run(inputs, spec, _limits(spec, True))
    n, dt = inputs.n, inputs.dt_h
    wear = float(spec.wear_eur_per_kwh * np.sum(ch + dis) * dt)
    stored = terminal_value_eur_per_kwh * (soc[-1] - soc0) if n else 0.0
    return Baseline("self_consumption", imp, exp, ch, dis, used, unserved, soc, soc0,
                    _costs(inputs, imp, exp), wear, float(stored))


def stored_energy_value(inputs: Inputs, cfg: HeliosConfig) -> float:
    """Value of one kWh left in the battery at the horizon end. [EUR/kWh]

    The planner's own terminal value (:meth:`planner.core.site.SiteSpec.stored_energy_value`:
    discharge efficiency × the configured quantile of the horizon's buy prices, never
    negative). Used even when ``battery.final_soc_pct`` replaces it in the optimisation, so
    that every run is compared the same way.
    """
    return SiteSpec.from_config(cfg).stored_energy_value(inputs.buy_eur_per_kwh)


def with_device_load(inputs: Inputs, sol) -> Inputs:
    """``inputs`` with the flexible devices' energy added to the load as the baselines run
    them: each day's energy at full power from the start of its window (the devices'
    ``<name>_earliest_kw`` outputs), so plan and baselines heat the same water."""
    extra = [sol.outputs[f"{name}_earliest_kw"] for name in sol.device_kw]
    if not extra:
        return inputs
    return dataclasses.replace(inputs, load_kw=inputs.load_kw + np.sum(extra, axis=0))


def compare(plan, cfg: HeliosConfig) -> Comparison:
    """The plan (a :class:`planner.plan.build.Plan`) against both baselines on its own inputs."""
    inputs = plan.inputs
    sol = plan.solution
    value = stored_energy_value(inputs, cfg)
    inputs = with_device_load(inputs, sol)
    soc_end = float(sol.soc_kwh[-1]) if len(sol.soc_kwh) else sol.soc_start_kwh
    return Comparison(
        plan_bill_eur=float(sol.energy_cost_eur),
        plan_wear_eur=float(sol.wear_cost_eur),
        plan_stored_value_eur=value * (soc_end - float(sol.soc_start_kwh)),
        no_battery=no_battery(inputs, cfg),
        self_consumption=self_consumption(inputs, cfg, value),
    )
