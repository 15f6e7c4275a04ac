"""``helios db upgrade|downgrade|prune|status``: the plan history database's schema and
retention (the history itself is written by ``helios plan``, :mod:`planner.cli.plan`)."""

from __future__ import annotations

import click

from planner.cli.common import CONFIG_OPTION, DEMO_OPTION, fail, load_config, open_store
from planner.core.errors import HeliosError


@click.group("db")
def db() -> None:
    """The plan history database: migrations, retention, status."""


@db.command("upgrade")
@CONFIG_OPTION
@DEMO_OPTION
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(config_path: str | None, demo: bool, revision: str) -> None:
    """Create or upgrade the schema (also done automatically on first use)."""
    try:
        with open_store(load_config(config_path, demo, need=())) as store:
            before = store.revision()
            after = store.upgrade(revision)
    except HeliosError as exc:
        fail(exc)
    click.echo(f"{store.safe_url}: schema {before or 'none'} -> {after}")


@db.command("downgrade")
@CONFIG_OPTION
@DEMO_OPTION
@click.argument("revision")
def db_downgrade(config_path: str | None, demo: bool, revision: str) -> None:
    """Undo migrations down to REVISION (e.g. 0001; 'base' drops every Helios table)."""
    try:
        with open_store(load_config(config_path, demo, need=())) as store:
            before = store.revision()
            after = store.downgrade(revision)
    except HeliosError as exc:
        fail(exc)
    click.echo(f"{store.safe_url}: schema {before or 'none'} -> {after or 'none'}")


@db.command("prune")
@CONFIG_OPTION
@DEMO_OPTION
@click.option("--keep-days", type=click.IntRange(min=1), default=None,
              help="Keep this many days (default: storage.keep_days).")
def db_prune(config_path: str | None, demo: bool, keep_days: int | None) -> None:
    """Delete plans, measurements, cached prices and forecasts older than storage.keep_days."""
    try:
        cfg = load_config(config_path, demo, need=())
        with open_store(cfg) as store:
            counts = store.prune(keep_days=keep_days)
    except HeliosError as exc:
        fail(exc)
    days = keep_days or cfg.storage.keep_days
    parts = ", ".join(f"{name} {n}" for name, n in counts.items())
    click.echo(f"pruned rows older than {days} days: {parts}")


@db.command("status")
@CONFIG_OPTION
@DEMO_OPTION
@click.option("--last", default=10, show_default=True, type=click.IntRange(1, 1000))
def db_status(config_path: str | None, demo: bool, last: int) -> None:
    """Schema revision and the newest plans (local time)."""
    try:
        cfg = load_config(config_path, demo, need=())
        with open_store(cfg) as store:
            rev = store.revision()
            plans = store.plan_ids(last)
    except HeliosError as exc:
        fail(exc)
    tz = cfg.site.tz
    click.echo(f"{store.safe_url}: schema {rev}")
    for pid, created, status, cost in plans:
        click.echo(f"  plan {pid:>6}  {created.tz_convert(tz):%Y-%m-%d %H:%M:%S %Z}  "
                   f"{status:<24} {cost:8.2f} EUR")
