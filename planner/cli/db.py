"""``helios db upgrade|downgrade|prune|status`` and ``helios report``; history after a plan.

:func:`after_plan` is what ``helios plan`` calls once ``schedule.json`` is written: save the
run to the history database (one transaction) and write the report when configured. A
database failure never touches ``schedule.json``; it ends the run with exit code 6 and one
clear line, or — with ``storage.required: false`` — a warning and exit 0.
"""

from __future__ import annotations

import sys
import time

import click
import pandas as pd

from planner.core.errors import HeliosError, StorageError

_CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False),
    help="Config file (default: ./config.yaml or $HELIOS_CONFIG).")


def _config(path: str | None):
    from planner.cli.main import _load_config

    return _load_config(path, demo=False)


def _fail(exc: HeliosError) -> None:
    click.echo(f"helios: error: {exc}", err=True)
    sys.exit(exc.exit_code)


def _store(cfg):
    from planner.history.store import Store

    return Store.from_config(cfg)


def after_plan(result, cfg, schedule_path: str, quiet: bool = False) -> None:
    """Save the run and write the report after ``schedule.json`` was written.

    Exits with code 6 on a database failure when ``storage.required`` (the default); code 5
    when the report cannot be written. ``schedule.json`` is left exactly as written.
    """
    from planner.history import store as store_mod
    from planner.plan import baselines

    comparison = baselines.compare(result.plan, cfg)
    record = None
    storage_error: StorageError | None = None
    plan_id = None
    if cfg.storage.enabled:
        try:
            record = store_mod.record_from_result(result, cfg, comparison)
            # prices that came from the cache (or a degraded provider) are not cached again:
            # that would make old prices look freshly fetched
            fresh = not any(s.degraded for s in result.plan.inputs.status if s.kind == "prices")
            with _store(cfg) as store:
                plan_id = store.save(record, prune_now=pd.Timestamp.now(tz="UTC"),
                                     cache_provider=cfg.prices.type if fresh else None)
            if not quiet:
                click.echo(f"saved plan {plan_id} to {store.safe_url}")
        except StorageError as exc:
            storage_error = exc
    if cfg.report.enabled and cfg.report.path:
        from planner.report import html as report

        if record is None:
            record = store_mod.record_from_result(result, cfg, comparison)
        try:
            size = report.write(store_mod.RunRecord(record.run, record.slots, plan_id),
                                cfg.report.path)
        except HeliosError as exc:
            _fail(exc)
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


def plan_from_price_cache(cfg, now: pd.Timestamp, error: HeliosError):
    """Plan on the last known prices when the price provider is down (transiently).

    Only for :class:`ProviderUnavailable` from the price provider (a timeout, a 5xx): a bad
    token or a missing file is a configuration problem and must not be hidden by old data.
    The cached spot prices (``price_cache``, filled by every saved plan) go through the normal
    CSV path and tariff; the prices input is marked *degraded*, with the data's age, in the
    summary, the history and the report. Re-raises ``error`` when there is nothing usable.
    """
    import dataclasses
    import tempfile
    from pathlib import Path

    from planner import providers
    from planner.config import ProviderConfig
    from planner.core import timegrid
    from planner.core.errors import ProviderUnavailable
    from planner.inputs import gather as inputs_mod
    from planner.plan import run

    if not (isinstance(error, ProviderUnavailable) and str(error.provider).startswith("prices")
            and cfg.storage.enabled):
        raise error
    start = timegrid.floor_to_slot(now, cfg.planning.slot_s)
    end = start + pd.Timedelta(hours=cfg.planning.horizon_h)
    try:
        with _store(cfg) as store:
            cached = store.cached_prices(cfg.prices.type, start, end)
    except StorageError:
        raise error from None
    if cached.empty or cached.index[0] != start:
        raise error
    step = pd.Timedelta(seconds=int(cached["slot_s"].iloc[0]))
    gaps = (cached.index[1:] - cached.index[:-1]) != step
    if gaps.any():  # use the contiguous part from now on
        cached = cached.iloc[: int(gaps.argmax()) + 1]
    fetched = cached["fetched_at"].min()

    @dataclasses.dataclass(frozen=True)
    class _CachedStatus(inputs_mod.InputStatus):
        fetched_at: pd.Timestamp | None = None

    with tempfile.TemporaryDirectory(prefix="helios-price-cache-") as tmp:
        path = Path(tmp) / "prices.csv"
        pd.DataFrame({"ts_utc": cached.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "price_eur_per_kwh": cached["spot_eur_per_kwh"].to_numpy()}
                     ).to_csv(path, index=False)
        options = providers.config_class("prices", "csv")(path=str(path))
        cache_cfg = dataclasses.replace(cfg, prices=ProviderConfig("csv", options))
        inputs = inputs_mod.gather(cache_cfg, now)
    status = tuple(
        _CachedStatus(st.kind, f"{cfg.prices.type} (cached)", "price_cache table",
                      st.data_start, st.data_end, True,
                      f"{error}; planned on prices fetched "
                      f"{fetched.tz_convert(cfg.site.tz):%Y-%m-%d %H:%M %Z}", fetched)
        if st.kind == "prices" else st for st in inputs.status)
    inputs = dataclasses.replace(inputs, status=status)
    click.echo(f"helios: warning: {error}; planning on cached prices until "
               f"{inputs.end.tz_convert(cfg.site.tz):%Y-%m-%d %H:%M %Z}", err=True)
    return run.plan_inputs(inputs, cfg, now)


