"""``helios backtest`` results as data and text: ``summary.json`` and the terminal tables.

:func:`make_summary` is everything worth keeping about one scenario (JSON-ready, with the
1-minute truth when judged); :func:`summary_text`, :func:`sweep_text` the terminal tables;
:func:`sweep_rows` the what-if table's rows.
"""

from __future__ import annotations

from dataclasses import asdict

from planner.config import HeliosConfig
from planner.evaluate.data import Data, Scenario
from planner.evaluate.loop import STRATEGY_ORDER, Options, Result

SUMMARY_VERSION = 1


def make_summary(result: Result, cfg: HeliosConfig, data: Data, scenario: Scenario,
                 options: Options) -> dict:
    """Everything worth keeping about one scenario (JSON-ready)."""
    b = cfg.battery
    helios = result.traces["helios"].info
    solves = helios.get("solves", 0)
    period = {k: v for k, v in result.info.items() if k not in ("minute", "ev", "water_heater")}
    out = {
        "version": SUMMARY_VERSION,
        "scenario": {"label": scenario.label, "battery_kwh": b.capacity_kwh,
                     "pv_scale": scenario.pv_scale},
        "period": {**period, "timezone": cfg.site.timezone},
        "inputs": data.sources,
        "outages": [[a.isoformat(), z.isoformat()] for a, z in data.outages],
        "battery": {"capacity_kwh": b.capacity_kwh, "max_charge_kw": b.max_charge_kw,
                    "max_discharge_kw": b.max_discharge_kw,
                    "charge_efficiency": b.charge_efficiency,
                    "discharge_efficiency": b.discharge_efficiency,
                    "min_soc_pct": b.min_soc_pct, "max_soc_pct": b.max_soc_pct,
                    "wear_cost_eur_per_kwh": b.wear_cost_eur_per_kwh},
        "grid": {"max_import_kw": cfg.grid.max_import_kw,
                 "max_export_kw": result.home.max_export_kw},
        "tariff": {"buy": _tariff_text(cfg.tariff.buy), "sell": _tariff_text(cfg.tariff.sell)},
        "planner": {"horizon_h": cfg.planning.horizon_h, "slot_s": cfg.planning.slot_s,
                    "terminal_value_quantile": cfg.planning.terminal_value_quantile,
                    "horizon_policy": ("to the last published day-ahead price (next day's "
                                       "from 13:00 local), at most horizon_h"
                                       if options.forecast == "real"
                                       else "shrinks only at the end of the data")},
        "options": asdict(options),
        "terms": asdict(result.terms),
        "strategies": result.metrics,
        "comparison": result.comparison,
        "runs": {name: tr.info for name, tr in result.traces.items()},
        "speed": {"helios_run_s": helios.get("run_s"), "solves": solves,
                  "solves_per_s": (round(solves / helios["run_s"], 1)
                                   if solves and helios.get("run_s") else None)},
    }
    if "ev" in result.info:  # the car (planner.evaluate.ev.compare)
        out["ev"] = result.info["ev"]
    if "water_heater" in result.info:  # the heater (planner.evaluate.heater.compare)
        out["water_heater"] = result.info["water_heater"]
    fine = result.info.get("minute")
    if fine is not None:
        out["minute"] = fine.summary()
        out["resolution"] = resolution_table(out)
    return out


def resolution_table(summary: dict) -> dict:
    """Helios at slot and at 1-minute truth: share of the perfect-foresight savings, EUR vs
    self-consumption and vs no battery (each against that resolution's baselines and limit)."""
    out = {}
    for key, part in (("slot", summary), ("minute", summary.get("minute"))):
        if part is None:
            continue
        c = part["comparison"]["helios"]
        out[key] = {"share_of_perfect_foresight": c["share_of_perfect_foresight"],
                    "savings_vs_self_consumption_eur": c["savings_vs_self_consumption_eur"],
                    "savings_vs_no_battery_eur": c["savings_vs_no_battery_eur"],
                    "helios_net_cost_eur": part["strategies"]["helios"]["net_cost_eur"]}
        if "share_of_slot_plan" in c:
            out[key]["share_of_slot_plan"] = c["share_of_slot_plan"]
    return out



