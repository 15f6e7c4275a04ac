"""``helios backtest`` output files: ``slots.csv``, ``summary.json`` and ``report.html``.

The report is self-contained (inline SVG, no scripts, no CDN; days in the site's local time).
With minute truth (:mod:`planner.evaluate.minute`) ``slots_minute.csv`` holds the per-slot
aggregates of the minute runs and the report a table of both resolutions.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from planner.config import HeliosConfig
from planner.core.errors import OutputError
from planner.evaluate.loop import STRATEGY_ORDER, Result
from planner.evaluate.physics import Series, Trace
from planner.evaluate.summary import NAMES, ev_text

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



_COLOURS = {"helios": "#1f6fb4", "helios_noisy": "#7fb0dc", "no_battery": "#888888",
            "self_consumption": "#e08a1e", "price_rule": "#8e44ad",
            "perfect_foresight": "#2e9e44"}


def _daily(result: Result, series: Series, tz: str) -> tuple[list[str], dict]:
    frame = slots_frame(result, series)
    local = pd.DatetimeIndex(pd.to_datetime(frame["ts_utc"], utc=True)).tz_convert(tz)
    days = local.strftime("%Y-%m-%d")
    cost_cols = {name: f"{name}_cost_eur" for name in result.traces}
    grouped = frame[list(cost_cols.values())].groupby(np.asarray(days), sort=True).sum()
    return list(grouped.index), {name: grouped[col].to_numpy() for name, col in cost_cols.items()}


def _svg_lines(title: str, labels: list[str], series: dict[str, np.ndarray], unit: str,
               width: int = 860, height: int = 260) -> str:
    pad_l, pad_r, pad_t, pad_b = 60, 10, 24, 36
    values = np.concatenate([v for v in series.values() if len(v)] or [np.zeros(1)])
    lo, hi = float(np.min(values)), float(np.max(values))
    if not math.isfinite(lo) or not math.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    n = max(len(labels), 2)
    x = lambda i: pad_l + (width - pad_l - pad_r) * i / (n - 1)  # noqa: E731
    y = lambda v: pad_t + (height - pad_t - pad_b) * (hi - v) / (hi - lo)  # noqa: E731
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>',
           f'<text x="{pad_l}" y="16" font-size="13" font-weight="bold">'
           f'{html.escape(title)}</text>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{pad_l - 4}" y="{y(v) + 4:.1f}" font-size="10" '
                   f'text-anchor="end">{v:.2f}</text>')
    if lo < 0 < hi:
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
                   'stroke="#999"/>')
    step = max(1, len(labels) // 8)
    for i in range(0, len(labels), step):
        out.append(f'<text x="{x(i):.1f}" y="{height - pad_b + 14}" font-size="10" '
                   f'text-anchor="middle">{html.escape(labels[i])}</text>')
    out.append(f'<text x="8" y="{pad_t + 10}" font-size="10">{html.escape(unit)}</text>')
    # Helios on top (it often coincides with perfect foresight), thicker
    for name in sorted(series, key=lambda k: k.startswith("helios")):
        pts = " ".join(f"{x(i):.1f},{y(float(v)):.1f}" for i, v in enumerate(series[name]))
        width_px = 2.2 if name.startswith("helios") else 1.3
        out.append(f'<polyline fill="none" stroke="{_COLOURS.get(name, "#333")}" '
                   f'stroke-width="{width_px}" points="{pts}"/>')
    legend_x = pad_l
    for name in series:
        colour = _COLOURS.get(name, "#333")
        out.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" '
                   f'fill="{colour}"/><text x="{legend_x + 14}" y="{height - 5}" '
                   f'font-size="11">{html.escape(NAMES.get(name, name))}</text>')
        legend_x += 150
    out.append("</svg>")
    return "\n".join(out)


def _svg_hist(title: str, groups: dict[str, np.ndarray], bins: int = 20, width: int = 860,
              height: int = 240) -> str:
    pad_l, pad_r, pad_t, pad_b = 60, 10, 24, 36
    edges = np.linspace(0, 100, bins + 1)
    shares = {name: np.histogram(np.clip(v, 0, 100), bins=edges)[0] / max(len(v), 1)
              for name, v in groups.items()}
    top = max([float(s.max()) for s in shares.values()] + [1e-9])
    plot_w = width - pad_l - pad_r
    bar_w = plot_w / bins / max(len(groups), 1)
    y = lambda v: pad_t + (height - pad_t - pad_b) * (1 - v / top)  # noqa: E731
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>',
           f'<text x="{pad_l}" y="16" font-size="13" font-weight="bold">'
           f'{html.escape(title)}</text>']
    for k in range(0, bins + 1, 2):
        xx = pad_l + plot_w * k / bins
        out.append(f'<text x="{xx:.1f}" y="{height - pad_b + 14}" font-size="10" '
                   f'text-anchor="middle">{edges[k]:.0f} %</text>')
    for k in range(5):
        v = top * k / 4
        out.append(f'<text x="{pad_l - 4}" y="{y(v) + 4:.1f}" font-size="10" '
                   f'text-anchor="end">{v:.0%}</text>')
    legend_x = pad_l
    for g, (name, share) in enumerate(shares.items()):
        colour = _COLOURS.get(name, "#333")
        for k, v in enumerate(share):
            xx = pad_l + plot_w * k / bins + g * bar_w
            out.append(f'<rect x="{xx:.1f}" y="{y(v):.1f}" width="{bar_w * 0.9:.1f}" '
                       f'height="{y(0) - y(v):.1f}" fill="{colour}"/>')
        out.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" '
                   f'fill="{colour}"/><text x="{legend_x + 14}" y="{height - 5}" '
                   f'font-size="11">{html.escape(NAMES.get(name, name))}</text>')
        legend_x += 150
    out.append("</svg>")
    return "\n".join(out)


def render_html(result: Result, summary: dict, series: Series,
                cfg: HeliosConfig) -> str:
    """The self-contained report: metrics table, daily cost, cumulative savings, SoC spread."""
    tz = cfg.site.timezone
    days, daily = _daily(result, series, tz)
    base = daily["no_battery"]
    cumulative = {name: np.cumsum(base - v) for name, v in daily.items() if name != "no_battery"}
    cap = result.home.capacity_kwh
    soc = {name: result.traces[name].soc_kwh / cap * 100
           for name in ("helios", "perfect_foresight") if name in result.traces}
    st = summary["strategies"]
    esc = html.escape
    rows = []
    nb = st["no_battery"]["net_cost_eur"]
    for name in [k for k in STRATEGY_ORDER if k in st] + \
            [k for k in st if k not in STRATEGY_ORDER]:
        m = st[name]
        rows.append(
            f"<tr><td>{esc(NAMES.get(name, name))}</td><td>{m['net_cost_eur']:.2f}</td>"
            f"<td>{m['bill_eur']:.2f}</td><td>{m['wear_eur']:.2f}</td>"
            f"<td>{nb - m['net_cost_eur']:.2f}</td><td>{m['grid_import_kwh']:.1f}</td>"
            f"<td>{m['grid_export_kwh']:.1f}</td><td>{m['pv_curtailed_kwh']:.1f}</td>"
            f"<td>{m['throughput_kwh']:.1f}</td><td>{m['equivalent_cycles']:.1f}</td>"
            f"<td>{m['self_consumption_ratio']:.1%}</td>"
            f"<td>{m['self_sufficiency_ratio']:.1%}</td>"
            f"<td>{m['hours_at_min_soc']:.1f}</td><td>{m['unserved_kwh']:.2f}</td></tr>")
    comp = []
    for name, c in summary["comparison"].items():
        share = c["share_of_perfect_foresight"]
        comp.append(
            f"<tr><td>{esc(NAMES.get(name, name))}</td>"
            f"<td>{c['savings_vs_no_battery_eur']:.2f}</td>"
            f"<td>{c['savings_vs_self_consumption_eur']:.2f}</td>"
            f"<td>{c['savings_vs_price_rule_eur']:.2f}</td>"
            f"<td>{c['savings_vs_perfect_foresight_eur']:.2f}</td>"
            f"<td>{'n/a' if share is None else f'{share:.1%}'}</td></tr>")
    fine = ""
    if "minute" in summary:
        m = summary["minute"]
        nb_m = m["strategies"]["no_battery"]["net_cost_eur"]
        fine_rows = "".join(
            f"<tr><td>{esc(NAMES.get(k, k))}</td><td>{v['net_cost_eur']:.2f}</td>"
            f"<td>{nb_m - v['net_cost_eur']:.2f}</td><td>{v['grid_import_kwh']:.1f}</td>"
            f"<td>{v['grid_export_kwh']:.1f}</td><td>{v['self_consumption_ratio']:.1%}</td></tr>"
            for k, v in m["strategies"].items())
        pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
        res_rows = "".join(
            f"<tr><td>{esc(k)}</td><td>{pct(r['share_of_perfect_foresight'])}</td>"
            f"<td>{r['savings_vs_self_consumption_eur']:.2f}</td></tr>"
            for k, r in summary["resolution"].items())
        src = ", ".join(f"{k}: {v}" for k, v in m["source"].items())
        fine = (f"<h2>Judged at 1-minute truth</h2><p class=\"note\">{esc(src)}; physics and "
                "control law per minute, bill per minute. Perfect foresight here knows every "
                "minute; the PF slot plan is the slot-level optimum executed per minute.</p>"
                "<table><tr><th>strategy</th><th>net cost EUR</th><th>saved vs no battery</th>"
                "<th>import kWh</th><th>export kWh</th><th>self-consumption</th></tr>"
                f"{fine_rows}</table><table><tr><th>Helios judged at</th><th>share of "
                "perfect-foresight savings</th><th>EUR vs self-consumption</th></tr>"
                f"{res_rows}</table>")
    if "ev" in summary:  # the electric car: the terminal lines, as a section
        fine = ("<h2>Electric car</h2>" + "".join(f'<p class="note">{esc(line.strip())}</p>'
                                                  for line in ev_text(summary)) + fine)
    p, b = summary["period"], summary["battery"]
    start_local = pd.Timestamp(p["start"]).tz_convert(tz).strftime("%Y-%m-%d %H:%M %Z")
    end_local = pd.Timestamp(p["end"]).tz_convert(tz).strftime("%Y-%m-%d %H:%M %Z")
    sp = summary["speed"]
    opts = summary["options"]
    charts = [
        _svg_lines("Daily cost (grid bill)", days, daily, "EUR/day"),
        _svg_lines("Cumulative savings vs no battery (grid bill)", days, cumulative, "EUR"),
        _svg_hist("State of charge: share of slots", soc),
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Helios backtest {esc(start_local)} – {esc(end_local)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1000px; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; margin: 0.8em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.note {{ color: #555; font-size: 13px; }}
</style></head><body>
<h1>Helios backtest</h1>
<p>{esc(start_local)} – {esc(end_local)} ({p['slots']} slots of {p['slot_s'] // 60} min,
times in {esc(tz)}). Battery {b['capacity_kwh']:g} kWh,
{b['max_charge_kw']:g}/{b['max_discharge_kw']:g} kW, efficiencies
{b['charge_efficiency']:g}/{b['discharge_efficiency']:g},
SoC {b['min_soc_pct']:g}–{b['max_soc_pct']:g} %,
wear {b['wear_cost_eur_per_kwh']:.3f} EUR/kWh. PV ×{summary['scenario']['pv_scale']:g}.
Tariff: buy = {esc(summary['tariff']['buy'])}, sell = {esc(summary['tariff']['sell'])}.
Forecasts: {esc(opts['forecast'])}{_forecast_note(opts)},
re-plan every {opts['replan_every']} slot(s), control: {esc(opts['control'])}.
{len(summary['outages'])} outage(s).</p>
<h2>Results</h2>
<table><tr><th>strategy</th><th>net cost EUR</th><th>bill EUR</th><th>wear EUR</th>
<th>saved vs no battery</th><th>import kWh</th><th>export kWh</th><th>curtailed kWh</th>
<th>throughput kWh</th><th>cycles</th><th>self-consumption</th><th>self-sufficiency</th>
<th>h at min SoC</th><th>unserved kWh</th></tr>
{''.join(rows)}</table>
<table><tr><th>run</th><th>saved vs no battery</th><th>vs self-consumption</th>
<th>vs price rule</th><th>vs perfect foresight</th><th>share of perfect-foresight savings</th></tr>
{''.join(comp)}</table>
{fine}
<p class="note">Net cost = grid bill + battery wear − value of the energy added to the battery
over the period ({summary['terms']['end_value_eur_per_kwh']:.4f} EUR/kWh). Perfect foresight
is one optimisation over the whole period with every actual value known: no strategy can do
better. Helios run {sp['helios_run_s']} s, {sp['solves']} solves.</p>
{''.join(f'<div>{c}</div>' for c in charts)}
</body></html>
"""
