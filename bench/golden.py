"""Golden comparison on real data: Helios's optimum vs the independent reference MILP.

For each case in ``../shared/data/cases`` (read from there only: the EPEX DE-LU data may not
be copied into the repo), solve with ``planner.optimize.model.solve`` and with the scipy reference
in ``tests/reference_lp.py`` (exclusive MILP = ground truth, plain LP for comparison), and
print per case: slots, Helios objective, reference objective, |delta|, whether Helios took
the MILP path, whether the plain LP splits a flow pair, the largest per-slot balance
residual and the solve times.

Site: 10 kWh / 5 kW battery, 95 % each way, min 10 %, wear 0.02 EUR/kWh, 17 kW import,
10 kW export, start 50 %; tariff buy = (spot + 0.15) * 1.19, sell = spot (``spot`` tariff)
or a fixed 0.08 EUR/kWh feed-in (``fixed-fit``: sells dearer than it buys when the spot is
deeply negative). PV and load: the CoSSMic residential4 summer week (CC-BY), hourly kWh held
onto the slots; the household cases use their own price column.

Run: python3 bench/golden.py   (about 20 s on 2 cores; exits 1 if any |delta| > tolerance)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT.parent / "shared" / "data" / "cases"
# the checkout first: tests/planner (no __init__) must not become a namespace "planner"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import reference_lp as ref  # noqa: E402

from planner import config  # noqa: E402
from planner.inputs import gather as inputs  # noqa: E402
from planner.optimize import model  # noqa: E402
from planner.plan import build as plan  # noqa: E402

SUMMER = "household_DE_KN_r4_2016-05-06_05-12_1h_summer_negprice_with_price.csv"
WINTER = "household_DE_KN_r4_2016-01-18_01-22_1h_winter_with_price.csv"

SITE = {"battery": {"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5,
                    "charge_efficiency": 0.95, "discharge_efficiency": 0.95, "min_soc_pct": 10,
                    "cycle_cost_eur_per_kwh": 0.02},
        "grid": {"max_import_kw": 17, "max_export_kw": 10}}


def _read(name: str) -> pd.DataFrame:
    frame = pd.read_csv(CASES / name)
    frame.index = pd.to_datetime(frame.pop("ts_utc"), utc=True)
    return frame


def _on_slots(values: pd.Series, slot_s: int, n: int) -> np.ndarray:
    """Hold (prices) or spread (hourly kWh = mean kW) values onto ``n`` slots."""
    step = int((values.index[1] - values.index[0]).total_seconds())
    per = step // slot_s
    out = np.repeat(values.to_numpy(dtype=float), per)
    if len(out) < n:
        raise ValueError(f"{values.name}: {len(out)} slots, need {n}")
    return out[:n]


def cases():
    """(name, spot EUR/kWh, pv kW, load kW, slot_s, start) on a common slot grid."""
    house = _read(SUMMER)
    pv_h = house["pv_kwh"].clip(lower=0)
    load_h = house["load_kwh"].clip(lower=0)
    out = []
    for name, slot_s, hours in [
        ("price_DE-LU_2026-04-30_05-02_15min_minus500.csv", 900, 48),
        ("price_DE-LU_2026-04-30_05-02_1h_minus500.csv", 3600, 48),
        ("price_NL_2023-07-01_03_1h_minus500.csv", 900, 48),
        ("price_SE3_2024-12-10_13_1h_spike707.csv", 900, 48),
        ("price_DK1_2022-08-27_30_1h_crisis871.csv", 900, 48),
        ("price_SE3_2023-10-28_30_1h_DST_autumn_73h.csv", 900, 48),
        ("price_DK1_2023-03-25_27_1h_DST_spring_71h.csv", 900, 48),
    ]:
        prices = _read(name)["price_eur_mwh"] / 1000.0
        n = hours * 3600 // slot_s
        out.append((name.removesuffix(".csv"), _on_slots(prices, slot_s, n),
                    _on_slots(pv_h, slot_s, n), _on_slots(load_h, slot_s, n), slot_s,
                    prices.index[0]))
    for name, hours, slot_s in [(SUMMER, 168, 3600), (SUMMER, 48, 900), (WINTER, 120, 3600)]:
        h = _read(name)
        n = hours * 3600 // slot_s
        if name == SUMMER and slot_s == 900:  # the 48 h around the -130 EUR/MWh Sunday
            h = h[h.index >= pd.Timestamp("2016-05-07T00:00Z")]
        label = name.split("_1h_")[0].removeprefix("household_") + ("_summer" if name == SUMMER
                                                                      else "_winter")
        out.append((f"{label} {hours}h/{slot_s // 60}min",
                    _on_slots(h["price_eur_mwh"] / 1000.0, slot_s, n),
                    _on_slots(h["pv_kwh"].clip(lower=0), slot_s, n),
                    _on_slots(h["load_kwh"].clip(lower=0), slot_s, n), slot_s, h.index[0]))
    return out


def main() -> int:
    if not CASES.is_dir():
        print(f"no case data at {CASES}", file=sys.stderr)
        return 2
    tariffs = {
        "spot": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
        "fixed-fit": {"buy": "(price + 0.15) * 1.19",
                      "sell": {"multiplier": 0.0, "fixed_eur_per_kwh": 0.08}},
    }
    header = (f"{'case':<58} {'tariff':<9} {'slots':>5} {'helios EUR':>12} {'reference EUR':>14} "
              f"{'|delta|':>9} {'MILP':>5} {'LP splits':>9} {'balance kW':>10} "
              f"{'helios ms':>9} {'ref ms':>7}")
    print(header)
    print("-" * len(header))
    worst = 0.0
    failed = 0
    t_all = time.perf_counter()
    for name, spot, pv, load, slot_s, start in cases():
        for tname, tariff in tariffs.items():
            cfg = config.from_mapping({**SITE, "tariff": tariff})
            data = inputs.from_arrays(start, slot_s, spot, pv, load, 50.0, cfg)
            t0 = time.perf_counter()
            sol = model.solve(data, cfg)
            t_helios = time.perf_counter() - t0
            plan.check(data, sol, cfg)
            t0 = time.perf_counter()
            c = ref.compare(data, cfg, sol)
            t_ref = time.perf_counter() - t0
            delta = abs(c.delta_eur)
            ok = (delta <= ref.tolerance(c.milp_eur) and c.max_balance_kw <= 1e-6
                  and c.max_split_kw <= 1e-6 and (c.exact_milp or not c.lp_splits))
            failed += not ok
            worst = max(worst, delta)
            print(f"{name:<58} {tname:<9} {data.n:>5} {c.helios_eur:>12.6f} "
                  f"{c.milp_eur:>14.6f} {delta:>9.2e} {'yes' if c.exact_milp else 'no':>5} "
                  f"{'yes' if c.lp_splits else 'no':>9} {c.max_balance_kw:>10.1e} "
                  f"{t_helios * 1000:>9.1f} {t_ref * 1000:>7.0f}"
                  + ("" if ok else "  <-- MISMATCH"))
    print(f"\nworst |delta| {worst:.2e} EUR, {failed} mismatch(es), "
          f"{time.perf_counter() - t_all:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
