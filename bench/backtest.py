"""One-year closed-loop backtests on real data: speed (target <= 5 min on 2 cores) and savings.

Cases (data read from ../shared/data only, never copied into the repo):

* ``de2016`` - the CoSSMic residential4 house in Konstanz (OPSD, CC-BY) with the EPEX
  DE-AT-LU day-ahead prices of the same hours (epftoolbox; the aligned file), calendar 2016;
* ``se3_2023`` - the same house with SE3 2023 prices (Energinet, CC-BY);
* ``dk1_2022`` - the same house with DK1 2022 prices (Energinet, CC-BY);
* ``nl2023`` - the same house with NL 2023 day-ahead prices (ENTSO-E), a year with many
  negative hours.

The house (hourly kWh = average kW) is moved onto the price year by a whole number of weeks
(weekdays kept, the nearest day of the year; hours that fall outside 2016 wrap by 52 weeks).
Missing hours (165 h in 2016, the longest block 55 h on 2016-04-22/24): gaps up to 3 h are
interpolated linearly, longer ones take the same hour one week earlier (later when that is
missing too); the 11 slightly negative load hours (meter skew) are set to 0.

Every run is a whole ``helios backtest`` process at 15-min slots, re-planning every slot
(≈35,000 solves of the 48 h model): buy = (spot + 0.15) × 1.19, sell = spot; battery
10 kWh, 5/5 kW, 95 %/95 %, SoC 10-100 %, cycle cost 0.02 EUR/kWh; start SoC 50 %.

``--forecast real`` runs Helios's own forecasters on the history before each re-plan (load:
the history profile; PV: weather-free clear-sky at Konstanz × recent clear-sky index) and shows
day-ahead prices only once published (13:00 local); the table then adds the forecasts' MAE.

Run: python3 bench/backtest.py [--cases de2016,se3_2023,dk1_2022]
     [--forecast perfect,noisy,real] [--control battery,grid,hybrid] [--jobs 1] [--days N]
     [--keep DIR] [--minute synthetic] [--ev commuter] [--heater modulating|onoff
     [--heater-fixed 02:00]]

``--heater``: the 6 kWh/day water heater of issue 13 (3 kW, all day) planned with the house,
vs the house planned alone with the heater on a timer (``--heater-fixed``) or on its
thermostat (``helios backtest`` with a ``water_heater:`` section).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
HOUSE = "aligned/DE_KN_residential4_2016_with_DE-AT-LU_dayahead_1h.csv"
CASES = {
    "de2016": (None, 2016, "Europe/Berlin"),
    "se3_2023": ("prices/tidy/SE3_energinet_2023-2024_1h.csv", 2023, "Europe/Stockholm"),
    "dk1_2022": ("prices/tidy/DK1_energinet_2021-01-01_2024-03-31_1h.csv", 2022,
                 "Europe/Copenhagen"),
    # many negative hours (ENTSO-E, CC-BY): the file ends with 2023, so the horizon shrinks
    # over the year's last 48 h
    "nl2023": ("prices/tidy/NL_entsoe_2023_1h.csv", 2023, "Europe/Amsterdam"),
}
CONFIG = {
    "planning": {"slot_s": 900, "horizon_h": 48},
    "battery": {"capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5,
                "charge_efficiency": 0.95, "discharge_efficiency": 0.95, "min_soc_pct": 10,
                "max_soc_pct": 100, "cycle_cost_eur_per_kwh": 0.02},
    "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
}
#: the CoSSMic house is in Konstanz (DE); ``--forecast real`` computes its clear-sky PV here
SITE = {"latitude": 47.66, "longitude": 9.18}
#: ``--ev commuter``: the commuter car of issue 14 (60 kWh, 11 kW, 80 % by 07:30 on weekdays,
#: back at 18:00 with 7 kWh used), planned with the house
EV = {"capacity_kwh": 60, "max_charge_kw": 11, "phases": 3, "charge_efficiency": 0.9,
      "vehicle": {"type": "manual", "soc_pct": 80}, "target_soc_pct": 80, "trip_kwh": 7,
      "departure": {"mon": "07:30", "tue": "07:30", "wed": "07:30", "thu": "07:30",
                    "fri": "07:30", "sat": None, "sun": None},
      "arrival": "18:00"}
#: ``--heater``: the 6 kWh/day water heater of issue 13 (3 kW element, all day), planned with
#: the house; ``--heater-kind onoff`` makes it a relay (MILP)
HEATER = {"power_kw": 3.0, "daily_kwh": 6.0, "modulating": True,
          "window": {"from": "00:00", "to": "00:00"}}
#: extra ``helios backtest`` arguments for every run (``--minute synthetic``)
EXTRA: list[str] = []
#: ``planning.solver_backend`` of every run (``--backend``; auto = the config's default)
BACKEND: list[str] = []
#: extra config sections (``--ev``)
EXTRA_CONFIG: dict = {}


def _shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        sys.exit(f"bench needs {path} (the team's shared data folder)")
    return path


def fill_gaps(values: pd.Series, short_h: int = 3) -> pd.Series:
    """Short gaps (<= ``short_h`` h) linear; longer: same hour a week earlier (else later)."""
    out = values.copy()
    na = out.isna().to_numpy()
    runs = np.diff(np.r_[0, na.astype(int), 0])
    for a, b in zip(np.flatnonzero(runs == 1), np.flatnonzero(runs == -1), strict=True):
        if b - a <= short_h and a > 0 and b < len(out):
            out.iloc[a:b] = np.interp(np.arange(a, b), [a - 1, b],
                                      [out.iloc[a - 1], out.iloc[b]])
    week = 7 * 24
    for i in np.flatnonzero(out.isna().to_numpy()):
        for j in (i - week, i + week, i - 2 * week, i + 2 * week):
            if 0 <= j < len(out) and not np.isnan(values.iloc[j]):
                out.iloc[i] = values.iloc[j]
                break
    return out


def house() -> pd.DataFrame:
    """The 2016 house: ``pv_kw``, ``load_kw`` (hourly, gaps filled) and the DE price."""
    h = pd.read_csv(_shared(HOUSE))
    h.index = pd.DatetimeIndex(pd.to_datetime(h["ts_utc"], utc=True), name="ts_utc")
    return pd.DataFrame({
        "pv_kw": fill_gaps(h["pv_kwh"]).clip(lower=0),
        "load_kw": fill_gaps(h["load_kwh"]).clip(lower=0),
        "price_eur_per_kwh": h["price_eur_mwh"] / 1000.0,
    })


def shift_house(h: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The house's PV and load on ``index`` (another year), moved by whole weeks."""
    offset = index[0] - h.index[0]
    weeks = round(offset / pd.Timedelta(days=7))
    source = index - pd.Timedelta(days=7 * weeks)
    year = pd.Timedelta(days=364)
    source = source.where(source >= h.index[0], source + year)
    source = source.where(source <= h.index[-1], source - year)
    return h.loc[source, ["pv_kw", "load_kw"]].set_axis(index)