def _tariff_text(spec) -> str:
    if isinstance(spec, str):
        return spec
    return (f"(price * {spec.multiplier:g} + {spec.fixed_eur_per_kwh:g}) * "
            f"(1 + {spec.vat_pct:g} / 100)")



def sweep_rows(summaries: list[dict]) -> list[dict]:
    """The what-if table: one flat row per scenario."""
    rows = []
    for s in summaries:
        st, cmp_ = s["strategies"], s["comparison"]["helios"]
        rows.append({
            "scenario": s["scenario"]["label"],
            "battery_kwh": s["scenario"]["battery_kwh"],
            "pv_scale": s["scenario"]["pv_scale"],
            "helios_net_cost_eur": st["helios"]["net_cost_eur"],
            "no_battery_net_cost_eur": st["no_battery"]["net_cost_eur"],
            "savings_vs_no_battery_eur": cmp_["savings_vs_no_battery_eur"],
            "savings_vs_self_consumption_eur": cmp_["savings_vs_self_consumption_eur"],
            "savings_vs_price_rule_eur": cmp_["savings_vs_price_rule_eur"],
            "share_of_perfect_foresight": cmp_["share_of_perfect_foresight"],
            "equivalent_cycles": st["helios"]["equivalent_cycles"],
            "self_consumption_ratio": st["helios"]["self_consumption_ratio"],
            "unserved_kwh": st["helios"]["unserved_kwh"],
        })
        if "minute" in s:
            m = s["minute"]["comparison"]["helios"]
            rows[-1].update({
                "minute_savings_vs_self_consumption_eur": m["savings_vs_self_consumption_eur"],
                "minute_share_of_perfect_foresight": m["share_of_perfect_foresight"]})
    return rows



NAMES = {"helios": "Helios", "helios_noisy": "Helios (noisy)", "no_battery": "no battery",
         "self_consumption": "self-consumption", "price_rule": "price rule",
         "perfect_foresight": "perfect foresight",
         "perfect_foresight_slot_plan": "PF slot plan",
         "perfect_foresight_slot_plan_intent": "PF plan, intent",
         "helios_ev_at_plugin": "Helios, car@plug-in", "helios_ev_cheapest": "Helios, car cheap",
         "helios_heater_fixed": "Helios, heater timer",
         "helios_heater_thermostat": "Helios, heater thermostat"}


