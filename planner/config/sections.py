"""The sections of config.yaml as frozen dataclasses: every key declared once with its unit,
default, range and help (``helios check-config --explain`` prints them).

Keys are declared with :func:`executor.configspec.opt`, the engine the executor's own section
uses too; the provider sections (``prices:``, ``pv:``, ``load:``, ``state:``) are a ``type``
plus that provider's ``Config`` from the registry (:mod:`planner.config.loading`), and
``executor:`` is carried through untouched for ``helios-executor`` (:mod:`executor.config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from executor.configspec import internal, opt, section
from planner.config.devices import BatteryUnitConfig, EvConfig, LoadConfig, WaterHeaterConfig
from planner.core.siteconfig import SiteConfig

__all__ = ["DEFAULT_PROVIDERS", "BatteryConfig", "GridConfig", "HeliosConfig", "OutputConfig",
           "PlanningConfig", "ProviderConfig", "ReportConfig", "SIndexConfig", "SiteConfig",
           "StorageConfig", "MqttConfig", "TariffConfig", "TariffParts"]


@dataclass(frozen=True)
class SIndexConfig:
    """Darkstar's S-index: how much the safety margins grow in ``mode: dynamic``."""

    mode: str = opt("static", "static: load_safety_factor and pv_confidence_pct as given; "
                    "dynamic: raised (lowered) when a PV deficit is forecast or the forecasts' "
                    "recent error was large", choices=("static", "dynamic"))
    deficit_weight: float = opt(
        0.2, "dynamic: added to the load factor (and x 100 % taken off the PV confidence) when "
        "the next 24 h's PV covers none of their load, in proportion below that", "", ge=0,
        le=2)
    error_weight: float = opt(
        0.5, "dynamic: added per unit of the recent relative forecast error (sum |forecast - "
        "measured| / sum measured, from plan_slot and measurements)", "", ge=0, le=5)
    error_days: int = opt(7, "dynamic: days of forecast error history", "d", ge=1, le=90)
    max_load_safety_factor: float = opt(1.5, "dynamic: the load factor at most", "", ge=1,
                                        le=3)
    min_pv_confidence_pct: float = opt(50.0, "dynamic: the PV confidence at least", "%", gt=0,
                                       le=100)


