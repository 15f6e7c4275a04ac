"""``helios plan``: compute the optimal plan, write ``schedule.json``, then history and report.

The run itself is :func:`planner.plan.run.plan_once` (inputs with their fallback chain:
fresh → price cache → flat prices, each stand-in announced on stderr). A failed run writes
nothing: the previous ``schedule.json`` stays as it was. :func:`after_plan` runs once
``schedule.json`` is written: save the run to the history database (one transaction) and
write the report when configured. A database failure never touches ``schedule.json``; it ends
the run with exit code 6 and one clear line, or — with ``storage.required: false`` — a
warning and exit 0.
"""

from __future__ import annotations

import sys

import click
import pandas as pd

from planner.cli.common import (
    fail,
    load_config,
    open_store,
    parse_now,
    print_config_warnings,
    warn,
)
from planner.config import HeliosConfig
from planner.core.errors import HeliosError, StorageError
from planner.core.logsetup import setup_logging
from planner.history.rows import RunRecord
from planner.plan import baselines, run
from planner.plan.record import record_from_result
from planner.report import html as report


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: ./config.yaml or $HELIOS_CONFIG).")
@click.option("--now", "now_text", metavar="ISO8601",
              help="Plan as if it were this instant (with offset, e.g. 2026-05-01T10:00:00Z).")
@click.option("--demo", is_flag=True, help="Use the built-in demo prices, PV and load.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Where to write schedule.json (default: output.schedule_path).")
@click.option("--hours", default=6, show_default=True, type=click.IntRange(0, 336),
              help="Hours of slots shown in the summary.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def plan(config_path: str | None, now_text: str | None, demo: bool, out_path: str | None,
         hours: int, quiet: bool) -> None:
    """Compute the optimal plan and write schedule.json (atomically)."""
    now = parse_now(now_text)
    try:
        cfg = load_config(config_path, demo)
        setup_logging(cfg)  # redacts every !secret value from log output
        if not (quiet or demo):
            print_config_warnings(cfg)  # demo providers, a static SoC, no tariff
        result = run.plan_once(cfg, now, warn=warn)
        target = out_path or cfg.output.schedule_path
        run.write_schedule(result.schedule, target)
    except HeliosError as exc:
        fail(exc)
    if not quiet:
        click.echo(run.summary(result, cfg, hours))
        click.echo(f"wrote {target}")
    # history DB + report; schedule.json is final here (DB failure: exit 6, file untouched)
    after_plan(result, cfg, target, quiet)


def after_plan(result: run.PlanResult, cfg: HeliosConfig, schedule_path: str,
               quiet: bool = False) -> None:
    """Save the run and write the report after ``schedule.json`` was written.

    Exits with code 6 on a database failure when ``storage.required`` (the default); code 5
    when the report cannot be written. ``schedule.json`` is left exactly as written.
    """
    comparison = baselines.compare(result.plan, cfg)
    record = None
    storage_error: StorageError | None = None
    plan_id = None
    if cfg.storage.enabled:
        try:
            record = record_from_result(result, cfg, comparison)
            # prices that came from a cache (or a degraded provider) are not cached again:
            # that would make old prices look freshly fetched
            fresh = not any(s.degraded or s.fetched_at is not None
                            for s in result.plan.inputs.status if s.kind == "prices")
            with open_store(cfg) as store:
                plan_id = store.save(record, prune_now=pd.Timestamp.now(tz="UTC"),
                                     cache_provider=cfg.prices.type if fresh else None)
            if not quiet:
                click.echo(f"saved plan {plan_id} to {store.safe_url}")
        except StorageError as exc:
            storage_error = exc
    if cfg.report.enabled and cfg.report.path:
        if record is None:
            record = record_from_result(result, cfg, comparison)
        try:
            size = report.write(RunRecord(record.run, record.slots, plan_id, record.devices),
                                cfg.report.path)
        except HeliosError as exc:
            fail(exc)
        if not quiet:
            click.echo(f"wrote {cfg.report.path} ({size} bytes)")
    if storage_error is not None:
        note = f"{schedule_path} was written and is unchanged"
        if cfg.storage.required:
            click.echo(f"helios: error: plan not saved to history: {storage_error} ({note}; "
                       "set storage.required: false to run without the database)", err=True)
            sys.exit(storage_error.exit_code)
        click.echo(f"helios: warning: plan not saved to history: {storage_error} ({note}; "
                   "storage.required is false)", err=True)