def prepare(case: str, folder: Path, days: int | None,
            first_day: int = 0) -> tuple[list[str], dict]:
    """Write the case's CSVs and config; the ``helios backtest`` arguments."""
    price_file, year, tz = CASES[case]
    h = house()
    start = pd.Timestamp(f"{year}-01-01", tz=tz).tz_convert("UTC")
    end = pd.Timestamp(f"{year + 1}-01-01", tz=tz).tz_convert("UTC")
    if price_file is None:
        frame = h
    else:
        p = pd.read_csv(_shared(price_file))
        p.index = pd.DatetimeIndex(pd.to_datetime(p["ts_utc"], utc=True), name="ts_utc")
        p = p[(p.index >= start) & (p.index < end + pd.Timedelta(hours=48))]
        # a missing hour (NL 2023 lacks 2023-10-29 01:00Z) is interpolated, at most 3 in a row
        hours = pd.date_range(p.index[0], p.index[-1], freq="1h", name="ts_utc")
        p = p[["price_eur_mwh"]].reindex(hours).interpolate(limit=3)
        frame = shift_house(h, p.index).assign(price_eur_per_kwh=p["price_eur_mwh"] / 1000.0)
    stamps = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    for col, name in (("price_eur_per_kwh", "prices"), ("pv_kw", "pv"), ("load_kw", "load")):
        pd.DataFrame({"ts_utc": stamps, col: frame[col].round(5)}).to_csv(
            folder / f"{name}.csv", index=False)
    site = {"timezone": tz, **SITE}
    config = {**CONFIG, **EXTRA_CONFIG, "site": site}
    if BACKEND:
        config["planning"] = {**CONFIG["planning"], "solver_backend": BACKEND[0]}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    start = start + pd.Timedelta(days=first_day)
    stop = end if days is None else start + pd.Timedelta(days=days)
    args = ["--prices", str(folder / "prices.csv"), "--pv", str(folder / "pv.csv"),
            "--load", str(folder / "load.csv"), "--config", str(folder / "config.yaml"),
            "--from", start.isoformat(), "--to", stop.isoformat()]
    facts = {"pv_kwh": float(frame["pv_kw"][(frame.index >= start) & (frame.index < end)].sum()),
             "load_kwh": float(frame["load_kw"][(frame.index >= start)
                                                & (frame.index < end)].sum())}
    return args, facts


