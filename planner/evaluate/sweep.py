"""``helios backtest`` runs: one scenario, or a what-if sweep in processes.

:func:`run_scenario` runs Helios, the baselines and perfect foresight on one scenario
(:func:`planner.evaluate.loop.run_backtest`, with 1-minute truth when asked) and writes its
outputs (:func:`planner.evaluate.report.write_outputs`); :func:`run_sweep` runs several, one
process per scenario, and :func:`write_sweep` the what-if table.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import queue as queue_mod
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from planner.config import HeliosConfig
from planner.core.errors import OutputError
from planner.evaluate.data import Data, Scenario
from planner.evaluate.loop import Options, run_backtest
from planner.evaluate.minute_truth import minute_data
from planner.evaluate.report import write_outputs
from planner.evaluate.summary import make_summary, sweep_rows


def run_scenario(cfg: HeliosConfig, data: Data, scenario: Scenario, options: Options,
                 out_dir: str | Path | None,
                 progress: Callable[[int], None] | None = None) -> dict:
    """Run one scenario (Helios, baselines, perfect foresight); write its outputs.

    Returns the summary (what ``summary.json`` holds).
    """
    cfg_s, series = scenario.apply(cfg, data.series)
    minute = None
    if options.minute != "off" or data.minute is not None:
        rec = data.minute or {}
        fill = "synthetic" if options.minute == "synthetic" else None  # else: held flat
        pv, load = rec.get("pv"), rec.get("load")
        minute = minute_data(
            series, data.start, data.stop, options.minute_seed,
            pv=fill if pv is None else pv * scenario.pv_scale,
            load=fill if load is None else load, sources=rec.get("sources"))
        series = minute.conform(series)
    result = run_backtest(cfg_s, series, data.start, data.stop, options, progress, minute)
    summary = make_summary(result, cfg_s, data, scenario, options)
    if out_dir is not None:
        write_outputs(result, summary, series, cfg_s, Path(out_dir))
    return summary


def _worker(args: tuple) -> dict:
    cfg, data, scenario, options, out_dir, queue = args
    report = (lambda k: queue.put(k)) if queue is not None else None
    return run_scenario(cfg, data, scenario, options, out_dir, report)


def run_sweep(cfg: HeliosConfig, data: Data, items: list[Scenario], options: Options,
              out_dir: str | Path | None, jobs: int,
              progress: Callable[[int], None] | None = None) -> list[dict]:
    """Run the scenarios in ``jobs`` processes (spawned); summaries in the given order.

    ``progress`` receives simulated slot counts of all Helios runs together.
    """
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
    while True:
        try:
            progress(queue.get_nowait())
        except queue_mod.Empty:
            return


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
