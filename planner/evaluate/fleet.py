"""``helios sweep``: a fleet-scale what-if grid on Dask, results in SQL and parquet.

A grid file (YAML, :func:`load_grid`) names homes (folders of ``prices.csv``/``pv.csv``/
``load.csv`` in the format ``helios backtest`` reads, optionally ``config.yaml`` and
``outages.csv``/``outages.yaml``) × periods (calendar years or explicit ``from``/``to``) ×
battery sizes × PV scales × tariffs × forecast modes. Each :class:`Cell` is one
:func:`planner.evaluate.sweep.run_scenario` (Helios, the baselines and perfect foresight),
run as a Dask task (:func:`run_cells`: ``dask.distributed``, a scheduler address or a
LocalCluster with one worker process per core). Finished cells go into the SQL table
``sweep_cell`` (keyed by a hash of the cell's parameters and its input files, so a re-run
skips them: resumable) as they arrive; :func:`write_parquet` and :func:`roi_table` (savings,
payback and ROI per tariff × battery size) work from that table.

A worker that dies loses its running cells; the scheduler re-runs them on another worker
(Dask's ``distributed.scheduler.allowed-failures``). The numbers of a cell do not depend on
where it runs: each task reads its home's files and runs the deterministic backtest.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

try:  # the optional `sweep` extra; only helios sweep imports this module (planner.cli.main)
    from distributed import Client, LocalCluster, as_completed
except ImportError:  # pragma: no cover - run_cells says what to install
    Client = LocalCluster = as_completed = None

from planner import config as config_mod
from planner.config import HeliosConfig
from planner.core.errors import ConfigError, ConfigProblem, DataError, OutputError
from planner.evaluate import data as bt_data
from planner.evaluate.loop import Options
from planner.evaluate.sweep import run_scenario
from planner.history.store import make_engine
from planner.providers.files.yamlfile import read_yaml

FORECASTS = ("perfect", "noisy", "real")
HOME_FILES = ("prices", "pv", "load")
#: Options a grid file may set for every cell (the rest stay at their defaults)
OPTION_KEYS = ("noise_pct", "seed", "replan_every", "outage_notice_h", "control",
               "soc_start_pct")


@dataclass(frozen=True)
class Home:
    """One home: its three CSVs, its config file (or None: defaults) and outages file."""

    name: str
    prices: str
    pv: str
    load: str
    config: str | None = None
    outages: str | None = None
    digest: str = ""  # hash of the files' contents (part of every cell key)


@dataclass(frozen=True)
class Period:
    """A simulated period: ``from``/``to`` as for ``helios backtest`` (None: the data's)."""

    name: str
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class Grid:
    """A parsed grid file."""

    homes: tuple[Home, ...]
    periods: tuple[Period, ...]
    battery_kwh: tuple[float, ...]
    pv_scale: tuple[float, ...]
    tariffs: dict  # name -> {"buy": ..., "sell": ...}
    forecasts: tuple[str, ...]
    options: dict = field(default_factory=dict)
    # economics of each battery size (summary only; the planner's wear cost is the config's)
    cost_eur: dict = field(default_factory=dict)  # capacity_kwh -> EUR
    lifetime_cycles: float | None = None
    calendar_life_years: float = 15.0


@dataclass(frozen=True)
class Cell:
    """One backtest of the grid; ``key`` is the hash of everything its numbers depend on."""

    home: Home
    period: Period
    battery_kwh: float
    pv_scale: float
    tariff: str
    tariff_spec: dict
    forecast: str
    options: dict

    @property
    def params(self) -> dict:
        return {"home": self.home.name, "home_digest": self.home.digest,
                "period": [self.period.start, self.period.end],
                "battery_kwh": self.battery_kwh, "pv_scale": self.pv_scale,
                "tariff": self.tariff_spec, "forecast": self.forecast,
                "options": self.options}

    @property
    def key(self) -> str:
        text = json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _bad(key: str, expected: str, got) -> ConfigError:
    return ConfigError(ConfigProblem(key, expected, repr(got)), "sweep grid")


def _numbers(doc: dict, key: str, default: list[float]) -> tuple[float, ...]:
    value = doc.get(key, default)
    if isinstance(value, (int, float)):
        value = [value]
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, (int, float)) and v > 0 for v in value)):
        raise _bad(key, "a number > 0 or a list of them", value)
    return tuple(float(v) for v in value)


