"""``helios check-config``: validate the configuration, or explain every key (``--explain``)."""

from __future__ import annotations

import click

from planner import config as config_mod
from planner.cli.common import DEMO_OPTION, fail, load_config, print_config_warnings
from planner.core.errors import HeliosError


@click.command("check-config")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: ./config.yaml or $HELIOS_CONFIG).")
@click.option("--explain", is_flag=True, help="List every key with default, unit and meaning.")
@DEMO_OPTION
def check_config(config_path: str | None, explain: bool, demo: bool) -> None:
    """Validate the configuration; report every problem with its key path.

    Exit 2 on any problem (a missing provider section too: without --demo a config file must
    name its prices, pv, load and state providers); what is valid but unfit for a real home
    (demo providers, a static SoC, no tariff) is a warning on stderr."""
    if explain:
        for key, default, unit, text in config_mod.explain():
            unit_text = f" [{unit}]" if unit else ""
            click.echo(f"{key} = {default}{unit_text}\n    {text}")
        return
    try:
        cfg = load_config(config_path, demo=demo)
    except HeliosError as exc:
        fail(exc)
    b = cfg.battery
    click.echo(f"config OK: {cfg.source}" + (" (with --demo providers)" if demo else ""))
    click.echo(f"  battery {b.capacity_kwh:g} kWh, {b.max_charge_kw:g}/{b.max_discharge_kw:g} kW, "
               f"SoC {b.min_soc_pct:g}-{b.max_soc_pct:g} %, wear "
               f"{b.wear_cost_eur_per_kwh:.4f} EUR/kWh")
    click.echo(f"  providers: prices={cfg.prices.type} pv={cfg.pv.type} load={cfg.load.type} "
               f"state={cfg.state.type}")
    if not demo:
        print_config_warnings(cfg)
