"""``helios backtest`` behind the CLI: data onto the slot grid, outages, sweeps and outputs.

:mod:`planner.evaluate.simulate` holds the physics, strategies and metrics; this module reads the
recorded CSVs (the planner's own CSV format, :func:`planner.providers.files.csv.read_series`), puts
them on the slot grid (prices held, powers averaged, :func:`planner.core.timegrid.to_slot_grid`),
applies the configured tariff, marks outage slots, runs one scenario or a what-if sweep
(battery size × PV scale, one process per scenario) and writes, per scenario, ``slots.csv``
(every simulated slot of Helios and the baselines), ``summary.json`` and a self-contained
``report.html`` (inline SVG, no scripts, no CDN; days in the site's local time). With minute
truth (``--minute synthetic`` or recorded 1-minute CSVs, :mod:`planner.evaluate.minute`) every
strategy is also judged per minute: ``summary.json`` gets ``minute`` and ``resolution`` (the
share of the perfect-foresight savings and EUR vs self-consumption at both resolutions) and
``slots_minute.csv`` the per-slot aggregates of the minute runs.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from planner.config import HeliosConfig
from planner.core import timegrid
from planner.core.errors import DataError, MissingSlotsError, OutputError
from planner.core.tariff import compile_tariff
from planner.evaluate import simulate as sim
from planner.providers.files.csv import read_series

SUMMARY_VERSION = 1


# ============================================================================================
# inputs


@dataclass(frozen=True)
class Data:
    """Recorded data on the slot grid, the simulated period and the outage intervals."""

    series: sim.Series
    start: int  # first simulated slot
    stop: int  # one past the last simulated slot (the data may go on: the planner sees it)
    sources: dict
    outages: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    # recorded minutes of the period: {"pv": (n, k) array or None, "load": ..., "sources"}
    minute: dict | None = None


def parse_when(text: str, tz: str, what: str) -> pd.Timestamp:
    """A CLI date or instant → UTC: ``YYYY-MM-DD`` is local midnight in the site's zone.

    Raises
    ------
    DataError
        Unparsable, or a date-time without an offset.
    """
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return timegrid.to_utc(text, what)
    return pd.Timestamp(day).tz_localize(tz).tz_convert("UTC")


def read_outages(path: str | Path) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Outage intervals ``[start, end)`` from CSV (``start_utc,end_utc``) or YAML.

    YAML: a list of mappings ``{start: ..., end: ...}`` (or a mapping with key ``outages``
    holding that list). Timestamps need an offset (``Z`` or ``+02:00``).

    Raises
    ------
    DataError
        Unreadable file, missing column, naive timestamp, end not after start.
    """
    path = Path(path)
    what = f"outages {path}"
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise DataError(f"{what}: cannot read: {exc.strerror or exc}") from None
    rows: list[tuple[str, str]] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DataError(f"{what}: not valid YAML: {exc}") from None
        if isinstance(doc, dict):
            doc = doc.get("outages")
        if not isinstance(doc, list):
            raise DataError(f"{what}: expected a list of {{start, end}} mappings")
        for i, item in enumerate(doc):
            if not isinstance(item, dict) or "start" not in item or "end" not in item:
                raise DataError(f"{what}: item {i + 1}: expected a mapping with start and end")
            rows.append((str(item["start"]), str(item["end"])))
    else:
        reader = csv.DictReader(text.splitlines())
        names = [c.strip() for c in (reader.fieldnames or [])]
        if "start_utc" not in names or "end_utc" not in names:
            raise DataError(f"{what}: expected columns start_utc,end_utc; found "
                            f"{', '.join(names) or '(none)'}")
        for rec in reader:
            rec = {(k or "").strip(): (v or "").strip() for k, v in rec.items()}
            rows.append((rec["start_utc"], rec["end_utc"]))
    out = []
    for i, (a, b) in enumerate(rows):
        start = timegrid.to_utc(a, f"{what} row {i + 1} start")
        end = timegrid.to_utc(b, f"{what} row {i + 1} end")
        if end <= start:
            raise DataError(f"{what}: row {i + 1}: end {b} is not after start {a}")
        out.append((start, end))
    return out