def _digest(paths: Iterable[str | None]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(b"\0" if p is None else Path(p).read_bytes())
    return h.hexdigest()[:16]


def _home(item, i: int, base: Path) -> Home:
    where = f"homes[{i}]"
    if isinstance(item, str):
        item = {"dir": item}
    if not isinstance(item, dict) or "dir" not in item:
        raise _bad(where, "a folder or a mapping with dir (and name, config, prices, pv, "
                   "load, outages)", item)
    folder = (base / str(item["dir"])).resolve()
    if not folder.is_dir():
        raise DataError(f"sweep grid {where}.dir: no folder {folder}")
    files = {}
    for name in HOME_FILES:
        path = folder / str(item.get(name, f"{name}.csv"))
        if not path.is_file():
            raise DataError(f"sweep grid {where}: no {name} CSV {path}")
        files[name] = str(path)
    cfg = item.get("config")
    cfg_path = folder / (cfg or "config.yaml")
    if cfg is not None and not cfg_path.is_file():
        raise DataError(f"sweep grid {where}.config: no file {cfg_path}")
    outages = item.get("outages")
    out_path = None
    for cand in ([outages] if outages else ["outages.csv", "outages.yaml", "outages.yml"]):
        if (folder / cand).is_file():
            out_path = str(folder / cand)
            break
    else:
        if outages:
            raise DataError(f"sweep grid {where}.outages: no file {folder / outages}")
    config = str(cfg_path) if cfg_path.is_file() else None
    home = Home(str(item.get("name", folder.name)), files["prices"], files["pv"], files["load"],
                config, out_path)
    return replace(home, digest=_digest([home.prices, home.pv, home.load, config, out_path]))


def _periods(doc: dict) -> tuple[Period, ...]:
    out = []
    years = doc.get("years", [])
    if not isinstance(years, list) or not all(isinstance(y, int) for y in years):
        raise _bad("years", "a list of calendar years, e.g. [2016, 2023]", years)
    out += [Period(str(y), f"{y}-01-01", f"{y + 1}-01-01") for y in years]
    periods = doc.get("periods", [])
    if not isinstance(periods, list):
        raise _bad("periods", "a list of {name, from, to}", periods)
    for i, p in enumerate(periods):
        if not isinstance(p, dict) or not set(p) <= {"name", "from", "to"}:
            raise _bad(f"periods[{i}]", "a mapping {name, from, to}", p)
        start, end = p.get("from"), p.get("to")
        out.append(Period(str(p.get("name", f"{start or 'start'}..{end or 'end'}")),
                          None if start is None else str(start),
                          None if end is None else str(end)))
    return tuple(out) or (Period("all"),)


def load_grid(path: str | Path) -> Grid:
    """Parse a grid file (see docs/backtest.md, "helios sweep").

    Raises
    ------
    ConfigError
        A key with a wrong value (named); DataError: a home's folder or file is missing.
    """
    path = Path(path)
    doc = read_yaml(path, f"sweep grid {path}")
    if not isinstance(doc, dict):
        raise _bad("(top)", "a mapping", doc)
    known = {"homes", "years", "periods", "battery_kwh", "pv_scale", "tariffs", "forecast",
             "options", "battery_cost_eur", "battery_cost_eur_per_kwh", "lifetime_cycles",
             "calendar_life_years"}
    for key in doc:
        if key not in known:
            raise _bad(str(key), f"one of {', '.join(sorted(known))}", key)
    base = path.parent
    homes = doc.get("homes")
    if not isinstance(homes, list) or not homes:
        raise _bad("homes", "a list of home folders", homes)
    homes_t = tuple(_home(h, i, base) for i, h in enumerate(homes))
    if len({h.name for h in homes_t}) != len(homes_t):
        raise _bad("homes", "distinct home names", [h.name for h in homes_t])
    tariffs = doc.get("tariffs", {"config": None})
    if not isinstance(tariffs, dict) or not tariffs:
        raise _bad("tariffs", "a mapping name -> {buy, sell} (or null: the home's config)",
                   tariffs)
    for name, spec in tariffs.items():
        if spec is not None:
            if not isinstance(spec, dict) or not set(spec) <= {"buy", "sell"}:
                raise _bad(f"tariffs.{name}", "a mapping with buy and/or sell", spec)
            config_mod.from_mapping({"tariff": spec})  # validates (ConfigError names the key)
    forecasts = doc.get("forecast", ["perfect"])
    forecasts = [forecasts] if isinstance(forecasts, str) else forecasts
    if not isinstance(forecasts, list) or not forecasts or any(f not in FORECASTS
                                                               for f in forecasts):
        raise _bad("forecast", f"one or a list of {', '.join(FORECASTS)}", forecasts)
    options = doc.get("options", {}) or {}
    if not isinstance(options, dict) or not set(options) <= set(OPTION_KEYS):
        raise _bad("options", f"a mapping with keys among {', '.join(OPTION_KEYS)}", options)
    Options(**options)  # type errors surface here, not on the workers
    sizes = _numbers(doc, "battery_kwh", [10.0])
    cost = _costs(doc, sizes)
    cycles = doc.get("lifetime_cycles")
    if cycles is not None and not (isinstance(cycles, (int, float)) and cycles > 0):
        raise _bad("lifetime_cycles", "a number of full cycles > 0", cycles)
    life = doc.get("calendar_life_years", 15.0)
    if not (isinstance(life, (int, float)) and life > 0):
        raise _bad("calendar_life_years", "a number of years > 0", life)
    return Grid(homes_t, _periods(doc), sizes, _numbers(doc, "pv_scale", [1.0]),
                dict(tariffs), tuple(forecasts), dict(options), cost,
                None if cycles is None else float(cycles), float(life))


def _costs(doc: dict, sizes: tuple[float, ...]) -> dict:
    per = doc.get("battery_cost_eur_per_kwh")
    table = doc.get("battery_cost_eur")
    if per is not None and table is not None:
        raise _bad("battery_cost_eur", "either battery_cost_eur or battery_cost_eur_per_kwh",
                   "both")
    if per is not None:
        if not (isinstance(per, (int, float)) and per >= 0):
            raise _bad("battery_cost_eur_per_kwh", "a number >= 0 [EUR/kWh]", per)
        return {s: per * s for s in sizes}
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise _bad("battery_cost_eur", "a mapping capacity_kwh -> EUR", table)
    out = {}
    for k, v in table.items():
        if not (isinstance(v, (int, float)) and v >= 0):
            raise _bad(f"battery_cost_eur.{k}", "a price >= 0 [EUR]", v)
        out[float(k)] = float(v)
    return out


def cells(grid: Grid) -> list[Cell]:
    """Every cell of the grid, in a stable order."""
    out = []
    for home, period, size, scale, (tname, tspec), fc in itertools.product(
            grid.homes, grid.periods, grid.battery_kwh, grid.pv_scale, grid.tariffs.items(),
            grid.forecasts):
        out.append(Cell(home, period, size, scale, str(tname), tspec or {}, fc, grid.options))
    return out


def cell_config(cell: Cell) -> HeliosConfig:
    """The home's config with the cell's tariff (battery size and PV scale: the Scenario)."""
    cfg = config_mod.load(cell.home.config) if cell.home.config else config_mod.default()
    if cell.tariff_spec:
        tariff = config_mod.from_mapping({"tariff": {
            "buy": cell.tariff_spec.get("buy", cfg.tariff.buy),
            "sell": cell.tariff_spec.get("sell", cfg.tariff.sell)}}).tariff
        cfg = replace(cfg, tariff=tariff)
    return cfg


def run_cell(cell: Cell) -> dict:
    """One cell, start to end (what a Dask task runs): its backtest summary."""
    cfg = cell_config(cell)
    tz = cfg.site.timezone
    start = (None if cell.period.start is None
             else bt_data.parse_when(cell.period.start, tz, "period from"))
    end = None if cell.period.end is None else bt_data.parse_when(cell.period.end, tz,
                                                                  "period to")
    outages = bt_data.read_outages(cell.home.outages) if cell.home.outages else []
    data = bt_data.load_data(cfg, cell.home.prices, cell.home.pv, cell.home.load, start, end,
                             outages)
    options = Options(forecast=cell.forecast, **cell.options)
    scenario = bt_data.Scenario(cell.battery_kwh, cell.pv_scale)
    return run_scenario(cfg, data, scenario, options, None)


# --- SQL ------------------------------------------------------------------------------------

METADATA = sa.MetaData()
SWEEP_CELL = sa.Table(
    "sweep_cell", METADATA,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("home", sa.String(200), nullable=False),
    sa.Column("period", sa.String(100), nullable=False),
    sa.Column("battery_kwh", sa.Float, nullable=False),
    sa.Column("pv_scale", sa.Float, nullable=False),
    sa.Column("tariff", sa.String(100), nullable=False),
    sa.Column("forecast", sa.String(20), nullable=False),
    sa.Column("days", sa.Float, nullable=False),
    sa.Column("helios_net_cost_eur", sa.Float, nullable=False),
    sa.Column("no_battery_net_cost_eur", sa.Float, nullable=False),
    sa.Column("self_consumption_net_cost_eur", sa.Float, nullable=False),
    sa.Column("price_rule_net_cost_eur", sa.Float, nullable=False),
    sa.Column("perfect_foresight_net_cost_eur", sa.Float, nullable=False),
    sa.Column("savings_vs_no_battery_eur", sa.Float, nullable=False),
    sa.Column("share_of_perfect_foresight", sa.Float, nullable=True),
    sa.Column("helios_equivalent_cycles", sa.Float, nullable=True),
    sa.Column("run_s", sa.Float, nullable=True),
    sa.Column("params", sa.Text, nullable=False),
    # summary.json of the cell (≈ 5 kB; MEDIUMTEXT on MariaDB, whose TEXT stops at 64 kB)
    sa.Column("summary", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql",
                                                "mariadb"), nullable=False),
    sa.Column("finished_utc", sa.DateTime, nullable=False),
)
FIGURES = [c.name for c in SWEEP_CELL.columns][:17]