@click.group("db")
def db() -> None:
    """The plan history database: migrations, retention, status."""


@db.command("upgrade")
@_CONFIG_OPTION
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(config_path: str | None, revision: str) -> None:
    """Create or upgrade the schema (also done automatically on first use)."""
    try:
        with _store(_config(config_path)) as store:
            before = store.revision()
            after = store.upgrade(revision)
    except HeliosError as exc:
        _fail(exc)
    click.echo(f"{store.safe_url}: schema {before or 'none'} -> {after}")


@db.command("downgrade")
@_CONFIG_OPTION
@click.argument("revision")
def db_downgrade(config_path: str | None, revision: str) -> None:
    """Undo migrations down to REVISION (e.g. 0001; 'base' drops every Helios table)."""
    try:
        with _store(_config(config_path)) as store:
            before = store.revision()
            after = store.downgrade(revision)
    except HeliosError as exc:
        _fail(exc)
    click.echo(f"{store.safe_url}: schema {before or 'none'} -> {after or 'none'}")


@db.command("prune")
@_CONFIG_OPTION
@click.option("--keep-days", type=click.IntRange(min=1), default=None,
              help="Keep this many days (default: storage.keep_days).")
def db_prune(config_path: str | None, keep_days: int | None) -> None:
    """Delete plans, measurements and cached prices older than storage.keep_days."""
    try:
        cfg = _config(config_path)
        with _store(cfg) as store:
            counts = store.prune(keep_days=keep_days)
    except HeliosError as exc:
        _fail(exc)
    days = keep_days or cfg.storage.keep_days
    parts = ", ".join(f"{name} {n}" for name, n in counts.items())
    click.echo(f"pruned rows older than {days} days: {parts}")


@db.command("status")
@_CONFIG_OPTION
@click.option("--last", default=10, show_default=True, type=click.IntRange(1, 1000))
def db_status(config_path: str | None, last: int) -> None:
    """Schema revision and the newest plans (local time)."""
    try:
        cfg = _config(config_path)
        with _store(cfg) as store:
            rev = store.revision()
            plans = store.plan_ids(last)
    except HeliosError as exc:
        _fail(exc)
    tz = cfg.site.tz
    click.echo(f"{store.safe_url}: schema {rev}")
    for pid, created, status, cost in plans:
        click.echo(f"  plan {pid:>6}  {created.tz_convert(tz):%Y-%m-%d %H:%M:%S %Z}  "
                   f"{status:<24} {cost:8.2f} EUR")


@click.command("report")
@_CONFIG_OPTION
@click.option("--plan", "plan_id", type=int, default=None,
              help="Plan id from the history (default: the newest).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Output file (default: report.path, else ./report.html).")
def report_cmd(config_path: str | None, plan_id: int | None, out_path: str | None) -> None:
    """Write the static HTML report of a stored plan (one file, works offline)."""
    from planner.report import html as report

    t0 = time.perf_counter()
    try:
        cfg = _config(config_path)
        with _store(cfg) as store:
            record = store.load(plan_id)
        target = out_path or cfg.report.path or "report.html"
        size = report.write(record, target)
    except HeliosError as exc:
        _fail(exc)
    click.echo(f"wrote {target} (plan {record.plan_id}, {size} bytes, "
               f"{(time.perf_counter() - t0) * 1000:.0f} ms)")
