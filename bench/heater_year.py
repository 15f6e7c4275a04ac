"""One year with a 6 kWh/day water heater on the bench case (issue 13): Helios planning the
heater with the battery vs a timer at a fixed hour vs the thermostat alone.

Case ``de2016`` of ``bench/backtest.py``: the CoSSMic residential4 house in Konstanz (OPSD,
CC-BY) with the EPEX DE-AT-LU day-ahead prices of 2016 (the aligned file in ../shared/data,
read only, never copied), 15-min slots (hourly values held), buy = (spot + 0.15) × 1.19,
sell = spot; battery 10 kWh, 5/5 kW, 95 %/95 %, SoC 10-100 %, cycle cost 0.02 EUR/kWh, start
50 %. The heater: 3 kW on/off (a relay), 6 kWh per local day, allowed all day.

Each local day is planned once at local midnight with perfect foresight over 48 h and its
first day is followed exactly (the next day starts at the SoC the plan reached), so the
three strategies differ only in the heater:

* ``helios``: the heater is a component of the plan (``water_heater:``), placed in the
  cheapest and PV-surplus slots with the battery in the same optimisation;
* ``fixed hour``: a timer heats 02:00-04:00 local every day (3 kW × 2 h), part of the load;
  the battery is still planned by Helios around it;
* ``thermostat``: the heater reheats as hot water is used (6 kWh/day along a morning and
  evening draw profile), part of the load; the battery planned by Helios.

Cost = grid bill + battery wear over the year [EUR]. Run: python3 bench/heater_year.py
[--days N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner import config  # noqa: E402
from planner.inputs import gather  # noqa: E402
from planner.optimize import model  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TZ = "Europe/Berlin"
HEATER_KW, DAILY_KWH = 3.0, 6.0
#: thermostat-only: share of the day's reheating per local hour (morning and evening draws)
THERMOSTAT_PCT = [0] * 6 + [10, 20, 10] + [0] * 9 + [10, 20, 20, 10] + [0] * 2
BASE = {"site": {"timezone": TZ},
        "battery": {"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5,
                    "charge_efficiency": 0.95, "discharge_efficiency": 0.95,
                    "min_soc_pct": 10, "max_soc_pct": 100, "cycle_cost_eur_per_kwh": 0.02},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
        "planning": {"horizon_h": 48}}


def house() -> pd.DataFrame:
    """15-min slots of 2016 (+ 2 days): pv, load [kW], spot [EUR/kWh]."""
    path = SHARED / "aligned" / "DE_KN_residential4_2016_with_DE-AT-LU_dayahead_1h.csv"
    if not path.exists():
        sys.exit(f"needs {path} (the team's shared data folder)")
    h = pd.read_csv(path, parse_dates=["ts_utc"]).set_index("ts_utc")
    h = h[["pv_kwh", "load_kwh", "price_eur_mwh"]].astype(float)
    h = h.interpolate(limit=3).ffill().bfill()  # bench/backtest.py fills long gaps by week
    h["load_kwh"] = h["load_kwh"].clip(lower=0.0)
    h["pv_kwh"] = h["pv_kwh"].clip(lower=0.0)
    q = h.resample("15min").ffill()
    return pd.DataFrame({"pv_kw": q["pv_kwh"], "load_kw": q["load_kwh"],
                         "spot": q["price_eur_mwh"] / 1000.0})


def heater_profile(index: pd.DatetimeIndex, kind: str) -> np.ndarray:
    """The heater's power per slot when it is not planned (``fixed`` or ``thermostat``)."""
    local = index.tz_convert(TZ)
    hours = np.asarray(local.hour)
    if kind == "fixed":
        return np.where((hours >= 2) & (hours < 4), HEATER_KW, 0.0)
    return DAILY_KWH * np.asarray(THERMOSTAT_PCT, dtype=float)[hours] / 100.0  # kWh/h = kW