def open_store(url: str) -> sa.Engine:
    """The engine for ``url`` (as planner.history), ``sweep_cell`` created if missing."""
    engine = make_engine(url)
    try:
        METADATA.create_all(engine, checkfirst=True)
    except sa.exc.SQLAlchemyError as exc:
        raise OutputError(f"sweep database {engine.url.render_as_string()}: {exc}") from None
    return engine


def finished_keys(engine: sa.Engine, keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    out: set[str] = set()
    with engine.connect() as conn:
        for i in range(0, len(keys), 500):
            rows = conn.execute(sa.select(SWEEP_CELL.c.key)
                                .where(SWEEP_CELL.c.key.in_(keys[i:i + 500])))
            out |= {r[0] for r in rows}
    return out


def cell_row(cell: Cell, summary: dict) -> dict:
    st = summary["strategies"]
    comp = summary["comparison"]["helios"]
    period = summary["period"]
    return {
        "key": cell.key, "home": cell.home.name, "period": cell.period.name,
        "battery_kwh": cell.battery_kwh, "pv_scale": cell.pv_scale, "tariff": cell.tariff,
        "forecast": cell.forecast, "days": period["slots"] * period["slot_s"] / 86400.0,
        **{f"{n}_net_cost_eur": st[n]["net_cost_eur"]
           for n in ("helios", "no_battery", "self_consumption", "price_rule",
                     "perfect_foresight")},
        "savings_vs_no_battery_eur": comp["savings_vs_no_battery_eur"],
        "share_of_perfect_foresight": comp["share_of_perfect_foresight"],
        "helios_equivalent_cycles": st["helios"].get("equivalent_cycles"),
        "run_s": period.get("run_s"),
        "params": json.dumps(cell.params, sort_keys=True, default=str),
        "summary": json.dumps(summary, default=str),
        "finished_utc": datetime.now(timezone.utc).replace(tzinfo=None),
    }


def save_row(engine: sa.Engine, row: dict) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(SWEEP_CELL).where(SWEEP_CELL.c.key == row["key"]))
        conn.execute(sa.insert(SWEEP_CELL).values(**row))


