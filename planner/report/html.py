"""The static HTML report: one self-contained file that works offline.

Rendered from a :class:`planner.history.rows.RunRecord` — the same rows the history database
holds — so ``helios plan`` (fresh plan) and ``helios report --plan ID`` (from the database) produce
the same page. Jinja2 with autoescape; the chart library (uPlot, MIT, vendored in
``planner/report/templates/vendor`` with its licence) and all data are inlined: no CDN, no
network. Everything a person reads is in the site's local time (``site_timezone``).

Charts: buy/sell prices; PV forecast, PV used and load; battery power; SoC with the
min/reserve/max bands; grid import/export. Then the expected cost next to the two baselines
(:mod:`planner.plan.baselines`) and the savings, the input status, violations, and a per-slot
table with action, intent and reason. The intent (schedule 1.1) is what the executor will do
in the slot: plain self-consumption with the battery power kept inside the intent's band; the
band is shown where it is narrower than the battery's full range (:func:`band_text`). Plans
saved before intents existed show none (the executor derives it from the flows).
"""

from __future__ import annotations

import math
from importlib import resources
from zoneinfo import ZoneInfo

import jinja2
import pandas as pd
from markupsafe import Markup

from executor.schedule import atomic_write
from planner.core.errors import OutputError
from planner.history.rows import RunRecord

_VENDOR = ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE")


