"""``helios ev``: one-off charging orders for the car, read by the next ``helios plan``.

``helios ev target 80 --by 07:30`` (80 % by the next 07:30 local, replacing the next
departure), ``helios ev now 50`` (charge at once to 50 % whatever the price, until the next
departure), ``helios ev clear``. The order is a small JSON file beside schedule.json
(``ev_override.json``, written atomically, :mod:`planner.plan.ev`); a plan after its time
removes it.
"""

from __future__ import annotations

import re

import click

from planner.cli.common import (
    CONFIG_OPTION,
    DEMO_OPTION,
    NOW_OPTION,
    fail,
    load_config,
    parse_now,
)
from planner.config import HeliosConfig
from planner.core.errors import ConfigError, ConfigProblem, HeliosError
from planner.plan import ev as ev_mod

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
PCT = click.FloatRange(0, 100)


def _config(config_path: str | None, demo: bool) -> HeliosConfig:
    cfg = load_config(config_path, demo=demo, need=())
    if cfg.ev is None:
        raise ConfigError(ConfigProblem("ev", "an ev: section (see config.yaml)", "nothing"),
                          cfg.source or "")
    return cfg


@click.group("ev")
def ev() -> None:
    """One-off charging orders for the car (read by the next `helios plan`)."""


@ev.command("target")
@click.argument("soc_pct", type=PCT)
@click.option("--by", "by", required=True, metavar="HH:MM",
              help="Local time the car must have it (the next such time from now).")
@CONFIG_OPTION
@DEMO_OPTION
@NOW_OPTION
def target(soc_pct: float, by: str, config_path: str | None, demo: bool,
           now_text: str | None) -> None:
    """SOC_PCT % by the next BY (local time), instead of the next departure's target."""
    if not _HHMM.match(by):
        raise click.BadParameter(f"expected a local time HH:MM, got {by!r}", param_hint="--by")
    now = parse_now(now_text)
    try:
        cfg = _config(config_path, demo)
        at = ev_mod.next_local(by, now, cfg.site.timezone)
        path = ev_mod.write_override(cfg, {"target_soc_pct": soc_pct, "by": at})
    except HeliosError as exc:
        fail(exc)
    except OSError as exc:
        raise click.ClickException(f"cannot write the EV override: {exc}") from None
    click.echo(f"ev: {soc_pct:g} % by {at.tz_convert(cfg.site.tz):%a %Y-%m-%d %H:%M %Z} "
               f"(in {path}; the next helios plan uses it)")


@ev.command("now")
@click.argument("soc_pct", type=PCT)
@CONFIG_OPTION
@DEMO_OPTION
@NOW_OPTION
def now_cmd(soc_pct: float, config_path: str | None, demo: bool, now_text: str | None) -> None:
    """Charge at once to SOC_PCT %, whatever the price (until the next departure)."""
    now = parse_now(now_text)
    try:
        cfg = _config(config_path, demo)
        until = ev_mod.next_departure(cfg, now)
        path = ev_mod.write_override(cfg, {"min_soc_now_pct": soc_pct, "until": until})
    except HeliosError as exc:
        fail(exc)
    except OSError as exc:
        raise click.ClickException(f"cannot write the EV override: {exc}") from None
    click.echo(f"ev: charging now to {soc_pct:g} % (until "
               f"{until.tz_convert(cfg.site.tz):%a %H:%M %Z}; in {path})")


@ev.command("clear")
@CONFIG_OPTION
@DEMO_OPTION
def clear(config_path: str | None, demo: bool) -> None:
    """Remove the one-off orders (back to the configured departures and target)."""
    try:
        cfg = _config(config_path, demo)
    except HeliosError as exc:
        fail(exc)
    gone = ev_mod.clear_override(cfg)
    click.echo("ev: orders cleared" if gone else "ev: no orders to clear")
