"""Realised savings: what the home paid, from ``measurements``, against two counterfactuals.

Per slot of the plan grid (``slot_s``, 15 min) that has at least one real measurement
(``simulated`` rows, migration 0004, are left out) and a plan in
force (the newest plan generated before the slot ended, :meth:`History.slots_in_force`):

* the slot's mean PV, load (``load_power_w``, else ``pv + grid + battery`` from the AC balance)
  and signed grid power; import = mean of the positive part, export = mean of the negative
  part, each times the slot length — so a slot is assumed to look like its samples (the
  executor stores one every 60 s);
* **actual** bill = Σ buy · import − sell · export with the buy/sell prices (after the tariff)
  of the plan in force;
* **no battery**: the measured PV and load through :func:`executor.plant.step` with a battery of
  0 kW (PV → load → grid, surplus exported, curtailed at a negative sell price);
* **self-consumption**: the measured PV and load through :func:`executor.plant.step` holding the
  grid at 0, slot after slot from the day's first measured SoC, with the site's limits and
  efficiencies and the reserve as floor — exactly the planner's baselines
  (:mod:`planner.plan.baselines`), on what happened instead of on the forecast.

Costs are compared as *net cost* like the plan's baselines: bill + wear (``cycle_cost`` per kWh
through the battery) − the change in stored energy valued at the terminal value of the plan in
force (actual: first to last measured SoC of the day). Savings = counterfactual net cost −
actual net cost. Days are the site's local days; slots without measurements or without a
plan are left out of all three (``slots_measured`` says how many counted). PV is the measured
(possibly curtailed) PV, so the counterfactuals cannot use PV the plan chose to curtail.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd

from executor import plant
from executor.schedule import format_utc
from planner.core.site import SiteSpec
from planner.serve.data import Home

METHOD = ("measured flows per slot priced with the plan in force; counterfactuals: the "
          "measured PV and load through executor.plant.step without a battery and with the "
          "battery in plain self-consumption (grid held at 0, reserve as floor); net cost = "
          "bill + wear - change in stored energy at the plan's terminal value")


def _limits(spec: SiteSpec, battery: bool) -> plant.PlantLimits:
    """The site's limits as :mod:`planner.plan.baselines` uses them (reserve as floor)."""
    return plant.PlantLimits(
        min_kwh=spec.reserve_kwh, max_kwh=spec.max_kwh,
        max_charge_kw=spec.max_charge_kw if battery else 0.0,
        max_discharge_kw=spec.max_discharge_kw if battery else 0.0,
        charge_efficiency=spec.charge_efficiency,
        discharge_efficiency=spec.discharge_efficiency,
        max_import_kw=spec.max_import_kw, max_export_kw=spec.max_export_kw)


def slot_means(frame: pd.DataFrame, slot_s: int) -> pd.DataFrame:
    """Measurements → one row per slot: mean flows [kW] (directional), first/last SoC [%]."""
    if frame.empty:
        return pd.DataFrame(columns=["pv_kw", "load_kw", "import_kw", "export_kw",
                                     "charge_kw", "discharge_kw", "soc_first_pct",
                                     "soc_last_pct", "samples"])
    f = frame.copy()
    derived = f["pv_power_w"] + f["grid_power_w"] + f["battery_power_w"]
    f["load"] = f["load_power_w"].astype(float).fillna(derived)
    grid = f["grid_power_w"].astype(float)
    battery = f["battery_power_w"].astype(float)
    per = pd.DataFrame({
        "pv_kw": f["pv_power_w"].astype(float) / 1000.0,
        "load_kw": f["load"] / 1000.0,
        "import_kw": grid.clip(lower=0.0) / 1000.0,
        "export_kw": (-grid).clip(lower=0.0) / 1000.0,
        "charge_kw": (-battery).clip(lower=0.0) / 1000.0,
        "discharge_kw": battery.clip(lower=0.0) / 1000.0,
        "soc": f["soc_pct"].astype(float),
    }, index=f.index)
    per = per.dropna(subset=["pv_kw", "load_kw", "import_kw"])
    key = per.index.floor(f"{slot_s}s")
    groups = per.groupby(key)
    out = groups[["pv_kw", "load_kw", "import_kw", "export_kw", "charge_kw",
                  "discharge_kw"]].mean()
    out["soc_first_pct"] = groups["soc"].first()
    out["soc_last_pct"] = groups["soc"].last()
    out["samples"] = groups.size()
    out.index.name = "slot_start"
    return out


def _cost(buy: np.ndarray, sell: np.ndarray, imp: np.ndarray, exp: np.ndarray,
          dt_h: float) -> float:
    return float(np.sum(buy * imp - sell * exp) * dt_h)


def _part(bill: float, wear: float, stored: float) -> dict:
    return {"bill_eur": round(bill, 4), "wear_eur": round(wear, 4),
            "stored_value_eur": round(stored, 4), "net_cost_eur": round(bill + wear - stored, 4)}