@dataclass(frozen=True)
class PlanningConfig:
    """How the plan is computed."""

    slot_s: int = opt(900, "Slot length; must divide one hour", "s", ge=60, le=3600)
    horizon_h: float = opt(48.0, "Planning horizon (shortened to the last known price)", "h",
                           gt=0, le=336)
    recalc_interval_s: int = opt(300, "How often `helios plan` runs (systemd timer)", "s", gt=0)
    plan_valid_s: int = opt(3600, "The executor treats a plan older than this as stale", "s",
                            gt=0)
    terminal_value_quantile: float = opt(
        0.5, "Energy left at the horizon end is valued at discharge efficiency x this quantile "
        "of the horizon's buy prices (ignored when battery.final_soc_pct is set)", "", ge=0, le=1)
    soft_penalty_eur_per_kwh: float = opt(
        10.0, "Penalty of a soft SoC target, per kWh below it and per hour it lasts: the "
        "reserve (and max_soc_pct after a start above it) in every slot, weighted by the slot's "
        "hours; the final SoC target once, counted as one hour (so 1 kWh short at the end costs "
        "as much as 1 kWh below the reserve for one hour, whatever the slot length)",
        "EUR/(kWh*h)", gt=0)
    unserved_penalty_eur_per_kwh: float = opt(
        100.0, "Penalty per kWh of load the plan cannot supply (grid limit too low)",
        "EUR/kWh", gt=0)
    solver: str = opt("highs", "LP solver; the others are fallbacks", "",
                      choices=("highs", "clarabel", "ecos"))
    solver_backend: str = opt(
        "auto", "How the LP reaches HiGHS: highs = one persistent HiGHS model per horizon, "
        "only the changed costs/bounds handed over and hot-started from the last basis "
        "(≈5x faster re-plans); cvxpy = cvxpy's solve every time (the reference); auto = "
        "highs when highspy is installed. The exact MILP re-solve always goes through cvxpy",
        "", choices=("auto", "highs", "cvxpy"))
    milp_time_limit_s: float = opt(
        10.0, "Time limit of the exact (MILP) re-solve when the LP splits a flow pair (negative "
        "prices, sell > buy): it then keeps its best exclusive plan, or the LP with each split "
        "slot fixed to one direction, and the plan reports milp_stopped with the cost gap",
        "s", gt=0, le=600)
    on_off_gap_eur: float = opt(
        0.01, "How much dearer than the optimum the plan of on/off devices (water heater, "
        "deferrable loads with modulating: false) may be, over the horizon: their relaxation "
        "rounded to whole on-slots is kept when within this of the LP bound, and their MILP "
        "stops there (0 = exact; the plan's solver line says the gap)", "EUR", ge=0, le=1)
    grid_hurdle_eur_per_kwh: float = opt(
        0.03, "Extra cost per kWh imported, exported or curtailed in the current slot, "
        "falling linearly to 0 over grid_hurdle_h: of two near-equal plans the one that uses "
        "the battery for self-consumption now and trades with the grid later wins, because a "
        "later decision is made on a better forecast (0 = plain optimum)", "EUR/kWh", ge=0)
    scenario_pv_spread: float = opt(
        0.0, "Plan the current slot for three PV scenarios at once (the forecast x (1 - s), "
        "x 1 and x (1 + s) after the current hour, weights 1/4, 1/2, 1/4; optimize/scenarios.py)"
        ": the first slot's decision is good whichever way the PV forecast turns out. 0 = "
        "one deterministic plan (3x faster)", "", ge=0, le=0.9)
    scenario_error_days: int = opt(
        0, "Plan the current slot for three scenarios from the forecasters' own error "
        "history instead of scenario_pv_spread: the ratio measured / forecast of each past "
        "day's PV energy (the forecast of the day's first plan) over this many days, its "
        "scenario_quantile and 1 - scenario_quantile quantiles scale the PV after the current "
        "hour (weights 1/4, 1/2, 1/4; optimize/scenarios.py). helios backtest only so far: "
        "helios plan keeps scenario_pv_spread. 0 = off", "days", ge=0, le=365)
    scenario_quantile: float = opt(
        0.1, "Quantile of the low scenario of scenario_error_days (the high one: 1 - this)",
        "", gt=0, lt=0.5)
    scenario_load: bool = opt(
        True, "scenario_error_days scales the load too, from its own error history, jointly: "
        "the low-PV scenario has the high load")
    grid_hurdle_h: float = opt(6.0, "Lead time over which grid_hurdle_eur_per_kwh falls to 0",
                               "h", gt=0)
    co2_eur_per_kg: float = opt(0.0, "Weight of the grid's carbon in the objective: each kWh "
                                "imported costs g CO2/kWh / 1000 x this more (needs a carbon: "
                                "section; 0 = cost only, kg CO2 still reported)", "EUR/kg",
                                ge=0)
    load_safety_factor: float = opt(
        1.0, "S-index: the load forecast is planned x this (>= 1: plan for more load than "
        "forecast; 1 = as forecast)", "", ge=1, le=3)
    pv_confidence_pct: float = opt(
        100.0, "S-index: the PV forecast is planned at this share (100 = as forecast)", "%",
        gt=0, le=100)
    s_index: SIndexConfig = section(SIndexConfig)


@dataclass(frozen=True)
class BatteryConfig:
    """The home battery (AC-side figures)."""

    capacity_kwh: float = opt(10.0, "Usable energy capacity at 100 % SoC", "kWh", gt=0)
    max_charge_kw: float = opt(5.0, "Maximum charge power", "kW", ge=0)
    max_discharge_kw: float = opt(5.0, "Maximum discharge power", "kW", ge=0)
    charge_efficiency: float = opt(0.95, "AC→battery efficiency", "", gt=0, le=1)
    discharge_efficiency: float = opt(0.95, "Battery→AC efficiency", "", gt=0, le=1)
    min_soc_pct: float = opt(10.0, "Hard lower SoC bound", "%", ge=0, le=100)
    max_soc_pct: float = opt(100.0, "Hard upper SoC bound", "%", ge=0, le=100)
    reserve_soc_pct: float | None = opt(
        None, "Soft lower bound kept for outages (default: min_soc_pct)", "%", ge=0, le=100)
    final_soc_pct: float | None = opt(
        None, "Soft SoC target at the horizon end (default: value stored energy instead)", "%",
        ge=0, le=100)
    cycle_cost_eur_per_kwh: float | None = opt(
        None, "Wear cost per kWh charged or discharged (default 0, or derived from cost_eur "
        "and cycle_life)", "EUR/kWh", ge=0)
    cost_eur: float | None = opt(None, "Battery price, to derive the cycle cost", "EUR", ge=0)
    cycle_life: int | None = opt(None, "Full cycles until end of life, to derive the cycle cost",
                                 "cycles", gt=0)

    @property
    def wear_cost_eur_per_kwh(self) -> float:
        """Cost per kWh of charge or discharge throughput. [EUR/kWh]

        Derived as ``cost_eur / (2 * cycle_life * capacity_kwh)`` when given that way: one full
        cycle moves ``capacity_kwh`` in and ``capacity_kwh`` out.
        """
        if self.cycle_cost_eur_per_kwh is not None:
            return self.cycle_cost_eur_per_kwh
        if self.cost_eur is not None and self.cycle_life:
            return self.cost_eur / (2.0 * self.cycle_life * self.capacity_kwh)
        return 0.0


