"""``helios report``: the static HTML report of a stored plan (one file, works offline)."""

from __future__ import annotations

import time

import click

from planner.cli.common import CONFIG_OPTION, DEMO_OPTION, fail, load_config, open_store
from planner.core.errors import HeliosError
from planner.report import html as report


@click.command("report")
@CONFIG_OPTION
@click.option("--plan", "plan_id", type=int, default=None,
              help="Plan id from the history (default: the newest).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Output file (default: report.path, else ./report.html).")
@DEMO_OPTION
def report_cmd(config_path: str | None, plan_id: int | None, out_path: str | None,
               demo: bool) -> None:
    """Write the static HTML report of a stored plan (one file, works offline)."""
    t0 = time.perf_counter()
    try:
        cfg = load_config(config_path, demo=demo, need=())
        with open_store(cfg) as store:
            record = store.load(plan_id)
        target = out_path or cfg.report.path or "report.html"
        size = report.write(record, target)
    except HeliosError as exc:
        fail(exc)
    click.echo(f"wrote {target} (plan {record.plan_id}, {size} bytes, "
               f"{(time.perf_counter() - t0) * 1000:.0f} ms)")
