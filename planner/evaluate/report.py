"""``helios backtest`` output files: ``slots.csv``, ``summary.json`` and ``report.html``.

The report is one self-contained file (Jinja2 template ``planner/report/templates/
backtest.html.j2``; the plan report's chart library, uPlot, and all data inlined: no CDN, no
network; days and times in the site's local time): key figures, the results tables, and
charts of the daily cost, the cumulative savings vs no battery, the SoC over time and the SoC
distribution.
With minute truth (:mod:`planner.evaluate.minute`) ``slots_minute.csv`` holds the per-slot
aggregates of the minute runs and the report a table of both resolutions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from planner.config import HeliosConfig
from planner.core.errors import OutputError
from planner.evaluate.loop import STRATEGY_ORDER, Result
from planner.evaluate.physics import Series, Trace
from planner.evaluate.summary import NAMES, ev_text, heater_text
from planner.report import html as report_html

SLOT_COLUMNS = ("grid_import_kw", "grid_export_kw", "battery_charge_kw",
                "battery_discharge_kw", "pv_used_kw", "unserved_kw", "soc_kwh")


def slots_frame(result: Result, series: Series,
                traces: dict[str, Trace] | None = None) -> pd.DataFrame:
    """One row per simulated slot: the data, then each strategy's flows (``<name>_<col>``;
    ``traces``: other runs on the same slots, e.g. the minute runs' slot aggregates)."""
    start = result.start
    n = result.info["slots"]
    w = slice(start, start + n)
    frame = pd.DataFrame({
        "ts_utc": series.index[w].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "spot_eur_per_kwh": series.spot_eur_per_kwh[w],
        "buy_eur_per_kwh": series.buy_eur_per_kwh[w],
        "sell_eur_per_kwh": series.sell_eur_per_kwh[w],
        "pv_kw": series.pv_kw[w],
        "load_kw": series.load_kw[w],
        "grid_available": series.grid_ok[w].astype(int),
    })
    dt = series.dt_h
    for name, tr in (result.traces if traces is None else traces).items():
        for c in SLOT_COLUMNS:
            frame[f"{name}_{c}"] = getattr(tr, c)
        if tr.ev_kw is not None:  # the electric car's charging power (part of the load)
            frame[f"{name}_ev_kw"] = tr.ev_kw
        if tr.heater_kw is not None:  # the water heater's power (part of the load)
            frame[f"{name}_heater_kw"] = tr.heater_kw
        frame[f"{name}_cost_eur"] = (series.buy_eur_per_kwh[w] * tr.grid_import_kw
                                     - series.sell_eur_per_kwh[w] * tr.grid_export_kw) * dt
    return frame


