"""What every ``helios`` verb shares: finding and loading the config, ``--now``, the exit codes.

Exit codes: 0 success; 2 bad configuration or usage; 3 input data/provider problems;
4 optimisation failed; 5 output could not be written; 6 the plan history database failed
(schedule.json already written and intact); 1 a bug (traceback). Each
:class:`~planner.core.errors.HeliosError` carries its code; :func:`fail` prints the one-line
message and exits with it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click
import pandas as pd

from planner import config as config_mod
from planner.core import timegrid
from planner.core.errors import ConfigError, HeliosError
from planner.history.store import Store

DEFAULT_CONFIG = "config.yaml"

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False),
    help="Config file (default: ./config.yaml or $HELIOS_CONFIG).")
DEMO_OPTION = click.option(
    "--demo", is_flag=True,
    help="The built-in demo configuration (what `helios plan --demo` used here); with a "
         "config file, its demo providers.")
NOW_OPTION = click.option(
    "--now", "now_text", metavar="ISO8601",
    help="As if it were this instant (with offset, e.g. 2026-05-01T10:00:00Z).")


def find_config(path: str | None) -> str | None:
    """Where the config is, in this order: ``--config``, else ``$HELIOS_CONFIG`` (when set
    and not empty), else ``./config.yaml`` if it exists, else None."""
    if path is None:
        path = os.environ.get("HELIOS_CONFIG") or None
        if path is None and Path(DEFAULT_CONFIG).exists():
            path = DEFAULT_CONFIG
    return path


#: the provider sections a config file must have (``--demo`` fills them with demo data)
ALL_PROVIDERS = ("prices", "pv", "load", "state")


def load_config(path: str | None, demo: bool = False,
                need: tuple[str, ...] = ALL_PROVIDERS) -> config_mod.HeliosConfig:
    """The validated config (:func:`find_config`); with ``demo`` the demo providers replace
    the configured ones, and no file at all means the built-in demo configuration
    (:func:`planner.config.default`: ``./helios.db``, ``./schedule.json``).

    Without ``demo`` the file must name the providers in ``need`` (all four for ``plan``,
    ``check-config``; the one it checks for ``prices``/``forecast``): a missing one is a
    config error naming it, never the demo data.

    Raises
    ------
    ConfigError
        No config file found (and not ``demo``), or the file is invalid or incomplete.
    """
    path = find_config(path)
    if path is None:
        if demo:
            return config_mod.default()
        raise ConfigError(config_mod.ConfigProblem(
            "--config", f"a config file (--config FILE, $HELIOS_CONFIG or ./{DEFAULT_CONFIG}), "
            "or --demo for the built-in demo configuration", "none found"))
    cfg = config_mod.load(path, require_providers=() if demo else need)
    return config_mod.with_demo_providers(cfg) if demo else cfg


def print_config_warnings(cfg: config_mod.HeliosConfig) -> None:
    """``helios: warning: ...`` on stderr for each of :func:`planner.config.config_warnings`."""
    for line in config_mod.config_warnings(cfg):
        warn(line)


def parse_now(value: str | None) -> pd.Timestamp:
    """``--now`` as aware UTC (default: the wall clock); a naive or bad value is a usage
    error (exit 2)."""
    if value is None:
        return timegrid.utcnow()
    try:
        return timegrid.to_utc(value, "--now")
    except HeliosError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None


def fail(exc: HeliosError) -> NoReturn:
    """Print ``helios: error: <message>`` on stderr and exit with the error's code."""
    click.echo(f"helios: error: {exc}", err=True)
    sys.exit(exc.exit_code)


def warn(message: str) -> None:
    """Print ``helios: warning: <message>`` on stderr."""
    click.echo(f"helios: warning: {message}", err=True)


def open_store(cfg: config_mod.HeliosConfig) -> Store:
    """The history database of ``cfg.storage`` (use it as a context manager)."""
    return Store.from_config(cfg)
