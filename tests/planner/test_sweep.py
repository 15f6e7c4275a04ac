"""`helios sweep` on a real dask.distributed scheduler with two worker processes.

Data: two homes built from the committed fixtures (tests/data, CC-BY): the CoSSMic summer and
winter weeks (first 36 h) with the DK1 2023-07-02 prices moved onto their dates; hourly
slots, a 12 h horizon. Grid: 2 homes × 2 battery sizes × 2 tariffs = 8 cells. Every cell's
numbers must equal a serial :func:`planner.evaluate.loop.run_backtest` built independently
of :mod:`planner.evaluate.fleet`; a finished cell is skipped on a re-run; the cells of a
killed worker are re-run by the scheduler.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from planner import config as config_mod
from planner.cli.main import main
from planner.evaluate import data as bt_data
from planner.evaluate import fleet
from planner.evaluate.loop import Options, run_backtest

distributed = pytest.importorskip("distributed")

DATA = Path(__file__).parent.parent / "data"
HOURS = 36
HOMES = (("summer", "cossmic_summer_week", "2016-05-05T22:00Z"),
         ("winter", "cossmic_winter", "2016-01-17T23:00Z"))
HOME_CONFIG = {"site": {"timezone": "Europe/Berlin"},
               "planning": {"slot_s": 3600, "horizon_h": 12},
               "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02}}
TARIFFS = {"dynamic": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
           "flat": {"buy": "0.30", "sell": "0.08"}}
SIZES = (5.0, 10.0)


def _grid(root: Path, tariffs: dict, name: str = "grid.yaml") -> Path:
    path = root / name
    path.write_text(yaml.safe_dump({
        "homes": [h for h, _, _ in HOMES], "battery_kwh": list(SIZES), "tariffs": tariffs,
        "battery_cost_eur_per_kwh": 500, "lifetime_cycles": 6000}))
    return path


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    prices = pd.read_csv(DATA / "prices_dk1_2023-07-02_1h.csv").head(HOURS)
    for name, stem, start in HOMES:
        home = root / name
        home.mkdir()
        for col in ("pv", "load"):
            pd.read_csv(DATA / f"{stem}_{col}_1h.csv").head(HOURS).to_csv(home / f"{col}.csv",
                                                                          index=False)
        p = prices.copy()
        p["ts_utc"] = pd.date_range(pd.Timestamp(start), periods=HOURS,
                                    freq="1h").strftime("%Y-%m-%dT%H:%M:%SZ")
        p.to_csv(home / "prices.csv", index=False)
        (home / "config.yaml").write_text(yaml.safe_dump(HOME_CONFIG))
    _grid(root, TARIFFS)
    return root


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc:
        with distributed.Client(lc) as client:
            client.wait_for_workers(2, timeout=60)
            # import the backtest on both workers first (cvxpy: ~2 s per process), so the
            # sweep's wall time below is the cells' and not the imports'
            client.run(importlib.import_module, "planner.evaluate.fleet")
            yield lc, client


@pytest.fixture(scope="module")
def serial(fleet_dir):
    """{(home, tariff, battery_kwh): strategies' metrics} of serial run_backtest runs,
    and their wall time."""
    t0 = time.perf_counter()
    out = {}
    for name, _, _ in HOMES:
        home = fleet_dir / name
        for tariff, spec in TARIFFS.items():
            for size in SIZES:
                cfg = config_mod.from_mapping(
                    {**HOME_CONFIG, "tariff": spec,
                     "battery": {**HOME_CONFIG["battery"], "capacity_kwh": size}})
                data = bt_data.load_data(cfg, str(home / "prices.csv"), str(home / "pv.csv"),
                                         str(home / "load.csv"))
                result = run_backtest(cfg, data.series, data.start, data.stop, Options())
                out[(name, tariff, size)] = result.metrics
    return out, time.perf_counter() - t0


def _by_cell(engine) -> dict:
    rows = fleet.read_rows(engine)
    with engine.connect() as conn:
        summaries = dict(conn.execute(
            fleet.sa.select(fleet.SWEEP_CELL.c.key, fleet.SWEEP_CELL.c.summary)).all())
    return {(r["home"], r["tariff"], r["battery_kwh"]): (r, json.loads(summaries[r["key"]]))
            for r in rows}


def test_sweep_on_two_workers_equals_serial_backtests(fleet_dir, cluster, serial, tmp_path):
    _, client = cluster
    grid = fleet.load_grid(fleet_dir / "grid.yaml")
    items = fleet.cells(grid)
    assert len(items) == 8 and len({c.key for c in items}) == 8
    engine = fleet.open_store(f"sqlite:///{tmp_path / 'sweep.db'}")
    seen = []
    run = fleet.run_cells(items, engine, client=client, progress=seen.append)
    assert (run.total, run.ran, run.skipped) == (8, 8, 0)
    assert sum(seen) == 8
    cells = _by_cell(engine)
    metrics, serial_s = serial
    assert set(cells) == set(metrics)
    for key, (row, summary) in cells.items():
        assert summary["strategies"] == metrics[key], key  # identical, not merely close
        assert row["helios_net_cost_eur"] == metrics[key]["helios"]["net_cost_eur"]
        assert row["savings_vs_no_battery_eur"] == pytest.approx(
            metrics[key]["no_battery"]["net_cost_eur"] - metrics[key]["helios"]["net_cost_eur"],
            abs=1e-6)
    print(f"\nsweep of 8 cells on 2 workers: {run.wall_s:.2f} s; serial: {serial_s:.2f} s")
    # ROI: one row per tariff × size; the payback is the price over the yearly savings
    table = fleet.roi_table(fleet.read_rows(engine), grid)
    assert [(r["tariff"], r["battery_kwh"]) for r in table] == [
        ("dynamic", 5.0), ("dynamic", 10.0), ("flat", 5.0), ("flat", 10.0)]
    for r in table:
        rows = [cells[(h, r["tariff"], r["battery_kwh"])][0] for h, _, _ in HOMES]
        yearly = sum(x["savings_vs_no_battery_eur"] * 365.25 / x["days"] for x in rows) / 2
        assert r["savings_eur_per_year"] == pytest.approx(yearly, abs=0.01)
        assert r["cost_eur"] == 500 * r["battery_kwh"]
        assert r["payback_years"] == pytest.approx(r["cost_eur"] / yearly, abs=0.06)


def test_cli_resumes_skipping_finished_cells(fleet_dir, cluster, serial, tmp_path):
    lc, _ = cluster
    out = tmp_path / "out"
    half = _grid(fleet_dir, {"dynamic": TARIFFS["dynamic"]}, "half.yaml")
    args = ["--scheduler", lc.scheduler_address, "--out", str(out), "-q"]
    first = CliRunner().invoke(main, ["sweep", str(half), *args])
    assert first.exit_code == 0, first.output + str(first.exception)
    assert "4 cells: 4 run, 0 already done" in first.stdout
    engine = fleet.open_store(f"sqlite:///{out / 'sweep.db'}")
    stamps = {r["key"]: r for r in fleet.read_rows(engine)}
    with engine.connect() as conn:
        before = dict(conn.execute(fleet.sa.select(fleet.SWEEP_CELL.c.key,
                                                   fleet.SWEEP_CELL.c.finished_utc)).all())
    assert len(stamps) == 4
    second = CliRunner().invoke(main, ["sweep", str(fleet_dir / "grid.yaml"), *args])
    assert second.exit_code == 0, second.output + str(second.exception)
    assert "8 cells: 4 run, 4 already done" in second.stdout
    with engine.connect() as conn:
        after = dict(conn.execute(fleet.sa.select(fleet.SWEEP_CELL.c.key,
                                                  fleet.SWEEP_CELL.c.finished_utc)).all())
    assert len(after) == 8
    assert all(after[k] == v for k, v in before.items())  # the finished 4 were not re-run
    metrics, _ = serial
    for key, (_, summary) in _by_cell(engine).items():
        assert summary["strategies"] == metrics[key]
    table = pd.read_parquet(out / "cells.parquet")
    assert len(table) == 8 and set(table["tariff"]) == {"dynamic", "flat"}
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["roi"]) == 4 and (out / "roi.csv").is_file()
    third = CliRunner().invoke(main, ["sweep", str(fleet_dir / "grid.yaml"), *args])
    assert "8 cells: 0 run, 8 already done" in third.stdout


def test_cells_of_a_killed_worker_are_rerun(fleet_dir, cluster, serial, tmp_path):
    lc, client = cluster
    items = fleet.cells(fleet.load_grid(fleet_dir / "grid.yaml"))
    engine = fleet.open_store(f"sqlite:///{tmp_path / 'sweep.db'}")
    killed: dict = {}

    def kill_one_busy_worker(_k: int) -> None:
        if killed:
            return
        busy = {w: ks for w, ks in client.processing().items() if ks}
        if not busy:
            return
        addr, keys = next(iter(busy.items()))
        nanny = next(n for n in lc.workers.values() if n.worker_address == addr)
        killed.update(addr=addr, keys=set(keys))
        os.kill(nanny.process.process.pid, signal.SIGKILL)  # the nanny starts a new one

    run = fleet.run_cells(items, engine, client=client, progress=kill_one_busy_worker)
    assert killed, "no worker was busy when the first cell finished"
    assert run.ran == 8
    assert killed["addr"] not in client.scheduler_info()["workers"]
    metrics, _ = serial
    cells = _by_cell(engine)
    assert set(cells) == set(metrics)
    lost = {k.removeprefix("sweep-cell-") for k in killed["keys"]}
    assert lost <= {row["key"] for row, _ in cells.values()}
    for key, (_, summary) in cells.items():
        assert summary["strategies"] == metrics[key], key


def test_grid_errors_name_the_key(fleet_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"homes": [str(fleet_dir / "summer")], "battery_kwh": [0]}))
    with pytest.raises(config_mod.ConfigError, match="battery_kwh"):
        fleet.load_grid(bad)
    bad.write_text(yaml.safe_dump({"homes": [str(fleet_dir / "summer")], "forecats": ["x"]}))
    result = CliRunner().invoke(main, ["sweep", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "forecats" in result.stderr
