"""The final report of a simulation: ``summary.json``, a text summary, ``report.html``.

The figures: the bill (import at buy minus export at sell, per ≤ 10-s step of the plant),
self-consumption (1 − (PV exported + curtailed) / PV, as the backtest counts it), the SoC's
minimum outside and during each outage against the reserve and the hard minimum, the load left
unserved, the planner's cadence (plans made, failed, on degraded inputs) and the staleness of
the plan the executor followed, the executor's releases by reason, the appliances' energy per
day and the rows in SQL. ``report.html`` is one self-contained page (an inline SVG of the SoC
with the outages shaded, no script, no network); ``last_plan.html`` is the planner's own
report (:mod:`planner.report.html`) of the last plan, read back from the history.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from planner.core.errors import OutputError
from planner.history.store import Store
from planner.report import html as report_html
from planner.simulate.run import Simulation, measurement_rows, plan_rows

#: the SoC at an outage's start may be this far under the reserve and still count as kept
#: (the plant's SoC is rounded and the plan's last slot ends on the reserve). [%]
RESERVE_TOL_PCT = 0.5


def _r(x: float, digits: int = 3):
    x = float(x)
    return None if not math.isfinite(x) else round(x, digits)


def summary(sim: Simulation) -> dict:
    """Every figure of the run as plain JSON types."""
    c = sim.counters
    t = sim.plant.totals
    b = sim.user_cfg.battery
    reserve = b.reserve_soc_pct if b.reserve_soc_pct is not None else b.min_soc_pct
    sim_s = (sim.end - sim.start).total_seconds()
    intervals = np.diff([p.timestamp() for p in c.plan_times]) if len(c.plan_times) > 1 else []
    expected = int(math.floor((sim.end.timestamp() - sim._first_plan) /
                              sim.options.plan_every_s)) + 1
    outages = []
    for st in sim.plant.outage_stats:
        o = st.outage
        outages.append({
            "start": o.start.isoformat(), "end": o.end.isoformat(),
            "announced_h": o.announced_h, "in_period": st.soc_start_pct is not None,
            "soc_start_pct": None if st.soc_start_pct is None else _r(st.soc_start_pct, 2),
            "soc_min_pct": None if st.soc_min_pct is None else _r(st.soc_min_pct, 2),
            "soc_end_pct": None if st.soc_end_pct is None else _r(st.soc_end_pct, 2),
            "load_kwh": _r(st.load_kwh), "unserved_kwh": _r(st.unserved_kwh),
            "reserve_kept": None if st.soc_start_pct is None
            else bool(st.soc_start_pct >= reserve - RESERVE_TOL_PCT),
            "above_min": None if st.soc_min_pct is None
            else bool(st.soc_min_pct >= b.min_soc_pct - 1e-6),
        })
    pv = t.pv_kwh
    speed = sim_s / c.wall_s if c.wall_s > 0 else None
    return {
        "period": {"start": sim.start.isoformat(), "end": sim.end.isoformat(),
                   "days": sim.options.days, "timezone": sim.user_cfg.site.timezone},
        "data": dict(sim.recorded.paths),
        "run": {"speed_requested": ("max" if sim.options.speed is None
                                    else sim.options.speed),
                "speed_reached": None if speed is None else round(speed, 1),
                "wall_s": _r(c.wall_s, 2), "cpu_s": _r(c.cpu_s, 2),
                "planner_wall_s": _r(c.plan_wall_s, 2), "planner_cpu_s": _r(c.plan_cpu_s, 2),
                "executor_wall_s": _r(c.tick_wall_s, 2), "paced_sleep_s": _r(c.slept_s, 2),
                "behind_schedule_max_s": _r(c.behind_s, 3)},
        "planner": {
            "plans": c.plans, "expected": expected, "failures": c.plan_failures,
            "failure_reasons": dict(c.failures), "fallbacks": c.plan_fallbacks,
            "degraded_inputs": dict(c.degraded), "every_s": sim.options.plan_every_s,
            "interval_min_s": _r(min(intervals), 1) if len(intervals) else None,
            "interval_max_s": _r(max(intervals), 1) if len(intervals) else None,
            "load_forecast": sim.options.load_forecast},
        "executor": {
            "ticks": c.ticks, "interval_s": sim.interval_s, "released_ticks": c.released,
            "release_reasons": dict(c.release_reasons),
            "plan_age_max_s": _r(c.plan_age_max_s, 1),
            "plan_age_mean_s": _r(c.plan_age_sum_s / c.plan_age_n, 1) if c.plan_age_n else None,
            "stale_plan_ticks": c.stale_ticks},
        "energy": {
            "cost_eur": _r(t.cost_eur, 4), "import_kwh": _r(t.import_kwh),
            "export_kwh": _r(t.export_kwh), "pv_kwh": _r(pv), "load_kwh": _r(t.load_kwh),
            "unserved_kwh": _r(t.unserved_kwh), "curtailed_kwh": _r(t.curtailed_kwh),
            "battery_charge_kwh": _r(t.charge_kwh),
            "battery_discharge_kwh": _r(t.discharge_kwh),
            "self_consumption_pct": _r(100.0 * (1.0 - (t.pv_exported_kwh + t.curtailed_kwh) / pv),
                                       2) if pv > 0 else None},
        "battery": {"capacity_kwh": b.capacity_kwh, "min_soc_pct": b.min_soc_pct,
                    "reserve_soc_pct": reserve, "soc_start_pct": sim.options.soc_start_pct,
                    "soc_end_pct": _r(sim.plant.soc_pct, 2),
                    "soc_min_pct": _r(t.soc_min_pct, 2),
                    "soc_min_outside_outages_pct": _r(t.soc_min_normal_pct, 2)},
        "outages": outages,
        "appliances": [{"name": d.name, "power_kw": d.power_kw, "daily_kwh": d.daily_kwh,
                        "delivered_kwh": _r(d.delivered_kwh),
                        "per_day_kwh": {str(k): _r(v) for k, v in sorted(d.days.items())},
                        "relay_switches": d.relay.switches} for d in sim.devices],
        "storage": {"url": sim.cfg.storage.url, "measurement_rows": measurement_rows(sim.cfg),
                    "plan_rows": plan_rows(sim.cfg)},
    }


def text(s: dict) -> str:
    """The terminal summary."""
    run, pl, ex, en, bat = s["run"], s["planner"], s["executor"], s["energy"], s["battery"]
    lines = [
        f"Helios simulate {s['period']['start']} -> {s['period']['end']} "
        f"({s['period']['days']:g} d): {run['wall_s']:.1f} s wall, speed "
        f"{run['speed_reached']}x (asked {run['speed_requested']}); planner "
        f"{run['planner_wall_s']:.1f} s, executor {run['executor_wall_s']:.1f} s",
        f"planner: {pl['plans']} plans of {pl['expected']} timer runs every "
        f"{pl['every_s']:g} s, {pl['failures']} failed, {pl['fallbacks']} on degraded inputs "
        + (f"({', '.join(f'{k} x{v}' for k, v in pl['degraded_inputs'].items())})"
           if pl["degraded_inputs"] else ""),
        f"executor: {ex['ticks']} ticks, {ex['released_ticks']} released"
        + (f" ({'; '.join(f'{k} x{v}' for k, v in ex['release_reasons'].items())})"
           if ex["release_reasons"] else "")
        + f"; plan age mean {ex['plan_age_mean_s']} s, max {ex['plan_age_max_s']} s, "
          f"{ex['stale_plan_ticks']} ticks on a stale plan",
        f"energy: cost {en['cost_eur']:.2f} EUR, import {en['import_kwh']:.1f} kWh, export "
        f"{en['export_kwh']:.1f} kWh, PV {en['pv_kwh']:.1f} kWh, load {en['load_kwh']:.1f} kWh, "
        "self-consumption " + ("n/a (no PV)" if en["self_consumption_pct"] is None
                               else f"{en['self_consumption_pct']} %")
        + f", unserved {en['unserved_kwh']:.3f} kWh",
        f"battery: SoC min {bat['soc_min_pct']} % (outside outages "
        f"{bat['soc_min_outside_outages_pct']} %), reserve {bat['reserve_soc_pct']:g} %, "
        f"hard min {bat['min_soc_pct']:g} %, end {bat['soc_end_pct']} %",
    ]
    for o in s["outages"]:
        if not o["in_period"]:
            lines.append(f"outage {o['start']} -> {o['end']}: outside the period")
            continue
        lines.append(
            f"outage {o['start']} -> {o['end']} (announced {o['announced_h']:g} h ahead): SoC "
            f"{o['soc_start_pct']} % at the start (reserve {bat['reserve_soc_pct']:g} %: "
            f"{'kept' if o['reserve_kept'] else 'NOT kept'}), min {o['soc_min_pct']} %, "
            f"unserved {o['unserved_kwh']:.3f} of {o['load_kwh']:.2f} kWh")
    for a in s["appliances"]:
        days = ", ".join(f"{k} {v:.2f}" for k, v in a["per_day_kwh"].items())
        lines.append(f"{a['name']}: {a['delivered_kwh']:.2f} kWh ({days or 'none'}; "
                     f"{a['daily_kwh']:g} kWh/day wanted), {a['relay_switches']} switches")
    st = s["storage"]
    lines.append(f"storage: {st['measurement_rows']} measurement rows, {st['plan_rows']} plans "
                 "in SQL")
    return "\n".join(lines)


def _svg(sim: Simulation, s: dict, width: int = 900, height: int = 260) -> str:
    """SoC over time (5-min samples), outages shaded, reserve and minimum as lines."""
    if not sim.trace:
        return ""
    t0, t1 = sim.start.timestamp(), sim.end.timestamp()
    x = lambda t: 40 + (t - t0) / (t1 - t0) * (width - 50)  # noqa: E731
    y = lambda soc: 10 + (100 - soc) / 100 * (height - 30)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'role="img" aria-label="state of charge">']
    for o in sim.outages:
        a, b = max(o.start.timestamp(), t0), min(o.end.timestamp(), t1)
        if a < b:
            parts.append(f'<rect x="{x(a):.1f}" y="10" width="{x(b) - x(a):.1f}" '
                         f'height="{height - 30}" fill="#f4c7c3"><title>outage</title></rect>')
    for soc in (0, 25, 50, 75, 100):
        parts.append(f'<text x="4" y="{y(soc) + 4:.1f}" font-size="10">{soc}%</text>')
    for level, colour, name in ((s["battery"]["reserve_soc_pct"], "#e69500", "reserve"),
                                (s["battery"]["min_soc_pct"], "#c00", "min")):
        parts.append(f'<line x1="40" x2="{width - 10}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
                     f'stroke="{colour}" stroke-dasharray="4 3"><title>{name}</title></line>')
    points = " ".join(f"{x(r[0]):.1f},{y(r[1]):.1f}" for r in sim.trace)
    parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" '
                 f'points="{points}"/>')
    tz = sim.user_cfg.site.tz
    day = sim.start.tz_convert(tz).normalize()
    while day.timestamp() <= t1:
        if day.timestamp() >= t0:
            parts.append(f'<text x="{x(day.timestamp()):.1f}" y="{height - 5}" '
                         f'font-size="10">{day:%a %d %b}</text>')
        day = (day + pd.Timedelta(hours=26)).normalize()
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[tuple]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def render_html(sim: Simulation, s: dict) -> str:
    """The self-contained report page."""
    sections = []
    for key in ("run", "planner", "executor", "energy", "battery", "storage"):
        rows = [(k, json.dumps(v) if isinstance(v, dict) else v) for k, v in s[key].items()]
        sections.append(f"<h2>{key}</h2>{_table(rows)}")
    outage_rows = "".join(
        f"<tr><td>{html.escape(o['start'])}</td><td>{html.escape(o['end'])}</td>"
        f"<td>{o['announced_h']:g}</td><td>{o['soc_start_pct']}</td><td>{o['soc_min_pct']}</td>"
        f"<td>{o['unserved_kwh']}</td><td>{o['reserve_kept']}</td></tr>" for o in s["outages"])
    outages = ("<h2>outages</h2><table><tr><th>start</th><th>end</th><th>announced h</th>"
               "<th>SoC at start %</th><th>SoC min %</th><th>unserved kWh</th>"
               f"<th>reserve kept</th></tr>{outage_rows}</table>") if s["outages"] else ""
    appl = "".join(f"<h2>{html.escape(a['name'])}</h2>"
                   + _table(list(a["per_day_kwh"].items())) for a in s["appliances"])
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Helios simulation</title><style>body{font-family:sans-serif;margin:1em 2em}"
            "table{border-collapse:collapse;margin-bottom:1em}th,td{border:1px solid #ccc;"
            "padding:2px 6px;text-align:left;font-size:13px}</style></head><body>"
            f"<h1>Helios simulation {html.escape(s['period']['start'])} → "
            f"{html.escape(s['period']['end'])}</h1>"
            f"<pre>{html.escape(text(s))}</pre><h2>state of charge</h2>{_svg(sim, s)}"
            f"{outages}{''.join(sections)}{appl}"
            "<p><a href=\"last_plan.html\">the last plan</a> (the planner's report)</p>"
            "</body></html>")


def write(sim: Simulation, out_dir: str | Path) -> dict:
    """Write ``summary.json``, ``summary.txt``, ``report.html`` and ``last_plan.html``;
    returns the summary.

    Raises
    ------
    OutputError
        A file cannot be written.
    """
    out = Path(out_dir)
    s = summary(sim)
    try:
        (out / "summary.json").write_text(json.dumps(s, indent=1) + "\n", "utf-8")
        (out / "summary.txt").write_text(text(s) + "\n", "utf-8")
        (out / "report.html").write_text(render_html(sim, s), "utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the report into {out}: {exc.strerror or exc}") from None
    if sim.counters.plans:
        with Store.from_config(sim.cfg) as store:
            record = store.load()
        report_html.write(record, str(out / "last_plan.html"))
    return s