def outage_mask(index: pd.DatetimeIndex, slot_s: int,
                outages: list[tuple[pd.Timestamp, pd.Timestamp]]) -> np.ndarray:
    """True for every slot that overlaps an outage (the grid is down in the whole slot)."""
    mask = np.zeros(len(index), dtype=bool)
    ends = index + pd.Timedelta(seconds=slot_s)
    for start, end in outages:
        mask |= np.asarray((index < end) & (ends > start))
    return mask


def load_data(cfg: HeliosConfig, prices_csv: str, pv_csv: str, load_csv: str,
              start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
              outages: list[tuple[pd.Timestamp, pd.Timestamp]] | None = None,
              minute_pv_csv: str | None = None, minute_load_csv: str | None = None) -> Data:
    """Read the three CSVs and put them on the slot grid from ``start`` to the data's end.

    Without ``start``/``end`` the period is everything the three files cover together.
    The planner may look past ``end`` (up to its horizon) where the files go on.
    ``minute_pv_csv``/``minute_load_csv``: recorded 1-minute truth for the period
    (:func:`planner.evaluate.minute.read_minute_csv`; it must cover every minute of it).

    Raises
    ------
    ProviderConfigError, DataError, MissingSlotsError
        Unreadable files, bad rows, or a period the files do not cover (names the slot).
    """
    slot_s = cfg.planning.slot_s
    prices = read_series(prices_csv, "price_eur_per_kwh", "prices (csv)", False)
    pv = read_series(pv_csv, "pv_kw", "pv (csv)", True)
    load = read_series(load_csv, "load_kw", "load (csv)", True)
    first = max(ts.values.index[0] for ts in (prices, pv, load))
    last = min(ts.end for ts in (prices, pv, load))
    first = first.ceil(f"{slot_s}s")
    last = last.floor(f"{slot_s}s")
    begin = first if start is None else timegrid.to_utc(start).ceil(f"{slot_s}s")
    finish = last if end is None else timegrid.to_utc(end).floor(f"{slot_s}s")
    if begin < first:
        raise MissingSlotsError(f"--from {begin.isoformat()} is before the data start "
                                f"{first.isoformat()} (all three files must cover it)")
    if finish > last:
        raise MissingSlotsError(f"--to {finish.isoformat()} is after the data end "
                                f"{last.isoformat()} (all three files must cover it)")
    if finish <= begin:
        raise DataError(f"empty period: {begin.isoformat()} .. {finish.isoformat()}")
    n_total = int((last - begin).total_seconds() // slot_s)
    index = timegrid.make_index(begin, n_total, slot_s)
    spot = timegrid.to_slot_grid(prices.values, prices.resolution_s, index, slot_s, "hold",
                                 "prices (csv)")
    pv_kw = timegrid.to_slot_grid(pv.values, pv.resolution_s, index, slot_s, "mean", "pv (csv)")
    load_kw = timegrid.to_slot_grid(load.values, load.resolution_s, index, slot_s, "mean",
                                    "load (csv)")
    buy = compile_tariff(cfg.tariff.buy)(spot)
    sell = compile_tariff(cfg.tariff.sell)(spot)
    outages = list(outages or [])
    series = sim.Series.build(index, slot_s, spot, buy, sell, pv_kw, load_kw,
                              outage_mask(index, slot_s, outages))
    stop = int((finish - begin).total_seconds() // slot_s)
    sources = {"prices": str(prices_csv), "pv": str(pv_csv), "load": str(load_csv)}
    minute = None
    if minute_pv_csv or minute_load_csv:
        from planner.evaluate import minute as minute_mod

        minute = {"sources": {}}
        for name, path in (("pv", minute_pv_csv), ("load", minute_load_csv)):
            minute[name] = (None if not path else minute_mod.read_minute_csv(
                path, f"{name}_kw", index[:stop], slot_s))
            if path:
                minute["sources"][name] = f"recorded ({path})"
                sources[f"minute_{name}"] = str(path)
    return Data(series, 0, stop, sources, tuple(outages), minute)


# ============================================================================================
# scenarios and sweeps


@dataclass(frozen=True)
class Scenario:
    """One what-if: battery capacity and PV scale (None = as configured / as recorded)."""

    battery_kwh: float | None = None
    pv_scale: float = 1.0

    @property
    def label(self) -> str:
        """Directory-safe name, e.g. ``battery10kWh_pv1.5x``."""
        bat = "config" if self.battery_kwh is None else f"{self.battery_kwh:g}kWh"
        return f"battery{bat}_pv{self.pv_scale:g}x"

    def apply(self, cfg: HeliosConfig, series: sim.Series) -> tuple[HeliosConfig, sim.Series]:
        """The config and data of this scenario (power limits stay as configured)."""
        if self.battery_kwh is not None:
            cfg = replace(cfg, battery=replace(cfg.battery, capacity_kwh=self.battery_kwh))
        return cfg, (series.scaled(self.pv_scale) if self.pv_scale != 1.0 else series)


def scenarios(battery_kwh: list[float] | None, pv_scale: list[float] | None) -> list[Scenario]:
    """Every combination of the given capacities and PV scales."""
    bats: list[float | None] = list(battery_kwh) if battery_kwh else [None]
    scales = list(pv_scale) if pv_scale else [1.0]
    return [Scenario(b, s) for b, s in itertools.product(bats, scales)]


def run_scenario(cfg: HeliosConfig, data: Data, scenario: Scenario, options: sim.Options,
                 out_dir: str | Path | None,
                 progress: Callable[[int], None] | None = None) -> dict:
    """Run one scenario (Helios, baselines, perfect foresight); write its outputs.

    Returns the summary (what ``summary.json`` holds).
    """
    cfg_s, series = scenario.apply(cfg, data.series)
    minute = None
    if options.minute != "off" or data.minute is not None:
        from planner.evaluate import minute as minute_mod

        rec = data.minute or {}
        fill = "synthetic" if options.minute == "synthetic" else None  # else: held flat
        pv, load = rec.get("pv"), rec.get("load")
        minute = minute_mod.minute_data(
            series, data.start, data.stop, options.minute_seed,
            pv=fill if pv is None else pv * scenario.pv_scale,
            load=fill if load is None else load, sources=rec.get("sources"))
        series = minute.conform(series)
    result = sim.run_backtest(cfg_s, series, data.start, data.stop, options, progress, minute)
    summary = make_summary(result, cfg_s, data, scenario, options)
    if out_dir is not None:
        write_outputs(result, summary, series, cfg_s, Path(out_dir))
    return summary


def _worker(args: tuple) -> dict:
    cfg, data, scenario, options, out_dir, queue = args
    report = (lambda k: queue.put(k)) if queue is not None else None
    return run_scenario(cfg, data, scenario, options, out_dir, report)


def run_sweep(cfg: HeliosConfig, data: Data, items: list[Scenario], options: sim.Options,
              out_dir: str | Path | None, jobs: int,
              progress: Callable[[int], None] | None = None) -> list[dict]:
    """Run the scenarios in ``jobs`` processes (spawned); summaries in the given order.

    ``progress`` receives simulated slot counts of all Helios runs together.
    """
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    out = Path(out_dir) if out_dir is not None else None
    dirs = [(out / s.label if out is not None else None) for s in items]
    if jobs <= 1 or len(items) == 1:
        return [run_scenario(cfg, data, s, options, d, progress)
                for s, d in zip(items, dirs, strict=True)]
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        queue = manager.Queue() if progress is not None else None
        with ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=ctx) as pool:
            futures = [pool.submit(_worker, (cfg, data, s, options, d, queue))
                       for s, d in zip(items, dirs, strict=True)]
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                _drain(queue, progress)
            _drain(queue, progress)
            return [f.result() for f in futures]


def _drain(queue, progress) -> None:
    if queue is None or progress is None:
        return
    import queue as queue_mod

    while True:
        try:
            progress(queue.get_nowait())
        except queue_mod.Empty:
            return


# ============================================================================================
# outputs


def make_summary(result: sim.Result, cfg: HeliosConfig, data: Data, scenario: Scenario,
                 options: sim.Options) -> dict:
    """Everything worth keeping about one scenario (JSON-ready)."""
    b = cfg.battery
    helios = result.traces["helios"].info
    solves = helios.get("solves", 0)
    period = {k: v for k, v in result.info.items() if k != "minute"}
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


def _forecast_note(opts: dict) -> str:
    if opts["forecast"] == "noisy":
        return f" ({opts['noise_pct']:g} %, seed {opts['seed']})"
    if opts["forecast"] == "real":
        return (" (load: history profile fitted before each re-plan; PV: weather-free "
                "clear-sky × recent clear-sky index; prices: only once published, 13:00 local)")
    return ""


def _tariff_text(spec) -> str:
    if isinstance(spec, str):
        return spec
    return (f"(price * {spec.multiplier:g} + {spec.fixed_eur_per_kwh:g}) * "
            f"(1 + {spec.vat_pct:g} / 100)")


SLOT_COLUMNS = ("grid_import_kw", "grid_export_kw", "battery_charge_kw",
                "battery_discharge_kw", "pv_used_kw", "unserved_kw", "soc_kwh")


def slots_frame(result: sim.Result, series: sim.Series,
                traces: dict[str, sim.Trace] | None = None) -> pd.DataFrame:
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
        frame[f"{name}_cost_eur"] = (series.buy_eur_per_kwh[w] * tr.grid_import_kw
                                     - series.sell_eur_per_kwh[w] * tr.grid_export_kw) * dt
    return frame


def write_outputs(result: sim.Result, summary: dict, series: sim.Series, cfg: HeliosConfig,
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


def write_sweep(summaries: list[dict], out_dir: Path) -> None:
    """``sweep.csv`` and ``sweep.json``: one row per scenario."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = sweep_rows(summaries)
        with open(out_dir / "sweep.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (out_dir / "sweep.json").write_text(json.dumps(rows, indent=1) + "\n", "utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the sweep table to {out_dir}: "
                          f"{exc.strerror or exc}") from None


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


# ============================================================================================
# terminal text


NAMES = {"helios": "Helios", "helios_noisy": "Helios (noisy)", "no_battery": "no battery",
         "self_consumption": "self-consumption", "price_rule": "price rule",
         "perfect_foresight": "perfect foresight",
         "perfect_foresight_slot_plan": "PF slot plan",
         "perfect_foresight_slot_plan_intent": "PF plan, intent"}


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
    for name in [k for k in sim.STRATEGY_ORDER if k in st] + \
            [k for k in st if k not in sim.STRATEGY_ORDER]:
        m = st[name]
        lines.append(f"{NAMES.get(name, name):<18}{m['net_cost_eur']:>10.2f}"
                     f"{m['bill_eur']:>10.2f}{nb - m['net_cost_eur']:>10.2f}"
                     f"{m['grid_import_kwh']:>9.0f}{m['grid_export_kwh']:>9.0f}"
                     f"{m['equivalent_cycles']:>8.1f}{m['self_consumption_ratio']:>10.1%}"
                     f"{m['hours_at_min_soc']:>7.0f}{m['unserved_kwh']:>9.2f}")
    lines.append("(energies in kWh; net = bill + wear - value of the energy added to the "
                 "battery; saved = vs no battery)")
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
    if "minute" in summary:
        lines += minute_text(summary)
    sp = summary["speed"]
    lines.append(f"Helios run {sp['helios_run_s']:.1f} s, {sp['solves']} solves"
                 + (f" ({sp['solves_per_s']:.0f}/s)" if sp["solves_per_s"] else "")
                 + f", total {p['run_s']:.1f} s")
    return "\n".join(lines)


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


# ============================================================================================
# the HTML report (inline SVG)

_COLOURS = {"helios": "#1f6fb4", "helios_noisy": "#7fb0dc", "no_battery": "#888888",
            "self_consumption": "#e08a1e", "price_rule": "#8e44ad",
            "perfect_foresight": "#2e9e44"}


def _daily(result: sim.Result, series: sim.Series, tz: str) -> tuple[list[str], dict]:
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


def render_html(result: sim.Result, summary: dict, series: sim.Series,
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
    for name in [k for k in sim.STRATEGY_ORDER if k in st] + \
            [k for k in st if k not in sim.STRATEGY_ORDER]:
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