def _vendor(name: str) -> str:
    path = resources.files("planner.report").joinpath("templates", "vendor", name)
    return path.read_text("utf-8")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("planner.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["eur"] = lambda x: f"{round(float(x), 2) + 0.0:,.2f}"  # + 0.0: no "-0.00"
    env.filters["num"] = lambda x, d=2: f"{round(float(x), d) + 0.0:.{d}f}"
    return env


def _age_text(seconds: float) -> str:
    if seconds < 60:
        return "fresh (fetched this run)" if seconds == 0 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _local(ts: pd.Timestamp, tz: ZoneInfo, fmt: str = "%a %d %b %H:%M %Z") -> str:
    return pd.Timestamp(ts).tz_convert(tz).strftime(fmt)


def _round_list(values, digits: int = 4) -> list:
    out = []
    for v in values:
        v = float(v)
        out.append(round(v, digits) + 0.0 if math.isfinite(v) else None)
    return out


_TOL_KW = 1e-6


def _known(x: object) -> bool:
    """Not None/NaN/pd.NA: a slot without intent (1.0 plan) has none of the three fields."""
    return x is not None and (isinstance(x, str) or not bool(pd.isna(x)))


def full_range(slots: pd.DataFrame) -> tuple[float, float] | None:
    """The battery's full power range (+ = discharge) as the plan's bands show it. [kW]

    A ``self_consume`` band is the full range by definition; a plan without such a slot falls
    back to the widest ends any slot's band reaches. None when no slot has an intent.
    """
    rows = [(i, lo, hi) for i, lo, hi in zip(slots["intent"], slots["battery_min_kw"],
                                             slots["battery_max_kw"], strict=True)
            if _known(i) and _known(lo) and _known(hi)]
    if not rows:
        return None
    own = next(((float(lo), float(hi)) for i, lo, hi in rows if i == "self_consume"), None)
    if own is not None:
        return own
    return min(float(r[1]) for r in rows), max(float(r[2]) for r in rows)


def _kw(x: float) -> str:
    return f"{round(x, 2) + 0.0:+.2f}".replace("-", "−")


def band_text(low: float, high: float, full: tuple[float, float] | None) -> str:
    """The band as a reader wants it: only the ends that are narrower than the full range
    (``≤ +0.00 kW``: no discharge; ``≥ +1.20 kW``: discharge at least 1.2 kW); "" when the
    band is the full range."""
    lo_cut = full is None or low > full[0] + _TOL_KW
    hi_cut = full is None or high < full[1] - _TOL_KW
    if abs(high - low) <= _TOL_KW:
        return f"= {_kw(low)} kW"
    if lo_cut and hi_cut:
        return f"{_kw(low)} … {_kw(high)} kW"
    if hi_cut:
        return f"≤ {_kw(high)} kW"
    if lo_cut:
        return f"≥ {_kw(low)} kW"
    return ""


def context(record: RunRecord) -> dict:
    """Everything the template needs, computed from the stored run (local time applied)."""
    run, slots = record.run, record.slots
    tz = ZoneInfo(run["site_timezone"])
    slot_s = int(run["slot_s"])
    starts = slots.index
    end = starts[-1] + pd.Timedelta(seconds=slot_s)
    x = [int(t.timestamp()) for t in starts] + [int(end.timestamp())]

    def stepped(col: str, sign: float = 1.0) -> list:
        vals = _round_list(slots[col] * sign)
        return vals + vals[-1:]

    soc = [round(float(run["soc_start_pct"]), 3)] + _round_list(slots["soc_pct"], 3)
    n1 = len(x)
    battery_kw = slots["battery_discharge_kw"] - slots["battery_charge_kw"]
    chart_data = {
        "tz": run["site_timezone"],
        "x": x,
        "buy": stepped("buy_eur_per_kwh"),
        "sell": stepped("sell_eur_per_kwh"),
        "pv": stepped("pv_kw"),
        "pv_used": stepped("pv_used_kw"),
        "load": stepped("load_kw"),
        "battery": _round_list(battery_kw) + _round_list(battery_kw)[-1:],
        "soc": soc,
        "soc_min": [run["min_soc_pct"]] * n1,
        "soc_reserve": [run["reserve_soc_pct"]] * n1,
        "soc_max": [run["max_soc_pct"]] * n1,
        "grid_import": stepped("grid_import_kw"),
        "grid_export": stepped("grid_export_kw"),
    }
    rows = []
    full = full_range(slots)
    devices = record.devices if record.devices is not None else pd.DataFrame(index=starts)
    ev = run["baselines"].get("ev") or {}  # the car's SoC per slot and sessions (plan/ev.py)
    ev_soc = ev.get("soc_pct") or []
    for i, (ts, r) in enumerate(zip(starts, slots.itertuples(index=False), strict=True)):
        has_intent = _known(r.intent)
        low = float(r.battery_min_kw) if has_intent else 0.0
        high = float(r.battery_max_kw) if has_intent else 0.0
        rows.append({
            "time": _local(ts, tz, "%a %H:%M"),
            "zone": _local(ts, tz, "%Z"),
            "utc": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "action": r.action,
            "intent": str(r.intent) if has_intent else None,
            "band": band_text(low, high, full) if has_intent else "",
            "band_full": f"battery {_kw(low)} … {_kw(high)} kW (+ = discharge)"
                         if has_intent else "",
            "reason": r.reason,
            "buy": r.buy_eur_per_kwh,
            "sell": r.sell_eur_per_kwh,
            "pv": r.pv_kw,
            "load": r.load_kw,
            "grid": r.grid_import_kw - r.grid_export_kw,
            "battery": r.battery_discharge_kw - r.battery_charge_kw,
            "soc": r.soc_pct,
            "cost": r.cost_eur,
            "devices": ", ".join(f"{name} {float(devices[name].iat[i]):.2f}"
                                 + (f" (SoC {ev_soc[i]:.1f} %)" if name == "ev" and ev_soc
                                    else "")
                                 for name in devices.columns
                                 if abs(float(devices[name].iat[i])) > 1e-6),
        })
    costs = run["baselines"]
    plan_net = costs["plan"]["net_cost_eur"]
    comparison = []
    for key, label in (("plan", "Helios plan"),
                       ("self_consumption", "Battery in plain self-consumption"),
                       ("no_battery", "No battery")):
        c = costs[key]
        comparison.append({"label": label, "key": key, **c,
                           "savings": c["net_cost_eur"] - plan_net})
    inputs = []
    for item in run["inputs"]:
        inputs.append({
            **item,
            "window": f"{_local(pd.Timestamp(item['data_start']), tz)} → "
                      f"{_local(pd.Timestamp(item['data_end']), tz)}",
            "age": _age_text(float(item.get("age_s", 0.0))),
        })
    violations = []
    for v in run["violations"]:
        first = v.get("first_slot")
        violations.append({**v, "first": _local(pd.Timestamp(first), tz) if first else ""})
    overrides = [{**o, "when": f"{_local(pd.Timestamp(o['start']), tz, '%a %H:%M')} → "
                               f"{_local(pd.Timestamp(o['end']), tz, '%a %H:%M')}"}
                 for o in run.get("overrides") or ()]
    dt_h = slot_s / 3600.0
    totals = {
        "import_kwh": float(slots["grid_import_kw"].sum() * dt_h),
        "export_kwh": float(slots["grid_export_kw"].sum() * dt_h),
        "pv_kwh": float(slots["pv_kw"].sum() * dt_h),
        "load_kwh": float(slots["load_kw"].sum() * dt_h),
        "charge_kwh": float(slots["battery_charge_kw"].sum() * dt_h),
        "discharge_kwh": float(slots["battery_discharge_kw"].sum() * dt_h),
    }
    return {
        "co2": costs.get("co2"),  # carbon: kg CO2 of the planned import (plan/record.py)
        "devices": device_rows(devices, tz, dt_h),
        "ev_sessions": [{**x, "when": _local(pd.Timestamp(x["departure"]), tz, "%a %H:%M")}
                        for x in ev.get("sessions", [])],
        "plan_id": record.plan_id,
        "run": run,
        "tz_name": run["site_timezone"],
        "window": f"{_local(starts[0], tz)} → {_local(end, tz)}",
        "generated": _local(run["generated_at"], tz, "%a %d %b %Y %H:%M:%S %Z"),
        "valid_until": _local(run["valid_until"], tz, "%a %d %b %H:%M %Z"),
        "hours": len(starts) * slot_s / 3600.0,
        "slot_min": slot_s // 60,
        "comparison": comparison,
        "savings_self": costs["self_consumption"]["net_cost_eur"] - plan_net,
        "savings_none": costs["no_battery"]["net_cost_eur"] - plan_net,
        "inputs": inputs,
        "violations": violations,
        "overrides": overrides,
        "rows": rows,
        "has_intents": any(r["intent"] for r in rows),
        "full_range": f"{_kw(full[0])} … {_kw(full[1])} kW" if full else "",
        "totals": totals,
        "chart_data": chart_data,
        **uplot_assets(),
    }


def uplot_assets() -> dict[str, str]:
    """The vendored chart library for a template: ``uplot_js``, ``uplot_css`` (markup, to be
    inlined) and ``uplot_license`` (text) — shared by this report and the backtest's."""
    return {"uplot_js": Markup(_vendor("uPlot.iife.min.js")),
            "uplot_css": Markup(_vendor("uPlot.min.css")),
            "uplot_license": _vendor("uPlot.LICENSE")}


def environment() -> jinja2.Environment:
    """The Jinja2 environment of ``planner/report/templates`` (autoescape, strict undefined,
    the ``eur`` and ``num`` filters)."""
    return _env()


def device_rows(devices: pd.DataFrame, tz: ZoneInfo, dt_h: float) -> list[dict]:
    """Per device: planned energy over the horizon and per local day (the water heater's
    energy per day, a deferrable load's runs). [kWh]"""
    out = []
    days = devices.index.tz_convert(tz).strftime("%a %d %b")
    for name in devices.columns:
        energy = devices[name] * dt_h
        per_day = energy.groupby(days, sort=False).sum()
        # a further battery (batteries:) is negative while discharging: both directions shown
        discharge_kwh = float(-energy.clip(upper=0.0).sum())
        out.append({"name": name, "total_kwh": float(energy.sum()),
                    "max_kw": float(devices[name].max()),
                    "discharge_kwh": discharge_kwh,
                    "charge_kwh": float(energy.clip(lower=0.0).sum()),
                    "days": [(d, float(v)) for d, v in per_day.items() if v > 1e-6]})
    return out


def render(record: RunRecord) -> str:
    """The report as one HTML document (string)."""
    return _env().get_template("report.html.j2").render(**context(record))


def write(record: RunRecord, path: str) -> int:
    """Render and write the report atomically; returns its size in bytes.

    Raises
    ------
    OutputError
        When the file cannot be written (the previous report stays).
    """
    html = render(record)
    try:
        atomic_write(path, html)
    except OSError as exc:
        raise OutputError(f"cannot write report {path}: {exc.strerror or exc}") from None
    return len(html.encode("utf-8"))