def day(spec: SiteSpec, slots: pd.DataFrame, dt_h: float) -> dict:
    """One day's actual cost and both counterfactuals (``slots``: measured + priced rows)."""
    cap = spec.capacity_kwh
    buy, sell = slots["buy_eur_per_kwh"].to_numpy(), slots["sell_eur_per_kwh"].to_numpy()
    tv = float(slots["terminal_value_eur_per_kwh"].iloc[-1])
    socs = slots["soc_first_pct"].dropna()
    soc0 = float(socs.iloc[0]) if len(socs) else spec.reserve_kwh / cap * 100.0
    ends = slots["soc_last_pct"].dropna()
    soc1 = float(ends.iloc[-1]) if len(ends) else soc0
    throughput = float((slots["charge_kw"] + slots["discharge_kw"]).sum() * dt_h)
    actual = _part(_cost(buy, sell, slots["import_kw"].to_numpy(),
                         slots["export_kw"].to_numpy(), dt_h),
                   spec.wear_eur_per_kwh * throughput, tv * (soc1 - soc0) / 100.0 * cap)
    sims = {}
    for name, battery in (("no_battery", False), ("self_consumption", True)):
        limits = _limits(spec, battery)
        e = e0 = soc0 / 100.0 * cap if battery else 0.0
        imp, exp, moved = [], [], 0.0
        for pv, load, s in zip(slots["pv_kw"], slots["load_kw"], sell, strict=True):
            row = plant.step(limits, e, dt_h, float(pv), float(load), 0.0, math.inf, True,
                             bool(s >= 0.0), 0.0)
            imp.append(row.grid_import_kw)
            exp.append(row.grid_export_kw)
            moved += (row.battery_charge_kw + row.battery_discharge_kw) * dt_h
            e = row.soc_kwh
        sims[name] = _part(_cost(buy, sell, np.array(imp), np.array(exp), dt_h),
                           spec.wear_eur_per_kwh * moved, tv * (e - e0))
    return {
        "actual": actual, **sims,
        "planned_cost_eur": round(float(slots["cost_eur"].sum()), 4),
        "soc_start_pct": round(soc0, 2), "soc_end_pct": round(soc1, 2),
        "savings_vs_no_battery_eur": round(
            sims["no_battery"]["net_cost_eur"] - actual["net_cost_eur"], 4),
        "savings_vs_self_consumption_eur": round(
            sims["self_consumption"]["net_cost_eur"] - actual["net_cost_eur"], 4),
    }


def realised(home: Home, now: datetime, days: int) -> dict:
    """Realised savings per local day for the last ``days`` days (today included).

    Returns ``{"method", "days": [...], "total": {...}, "soc": {x, planned, actual}}``;
    amounts in EUR, SoC in % at each slot's end (planned: slots that have started).
    """
    tz = home.tz
    today = pd.Timestamp(now).tz_convert(tz).normalize()
    first = today - pd.Timedelta(days=days - 1)
    start = first.tz_convert("UTC").to_pydatetime()
    end = (today + pd.Timedelta(days=1)).tz_convert("UTC").to_pydatetime()
    plans = home.history.slots_in_force(start, end)
    slot_s = int(plans["slot_s"].iloc[-1]) if len(plans) else 900
    means = slot_means(home.history.measurements(start, end), slot_s)
    joined = means.join(plans, how="inner")
    dt_h = slot_s / 3600.0
    out_days = []
    if len(joined):
        local_day = joined.index.tz_convert(tz).date
        for date in sorted(set(local_day)):
            rows = joined[local_day == date]
            out_days.append({"date": date.isoformat(), "slots_measured": int(len(rows)),
                             **day(home.spec, rows, dt_h)})
    total = {key: round(sum(d[key] for d in out_days), 4) for key in (
        "planned_cost_eur", "savings_vs_no_battery_eur", "savings_vs_self_consumption_eur")}
    total["actual_net_cost_eur"] = round(sum(d["actual"]["net_cost_eur"] for d in out_days), 4)
    total["actual_bill_eur"] = round(sum(d["actual"]["bill_eur"] for d in out_days), 4)
    # planned vs actual up to now: the planned SoC of the slots that have started
    started = plans.index <= pd.Timestamp(now)
    planned = plans["soc_pct"][started] if len(plans) else pd.Series(dtype=float)
    actual = means["soc_last_pct"] if len(means) else pd.Series(dtype=float)
    grid = sorted(set(planned.index) | set(actual.index))
    soc = {"x": [int(pd.Timestamp(t).timestamp()) + slot_s for t in grid],  # slot end
           "planned": [_opt(planned.get(t)) for t in grid],
           "actual": [_opt(actual.get(t)) for t in grid]}
    return {"method": METHOD, "from": format_utc(start), "to": format_utc(end),
            "timezone": str(tz), "slot_s": slot_s, "days": out_days, "total": total,
            "soc": soc}


def _opt(x) -> float | None:
    return None if x is None or pd.isna(x) else round(float(x), 2)
