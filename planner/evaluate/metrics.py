"""Totals and comparisons of simulated traces: net cost, the planner's objective, energy.

Net cost = grid bill + battery wear − value of the energy added to the battery over the
period (see :mod:`planner.evaluate.perfect`).
"""

from __future__ import annotations

import numpy as np

from planner.evaluate.perfect import Terms
from planner.evaluate.physics import AT_MIN_TOL_KWH, Home, Series, Trace


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
    = share of the PV used on site: 1 − (PV exported + curtailed) / PV, where a slot's PV
    exported is what is left of its used PV after the load and the battery's charging (at
    most its export): energy the battery discharges to the grid is not PV exported;
    ``self_sufficiency_ratio`` = share of the load not imported. ``co2_kg`` (with a carbon
    series only) = Σ import × intensity: the emissions of the electricity bought.
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
    served_kw = series.load_kw[w] - trace.unserved_kw
    pv_exported = float(np.clip(trace.pv_used_kw - served_kw - trace.battery_charge_kw, 0.0,
                                trace.grid_export_kw).sum() * dt)
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
        "pv_exported_kwh": pv_exported,
        "self_consumption_ratio": (max(0.0, 1 - (pv_exported + curtailed) / pv_kwh)
                                   if pv_kwh > 0
                                   else 0.0),
        "self_sufficiency_ratio": max(0.0, 1 - imp / load_kwh) if load_kwh > 0 else 0.0,
        "hours_at_min_soc": float(at_min.sum() * dt),
        "soc_start_kwh": trace.soc_start_kwh,
        "soc_end_kwh": trace.soc_end_kwh,
    }
    if series.co2_g_per_kwh is not None:  # kg CO2 of the grid import (--carbon)
        out["co2_kg"] = float(np.sum(series.co2_g_per_kwh[w] * trace.grid_import_kw)
                              * dt / 1000.0)
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
