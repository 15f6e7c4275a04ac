"""Quick A/B of control laws and planner variants on season samples of the bench cases.

Runs Helios (``--forecast real`` by default) closed-loop on a few two-week windows of each
bench case (``bench/backtest.py`` data, from ../shared/data) and prints, per variant, the
share of the perfect-foresight savings and EUR vs self-consumption — the figures that decide
which variant becomes the default (docs/backtest.md, "Variants"). Each window starts from the
same SoC; baselines and the perfect-foresight optimum are computed once per window.

Run: python3 bench/intent_lab.py [--cases de2016,se3_2023,dk1_2022] [--days 14]
     [--windows 0,91,182,273] [--variants intent,hybrid,...] [--jobs 2]

A variant is ``control[+key=value...]`` where keys override ``planning.*`` config values,
e.g. ``intent+tie_break_eur_per_kwh=0.005``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import backtest as bb  # noqa: E402
from planner import config as config_mod  # noqa: E402
from planner.evaluate.data import load_data  # noqa: E402
from planner.evaluate.metrics import metrics  # noqa: E402
from planner.evaluate.mpc import MpcStrategy  # noqa: E402
from planner.evaluate.perfect import Terms, perfect_foresight  # noqa: E402
from planner.evaluate.physics import Home, simulate  # noqa: E402
from planner.evaluate.strategies import NoBattery, SelfConsumption  # noqa: E402


def _variant(cfg, text: str):
    control, *pairs = text.split("+")
    planning = cfg.planning
    extra = {}
    for pair in pairs:
        key, value = pair.split("=")
        if key == "nowcast":
            extra["nowcast"] = value == "true"
            continue
        if key == "scen":
            extra["scen"] = float(value)
            continue
        if key == "hedge":
            extra["hedge"] = float(value)
            continue
        if key == "loadtau":
            extra["loadtau"] = float(value)
            continue
        if key == "pvscale":
            extra["pvscale"] = float(value)
            continue
        if key == "pvnowcast":
            extra["pvnowcast"] = value == "true"
            continue
        if key == "oracle":  # diagnosis: the actual pv or load instead of the forecast
            extra["oracle"] = value
            continue
        current = getattr(planning, key)
        typed = type(current)(value) if not isinstance(current, bool) else value == "true"
        planning = replace(planning, **{key: typed})
    return control, replace(cfg, planning=planning), extra


def run_case(case: str, days: int, windows: list[int], variants: list[str],
             forecast: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        args, _ = bb.prepare(case, folder, None)
        cfg = config_mod.load(folder / "config.yaml")
        data = load_data(cfg, str(folder / "prices.csv"), str(folder / "pv.csv"),
                            str(folder / "load.csv"))
    series = data.series
    per_day = 86400 // series.slot_s
    out: dict = {}
    for w in windows:
        start, stop = w * per_day, (w + days) * per_day
        home = Home.from_config(cfg)
        soc0 = 0.5 * home.capacity_kwh
        terms = Terms.for_period(cfg, series, start, stop)
        base = {
            "no_battery": simulate(home.without_battery(), series, start, stop, soc0,
                                       NoBattery()),
            "self_consumption": simulate(home, series, start, stop, soc0,
                                             SelfConsumption(home, series)),
            "perfect_foresight": perfect_foresight(home, series, start, stop, soc0,
                                                       terms)[0],
        }
        cost = {k: metrics(tr, series, start, home, terms)["net_cost_eur"]
                for k, tr in base.items()}
        for v in variants:
            control, vcfg, extra = _variant(cfg, v)
            oracle = extra.pop("oracle", None)
            pvnowcast = extra.pop("pvnowcast", True)
            pvscale = extra.pop("pvscale", None)
            loadtau = extra.pop("loadtau", None)
            hedge = extra.pop("hedge", 0.0)
            scen = extra.pop("scen", None)
            strat = MpcStrategy(vcfg, series, forecast, control=control, **extra)
            strat.hedge = hedge
            if scen is not None:
                strat.scenario_spread = scen
            if strat.real is not None:
                strat.real.nowcast = pvnowcast
                if pvscale is not None:
                    strat.real.pv_confidence = pvscale
                if loadtau is not None:
                    strat.real.load_tau_h = loadtau
            if oracle and strat.real is not None:
                real_forecast = strat.real.forecast

                def oracle_forecast(t, m, real_forecast=real_forecast, oracle=oracle):
                    pv, load = real_forecast(t, m)
                    if oracle == "pv":
                        pv = series.pv_kw[t:t + m]
                    else:
                        load = series.load_kw[t:t + m]
                    return pv, load
                strat.real.forecast = oracle_forecast
            tr = simulate(home, series, start, stop, soc0, strat)
            c = metrics(tr, series, start, home, terms)["net_cost_eur"]
            counts = getattr(strat, "intent_counts", {})
            out.setdefault(v, []).append((cost["no_battery"], cost["self_consumption"],
                                          cost["perfect_foresight"], c, counts))
    return {"case": case, "rows": out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="de2016,se3_2023,dk1_2022")
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--windows", default="0,91,182,273")
    p.add_argument("--variants", default="intent,hybrid")
    p.add_argument("--forecast", default="real")
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args()
    windows = [int(x) for x in a.windows.split(",")]
    variants = a.variants.split(",")
    cases = a.cases.split(",")
    with ProcessPoolExecutor(a.jobs) as pool:
        results = list(pool.map(run_case, cases, [a.days] * len(cases),
                                 [windows] * len(cases), [variants] * len(cases),
                                 [a.forecast] * len(cases)))
    print(f"{'variant':<48}" + "".join(f"{r['case']:>22}" for r in results) + f"{'mean':>8}")
    for v in variants:
        line, shares = f"{v:<48}", []
        for r in results:
            rows = np.array([x[:4] for x in r["rows"][v]])
            nb, sc, pf, h = rows.sum(axis=0)
            share = (nb - h) / (nb - pf)
            shares.append(share)
            line += f"{share:>10.1%} {sc - h:>+9.2f}E"
        print(line + f"{np.mean(shares):>8.1%}")
    sc_line = f"{'(self_consumption)':<48}"
    for r in results:
        rows = np.array([x[:4] for x in r["rows"][variants[0]]])
        nb, sc, pf, _ = rows.sum(axis=0)
        sc_line += f"{(nb - sc) / (nb - pf):>10.1%} {0:>+9.2f}E"
    print(sc_line)
    for r in results:
        for v in variants:
            counts: dict = {}
            for x in r["rows"][v]:
                for k, n in x[4].items():
                    counts[k] = counts.get(k, 0) + n
            if counts:
                print(r["case"], v, dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
