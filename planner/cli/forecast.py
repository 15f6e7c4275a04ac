"""``helios forecast pv|load``: check one forecast provider alone, or score the load model.

``helios forecast pv`` / ``helios forecast load`` print the forecast per hour in the site's
local time [kW] and the daily energy [kWh]; ``helios forecast load --evaluate`` walks the
history model forward over the stored history (MAE/RMSE and skill against "same time
yesterday"). Exit codes as for ``helios plan``.
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
from planner.core.errors import ConfigError, ConfigProblem, DataError, HeliosError
from planner.core.logsetup import setup_logging
from planner.providers.base import ProviderContext
from planner.providers.load import history as hist


@click.group("forecast")
def forecast() -> None:
    """Check one forecast provider alone: ``helios forecast pv`` / ``helios forecast load``."""


@forecast.command("pv")
@CONFIG_OPTION
@NOW_OPTION
@click.option("--hours", default=48, show_default=True, type=click.IntRange(1, 336))
@DEMO_OPTION
def forecast_pv(config_path: str | None, now_text: str | None, hours: int, demo: bool) -> None:
    """Print the PV forecast per hour in local time [kW] and its daily energy [kWh]."""
    _print_forecast("pv", config_path, now_text, hours, demo)


def _print_forecast(kind: str, config_path: str | None, now_text: str | None,
                    hours: int, demo: bool = False) -> None:
    now = parse_now(now_text)
    try:
        cfg = load_config(config_path, demo=demo, need=(kind,))
        setup_logging(cfg)
        start = timegrid.floor_to_slot(now, 3600)
        end = start + pd.Timedelta(hours=hours)
        pconf = getattr(cfg, kind)
        ts = providers.create(kind, pconf, ProviderContext(cfg.site, now, cfg)).forecast(
            start, end)
    except HeliosError as exc:
        fail(exc)
    tz = cfg.site.tz
    s = ts.values[(ts.values.index >= start) & (ts.values.index < end)]
    click.echo(f"{kind} ({pconf.type}): {ts.source}, every {ts.resolution_s // 60} min")
    hourly = s.resample("1h").mean()
    for t, v in hourly.items():
        click.echo(f"{t.tz_convert(tz):%Y-%m-%d %H:%M %Z}  {v:7.3f} kW")
    daily = (s * ts.resolution_s / 3600).groupby(s.index.tz_convert(tz).date).sum()
    for day, kwh in daily.items():
        click.echo(f"{day}: {kwh:.1f} kWh")


@forecast.command("load")
@CONFIG_OPTION
@NOW_OPTION
@click.option("--hours", default=48, show_default=True, type=click.IntRange(1, 336))
@click.option("--evaluate", is_flag=True,
              help="Walk-forward test over the stored history: MAE/RMSE and skill against "
                   "'same time yesterday' (load.type: history).")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3660),
              help="With --evaluate: the last DAYS days of history are scored.")
@DEMO_OPTION
def forecast_load(config_path: str | None, now_text: str | None, hours: int, evaluate: bool,
                  days: int, demo: bool) -> None:
    """Print the load forecast [kW], or evaluate the history model (--evaluate)."""
    if not evaluate:
        _print_forecast("load", config_path, now_text, hours, demo)
        return
    now = parse_now(now_text)
    try:
        cfg = load_config(config_path, demo=demo, need=("load",))
        if cfg.load.type != "history":
            raise ConfigError(ConfigProblem("load.type", "history (for --evaluate)",
                                            repr(cfg.load.type)))
        prov = providers.create("load", cfg.load, ProviderContext(cfg.site, now, cfg))
        if prov.config.history_from == "measurements":  # the whole stored history
            series = hist.read_measured_history(cfg, now - pd.Timedelta(days=days + 60))
        else:
            series = hist.read_csv_history(prov.config.path, prov.config.column)
        series = series[series.index < now]
        if series.empty:
            raise DataError(f"{hist.NAME}: no measured load before {now:%Y-%m-%d}")
        end = min(now, series.index[-1] + pd.Timedelta(hours=1))
        start = end - pd.Timedelta(days=days)
        r = hist.walk_forward(series, cfg.site.tz, start, end, prov.config.window_days,
                              prov.config.min_days)
    except HeliosError as exc:
        fail(exc)
    tz = cfg.site.tz
    click.echo(f"load (history) walk-forward, day-ahead, {start.tz_convert(tz):%Y-%m-%d} .. "
               f"{end.tz_convert(tz):%Y-%m-%d}: {r['days']} days, {r['hours']} hours scored, "
               f"mean load {r['mean_load_kw']:.3f} kW")
    click.echo(f"  model  MAE {r['mae_kw']:.3f} kW  RMSE {r['rmse_kw']:.3f} kW")
    click.echo(f"  naive  MAE {r['naive_mae_kw']:.3f} kW  RMSE {r['naive_rmse_kw']:.3f} kW "
               "(same time yesterday)")
    click.echo(f"  skill  {r['skill_mae']:+.1%} (MAE)  {r['skill_rmse']:+.1%} (RMSE); "
               "> 0 = better than naive")
