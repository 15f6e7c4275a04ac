"""``helios prices``: check the price provider alone (issue 4), like evcc's ``evcc tariff``.

Prints the spot price per slot in the site's local time, the buy/sell prices from the tariff
and a status line (provider, source, coverage). Exit codes as for ``helios plan``: 2 config,
3 provider (bad token → "HTTP 401 ...", server down → "HTTP 500 ... gave up after 3 attempts").
"""

from __future__ import annotations

import click
import pandas as pd

from planner import providers
from planner.cli.common import (
    CONFIG_OPTION,
    DEMO_OPTION,
    NOW_OPTION,
    fail,
    load_config,
    parse_now,
)
from planner.core import timegrid
from planner.core.errors import HeliosError
from planner.core.logsetup import setup_logging
from planner.core.tariff import compile_tariff
from planner.providers.base import ProviderContext


@click.command("prices")
@CONFIG_OPTION
@NOW_OPTION
@click.option("--hours", default=48, show_default=True, type=click.IntRange(1, 336),
              help="Hours shown from now.")
@DEMO_OPTION
def prices_cmd(config_path: str | None, now_text: str | None, hours: int, demo: bool) -> None:
    """Fetch prices from the configured provider and print them (local time, EUR/kWh)."""
    now = parse_now(now_text)
    try:
        cfg = load_config(config_path, demo=demo, need=("prices",))
        setup_logging(cfg)
        start = timegrid.floor_to_slot(now, cfg.planning.slot_s)
        end = start + pd.Timedelta(hours=hours)
        ts = providers.create("prices", cfg.prices, ProviderContext(cfg.site, now, cfg)
                              ).fetch(start, end)
    except HeliosError as exc:
        fail(exc)
    tz = cfg.site.tz
    s = ts.values[(ts.values.index >= start) & (ts.values.index < end)]
    spot = s.to_numpy(dtype=float)
    buy = compile_tariff(cfg.tariff.buy)(spot) if len(s) else spot
    sell = compile_tariff(cfg.tariff.sell)(spot) if len(s) else spot
    click.echo(f"prices ({cfg.prices.type}): {ts.source}, {len(ts.values)} values every "
               f"{ts.resolution_s // 60} min, {ts.values.index[0].tz_convert(tz):%Y-%m-%d %H:%M}"
               f" -> {ts.end.tz_convert(tz):%Y-%m-%d %H:%M %Z}")
    if not len(s):
        click.echo(f"no price from {start.tz_convert(tz):%Y-%m-%d %H:%M %Z} on")
        return
    click.echo(f"{'local time':<22} {'spot':>9} {'buy':>9} {'sell':>9}   [EUR/kWh]")
    for i, t in enumerate(s.index):
        click.echo(f"{t.tz_convert(tz):%Y-%m-%d %H:%M %Z}".ljust(22)
                   + f" {spot[i]:9.4f} {buy[i]:9.4f} {sell[i]:9.4f}")
    click.echo(f"min {spot.min():.4f}, mean {spot.mean():.4f}, max {spot.max():.4f} EUR/kWh "
               f"spot; {int((spot < 0).sum())} negative; covered until "
               f"{ts.end.tz_convert(tz):%Y-%m-%d %H:%M %Z}"
               + ("" if ts.end >= end else " (later prices not published yet)"))
