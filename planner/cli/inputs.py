"""``helios prices``: check the price provider alone (issue 4), like evcc's ``evcc tariff``.

Prints the spot price per slot in the site's local time, the buy/sell prices from the tariff
and a status line (provider, source, coverage). Exit codes as for ``helios plan``: 2 config,
3 provider (bad token → "HTTP 401 ...", server down → "HTTP 500 ... gave up after 3 attempts").
"""

from __future__ import annotations

import click
import pandas as pd

from planner.core.errors import HeliosError

_CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False),
    help="Config file (default: ./config.yaml or $HELIOS_CONFIG).")
_NOW_OPTION = click.option(
    "--now", "now_text", metavar="ISO8601",
    help="As if it were this instant (with offset, e.g. 2026-05-01T10:00:00Z).")


def plan_without_prices(cfg, now: pd.Timestamp, error: HeliosError):
    """``helios plan``'s last resort: a self-consumption plan, flagged (planner.inputs.degraded)."""
    from planner.inputs import degraded
    from planner.plan import run

    inputs = degraded.self_consumption_inputs(cfg, now, error)
    click.echo(f"helios: warning: {error}; no cached prices: planning plain self-consumption "
               "(flat price), flagged as degraded", err=True)
    return run.plan_inputs(inputs, cfg, now)


@click.command("prices")
@_CONFIG_OPTION
@_NOW_OPTION
@click.option("--hours", default=48, show_default=True, type=click.IntRange(1, 336),
              help="Hours shown from now.")
def prices_cmd(config_path: str | None, now_text: str | None, hours: int) -> None:
    """Fetch prices from the configured provider and print them (local time, EUR/kWh)."""
    from planner import providers
    from planner.cli.main import _fail, _load_config, _parse_now
    from planner.core import timegrid
    from planner.core.logsetup import setup_logging
    from planner.core.tariff import compile_tariff
    from planner.providers.base import ProviderContext

    now = _parse_now(now_text)
    try:
        cfg = _load_config(config_path, demo=False)
        setup_logging(cfg)
        start = timegrid.floor_to_slot(now, cfg.planning.slot_s)
        end = start + pd.Timedelta(hours=hours)
        ts = providers.create("prices", cfg.prices, ProviderContext(cfg.site, now, cfg)
                              ).fetch(start, end)
    except HeliosError as exc:
        _fail(exc)
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


@click.group("forecast")
def forecast() -> None:
    """Check one forecast provider alone: ``helios forecast pv`` / ``helios forecast load``."""


@forecast.command("pv")
@_CONFIG_OPTION
@_NOW_OPTION
@click.option("--hours", default=48, show_default=True, type=click.IntRange(1, 336))
def forecast_pv(config_path: str | None, now_text: str | None, hours: int) -> None:
    """Print the PV forecast per hour in local time [kW] and its daily energy [kWh]."""
    _print_forecast("pv", config_path, now_text, hours)


def _print_forecast(kind: str, config_path: str | None, now_text: str | None,
                    hours: int) -> None:
    from planner import providers
    from planner.cli.main import _fail, _load_config, _parse_now
    from planner.core import timegrid
    from planner.core.logsetup import setup_logging
    from planner.providers.base import ProviderContext

    now = _parse_now(now_text)
    try:
        cfg = _load_config(config_path, demo=False)
        setup_logging(cfg)
        start = timegrid.floor_to_slot(now, 3600)
        end = start + pd.Timedelta(hours=hours)
        pconf = getattr(cfg, kind)
        ts = providers.create(kind, pconf, ProviderContext(cfg.site, now, cfg)).forecast(
            start, end)
    except HeliosError as exc:
        _fail(exc)
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
@_CONFIG_OPTION
@_NOW_OPTION
@click.option("--hours", default=48, show_default=True, type=click.IntRange(1, 336))
@click.option("--evaluate", is_flag=True,
              help="Walk-forward test over the stored history: MAE/RMSE and skill against "
                   "'same time yesterday' (load.type: history).")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3660),
              help="With --evaluate: the last DAYS days of history are scored.")
def forecast_load(config_path: str | None, now_text: str | None, hours: int, evaluate: bool,
                  days: int) -> None:
    """Print the load forecast [kW], or evaluate the history model (--evaluate)."""
    if not evaluate:
        _print_forecast("load", config_path, now_text, hours)
        return
    from planner import providers
    from planner.cli.main import _fail, _load_config, _parse_now
    from planner.core.errors import ConfigError, ConfigProblem
    from planner.providers.load import history as hist
    from planner.providers.base import ProviderContext

    now = _parse_now(now_text)
    try:
        cfg = _load_config(config_path, demo=False)
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
            raise hist.DataError(f"{hist.NAME}: no measured load before {now:%Y-%m-%d}")
        end = min(now, series.index[-1] + pd.Timedelta(hours=1))
        start = end - pd.Timedelta(days=days)
        r = hist.walk_forward(series, cfg.site.tz, start, end, prov.config.window_days,
                              prov.config.min_days)
    except HeliosError as exc:
        _fail(exc)
    tz = cfg.site.tz
    click.echo(f"load (history) walk-forward, day-ahead, {start.tz_convert(tz):%Y-%m-%d} .. "
               f"{end.tz_convert(tz):%Y-%m-%d}: {r['days']} days, {r['hours']} hours scored, "
               f"mean load {r['mean_load_kw']:.3f} kW")
    click.echo(f"  model  MAE {r['mae_kw']:.3f} kW  RMSE {r['rmse_kw']:.3f} kW")
    click.echo(f"  naive  MAE {r['naive_mae_kw']:.3f} kW  RMSE {r['naive_rmse_kw']:.3f} kW "
               "(same time yesterday)")
    click.echo(f"  skill  {r['skill_mae']:+.1%} (MAE)  {r['skill_rmse']:+.1%} (RMSE); "
               "> 0 = better than naive")