def summary_text(summary: dict) -> str:
    """The terminal table for one scenario."""
    st = summary["strategies"]
    p = summary["period"]
    lines = [f"backtest {p['start']} .. {p['end']} ({p['slots']} slots of "
             f"{p['slot_s'] // 60} min), battery {summary['battery']['capacity_kwh']:g} kWh, "
             f"PV x{summary['scenario']['pv_scale']:g}, forecasts "
             f"{summary['options']['forecast']}"]
    head = (f"{'strategy':<18}{'net EUR':>10}{'bill EUR':>10}{'saved EUR':>10}{'import':>9}"
            f"{'export':>9}{'cycles':>8}{'self-cons':>10}{'h@min':>7}{'unserved':>9}")
    lines.append(head)
    nb = st["no_battery"]["net_cost_eur"]
    for name in [k for k in STRATEGY_ORDER if k in st] + \
            [k for k in st if k not in STRATEGY_ORDER]:
        m = st[name]
        lines.append(f"{NAMES.get(name, name):<18}{m['net_cost_eur']:>10.2f}"
                     f"{m['bill_eur']:>10.2f}{nb - m['net_cost_eur']:>10.2f}"
                     f"{m['grid_import_kwh']:>9.0f}{m['grid_export_kwh']:>9.0f}"
                     f"{m['equivalent_cycles']:>8.1f}{m['self_consumption_ratio']:>10.1%}"
                     f"{m['hours_at_min_soc']:>7.0f}{m['unserved_kwh']:>9.2f}")
    lines.append("(energies in kWh; net = bill + wear - value of the energy added to the "
                 "battery; saved = vs no battery)")
    if all("co2_kg" in st[k] for k in st):  # --carbon: the grid import's emissions
        lines.append("kg CO2 of the grid import: " + ", ".join(
            f"{NAMES.get(k, k)} {st[k]['co2_kg']:.1f}" for k in st))
    for name, c in summary["comparison"].items():
        share = c["share_of_perfect_foresight"]
        share_text = "n/a" if share is None else f"{share:.1%}"
        lines.append(f"{NAMES.get(name, name)}: saves {c['savings_vs_no_battery_eur']:.2f} EUR vs "
                     f"no battery, {c['savings_vs_self_consumption_eur']:.2f} vs "
                     f"self-consumption, {c['savings_vs_price_rule_eur']:.2f} vs the price "
                     f"rule; captures {share_text} of the perfect-foresight savings")
    for name, info in summary["runs"].items():
        if info.get("fallback_solves") or info.get("failed_solves"):
            lines.append(f"{NAMES.get(name, name)}: {info['fallback_solves']} re-plan(s) solved "
                         f"only by the fallback solvers, {info['failed_solves']} failed (the "
                         "previous plan was kept); see summary.json runs.*.failures")
    for name, info in summary["runs"].items():
        if "load_mae_kw" in info:
            lines.append(f"{NAMES.get(name, name)} forecast errors over every horizon slot "
                         f"(forecast - actual): load MAE {info['load_mae_kw']:.3f} kW (bias "
                         f"{info['load_bias_kw']:+.3f}), PV MAE {info['pv_mae_kw']:.3f} kW "
                         f"(bias {info['pv_bias_kw']:+.3f}); {info['compiled_models']} "
                         "compiled model(s)")
    if "ev" in summary:
        lines += ev_text(summary)
    if "water_heater" in summary:
        lines += heater_text(summary)
    if "minute" in summary:
        lines += minute_text(summary)
    sp = summary["speed"]
    lines.append(f"Helios run {sp['helios_run_s']:.1f} s, {sp['solves']} solves"
                 + (f" ({sp['solves_per_s']:.0f}/s)" if sp["solves_per_s"] else "")
                 + f", total {p['run_s']:.1f} s")
    return "\n".join(lines)


def ev_text(summary: dict) -> list[str]:
    """The electric car's lines: EUR saved by planning it with the house, its departures."""
    ev, st = summary["ev"], summary["strategies"]
    lines = [f"electric car ({ev['profile']}): Helios (house and car in one plan) saves "
             f"{ev['savings_vs_at_plugin_eur']:.2f} EUR vs the car charged at plug-in and "
             f"{ev['savings_vs_cheapest_eur']:.2f} EUR vs the cheapest hours before departure "
             "(house planned alone)"]
    for name, label in (("helios", "Helios"), ("helios_ev_at_plugin", "at plug-in"),
                        ("helios_ev_cheapest", "cheapest hours")):
        m = st[name]
        low = m["ev_departure_soc_min_pct"]
        lines.append(f"  car {label:<15}{m['ev_charge_kwh']:>8.1f} kWh, "
                     f"{m['ev_cost_at_buy_eur']:>8.2f} EUR at the buy price; departures met "
                     f"{m['ev_departures_met']}/{m['ev_departures']}, lowest "
                     + ("n/a" if low is None else f"{low:.1f} %")
                     + f"; end {m['ev_soc_end_kwh']:.1f} kWh")
    return lines


