"""``helios``: the planner's command line.

Exit codes: 0 success; 2 bad configuration or usage; 3 input data/provider problems;
4 optimisation failed; 5 output could not be written; 6 the plan history database failed
(schedule.json already written and intact); 1 a bug (traceback).
A failed run writes nothing: the previous schedule.json stays as it was.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import pandas as pd

from planner import config as config_mod
from planner.core.errors import ConfigError, HeliosError, ProviderError

DEFAULT_CONFIG = "config.yaml"


def _load_config(path: str | None, demo: bool) -> config_mod.HeliosConfig:
    if path is None:
        env = os.environ.get("HELIOS_CONFIG")
        if env:
            path = env
        elif Path(DEFAULT_CONFIG).exists():
            path = DEFAULT_CONFIG
    if path is None:
        if demo:
            return config_mod.default()
        raise ConfigError(config_mod.ConfigProblem(
            "--config", f"a config file (or ./{DEFAULT_CONFIG}, or $HELIOS_CONFIG, or --demo)",
            "none found"))
    cfg = config_mod.load(path)
    return config_mod.with_demo_providers(cfg) if demo else cfg


def _parse_now(value: str | None) -> pd.Timestamp:
    from planner.core import timegrid

    if value is None:
        return timegrid.utcnow()
    try:
        return timegrid.to_utc(value, "--now")
    except HeliosError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None


def _fail(exc: HeliosError) -> None:
    click.echo(f"helios: error: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="helios-ems", prog_name="helios")
def main() -> None:
    """Helios: plan a home's battery and grid use against dynamic prices."""


@main.command()
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
    from planner.plan import run

    now = _parse_now(now_text)
    try:
        cfg = _load_config(config_path, demo)
        from planner.core.logsetup import setup_logging

        setup_logging(cfg)  # redacts every !secret value from log output
        try:
            result = run.plan_once(cfg, now)
        except ProviderError as exc:  # prices down: plan on the history's price cache, if any
            from planner.cli import db as cli_db

            try:
                result = cli_db.plan_from_price_cache(cfg, now, exc)
            except ProviderError as cache_exc:  # no cache either: self-consumption, flagged
                from planner.cli import inputs as cli_inputs

                result = cli_inputs.plan_without_prices(cfg, now, cache_exc)
        target = out_path or cfg.output.schedule_path
        run.write_schedule(result.schedule, target)
    except HeliosError as exc:
        _fail(exc)
    if not quiet:
        click.echo(run.summary(result, cfg, hours))
        click.echo(f"wrote {target}")
    # history DB + report; schedule.json is final here (DB failure: exit 6, file untouched)
    from planner.cli import db as cli_db

    cli_db.after_plan(result, cfg, target, quiet)


@main.command("check-config")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: ./config.yaml or $HELIOS_CONFIG).")
@click.option("--explain", is_flag=True, help="List every key with default, unit and meaning.")
def check_config(config_path: str | None, explain: bool) -> None:
    """Validate the configuration; report every problem with its key path."""
    if explain:
        for key, default, unit, text in config_mod.explain():
            unit_text = f" [{unit}]" if unit else ""
            click.echo(f"{key} = {default}{unit_text}\n    {text}")
        return
    try:
        cfg = _load_config(config_path, demo=False)
    except HeliosError as exc:
        _fail(exc)
    b = cfg.battery
    click.echo(f"config OK: {cfg.source}")
    click.echo(f"  battery {b.capacity_kwh:g} kWh, {b.max_charge_kw:g}/{b.max_discharge_kw:g} kW, "
               f"SoC {b.min_soc_pct:g}-{b.max_soc_pct:g} %, wear "
               f"{b.wear_cost_eur_per_kwh:.4f} EUR/kWh")
    click.echo(f"  providers: prices={cfg.prices.type} pv={cfg.pv.type} load={cfg.load.type} "
               f"state={cfg.state.type}")


def _register_db_commands() -> None:
    from planner.cli import db as cli_db

    main.add_command(cli_db.db)
    main.add_command(cli_db.report_cmd)


_register_db_commands()


def _register_backtest_command() -> None:
    from planner.cli import backtest as cli_backtest

    main.add_command(cli_backtest.backtest)


_register_backtest_command()


def _register_input_commands() -> None:
    from planner.cli import inputs as cli_inputs

    main.add_command(cli_inputs.prices_cmd)
    main.add_command(cli_inputs.forecast)


_register_input_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
