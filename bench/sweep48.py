"""The 48-cell fleet sweep of issue 17 on whole years: Dask LocalCluster vs serial.

2 homes (the CoSSMic house of ``bench/backtest.py`` with DK1 and with DK2 prices, Energinet,
CC-BY) × 2 whole calendar years (2022, 2023) × 3 batteries (5, 10, 15 kWh) × 2 tariffs
(dynamic: (spot + 0.15) × 1.19 / spot; flat: 0.30 / 0.08 EUR/kWh) × 2 forecast modes
(perfect, real), hourly slots, a 48 h horizon, re-planning every slot. Data from
../shared/data only (never copied).

Phases (each printed with its wall time):

1. ``helios sweep GRID --workers 2`` (a LocalCluster of 2 worker processes); one worker is
   SIGKILLed after ``--kill-after`` cells are in the database, and the sweep itself is
   interrupted (SIGINT) after ``--stop-after`` cells;
2. the same command again: it resumes (finished cells skipped) and finishes the grid;
3. every cell run serially in this process (:func:`planner.evaluate.fleet.run_cell`), and
   each figure compared with the sweep's row (exactly equal expected).

Run: python3 bench/sweep48.py [--work DIR] [--kill-after 10] [--stop-after 24]
     [--skip-serial]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import backtest as bb  # noqa: E402
from planner.evaluate import fleet  # noqa: E402

ZONES = {"dk1": ("prices/tidy/DK1_energinet_2021-01-01_2024-03-31_1h.csv", "Europe/Copenhagen"),
         "dk2": ("prices/tidy/DK2_energinet_2021-01-01_2024-03-31_1h.csv", "Europe/Copenhagen")}
YEARS = (2022, 2023)
CONFIG = {**bb.CONFIG, "planning": {"slot_s": 3600, "horizon_h": 48}}


def make_homes(work: Path) -> Path:
    """The two home folders and the grid file; the grid file's path."""
    h = bb.house()
    for name, (rel, tz) in ZONES.items():
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        p = pd.read_csv(bb._shared(rel))
        p.index = pd.DatetimeIndex(pd.to_datetime(p["ts_utc"], utc=True), name="ts_utc")
        start = pd.Timestamp(f"{YEARS[0]}-01-01", tz=tz).tz_convert("UTC")
        end = pd.Timestamp(f"{YEARS[-1] + 1}-01-01", tz=tz).tz_convert("UTC")
        p = p[(p.index >= start) & (p.index < end + pd.Timedelta(hours=48))]
        frames = []
        for year in YEARS:  # the house moved by whole weeks onto each year
            y0 = pd.Timestamp(f"{year}-01-01", tz=tz).tz_convert("UTC")
            y1 = pd.Timestamp(f"{year + 1}-01-01", tz=tz).tz_convert("UTC")
            idx = p.index[(p.index >= y0) & ((p.index < y1) if year != YEARS[-1] else True)]
            frames.append(bb.shift_house(h, idx))
        house = pd.concat(frames)
        house["price_eur_per_kwh"] = p["price_eur_mwh"] / 1000.0
        stamps = house.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        for col, fname in (("price_eur_per_kwh", "prices"), ("pv_kw", "pv"),
                           ("load_kw", "load")):
            pd.DataFrame({"ts_utc": stamps, col: house[col].round(5)}).to_csv(
                folder / f"{fname}.csv", index=False)
        (folder / "config.yaml").write_text(yaml.safe_dump(
            {**CONFIG, "site": {"timezone": tz, **bb.SITE}}))
    grid = {"homes": list(ZONES), "years": list(YEARS), "battery_kwh": [5, 10, 15],
            "tariffs": {"dynamic": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
                        "flat": {"buy": "0.30", "sell": "0.08"}},
            "forecast": ["perfect", "real"], "options": {"soc_start_pct": 50},
            "battery_cost_eur_per_kwh": 450, "lifetime_cycles": 6000}
    path = work / "grid.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("select count(*) from sweep_cell").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def workers_of(proc: psutil.Process) -> list[psutil.Process]:
    """The LocalCluster's worker processes (children of the nanny processes)."""
    out = []
    for child in proc.children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "multiprocessing" in cmd and "resource_tracker" not in cmd:
            out.append(child)
    return out


def sweep_cmd(grid: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "planner", "sweep", str(grid), "--workers", "2",
            "--out", str(out), "--quiet", "--json"]


def phase1(grid: Path, out: Path, kill_after: int, stop_after: int) -> dict:
    db = out / "sweep.db"
    t0 = time.perf_counter()
    proc = subprocess.Popen(sweep_cmd(grid, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    killed = None
    while proc.poll() is None:
        n = count(db)
        if killed is None and n >= kill_after:
            ws = workers_of(ps)
            # the deepest processes are the workers (a nanny's child)
            ws = [w for w in ws if not any(c in ws for c in w.children())]
            if ws:
                victim = ws[-1]
                killed = {"pid": victim.pid, "at_cells": n}
                victim.send_signal(signal.SIGKILL)
        if n >= stop_after:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            break
        time.sleep(0.5)
    proc.wait()
    return {"wall_s": round(time.perf_counter() - t0, 1), "cells_in_db": count(db),
            "killed_worker": killed, "returncode": proc.returncode}


def phase2(grid: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    res = subprocess.run(sweep_cmd(grid, out), capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"resumed sweep failed ({res.returncode}): {res.stderr[-2000:]}")
    summary = json.loads(res.stdout)
    return {"wall_s": round(time.perf_counter() - t0, 1), "cells_in_db": count(out / "sweep.db"),
            "run": summary.get("run")}


def phase3(grid: Path, out: Path) -> dict:
    g = fleet.load_grid(grid)
    items = fleet.cells(g)
    engine = fleet.open_store(f"sqlite:///{(out / 'sweep.db').resolve()}")
    rows = {r["key"]: r for r in fleet.read_rows(engine)}
    t0 = time.perf_counter()
    worst = 0.0
    mismatched = []
    for cell in items:
        row = fleet.cell_row(cell, fleet.run_cell(cell))
        got = rows[cell.key]
        for k in fleet.FIGURES:
            if k == "run_s":  # the cell's own run time
                continue
            a, b = row[k], got[k]
            if a != b:  # every figure exactly equal (names and None included)
                mismatched.append((cell.key, k, a, b))
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                worst = max(worst, abs(a - b))
    return {"wall_s": round(time.perf_counter() - t0, 1), "cells": len(items),
            "max_abs_diff": worst, "mismatches": mismatched[:10],
            "n_mismatches": len(mismatched)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--kill-after", type=int, default=10)
    ap.add_argument("--stop-after", type=int, default=24)
    ap.add_argument("--skip-serial", action="store_true")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sweep48-"))
    work.mkdir(parents=True, exist_ok=True)
    grid = make_homes(work)
    out = work / "out"
    print(f"work folder {work}; {len(fleet.cells(fleet.load_grid(grid)))} cells; "
          f"{os.cpu_count()} cores", flush=True)
    p1 = phase1(grid, out, args.kill_after, args.stop_after)
    print("phase 1 (2 workers, one killed, interrupted):", json.dumps(p1), flush=True)
    p2 = phase2(grid, out)
    print("phase 2 (resumed):", json.dumps(p2), flush=True)
    if not args.skip_serial:
        p3 = phase3(grid, out)
        print("phase 3 (serial, compared):", json.dumps(p3, default=str), flush=True)
    print((out / "roi.csv").read_text() if (out / "roi.csv").exists() else "", flush=True)


if __name__ == "__main__":
    main()