def minute_text(summary: dict) -> list[str]:
    """The 1-minute-truth lines of the terminal summary."""
    m = summary["minute"]
    src = ", ".join(f"{k} {v}" for k, v in m["source"].items())
    lines = [f"judged at 1-minute truth ({src}; bill per minute):"]
    nb = m["strategies"]["no_battery"]["net_cost_eur"]
    for name, row in m["strategies"].items():
        lines.append(f"  {NAMES.get(name, name):<18}{row['net_cost_eur']:>10.2f}"
                     f"{row['bill_eur']:>10.2f}{nb - row['net_cost_eur']:>10.2f}"
                     f"{row['grid_import_kwh']:>9.0f}{row['grid_export_kwh']:>9.0f}"
                     f"{row['equivalent_cycles']:>8.1f}{row['self_consumption_ratio']:>10.1%}")
    share = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    res = summary["resolution"]
    for key, label in (("slot", "slot averages"), ("minute", "1-minute truth")):
        r = res[key]
        lines.append(f"Helios at {label}: {share(r['share_of_perfect_foresight'])} of the "
                     f"perfect-foresight savings, {r['savings_vs_self_consumption_eur']:.2f} "
                     "EUR vs self-consumption")
    lines.append("(the minute-level perfect foresight knows every minute; PF slot plan = the "
                 "slot-level optimum executed per minute)")
    return lines


def sweep_text(summaries: list[dict]) -> str:
    """The what-if table for the terminal."""
    rows = sweep_rows(summaries)
    lines = [f"{'battery kWh':>11}{'PV x':>6}{'Helios EUR':>12}{'no batt EUR':>12}"
             f"{'saved':>9}{'vs self-c.':>11}{'vs rule':>9}{'of PF':>8}{'cycles':>8}"
             f"{'unserved':>9}"]
    for r in rows:
        share = r["share_of_perfect_foresight"]
        lines.append(f"{r['battery_kwh']:>11g}{r['pv_scale']:>6g}"
                     f"{r['helios_net_cost_eur']:>12.2f}{r['no_battery_net_cost_eur']:>12.2f}"
                     f"{r['savings_vs_no_battery_eur']:>9.2f}"
                     f"{r['savings_vs_self_consumption_eur']:>11.2f}"
                     f"{r['savings_vs_price_rule_eur']:>9.2f}"
                     f"{'n/a' if share is None else f'{share:.1%}':>8}"
                     f"{r['equivalent_cycles']:>8.1f}{r['unserved_kwh']:>9.2f}")
    return "\n".join(lines)


def heater_text(summary: dict) -> list[str]:
    """The water heater's lines: EUR saved by planning it with the house, its energy."""
    wh, st = summary["water_heater"], summary["strategies"]
    lines = [f"water heater ({wh['power_kw']:g} kW, {wh['daily_kwh']:g} kWh/day, "
             f"{'modulating' if wh['modulating'] else 'on/off'}): Helios (house and heater in "
             f"one plan) saves {wh['savings_vs_fixed_eur']:.2f} EUR vs a timer at "
             f"{wh['fixed_at']} and {wh['savings_vs_thermostat_eur']:.2f} EUR vs the "
             "thermostat alone (house planned alone)"]
    h = st["helios"]
    for name, label in (("helios", "Helios"), ("helios_heater_fixed", "timer"),
                        ("helios_heater_thermostat", "thermostat")):
        m = st[name]
        lines.append(f"  heater {label:<11}{m['heater_kwh']:>8.1f} kWh, "
                     f"{m['heater_cost_at_buy_eur']:>8.2f} EUR at the buy price; per local day "
                     f"{m['heater_day_min_kwh']:.2f}..{m['heater_day_max_kwh']:.2f} kWh")
    lines.append(f"  Helios heater days met {h['heater_days_met']}/{h['heater_days']}, "
                 f"shortfall {h['heater_shortfall_kwh']:.2f} kWh")
    return lines