def write_outputs(result: Result, summary: dict, series: Series, cfg: HeliosConfig,
                  out_dir: Path) -> None:
    """``slots.csv``, ``summary.json`` and ``report.html`` in ``out_dir`` (created).

    Raises
    ------
    OutputError
        When a file cannot be written.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        frame = slots_frame(result, series)
        frame.to_csv(out_dir / "slots.csv", index=False, float_format="%.6g")
        fine = result.info.get("minute")
        if fine is not None:
            slots_frame(result, series, fine.traces).to_csv(
                out_dir / "slots_minute.csv", index=False, float_format="%.6g")
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", "utf-8")
        (out_dir / "report.html").write_text(render_html(result, summary, series, cfg),
                                             "utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the backtest results to {out_dir}: "
                          f"{exc.strerror or exc}") from None



def _forecast_note(opts: dict) -> str:
    if opts["forecast"] == "noisy":
        return f" ({opts['noise_pct']:g} %, seed {opts['seed']})"
    if opts["forecast"] == "real":
        return (" (load: history profile fitted before each re-plan; PV: weather-free "
                "clear-sky × recent clear-sky index; prices: only once published, 13:00 local)")
    return ""



#: one colour per strategy, in every chart and legend
COLOURS = {"helios": "#1f6feb", "helios_noisy": "#7fb0dc", "no_battery": "#6b7280",
           "self_consumption": "#ea580c", "price_rule": "#8e44ad",
           "perfect_foresight": "#16a34a"}

#: the SoC-over-time chart carries at most this many points (longer runs: mean per group)
MAX_SOC_POINTS = 12000


def _daily(result: Result, series: Series, tz: str) -> tuple[list[str], dict]:
    frame = slots_frame(result, series)
    local = pd.DatetimeIndex(pd.to_datetime(frame["ts_utc"], utc=True)).tz_convert(tz)
    days = local.strftime("%Y-%m-%d")
    cost_cols = {name: f"{name}_cost_eur" for name in result.traces}
    grouped = frame[list(cost_cols.values())].groupby(np.asarray(days), sort=True).sum()
    return list(grouped.index), {name: grouped[col].to_numpy() for name, col in cost_cols.items()}


def _nums(values, digits: int = 4) -> list:
    out = []
    for v in np.asarray(values, dtype=float):
        out.append(round(float(v), digits) + 0.0 if math.isfinite(v) else None)
    return out


def _ordered(names) -> list[str]:
    names = list(names)
    return [k for k in STRATEGY_ORDER if k in names] + [k for k in names
                                                        if k not in STRATEGY_ORDER]


def chart_data(result: Result, series: Series, tz: str) -> dict:
    """The charts' data (inlined as JSON): ``days`` (local midnights, epoch s), ``daily`` and
    ``cumulative`` (``[strategy, values]`` pairs in legend order) [EUR], ``soc_x``/``soc``
    (the SoC over time, %), ``hist`` (SoC bins, % of slots per strategy), colours, labels."""
    days, daily = _daily(result, series, tz)
    names = _ordered(daily)
    midnights = [int(pd.Timestamp(d).tz_localize(tz).timestamp()) for d in days]
    base = daily["no_battery"]
    cumulative = {n: np.cumsum(base - daily[n]) for n in names if n != "no_battery"}
    cap = result.home.capacity_kwh
    soc_names = [n for n in ("helios", "perfect_foresight") if n in result.traces]
    n = result.info["slots"]
    x = series.index[result.start:result.start + n]
    group = max(1, math.ceil(n / MAX_SOC_POINTS))
    socs = {}
    for name in soc_names:
        pct = np.asarray(result.traces[name].soc_kwh, dtype=float) / cap * 100
        socs[name] = _nums(pct[:len(pct) // group * group].reshape(-1, group).mean(axis=1)
                           if group > 1 else pct, 2)
    xs = x[::group][:len(next(iter(socs.values()))) if socs else 0]
    edges = np.linspace(0, 100, 21)
    hist = {name: _nums(np.histogram(np.clip(np.asarray(result.traces[name].soc_kwh) / cap
                                             * 100, 0, 100), bins=edges)[0]
                        / max(len(result.traces[name].soc_kwh), 1) * 100, 3)
            for name in soc_names}
    return {
        "tz": tz, "days": midnights,
        # [key, values] pairs: the order is the legend's (tojson sorts mapping keys)
        "daily": [[k, _nums(daily[k])] for k in names],
        "cumulative": [[k, _nums(v)] for k, v in cumulative.items()],
        "soc_x": [int(t.timestamp()) for t in xs], "soc": [[k, v] for k, v in socs.items()],
        "soc_group_slots": group,
        "hist_x": _nums((edges[:-1] + edges[1:]) / 2, 1), "hist": [[k, v]
                                                                   for k, v in hist.items()],
        "colours": {k: COLOURS.get(k, "#334155") for k in names},
        "labels": {k: NAMES.get(k, k) for k in names},
    }


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def context(result: Result, summary: dict, series: Series, cfg: HeliosConfig) -> dict:
    """Everything the template shows."""
    tz = cfg.site.timezone
    st = summary["strategies"]
    nb = st["no_battery"]["net_cost_eur"]
    rows = [{"name": NAMES.get(k, k), "key": k, "m": st[k], "saved": nb - st[k]["net_cost_eur"]}
            for k in _ordered(st)]
    comparison = [{"name": NAMES.get(k, k), "c": c, "share": _pct(
        c["share_of_perfect_foresight"])} for k, c in summary["comparison"].items()]
    minute = None
    if "minute" in summary:
        m = summary["minute"]
        nb_m = m["strategies"]["no_battery"]["net_cost_eur"]
        minute = {
            "source": ", ".join(f"{k}: {v}" for k, v in m["source"].items()),
            "rows": [{"name": NAMES.get(k, k), "m": v, "saved": nb_m - v["net_cost_eur"]}
                     for k, v in m["strategies"].items()],
            "resolution": [{"name": k, "share": _pct(r["share_of_perfect_foresight"]),
                            "vs_self": r["savings_vs_self_consumption_eur"]}
                           for k, r in summary["resolution"].items()],
        }
    p = summary["period"]
    fmt = "%a %d %b %Y %H:%M %Z"
    helios = summary["comparison"].get("helios", {})
    return {
        "start": pd.Timestamp(p["start"]).tz_convert(tz).strftime(fmt),
        "end": pd.Timestamp(p["end"]).tz_convert(tz).strftime(fmt),
        "tz_name": tz, "period": p, "battery": summary["battery"],
        "pv_scale": summary["scenario"]["pv_scale"], "tariff": summary["tariff"],
        "options": summary["options"], "forecast_note": _forecast_note(summary["options"]),
        "outages": len(summary["outages"]), "speed": summary["speed"],
        "end_value": summary["terms"]["end_value_eur_per_kwh"],
        "rows": rows, "comparison": comparison, "minute": minute,
        # the electric car (--ev-profile): the terminal lines, as a section
        "ev_lines": [line.strip() for line in ev_text(summary)] if "ev" in summary else None,
        # the water heater (water_heater:): the terminal lines, as a section
        "heater_lines": ([line.strip() for line in heater_text(summary)]
                         if "water_heater" in summary else None),
        # --carbon: kg CO2 of each strategy's grid import
        "carbon": ([{"name": NAMES.get(k, k), "co2_kg": st[k]["co2_kg"]} for k in st]
                   if st and all("co2_kg" in st[k] for k in st) else None),
        "kpi": {"helios_net": st.get("helios", {}).get("net_cost_eur"),
                "vs_none": helios.get("savings_vs_no_battery_eur"),
                "vs_self": helios.get("savings_vs_self_consumption_eur"),
                "share": _pct(helios.get("share_of_perfect_foresight")),
                "cycles": st.get("helios", {}).get("equivalent_cycles")},
        "chart_data": chart_data(result, series, tz),
        **report_html.uplot_assets(),
    }


def render_html(result: Result, summary: dict, series: Series,
                cfg: HeliosConfig) -> str:
    """The self-contained report: key figures, the results tables and four uPlot charts."""
    return report_html.environment().get_template("backtest.html.j2").render(
        **context(result, summary, series, cfg))