def run(case: str, forecast: str, days: int | None, keep: Path | None,
        control: str = "intent", first_day: int = 0) -> dict:
    """One whole ``helios backtest`` process; its summary plus the wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        args, facts = prepare(case, folder, days, first_day)
        out = (keep / f"{case}_{forecast}_{control}") if keep else folder / "out"
        cmd = [sys.executable, "-m", "planner", "backtest", *args, "--forecast", forecast,
               "--noise-pct", "10", "--seed", "1", "--control", control, "--out", str(out),
               "--json", "-q", *EXTRA]
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "HELIOS_CONFIG": ""})
        wall = time.perf_counter() - t
        if done.returncode != 0:
            sys.exit(f"{case}: helios backtest failed ({done.returncode}):\n{done.stderr}")
        summary = json.loads(done.stdout)
    return {"case": case, "forecast": forecast, "control": control, "wall_s": wall,
            "summary": summary, **facts}


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="de2016", help="comma-separated: " + ",".join(CASES))
    parser.add_argument("--forecast", default="perfect", help="perfect,noisy,real")
    parser.add_argument("--control", default="intent",
                        help="intent,battery,grid,hybrid: how the executor follows the plan")
    parser.add_argument("--jobs", type=int, default=1,
                        help="cases run at once (1 = each timed alone)")
    parser.add_argument("--days", type=int, default=None, help="shorter period (smoke test)")
    parser.add_argument("--first-day", type=int, default=0,
                        help="start this many days into the year (with --days)")
    parser.add_argument("--keep", type=Path, default=None, help="keep outputs in this folder")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--minute", choices=["synthetic"], default=None,
                        help="also judge at 1-minute truth (helios backtest --minute)")
    parser.add_argument("--backend", choices=["auto", "highs", "cvxpy"], default=None,
                        help="planning.solver_backend of the runs (default: the config's)")
    parser.add_argument("--ev", choices=["commuter"], default=None,
                        help="add the commuter car (ev: section, --ev-profile commuter)")
    parser.add_argument("--heater", choices=["modulating", "onoff"], default=None,
                        help="add the 6 kWh/day water heater (water_heater: section)")
    parser.add_argument("--heater-fixed", default="02:00",
                        help="the heater timer baseline's local start time")
    args = parser.parse_args()
    if args.heater:
        EXTRA_CONFIG["water_heater"] = {**HEATER, "modulating": args.heater == "modulating"}
        EXTRA.extend(["--heater-fixed", args.heater_fixed])
    if args.ev:
        EXTRA_CONFIG["ev"] = EV
        EXTRA.extend(["--ev-profile", args.ev])
    if args.backend:
        BACKEND.append(args.backend)
    if args.minute:
        EXTRA.extend(["--minute", args.minute])
    jobs = [(c, f, k) for c in args.cases.split(",") for f in args.forecast.split(",")
            for k in args.control.split(",")]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda j: run(j[0], j[1], args.days, args.keep, j[2],
                                                   args.first_day), jobs))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"{'case':<10}{'forecast':<9}{'control':<8}{'wall s':>8}{'loop s':>8}{'solves':>8}"
          f"{'CPU s':>7}{'/s':>6}{'MILP':>6}{'Helios':>9}{'no batt':>9}{'self-c.':>9}"
          f"{'rule':>9}{'PF':>9}"
          f"{'vs nb':>8}{'vs sc':>8}{'vs rule':>8}{'of PF':>8}")
    for r in results:
        s = r["summary"]
        st, c, h = s["strategies"], s["comparison"]["helios"], s["runs"]["helios"]
        cpu = h.get("cpu_s", float("nan"))
        print(f"{r['case']:<10}{r['forecast']:<9}{r['control']:<8}{r['wall_s']:>8.1f}"
              f"{h['run_s']:>8.1f}{h['solves']:>8}{cpu:>7.1f}{h['solves'] / h['run_s']:>6.0f}"
              f"{h['milp_solves']:>6}"
              f"{st['helios']['net_cost_eur']:>9.2f}{st['no_battery']['net_cost_eur']:>9.2f}"
              f"{st['self_consumption']['net_cost_eur']:>9.2f}"
              f"{st['price_rule']['net_cost_eur']:>9.2f}"
              f"{st['perfect_foresight']['net_cost_eur']:>9.2f}"
              f"{c['savings_vs_no_battery_eur']:>8.2f}{c['savings_vs_self_consumption_eur']:>8.2f}"
              f"{c['savings_vs_price_rule_eur']:>8.2f}{_share(c['share_of_perfect_foresight']):>8}")
    for r in results:
        ev = r["summary"].get("ev")
        if ev:
            st = r["summary"]["strategies"]
            print(f"{r['case']} {r['forecast']} EV: Helios (house + car in one plan) saves "
                  f"{ev['savings_vs_at_plugin_eur']:.2f} EUR vs the car charged at plug-in and "
                  f"{ev['savings_vs_cheapest_eur']:.2f} EUR vs the cheapest hours (house "
                  f"planned alone); car energy at buy price: Helios "
                  f"{ev['car_cost_helios_eur']:.2f}, at plug-in {ev['car_cost_at_plugin_eur']:.2f},"
                  f" cheapest {ev['car_cost_cheapest_eur']:.2f} EUR")
            for name in ("helios", "helios_ev_at_plugin", "helios_ev_cheapest"):
                m = st[name]
                print(f"  {name:<22} net {m['net_cost_eur']:9.2f} EUR  car "
                      f"{m['ev_charge_kwh']:8.1f} kWh  departures met "
                      f"{m['ev_departures_met']}/{m['ev_departures']}  "
                      f"lowest {m['ev_departure_soc_min_pct']:.1f} %  end "
                      f"{m['ev_soc_end_kwh']:.1f} kWh")
    for r in results:
        wh = r["summary"].get("water_heater")
        if wh:
            st = r["summary"]["strategies"]
            print(f"{r['case']} {r['forecast']} heater: Helios (house + heater in one plan) "
                  f"saves {wh['savings_vs_fixed_eur']:.2f} EUR vs a timer at {wh['fixed_at']} "
                  f"and {wh['savings_vs_thermostat_eur']:.2f} EUR vs the thermostat (house "
                  "planned alone)")
            for name in ("helios", "helios_heater_fixed", "helios_heater_thermostat"):
                m = st[name]
                print(f"  {name:<26} net {m['net_cost_eur']:9.2f} EUR  bill "
                      f"{m['bill_eur']:9.2f}  heater {m['heater_kwh']:8.1f} kWh, "
                      f"{m['heater_cost_at_buy_eur']:8.2f} EUR at buy")
    for r in results:
        h = r["summary"]["runs"]["helios"]
        if "load_mae_kw" in h:
            print(f"{r['case']} {r['forecast']} {r['control']}: load MAE {h['load_mae_kw']:.3f} kW "
                  f"(bias {h['load_bias_kw']:+.3f}), PV MAE {h['pv_mae_kw']:.3f} kW (bias "
                  f"{h['pv_bias_kw']:+.3f}) over every horizon slot; current slot: load "
                  f"{h['load_now_mae_kw']:.3f}, PV {h['pv_now_mae_kw']:.3f} kW; "
                  f"{h['compiled_models']} compiled models")
        if "forecast_s" in h:  # RealForecaster.stats: its forecasts' CPU time in the loop
            print(f"{r['case']} {r['forecast']} {r['control']}: forecasting "
                  f"{h['forecast_s']:.1f} s CPU (load refits {h['load_fit_s']:.1f} s wall) of "
                  f"the loop's {h.get('cpu_s', float('nan')):.1f} s CPU")
    for r in results:
        for key, m in r["summary"].get("resolution", {}).items():
            print(f"{r['case']} {r['forecast']} {r['control']} at {key} resolution: "
                  f"{_share(m['share_of_perfect_foresight'])} of PF savings, "
                  f"{m['savings_vs_self_consumption_eur']:.2f} EUR vs self-consumption")
    print("EUR over the period, net = bill + wear - value of the energy added to the battery; "
          "target: one year <= 300 s wall on 2 cores, >= 99 % of perfect foresight (perfect "
          "forecasts)")


if __name__ == "__main__":
    main()