def run(days: int | None) -> dict:
    data = house()
    cfgs = {"helios": config.from_mapping({**BASE, "water_heater": {
        "power_kw": HEATER_KW, "daily_kwh": DAILY_KWH, "modulating": False,
        "window": {"from": "00:00", "to": "00:00"}}}),
        "fixed hour": config.from_mapping(BASE), "thermostat": config.from_mapping(BASE)}
    midnights = pd.date_range("2016-01-01", "2016-12-30", freq="D", tz=TZ)
    if days:
        midnights = midnights[:days]
    out = {k: {"bill": 0.0, "wear": 0.0, "heater_kwh": 0.0, "co": 0.0, "solve_s": 0.0,
               "milp": 0} for k in cfgs}
    soc = {k: 50.0 for k in cfgs}
    for day in midnights:
        start = day.tz_convert("UTC")
        end = (day + pd.DateOffset(days=1)).tz_convert("UTC")
        first = int((end - start) / pd.Timedelta(minutes=15))
        window = data.loc[start:start + pd.Timedelta(hours=48) - pd.Timedelta(minutes=15)]
        for name, cfg in cfgs.items():
            load = window["load_kw"].to_numpy().copy()
            if name != "helios":
                load = load + heater_profile(window.index, "fixed" if name == "fixed hour"
                                             else "thermostat")
            inputs = gather.from_arrays(start, 900, window["spot"].to_numpy(),
                                        window["pv_kw"].to_numpy(), load, soc[name], cfg)
            t = time.perf_counter()
            sol = model.solve(inputs, cfg)
            out[name]["solve_s"] += time.perf_counter() - t
            out[name]["milp"] += int(sol.exact_milp)
            dt = 0.25
            k = slice(0, first)
            out[name]["bill"] += float(np.sum(inputs.buy_eur_per_kwh[k] * sol.grid_import_kw[k]
                                              - inputs.sell_eur_per_kwh[k]
                                              * sol.grid_export_kw[k]) * dt)
            out[name]["wear"] += 0.02 * float(np.sum(sol.battery_charge_kw[k]
                                                     + sol.battery_discharge_kw[k]) * dt)
            heater = (sol.device_kw["water_heater"][k] if name == "helios"
                      else heater_profile(window.index, "fixed" if name == "fixed hour"
                                          else "thermostat")[k])
            out[name]["heater_kwh"] += float(np.sum(heater) * dt)
            # the heater's energy at the slots' buy prices (what it would cost from the grid)
            out[name]["co"] += float(np.sum(heater * inputs.buy_eur_per_kwh[k]) * dt)
            soc[name] = float(sol.soc_kwh[first - 1]) / 10.0 * 100.0
    for name in out:
        out[name]["soc_end_pct"] = soc[name]
        out[name]["days"] = len(midnights)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=None, help="only the first N days")
    args = parser.parse_args()
    t = time.perf_counter()
    r = run(args.days)
    wall = time.perf_counter() - t
    base = {k: r[k]["bill"] + r[k]["wear"] for k in r}
    print(f"{'strategy':<12}{'bill EUR':>10}{'wear EUR':>10}{'cost EUR':>10}{'heater kWh':>12}"
          f"{'heater at buy EUR':>19}{'end SoC %':>11}{'solve s':>9}{'MILP':>6}")
    for name, v in r.items():
        print(f"{name:<12}{v['bill']:>10.2f}{v['wear']:>10.2f}{base[name]:>10.2f}"
              f"{v['heater_kwh']:>12.1f}{v['co']:>19.2f}{v['soc_end_pct']:>11.1f}"
              f"{v['solve_s']:>9.1f}{v['milp']:>6}")
    days = r["helios"]["days"]
    for other in ("fixed hour", "thermostat"):
        print(f"helios saves {base[other] - base['helios']:.2f} EUR over {days} days vs "
              f"{other} ({(base[other] - base['helios']) / days * 365:.2f} EUR/year)")
    print(f"wall {wall:.0f} s")


if __name__ == "__main__":
    main()
