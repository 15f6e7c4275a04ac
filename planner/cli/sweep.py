"""``helios sweep``: a what-if grid of homes × periods × batteries × PV × tariffs × forecasts
on Dask (:mod:`planner.evaluate.fleet`); results in SQL and parquet, resumable, ROI report.

Exit codes as for ``helios backtest``: 2 bad grid file, 3 unreadable data, 4 an optimisation
failed, 5 the results could not be written; 2 also when ``dask[distributed]`` (the ``sweep``
extra) is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

try:  # optional (the `sweep` extra): a nicer progress bar
    from tqdm import tqdm
except ImportError:  # pragma: no cover - a line on stderr instead
    tqdm = None

from planner.core.errors import HeliosError
from planner.evaluate import fleet


class _Bar:
    """tqdm when installed, else a line on stderr every 5 % (and at the end)."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.n, self.quiet, self.tqdm, self._shown = total, 0, quiet, None, -1
        if quiet or tqdm is None:
            return
        self.tqdm = tqdm(total=total, unit="cell", file=sys.stderr, desc="sweep")

    def update(self, k: int) -> None:
        self.n += k
        if self.quiet:
            return
        if self.tqdm is not None:
            self.tqdm.update(k)
            return
        step = int(20 * self.n / max(self.total, 1))
        if step != self._shown:
            self._shown = step
            click.echo(f"sweep: {self.n}/{self.total} cells", err=True)

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()


@click.command("sweep")
@click.argument("grid_path", metavar="GRID.yaml", type=click.Path(dir_okay=False, exists=True))
@click.option("--scheduler", metavar="ADDRESS",
              help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster with "
                   "one worker process per core).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes of the LocalCluster (default: all cores).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for sweep.db, cells.parquet, summary.json, roi.csv "
                   "(default: GRID.out beside the grid file).")
@click.option("--db", "db_url", metavar="URL",
              help="SQLAlchemy URL of the results (default: sqlite:///OUT/sweep.db; "
                   "mysql+pymysql://USER@HOST/DB for MariaDB).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sweep(grid_path, scheduler, workers, out_dir, db_url, as_json, quiet) -> None:
    """Run a what-if grid on Dask; finished cells (in the database) are skipped."""
    grid_file = Path(grid_path)
    out = Path(out_dir) if out_dir else grid_file.with_suffix(".out")
    try:
        grid = fleet.load_grid(grid_file)
        items = fleet.cells(grid)
        out.mkdir(parents=True, exist_ok=True)
        engine = fleet.open_store(db_url or f"sqlite:///{out.resolve() / 'sweep.db'}")
        bar = _Bar(len(items), quiet)
        try:
            run = fleet.run_cells(items, engine, scheduler, workers, bar.update)
        finally:
            bar.close()
        rows = fleet.read_rows(engine, [c.key for c in items])
        if not fleet.write_parquet(rows, out / "cells.parquet"):
            click.echo("helios: pyarrow is not installed: no cells.parquet (the cells are in "
                       "the database)", err=True)
        summary = fleet.write_report(rows, grid, run, out)
    except HeliosError as exc:
        click.echo(f"helios: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        click.echo(f"helios: error: {out}: {exc.strerror or exc}", err=True)
        sys.exit(5)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    click.echo(f"{run.total} cells: {run.ran} run, {run.skipped} already done "
               f"({run.wall_s:.1f} s on {run.scheduler})")
    click.echo(fleet.roi_text(summary["roi"]))
    click.echo(f"wrote {out}")
