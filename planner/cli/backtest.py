"""``helios backtest``: replay recorded prices, PV and load through the planner in closed loop.

Registered on the ``helios`` group by :mod:`planner.cli.main`. Exit codes as for
``helios plan``: 2 bad configuration or options, 3 unreadable/insufficient data, 4 the
optimisation failed, 5 the results could not be written.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from planner import config as config_mod
from planner.cli.common import find_config
from planner.core.errors import ConfigError, ConfigProblem, HeliosError
from planner.evaluate import data as bt_data
from planner.evaluate import summary as bt_summary
from planner.evaluate import sweep as bt_sweep
from planner.evaluate.loop import Options


def _floats(ctx, param, value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
    if not out or any(v <= 0 for v in out):
        raise click.BadParameter(f"expected numbers > 0, got {value!r}")
    return out


def _when(text: str | None, tz: str, what: str):
    if text is None:
        return None
    try:
        return bt_data.parse_when(text, tz, what)
    except HeliosError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def _load_config(path: str | None) -> config_mod.HeliosConfig:
    """The config (as for the other verbs), else the built-in defaults, said on stderr."""
    path = find_config(path)
    if path is None:
        click.echo("helios: no --config: using the built-in defaults (10 kWh battery, "
                   "buy = sell = spot)", err=True)
        return config_mod.default()
    return config_mod.load(path)


@click.command("backtest")
@click.option("--prices", "prices_csv", required=True, type=click.Path(dir_okay=False),
              help="CSV with ts_utc,price_eur_per_kwh (spot; the config's tariff applies).")
@click.option("--pv", "pv_csv", required=True, type=click.Path(dir_okay=False),
              help="CSV with ts_utc,pv_kw (actual PV).")
@click.option("--load", "load_csv", required=True, type=click.Path(dir_okay=False),
              help="CSV with ts_utc,load_kw (actual load).")
@click.option("--from", "from_text", metavar="DATE",
              help="Start: YYYY-MM-DD (local midnight, site zone) or ISO 8601 with offset "
                   "(default: start of the data).")
@click.option("--to", "to_text", metavar="DATE",
              help="End, exclusive (default: end of the data).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file: battery, grid, tariff, planning (default: $HELIOS_CONFIG, "
                   "./config.yaml or built-in defaults).")
@click.option("--forecast", type=click.Choice(["perfect", "noisy", "real"]),
              default="perfect", show_default=True,
              help="What the planner sees: perfect (actual PV and load), noisy (actual x "
                   "correlated noise) or real (Helios's load forecaster and a weather-free "
                   "clear-sky PV forecast fitted on the history before each re-plan; "
                   "day-ahead prices only once published at 13:00 local; needs "
                   "site.latitude/longitude).")
@click.option("--noise-pct", default=10.0, show_default=True, type=click.FloatRange(0, 200),
              help="Forecast error (std. dev.) a day ahead for --forecast noisy; smaller "
                   "closer in, correlated in time. [%]")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the noise.")
@click.option("--replan-every", default=1, show_default=True, type=click.IntRange(1),
              help="Re-plan every N slots.")
@click.option("--control", type=click.Choice(["intent", "battery", "grid", "hybrid"]),
              default="intent", show_default=True,
              help="How the executor follows the plan: intent (the executor's default: each "
                   "slot's intent, self-consumption inside the slot's battery band), battery "
                   "power (the grid takes forecast errors), grid power (the battery takes "
                   "them) or hybrid (grid power, but the battery never discharges into the "
                   "grid or charges from it beyond the plan).")
@click.option("--soc-start-pct", default=50.0, show_default=True,
              type=click.FloatRange(0, 100), help="State of charge at the start. [%]")
@click.option("--battery-kwh", callback=_floats, metavar="LIST",
              help="What-if capacities, e.g. 5,10,15 (power limits stay as configured).")
@click.option("--pv-scale", callback=_floats, metavar="LIST",
              help="What-if PV factors, e.g. 1,1.5.")
@click.option("--outages", "outages_path", type=click.Path(dir_okay=False),
              help="Grid outages: CSV start_utc,end_utc or YAML list of {start, end}.")
@click.option("--outage-notice-h", default=48.0, show_default=True,
              type=click.FloatRange(0), help="Hours before an outage the planner learns of it "
              "(0: only once it has begun).")
@click.option("--minute", "minute", type=click.Choice(["off", "synthetic"]), default="off",
              show_default=True,
              help="Also judge every strategy at 1-minute truth: synthetic = seeded 1-minute "
                   "load (appliance pulses) and PV (clouds under a clear-sky-like cap) that "
                   "keep every slot's mean; the physics and the control law step per minute, "
                   "the bill is settled per minute.")
@click.option("--minute-seed", default=0, show_default=True, type=int,
              help="Seed of the synthetic minutes.")
@click.option("--minute-load", "minute_load_csv", type=click.Path(dir_okay=False),
              help="Recorded 1-minute load, CSV ts_utc,load_kw (covering the period); the "
                   "slot load becomes its slot means. Without --minute synthetic a missing "
                   "--minute-pv is held flat per slot.")
@click.option("--minute-pv", "minute_pv_csv", type=click.Path(dir_okay=False),
              help="Recorded 1-minute PV, CSV ts_utc,pv_kw (as --minute-load).")
@click.option("--carbon", "carbon_csv", type=click.Path(dir_okay=False),
              help="CSV with ts_utc, co2_g_per_kwh: kg CO2 of each strategy's grid import "
              "in the summary and report.")
@click.option("--ev-profile", default="commuter", show_default=True, metavar="commuter|CSV",
              help="With an ev: section: when the car is plugged in at home and what it "
                   "drives: commuter (away on weekdays 07:30-18:00 local, ev.trip_kwh a trip) "
                   "or a CSV ts_utc,plugged[,use_kwh] (one row per slot).")
@click.option("--ev-soc-start-pct", type=click.FloatRange(0, 100), default=None,
              help="The car's state of charge at the start (default: ev.target_soc_pct). [%]")
@click.option("--heater-fixed", default="02:00", show_default=True, metavar="HH:MM",
              help="With a water_heater: section: the timer baseline's local start time "
                   "(water_heater.daily_kwh at power_kw from then, every day).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write slots.csv, summary.json, report.html here (per scenario in a sweep).")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Processes for a sweep (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def backtest(prices_csv, pv_csv, load_csv, from_text, to_text, config_path, forecast,
             noise_pct, seed, replan_every, control, soc_start_pct, battery_kwh, pv_scale,
             outages_path, outage_notice_h, minute, minute_seed, minute_load_csv,
             minute_pv_csv, carbon_csv, ev_profile, ev_soc_start_pct, heater_fixed, out_dir, jobs,
             as_json, quiet) -> None:
    """Closed-loop backtest: Helios vs no battery, self-consumption, a price rule and the
    perfect-foresight optimum on recorded data (and a what-if sweep).

    With an ev: section the car is planned in the same optimisation, and compared with the
    house planned alone while the car charges at plug-in or in the cheapest hours. With a
    water_heater: section likewise the heater, compared with the house planned alone while
    the heater runs on a timer (--heater-fixed) or on its thermostat."""
    try:
        cfg = _load_config(config_path)
        tz = cfg.site.timezone
        start = _when(from_text, tz, "--from")
        end = _when(to_text, tz, "--to")
        outages = bt_data.read_outages(outages_path) if outages_path else []
        data = bt_data.load_data(cfg, prices_csv, pv_csv, load_csv, start, end, outages,
                                 minute_pv_csv, minute_load_csv, carbon_csv)
        b = cfg.battery
        if not b.min_soc_pct <= soc_start_pct <= b.max_soc_pct:
            raise ConfigError(ConfigProblem(
                "--soc-start-pct", f"a value between battery.min_soc_pct ({b.min_soc_pct:g}) "
                f"and battery.max_soc_pct ({b.max_soc_pct:g}) [%]", f"{soc_start_pct:g}"))
        options = Options(forecast=forecast, noise_pct=noise_pct, seed=seed,
                          replan_every=replan_every, outage_notice_h=outage_notice_h,
                          control=control, soc_start_pct=soc_start_pct,
                          minute=("synthetic" if minute == "synthetic" else "recorded"
                                  if data.minute is not None else "off"),
                          minute_seed=minute_seed, ev_profile=ev_profile,
                          ev_soc_start_pct=ev_soc_start_pct, heater_fixed=heater_fixed)
        items = bt_data.scenarios(battery_kwh, pv_scale)
        sweep = len(items) > 1
        total = (data.stop - data.start) * len(items) * (2 if options.minute != "off" else 1)
        bar = None
        if not quiet:
            bar = click.progressbar(length=total, label="simulating", file=sys.stderr,
                                    show_eta=True, show_percent=True)
            bar.__enter__()
        try:
            progress = bar.update if bar is not None else None
            if sweep:
                summaries = bt_sweep.run_sweep(cfg, data, items, options, out_dir,
                                               jobs or os.cpu_count() or 1, progress)
            else:
                summaries = [bt_sweep.run_scenario(cfg, data, items[0], options, out_dir, progress)]
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        if sweep and out_dir:
            bt_sweep.write_sweep(summaries, Path(out_dir))
    except HeliosError as exc:
        click.echo(f"helios: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    if as_json:
        click.echo(json.dumps(summaries if sweep else summaries[0], indent=1))
        return
    if sweep:
        click.echo(bt_summary.sweep_text(summaries))
    else:
        click.echo(bt_summary.summary_text(summaries[0]))
    if out_dir:
        click.echo(f"wrote {out_dir}")