@dataclass(frozen=True)
class GridConfig:
    """The grid connection."""

    max_import_kw: float = opt(17.0, "Maximum import power (fuse / contract)", "kW", ge=0)
    max_export_kw: float = opt(10.0, "Maximum export power (feed-in limit)", "kW", ge=0)
    export_enabled: bool = opt(True, "Whether feeding energy into the grid is allowed")


@dataclass(frozen=True)
class TariffParts:
    """Retail price = (spot × multiplier + fixed_eur_per_kwh) × (1 + vat_pct / 100)."""

    multiplier: float = opt(1.0, "Factor applied to the spot price", "")
    fixed_eur_per_kwh: float = opt(0.0, "Fixed adder (grid fee, taxes, margin)", "EUR/kWh")
    vat_pct: float = opt(0.0, "VAT applied on top", "%", ge=0, le=100)


_TARIFF_FORMS = "a formula string or a mapping (multiplier, fixed_eur_per_kwh, vat_pct)"


@dataclass(frozen=True)
class TariffConfig:
    """Buy and sell prices from the spot price: parts or a formula string in `price`."""

    buy: TariffParts | str = opt(TariffParts(), "Buy tariff: {multiplier, fixed_eur_per_kwh, "
                                 "vat_pct} or a formula like \"(price * 1.21) + 0.15\"",
                                 expected=_TARIFF_FORMS)
    sell: TariffParts | str = opt(TariffParts(), "Sell (feed-in) tariff, same forms as buy",
                                  expected=_TARIFF_FORMS)


@dataclass(frozen=True)
class ProviderConfig:
    """A provider choice: ``type`` plus that provider's own validated options."""

    type: str
    options: Any  # the provider's frozen Config dataclass instance


@dataclass(frozen=True)
class OutputConfig:
    """Where results are written."""

    schedule_path: str = opt("schedule.json", "Where the plan is written (atomically)",
                             path=True)


@dataclass(frozen=True)
class StorageConfig:
    """Plan history in SQL: every run, its slots, measurements and a price cache."""

    enabled: bool = opt(True, "Save every plan to the database (see docs/storage.md)")
    url: str = opt("sqlite:///helios.db",
                   "SQLAlchemy URL: sqlite:///FILE (relative to this file's directory) or "
                   "mysql+pymysql://USER@HOST/DB for MariaDB")
    password: str | None = opt(None, "Database password; use !secret (never put it in url)",
                               secret=True)
    required: bool = opt(True, "A database failure makes `helios plan` exit 6 (false: warn, "
                         "exit 0); schedule.json is written before and never touched")
    keep_days: int = opt(365, "Plans, measurements and cached prices older than this are "
                         "pruned (`helios db prune`, and after each plan)", "d", gt=0)


@dataclass(frozen=True)
class ReportConfig:
    """The static HTML report (one self-contained file, works offline)."""

    enabled: bool = opt(True, "Write the report after each `helios plan` (needs report.path)")
    path: str | None = opt(None, "Where `helios plan` writes report.html (default: none)",
                           path=True)


@dataclass(frozen=True)
class MqttConfig:
    """MQTT publishing with Home Assistant discovery, from `helios serve` (docs/serve.md)."""

    host: str = opt("127.0.0.1", "MQTT broker host")
    port: int = opt(1883, "MQTT broker port", "", ge=1, le=65535)
    username: str | None = opt(None, "Broker user name (default: anonymous)")
    password: str | None = opt(None, "Broker password; use !secret", secret=True)
    client_id: str = opt("helios", "MQTT client id (unique on the broker)")
    topic_prefix: str = opt("helios", "State topics: <topic_prefix>/<entity>/state, "
                            "<topic_prefix>/status (the /api/status document), "
                            "<topic_prefix>/slots, <topic_prefix>/availability")
    discovery_prefix: str = opt("homeassistant", "Home Assistant's discovery prefix "
                                "('' = publish no discovery)")
    device_id: str = opt("helios", "Id of the Home Assistant device (unique_id = "
                         "<device_id>_<entity>)")
    device_name: str = opt("Helios", "Name of the Home Assistant device")
    retain: bool = opt(True, "Publish discovery, state and availability retained (HA sees "
                       "the last value after its own restart)")
    qos: int = opt(1, "MQTT QoS of every message", "", ge=0, le=2)
    interval_s: float = opt(30.0, "How often the status and the next slots are published", "s",
                            ge=1, le=3600)
    next_slots: int = opt(8, "How many slots from now on <topic_prefix>/slots carries", "",
                          ge=1, le=672)
    keepalive_s: int = opt(60, "MQTT keep-alive", "s", ge=5, le=3600)


