"""Rules that span several keys, checked after every section validated on its own."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from executor.configspec import Secret, describe
from planner.config.devices import device_problems
from planner.config.sections import HeliosConfig
from planner.core.errors import ConfigProblem
from planner.core.tariff import TariffFormulaError, compile_tariff

__all__ = ["config_warnings", "consistency", "resolve_storage_url"]


def consistency(cfg: HeliosConfig, problems: list[ConfigProblem]) -> None:
    """Append a problem for every rule that spans keys (bounds, slot grid, storage, tariff)."""
    b, p = cfg.battery, cfg.planning
    problems.extend(device_problems(cfg.water_heater, cfg.loads, cfg.ev, cfg.batteries, cfg.carbon))  # noqa: E501 config/devices.py
    if b.min_soc_pct > b.max_soc_pct:
        problems.append(ConfigProblem("battery.min_soc_pct",
                                      f"a value <= battery.max_soc_pct ({b.max_soc_pct:g} %)",
                                      f"{b.min_soc_pct:g}"))
    for name in ("reserve_soc_pct", "final_soc_pct"):
        value = getattr(b, name)
        if value is not None and not b.min_soc_pct <= value <= b.max_soc_pct:
            problems.append(ConfigProblem(
                f"battery.{name}", f"a value between battery.min_soc_pct ({b.min_soc_pct:g}) "
                f"and battery.max_soc_pct ({b.max_soc_pct:g}) [%]", f"{value:g}"))
    if b.cycle_cost_eur_per_kwh is not None and (b.cost_eur is not None or b.cycle_life):
        problems.append(ConfigProblem(
            "battery.cycle_cost_eur_per_kwh",
            "either cycle_cost_eur_per_kwh or cost_eur + cycle_life, not both", "both"))
    if (b.cost_eur is None) != (b.cycle_life is None):
        given, missing = (("cost_eur", "cycle_life") if b.cost_eur is not None
                          else ("cycle_life", "cost_eur"))
        problems.append(ConfigProblem(f"battery.{missing}",
                                      f"a value too, because battery.{given} is set", "nothing"))
    if 3600 % p.slot_s:
        problems.append(ConfigProblem("planning.slot_s",
                                      "a slot length that divides one hour (60, 300, 600, 900, "
                                      "1800, 3600, ...) [s]", f"{p.slot_s}"))
    horizon_s = p.horizon_h * 3600
    if horizon_s < p.slot_s:
        problems.append(ConfigProblem("planning.horizon_h",
                                      f"at least one slot ({p.slot_s / 3600:g} h)",
                                      f"{p.horizon_h:g}"))
    if p.recalc_interval_s > horizon_s:
        problems.append(ConfigProblem(
            "planning.recalc_interval_s",
            f"a value <= the horizon ({horizon_s:g} s = planning.horizon_h)",
            f"{p.recalc_interval_s}"))
    if p.plan_valid_s < p.recalc_interval_s:
        problems.append(ConfigProblem(
            "planning.plan_valid_s",
            f"a value >= planning.recalc_interval_s ({p.recalc_interval_s} s), or every plan "
            "would go stale before the next one", f"{p.plan_valid_s}"))
    if b.max_charge_kw == 0 and b.max_discharge_kw == 0:
        problems.append(ConfigProblem("battery.max_charge_kw",
                                      "a value > 0 for charge or discharge", "0 for both"))
    if not cfg.grid.export_enabled and cfg.grid.max_export_kw > 0:
        pass  # allowed: the switch wins; kept so users can toggle without losing the limit
    try:
        ZoneInfo(cfg.site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(ConfigProblem("site.timezone",
                                      "an IANA time zone name like Europe/Berlin",
                                      describe(cfg.site.timezone)))
    _check_storage(cfg, problems)
    for name in ("buy", "sell"):
        try:
            compile_tariff(getattr(cfg.tariff, name))
        except TariffFormulaError as exc:
            problems.append(ConfigProblem(f"tariff.{name}", exc.expected, exc.got))


def config_warnings(cfg: HeliosConfig) -> list[str]:
    """What a valid config file may still get wrong for a real home, one line each: demo
    providers (the built-in data, not this home's), a fixed SoC (``state: static``), no
    ``tariff:`` (buy = sell = spot: no grid fees, taxes or VAT, so the plan trades on spreads
    that do not exist). ``helios plan`` (unless ``-q``/``--demo``), ``check-config`` and
    ``bin/install-systemd`` print them; the built-in demo configuration has none."""
    if cfg.source is None or cfg.source == "built-in defaults":
        return []
    out = []
    demo = [kind for kind in ("prices", "pv", "load") if getattr(cfg, kind).type == "demo"]
    if demo:
        out.append(f"{', '.join(demo)}: type demo: planning on the built-in demo data, not on "
                   "this home's (choose real providers; see config.yaml)")
    if cfg.state.type == "static":
        out.append(f"state: type static: a fixed state of charge ({cfg.state.options.soc_pct:g} "
                   "%), not measured; every plan is flagged (use state: gx or measurements)")
    if "tariff" not in cfg.given:
        out.append("no tariff: section: buy = sell = the spot price (no grid fees, taxes or "
                   "VAT), so the plan may cycle the battery for spreads you never see; set "
                   "tariff.buy and tariff.sell")
    return out


_DB_SCHEMES = ("sqlite", "mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql")


def resolve_storage_url(cfg: HeliosConfig, base_dir: Path | None) -> HeliosConfig:
    """Make a relative SQLite path absolute against the config file's directory (decision 8)."""
    url = cfg.storage.url
    prefix = "sqlite:///"
    if base_dir is None or not url.startswith(prefix):
        return cfg
    rest = url[len(prefix):]
    file_part, sep, query = rest.partition("?")
    if not file_part or file_part == ":memory:" or file_part.startswith("/"):
        return cfg
    resolved = str((base_dir / os.path.expanduser(file_part)).resolve())
    return replace(cfg, storage=replace(cfg.storage, url=f"{prefix}{resolved}{sep}{query}"))


def _check_storage(cfg: HeliosConfig, problems: list[ConfigProblem]) -> None:
    url = cfg.storage.url
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in _DB_SCHEMES:
        problems.append(ConfigProblem(
            "storage.url", "sqlite:///FILE or mysql+pymysql://USER@HOST/DB",
            "a secret value (redacted)" if isinstance(url, Secret) else describe(
                url.split("@")[-1] if "@" in url else url)))
    elif not scheme.startswith("sqlite") and ":" in url.partition("://")[2].partition("@")[0] \
            and not isinstance(url, Secret):
        problems.append(ConfigProblem(
            "storage.url", "no password in the URL (put it in secrets.yaml and use "
            "storage.password: !secret NAME)", "a password in the URL"))