def read_rows(engine: sa.Engine, keys: Iterable[str] | None = None) -> list[dict]:
    """The figures of the finished cells (all, or those with the given keys)."""
    cols = [SWEEP_CELL.c[n] for n in FIGURES]
    q = sa.select(*cols).order_by(SWEEP_CELL.c.home, SWEEP_CELL.c.period, SWEEP_CELL.c.tariff,
                                  SWEEP_CELL.c.battery_kwh, SWEEP_CELL.c.pv_scale,
                                  SWEEP_CELL.c.forecast)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    if keys is not None:
        wanted = set(keys)
        rows = [r for r in rows if r["key"] in wanted]
    return rows


# --- Dask -----------------------------------------------------------------------------------

@dataclass
class SweepRun:
    """What :func:`run_cells` did."""

    total: int
    skipped: int
    ran: int
    wall_s: float
    scheduler: str


def run_cells(items: list[Cell], engine: sa.Engine, scheduler: str | None = None,
              workers: int | None = None,
              progress: Callable[[int], None] | None = None, client=None) -> SweepRun:
    """Run the cells not yet in ``sweep_cell`` on Dask; store each as it finishes.

    ``client``: an existing ``distributed.Client`` (tests); else ``scheduler`` (an address)
    or a LocalCluster of ``workers`` processes (default: one per core), one thread each.
    """
    if Client is None:
        raise ConfigError(ConfigProblem("dask.distributed", "installed: pip install "
                                        "'helios-ems[sweep]'", "missing"))
    t0 = time.perf_counter()
    done = finished_keys(engine, (c.key for c in items))
    todo = {c.key: c for c in items if c.key not in done}
    if progress is not None and done:
        progress(len(done))
    cluster = own = None
    if client is None:
        if scheduler:
            own = client = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                   threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            own = client = Client(cluster)
    try:
        futures = [client.submit(run_cell, cell, key=f"sweep-cell-{key}", pure=False)
                   for key, cell in todo.items()]
        by_future = dict(zip(futures, todo.values(), strict=True))
        for fut in as_completed(futures):
            cell = by_future[fut]
            save_row(engine, cell_row(cell, fut.result()))
            if progress is not None:
                progress(1)
        address = client.scheduler.address
    finally:
        if own is not None:
            own.close()
        if cluster is not None:
            cluster.close()
    return SweepRun(len(items), len(done), len(todo), round(time.perf_counter() - t0, 3),
                    address)