@dataclass(frozen=True)
class NowcastConfig:
    """The last hours' measured PV and load (the executor's `measurements` rows) blended into
    the first hours of the forecasts, by `helios plan` and the backtest alike
    (planner/inputs/nowcast.py)."""

    pv: bool = opt(True, "Blend the clear-sky index of the last pv_window_h into the PV forecast")
    load: bool = opt(True, "Blend the mean load of the last load_window_h into the load forecast")
    pv_window_h: float = opt(2.0, "Measured PV window of the PV nowcast", "h", gt=0, le=24)
    load_window_h: float = opt(1.0, "Measured load window of the load nowcast", "h", gt=0,
                               le=24)
    tau_h: float = opt(3.0, "The nowcast's weight falls as exp(-lead / tau_h)", "h", gt=0,
                       le=48)
    max_age_s: int = opt(900, "No nowcast when the newest measurement is older than this", "s",
                         gt=0)


@dataclass(frozen=True)
class ForecastConfig:
    """How the PV and load forecasts are corrected before planning."""

    nowcast: NowcastConfig = section(NowcastConfig)


#: the providers of the built-in demo configuration (``--demo``, :func:`planner.config.default`);
#: a config *file* must name its own (a missing one is a config error, see
#: :func:`planner.config.loading.from_mapping`), so a partial file never plans on demo data
DEFAULT_PROVIDERS = {
    "prices": {"type": "demo"},
    "pv": {"type": "demo"},
    "load": {"type": "demo"},
    "state": {"type": "static", "soc_pct": 50.0},
}


@dataclass(frozen=True)
class HeliosConfig:
    """The whole validated configuration."""

    site: SiteConfig = section(SiteConfig)
    planning: PlanningConfig = section(PlanningConfig)
    battery: BatteryConfig = section(BatteryConfig)
    grid: GridConfig = section(GridConfig)
    tariff: TariffConfig = section(TariffConfig)
    prices: ProviderConfig = opt(None, "Price provider (required in a file; demo data only "
                                 "with --demo): {type: tibber | nordpool | entsoe | csv, ...}")
    pv: ProviderConfig = opt(None, "PV forecast provider (required in a file): {type: "
                             "openmeteo | solcast | csv | none, ...}")
    load: ProviderConfig = opt(None, "Load forecast provider (required in a file): {type: "
                               "history | csv | constant, ...}")
    state: ProviderConfig = opt(None, "Current state source (required in a file): {type: gx | "
                                "measurements | static (a fixed SoC, flagged), ...}")
    output: OutputConfig = section(OutputConfig)
    storage: StorageConfig = section(StorageConfig)
    report: ReportConfig = section(ReportConfig)
    forecast: ForecastConfig = section(ForecastConfig)
    water_heater: WaterHeaterConfig | None = opt(None, "Hot-water heater planned with the "
                                                 "battery (config/devices.py); absent: none")
    loads: list[LoadConfig] = opt([], "Deferrable loads planned with the battery (devices.py)")
    ev: EvConfig | None = opt(None, "Electric car charged by its departures (devices.py); "
                              "absent: none")
    batteries: list[BatteryUnitConfig] = opt([], "Further batteries besides battery: (each "
                                             "its own component; devices.py)")
    mqtt: MqttConfig | None = opt(None, "MQTT publishing with Home Assistant discovery from "
                                  "`helios serve`; absent: none")
    carbon: dict | None = opt(None, "Grid carbon intensity provider: {type: csv, path: ...} "
                              "| {type: energinet, price_area: DK1} (provider kind 'carbon'); "
                              "absent: no carbon")
    #: the executor's own section: validated by ``executor/config.py`` (stdlib only), carried
    #: through untouched here so one config.yaml serves both programs
    executor: dict = opt({}, "helios-executor settings (validated by the executor)")
    #: values read through ``!secret`` (for log redaction); never printed
    secret_values: frozenset[str] = internal(frozenset(), repr=False, compare=False)
    #: the config file this came from (None for built-in defaults)
    source: str | None = internal(None, compare=False)
    #: the top-level sections the file gave (``tariff`` missing -> a warning; see
    #: :func:`planner.config.checks.config_warnings`)
    given: frozenset[str] = internal(frozenset(), repr=False, compare=False)
