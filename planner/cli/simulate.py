"""``helios simulate``: the planner, the executor and the storage together against a simulated
home, on an accelerated clock (:mod:`planner.simulate`).

Exit codes as for ``helios plan``: 2 bad configuration or options, 3 unreadable or too short
data, 5 the report could not be written.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
import pandas as pd

from planner.cli.common import find_config
from planner.core.errors import ConfigError, ConfigProblem, HeliosError
from planner.core.logsetup import setup_logging
from planner.evaluate.data import parse_when
from planner.simulate import report as sim_report
from planner.simulate.clock import parse_speed
from planner.simulate.home import Recorded, read_outages
from planner.simulate.run import Options, Simulation, load_configs


@click.command("simulate")
@click.option("--prices", "prices_csv", required=True, type=click.Path(dir_okay=False),
              help="CSV ts_utc,price_eur_per_kwh (spot; the config's tariff applies).")
@click.option("--pv", "pv_csv", required=True, type=click.Path(dir_okay=False),
              help="CSV ts_utc,pv_kw (recorded PV; also the planner's PV forecast).")
@click.option("--load", "load_csv", required=True, type=click.Path(dir_okay=False),
              help="CSV ts_utc,load_kw (recorded load, without the configured appliances).")
@click.option("--from", "from_text", metavar="DATE",
              help="Start: YYYY-MM-DD (local midnight, site zone) or ISO 8601 with offset "
                   "(default: start of the PV data).")
@click.option("--days", default=1.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Simulated days.")
@click.option("--speed", "speed_text", default="100x", show_default=True,
              help="Simulated time per wall time: 100x, 500x, ... or max (as fast as it goes).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file: battery, grid, tariff, planning, water_heater/loads, "
                   "executor (default: $HELIOS_CONFIG, ./config.yaml or built-in defaults); "
                   "its providers and storage are replaced by the simulation's.")
@click.option("--outages", "outages_path", type=click.Path(dir_okay=False),
              help="YAML list of {start, end, announced_h} (hours of notice to the planner).")
@click.option("--soc-start-pct", default=50.0, show_default=True,
              type=click.FloatRange(0, 100), help="State of charge at the start. [%]")
@click.option("--plan-every", "plan_every_s", default=300.0, show_default=True,
              type=click.FloatRange(min=10), help="The planner's timer. [s]")
@click.option("--load-forecast", type=click.Choice(["history", "recorded"]), default="history",
              show_default=True, help="The planner's load forecast: history (from the "
              "measurements the executor stores, as in production) or recorded (the CSV).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: a free port).")
@click.option("--out", "out_dir", default="simulation", show_default=True,
              type=click.Path(file_okay=False),
              help="Output folder: schedule.json, helios-sim.db, summary.json, report.html.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Log the executor's and planner's lines.")
def simulate(prices_csv, pv_csv, load_csv, from_text, days, speed_text, config_path,
             outages_path, soc_start_pct, plan_every_s, load_forecast, metrics_port, out_dir,
             as_json, verbose) -> None:
    """Run helios plan (on its timer) and helios-executor (every tick) against a simulated
    home with recorded data, outages and appliances, faster than real time."""
    out = Path(out_dir)
    try:
        speed = parse_speed(speed_text)
        cfg, exec_cfg = load_configs(find_config(config_path), out)
        setup_logging(cfg)
        logging.getLogger("helios").setLevel(logging.INFO if verbose else logging.ERROR)
        logging.getLogger("planner").setLevel(logging.INFO if verbose else logging.ERROR)
        recorded = Recorded(cfg, prices_csv, pv_csv, load_csv)
        tz = cfg.site.timezone
        if from_text is None:
            start = pd.Timestamp(recorded.pv.t0, unit="s", tz="UTC")  # the PV data's start
        else:
            try:
                start = parse_when(from_text, tz, "--from")
            except HeliosError as exc:
                raise ConfigError(ConfigProblem("--from", "YYYY-MM-DD or ISO 8601 with offset",
                                                from_text)) from exc
        outages = read_outages(outages_path) if outages_path else []
        sim = Simulation(cfg, exec_cfg, recorded, outages, out,
                         Options(start=start, days=days, speed=speed,
                                 soc_start_pct=soc_start_pct, plan_every_s=plan_every_s,
                                 load_forecast=load_forecast, metrics_port=metrics_port))
        try:
            if metrics_port is not None:
                click.echo(f"metrics on {sim.start_metrics()}", err=True)
            sim.run()
            summary = sim_report.write(sim, out)
        finally:
            sim.close()
    except HeliosError as exc:
        click.echo(f"helios: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(json.dumps(summary, indent=1) if as_json else sim_report.text(summary))
    if not as_json:
        click.echo(f"wrote {out}/summary.json, report.html")