# --- outputs --------------------------------------------------------------------------------

def write_parquet(rows: list[dict], path: Path) -> bool:
    """The cells' figures as parquet; False if pyarrow is not installed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # pyarrow is the optional `sweep` extra: pandas raises ImportError without it
        pd.DataFrame(rows).to_parquet(path, index=False)
    except ImportError:
        return False
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return True


def roi_table(rows: list[dict], grid: Grid) -> list[dict]:
    """Per tariff × battery size × forecast: yearly savings vs no battery, payback, ROI.

    Savings are the mean over homes, periods and PV scales, scaled to 365.25 days.
    Battery life = the shorter of ``calendar_life_years`` and ``lifetime_cycles`` /
    (equivalent cycles per year); ROI = (savings over the life − price) / price.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["tariff"], r["battery_kwh"], r["forecast"]), []).append(r)
    out = []
    for (tariff, size, fc), rs in sorted(groups.items()):
        yearly = [r["savings_vs_no_battery_eur"] * 365.25 / r["days"] for r in rs]
        cycles = [(r["helios_equivalent_cycles"] or 0.0) * 365.25 / r["days"] for r in rs]
        save_y = sum(yearly) / len(yearly)
        cyc_y = sum(cycles) / len(cycles)
        cost = grid.cost_eur.get(size)
        life = grid.calendar_life_years
        if grid.lifetime_cycles and cyc_y > 0:
            life = min(life, grid.lifetime_cycles / cyc_y)
        row = {"tariff": tariff, "battery_kwh": size, "forecast": fc, "cells": len(rs),
               "savings_eur_per_year": round(save_y, 2), "cycles_per_year": round(cyc_y, 1),
               "life_years": round(life, 1), "cost_eur": cost, "payback_years": None,
               "roi_pct": None}
        if cost is not None:
            row["payback_years"] = round(cost / save_y, 1) if save_y > 0 else math.inf
            row["roi_pct"] = (round(100 * (save_y * life - cost) / cost, 1) if cost > 0
                              else None)
        out.append(row)
    return out


def roi_text(table: list[dict]) -> str:
    head = (f"{'tariff':<14}{'battery':>9}{'forecast':>10}{'cells':>6}{'EUR/yr':>10}"
            f"{'cyc/yr':>8}{'life y':>8}{'cost EUR':>10}{'payback y':>10}{'ROI %':>8}")
    lines = [head, "-" * len(head)]
    for r in table:
        cost = "-" if r["cost_eur"] is None else f"{r['cost_eur']:.0f}"
        pay = "-" if r["payback_years"] is None else f"{r['payback_years']:.1f}"
        roi = "-" if r["roi_pct"] is None else f"{r['roi_pct']:.1f}"
        lines.append(f"{r['tariff']:<14}{r['battery_kwh']:>7g}kWh{r['forecast']:>10}"
                     f"{r['cells']:>6}{r['savings_eur_per_year']:>10.2f}"
                     f"{r['cycles_per_year']:>8.1f}{r['life_years']:>8.1f}{cost:>10}"
                     f"{pay:>10}{roi:>8}")
    return "\n".join(lines)


def write_report(rows: list[dict], grid: Grid, run: SweepRun, out_dir: Path) -> dict:
    """``summary.json`` (the run, the ROI table) and ``roi.csv``; returns the summary."""
    table = roi_table(rows, grid)
    summary = {"run": asdict(run), "cells": len(rows), "roi": table,
               "lifetime_cycles": grid.lifetime_cycles,
               "calendar_life_years": grid.calendar_life_years}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", "utf-8")
        if table:
            with open(out_dir / "roi.csv", "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
    except OSError as exc:
        raise OutputError(f"cannot write the sweep report to {out_dir}: "
                          f"{exc.strerror or exc}") from None
    return summary
