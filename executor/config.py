"""The ``executor:`` section of config.yaml, validated with the standard library only.

One config file serves both programs: the planner validates everything except ``executor:``
(it carries that section through untouched), the executor validates ``executor:`` and reads the
few shared keys it needs as defaults (``battery.*``, ``grid.*``, ``planning.plan_valid_s``,
``output.schedule_path``, ``storage.url``). The sections are declared and validated with
:mod:`executor.configspec`, the engine ``helios check-config`` uses too: every problem is
collected, one line each, naming the dotted key path, what was expected and what was found
(:class:`executor.errors.ConfigError`, exit code 2) — the same text for the same mistake.

PyYAML is optional: a GX has none, so a ``.json`` file with the same structure is accepted
(and a YAML file is refused with a clear message when PyYAML is missing).

Example::

    executor:
      interval_s: 10
      driver: {type: victron_modbus, host: 192.168.1.20, mode: setpoint}
      plan: {source: file}                  # file | sql | http
      correction: {soc_gain_w_per_pct: 100, soc_deadband_pct: 1}
      telemetry: {interval_s: 60}
      ev_charger: {type: alfen, host: 192.168.1.30}   # optional (docs/ev.md)
      relays:                               # optional (docs/executor.md, switched loads)
        - {type: shelly, device: water_heater, url: http://192.168.1.40}
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from executor import drivers, evse, overrides, relays
from executor.configfile import DocumentError, Secrets, read_document
from executor.configspec import Choices, build, describe, key_type, opt
from executor.configspec import explain as explain_section
from executor.control import Limits
from executor.errors import ConfigError, ConfigProblem
from executor.evse import base as evse_base
from executor.relays import base as relays_base

__all__ = ["SECTIONS", "ConfigError", "ConfigProblem", "CorrectionConfig", "DriverChoice",
           "ExecutorConfig", "ExecutorSection", "LimitsConfig",
           "PlanSourceConfig", "TelemetryConfig", "build", "default", "explain", "from_mapping",
           "key_type", "load", "opt", "read_document"]


# --------------------------------------------------------------------------------------------
# the schema


@dataclass(frozen=True)
class PlanSourceConfig:
    """Where the plan comes from."""

    source: str = opt("file", "file: schedule.json by path; sql: newest plan in the database; "
                      "http: GET a schedule.json", choices=("file", "sql", "http"))
    path: str = opt("schedule.json", "Schedule file (relative to the config file)")
    url: str | None = opt(None, "sql: SQLAlchemy URL (default storage.url); http: the URL")
    max_age_s: float = opt(3600.0, "A plan generated longer ago than this is stale "
                           "(default planning.plan_valid_s)", "s", gt=0)
    timeout_s: float = opt(5.0, "HTTP/SQL timeout", "s", gt=0)


@dataclass(frozen=True)
class LimitsConfig:
    """Hard limits; defaults come from the shared battery: and grid: sections."""

    min_soc_pct: float = opt(10.0, "Never discharge below", "%", ge=0, le=100)
    max_soc_pct: float = opt(100.0, "Never charge above", "%", ge=0, le=100)
    max_charge_w: float = opt(5000.0, "Battery charge limit (AC)", "W", ge=0)
    max_discharge_w: float = opt(5000.0, "Battery discharge limit (AC)", "W", ge=0)
    max_import_w: float = opt(17000.0, "Grid import limit", "W", ge=0)
    max_export_w: float = opt(10000.0, "Grid export limit", "W", ge=0)
    export_enabled: bool = opt(True, "false = never feed in")
    capacity_kwh: float = opt(10.0, "Usable battery capacity", "kWh", gt=0)
    charge_efficiency: float = opt(0.95, "AC→battery efficiency", "", gt=0, le=1)
    discharge_efficiency: float = opt(0.95, "Battery→AC efficiency", "", gt=0, le=1)
    max_measurement_age_s: float = opt(60.0, "Release when the last reading is older", "s", gt=0)


@dataclass(frozen=True)
class CorrectionConfig:
    """Live correction when the measured SoC drifts from the planned trajectory."""

    soc_gain_w_per_pct: float = opt(300.0, "Extra charge power per % below the plan "
                                    "(0 = off)", "W/%", ge=0)
    soc_deadband_pct: float = opt(1.0, "Errors up to this are ignored", "%", ge=0)
    control: str = opt(
        "intent", "How a slot is followed: intent = self-consumption inside the slot's "
        "battery band (a forecast error never moves energy between battery and grid beyond "
        "the plan); grid = hold the planned grid setpoint (the battery absorbs every error)",
        choices=("intent", "grid"))
    guard_forecast_error: bool = opt(
        False, "control: grid only: keep the battery between the plan's power and plain "
        "self-consumption, so a PV/load forecast error never makes it discharge into the grid "
        "or charge from the grid beyond the plan")


@dataclass(frozen=True)
class TelemetryConfig:
    """Measurements: logged every tick, stored every interval_s."""

    enabled: bool = opt(True, "Store measurements (SQL or the JSONL buffer)")
    interval_s: float = opt(60.0, "How often a measurement row is stored", "s", gt=0)
    sql_url: str | None = opt(None, "SQLAlchemy URL (default storage.url when "
                                 "storage.enabled; none on a GX: JSONL only)")
    buffer_path: str = opt("helios-measurements.jsonl", "Rows not yet stored in SQL (or all "
                           "rows, without SQL); relative to state_dir")


@dataclass(frozen=True)
class DriverChoice:
    """``driver: {type: ..., <that driver's options>}``."""

    type: str = opt("dry_run", "The driver (executor/drivers/: simulated, dry_run, "
                    "victron_dbus, victron_modbus or a registered one)",
                    choices=Choices(drivers.available))


@dataclass(frozen=True)
class ExecutorSection:
    """Top-level scalar keys of ``executor:``."""

    interval_s: float = opt(10.0, "Tick length", "s", ge=1, le=3600)
    state_dir: str = opt(".", "Pause file and telemetry buffer (relative to the config file; "
                         "default $STATE_DIRECTORY under systemd, else the config's directory)")
    log_level: str = opt("info", "debug | info | warning",
                         choices=("debug", "info", "warning"))
    pause_file: str = opt("helios-executor.pause.json", "Pause file name (relative to "
                          "state_dir)")
    overrides_path: str | None = opt(
        None, "Manual overrides file that `helios override` and `helios serve` write and the "
        "executor obeys every tick (relative to the config file; default: "
        "helios-overrides.json beside the plan file plan.path)")


#: the sub-sections of ``executor:`` (``driver:`` is :class:`DriverChoice` plus the options
#: of the chosen driver's own ``Config``, validated by :func:`executor.drivers.create`)
SECTIONS: dict[str, type] = {
    "plan": PlanSourceConfig,
    "limits": LimitsConfig,
    "correction": CorrectionConfig,
    "telemetry": TelemetryConfig,
}


@dataclass(frozen=True)
class ExecutorConfig:
    """The whole validated executor configuration (paths are absolute)."""

    interval_s: float
    state_dir: str
    log_level: str
    driver_type: str
    driver_options: dict[str, Any]
    plan: PlanSourceConfig
    limits: Limits
    telemetry: TelemetryConfig
    pause_path: str
    source: str = ""
    #: the manual overrides file (``executor.overrides_path``; :mod:`executor.overrides`)
    overrides_path: str = ""
    #: ``executor.ev_charger``: the charger's type and validated ``Config`` (None: no EV)
    ev_charger_type: str | None = None
    ev_charger: Any = None
    #: ``executor.relays``: (type, validated ``Config``) per relay, in config order
    relays: tuple = ()

    @property
    def buffer_path(self) -> str:
        """Absolute path of the telemetry JSONL buffer."""
        return os.path.join(self.state_dir, self.telemetry.buffer_path)


# --------------------------------------------------------------------------------------------
# validation


def _section(doc: dict, name: str) -> dict:
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def _shared_number(section: dict, key: str, scale: float = 1.0) -> float | None:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None  # the planner reports it; the executor keeps its own default
    return float(value) * scale


def _driver(raw: Any, top: ExecutorSection | None,
            problems: list[ConfigProblem]) -> tuple[str, dict[str, Any]]:
    """``executor.driver``: its type (from the driver registry) and the other keys, which
    :func:`executor.drivers.create` validates against that driver's own ``Config``."""
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        problems.append(ConfigProblem("executor.driver", "a mapping {type: ...}",
                                      describe(raw)))
        return "dry_run", {}
    choice = build(DriverChoice, {"type": raw.get("type", "dry_run")}, "executor.driver",
                   problems)
    options = {k: v for k, v in raw.items() if k != "type"}
    window = options.get("dess_window_s")
    if (top is not None and isinstance(window, (int, float)) and not isinstance(window, bool)
            and window <= top.interval_s):
        # a Dynamic ESS window must outlive the tick that renews it, or DESS drops out
        problems.append(ConfigProblem(
            "executor.driver.dess_window_s",
            f"a number > executor.interval_s ({top.interval_s:g}) [s]", repr(window)))
    return (choice.type if choice is not None else "dry_run"), options


def _limit_defaults(battery: dict, grid: dict) -> dict[str, Any]:
    """``executor.limits`` defaults taken from the shared ``battery:`` and ``grid:``."""
    defaults: dict[str, Any] = {}
    for key, shared, scale in (("min_soc_pct", "min_soc_pct", 1.0),
                               ("max_soc_pct", "max_soc_pct", 1.0),
                               ("max_charge_w", "max_charge_kw", 1000.0),
                               ("max_discharge_w", "max_discharge_kw", 1000.0),
                               ("capacity_kwh", "capacity_kwh", 1.0),
                               ("charge_efficiency", "charge_efficiency", 1.0),
                               ("discharge_efficiency", "discharge_efficiency", 1.0)):
        value = _shared_number(battery, shared, scale)
        if value is not None:
            defaults[key] = value
    for key, shared in (("max_import_w", "max_import_kw"), ("max_export_w", "max_export_kw")):
        value = _shared_number(grid, shared, 1000.0)
        if value is not None:
            defaults[key] = value
    if isinstance(grid.get("export_enabled"), bool):
        defaults["export_enabled"] = grid["export_enabled"]
    return defaults


def from_mapping(doc: Any, config_dir: str = ".", source: str = "",
                 secrets: Secrets | None = None) -> ExecutorConfig:
    """Validate a whole config document (all of config.yaml) into an :class:`ExecutorConfig`.

    ``!secret`` references are resolved inside ``executor:`` and in ``storage.url`` /
    ``storage.password`` (the other sections are the planner's: a secret missing there does
    not stop the executor).

    Raises
    ------
    ConfigError
        Listing every problem in ``executor:`` (the shared sections are the planner's job;
        a missing or malformed shared key just leaves the executor's default in place).
    """
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(ConfigProblem("(top level)", "a mapping", describe(doc)), source)
    config_dir = os.path.abspath(config_dir)
    secrets = secrets or Secrets(config_dir)
    problems: list[ConfigProblem] = []
    try:
        ex = secrets.resolve(doc.get("executor", {}), "executor", problems)
    except DocumentError as exc:
        raise ConfigError(exc.problem, source) from None
    if ex is None:
        ex = {}
    if not isinstance(ex, dict):
        raise ConfigError(ConfigProblem("executor", "a mapping", describe(ex)), source)

    battery, grid = _section(doc, "battery"), _section(doc, "grid")
    planning, output, storage = (_section(doc, "planning"), _section(doc, "output"),
                                 _section(doc, "storage"))

    # ev_charger and relays (optional) are validated by _ev_charger / _relays below; they
    # are left out of the known-key list of an unknown-key message, which stays as it was
    top = build(ExecutorSection, {k: v for k, v in ex.items()
                                  if k not in ("ev_charger", "relays")},
                "executor", problems, ignore=("driver", *SECTIONS))
    driver_type, driver_options = _driver(ex.get("driver", {"type": "dry_run"}), top, problems)

    plan_defaults: dict[str, Any] = {}
    if isinstance(output.get("schedule_path"), str):
        plan_defaults["path"] = output["schedule_path"]
    age = _shared_number(planning, "plan_valid_s")
    if age is not None and age > 0:
        plan_defaults["max_age_s"] = age
    plan = build(PlanSourceConfig, ex.get("plan"), "executor.plan", problems, plan_defaults)
    if plan is not None:
        url = plan.url
        if plan.source == "sql" and url is None:
            url = _storage_url(storage, config_dir, secrets, problems)
        if plan.source in ("sql", "http") and not url:
            problems.append(ConfigProblem("executor.plan.url",
                                          f"a URL for plan.source {plan.source}", "nothing"))
        path = plan.path if os.path.isabs(plan.path) else os.path.join(config_dir, plan.path)
        plan = replace(plan, path=path, url=url)

    lim = build(LimitsConfig, ex.get("limits"), "executor.limits", problems,
                _limit_defaults(battery, grid))
    if lim is not None and lim.min_soc_pct > lim.max_soc_pct:
        problems.append(ConfigProblem("executor.limits.min_soc_pct",
                                      f"a value <= max_soc_pct ({lim.max_soc_pct:g})",
                                      repr(lim.min_soc_pct)))
    corr = build(CorrectionConfig, ex.get("correction"), "executor.correction", problems)

    tel = build(TelemetryConfig, ex.get("telemetry"), "executor.telemetry", problems)
    if tel is not None and "sql_url" not in (ex.get("telemetry") or {}):
        if storage.get("enabled", True) is not False and "url" in storage:
            tel = replace(tel, sql_url=_storage_url(storage, config_dir, secrets, problems))

    ev_type, ev_cfg = _ev_charger(ex.get("ev_charger"), problems)
    relay_cfgs = _relays(ex.get("relays"), problems)

    if problems or top is None or plan is None or lim is None or corr is None or tel is None:
        raise ConfigError(problems, source)
    state_dir = top.state_dir if os.path.isabs(top.state_dir) else os.path.join(config_dir,
                                                                                 top.state_dir)
    if "state_dir" not in ex and os.environ.get("STATE_DIRECTORY"):
        # systemd's StateDirectory= (the config directory is read-only under ProtectSystem)
        state_dir = os.environ["STATE_DIRECTORY"].split(":")[0]
    limits = Limits(
        min_soc_pct=lim.min_soc_pct, max_soc_pct=lim.max_soc_pct,
        max_charge_w=lim.max_charge_w, max_discharge_w=lim.max_discharge_w,
        max_import_w=lim.max_import_w, max_export_w=lim.max_export_w,
        export_enabled=lim.export_enabled, capacity_kwh=lim.capacity_kwh,
        charge_efficiency=lim.charge_efficiency, discharge_efficiency=lim.discharge_efficiency,
        max_plan_age_s=plan.max_age_s, max_measurement_age_s=lim.max_measurement_age_s,
        soc_gain_w_per_pct=corr.soc_gain_w_per_pct, soc_deadband_pct=corr.soc_deadband_pct,
        guard_forecast_error=corr.guard_forecast_error, control=corr.control,
        interval_s=top.interval_s,
    )
    return ExecutorConfig(
        interval_s=top.interval_s, state_dir=os.path.normpath(state_dir), log_level=top.log_level,
        driver_type=driver_type, driver_options=driver_options, plan=plan, limits=limits,
        telemetry=tel, pause_path=os.path.join(os.path.normpath(state_dir), top.pause_file),
        overrides_path=_overrides_path(top.overrides_path, plan.path, config_dir),
        source=source, ev_charger_type=ev_type, ev_charger=ev_cfg, relays=relay_cfgs,
    )


def _overrides_path(given: str | None, plan_path: str, config_dir: str) -> str:
    """``executor.overrides_path`` made absolute; default beside the plan file."""
    if given is None:
        return os.path.join(os.path.dirname(plan_path), overrides.FILE_NAME)
    return given if os.path.isabs(given) else os.path.join(config_dir, given)


def _ev_charger(raw: Any, problems: list[ConfigProblem]) -> tuple[str | None, Any]:
    """``executor.ev_charger``: None when absent, else its type and the charger's validated
    ``Config`` (:mod:`executor.evse`)."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        problems.append(ConfigProblem("executor.ev_charger", "a mapping {type: ...}",
                                      describe(raw)))
        return None, None
    choice = build(evse.Choice, {k: raw[k] for k in ("type",) if k in raw},
                   "executor.ev_charger", problems)
    if choice is None:
        return None, None
    options = {k: v for k, v in raw.items() if k != "type"}
    cfg = evse.validate(choice.type, options, problems)
    if cfg is not None and cfg.phases not in (1, 3):
        problems.append(ConfigProblem("executor.ev_charger.phases", "1 or 3",
                                      repr(cfg.phases)))
    if cfg is not None and cfg.min_current_a > cfg.max_current_a:
        problems.append(ConfigProblem("executor.ev_charger.min_current_a",
                                      f"a value <= max_current_a ({cfg.max_current_a:g}) [A]",
                                      repr(cfg.min_current_a)))
    return choice.type, cfg


def _relays(raw: Any, problems: list[ConfigProblem]) -> tuple:
    """``executor.relays``: () when absent, else (type, validated ``Config``) per entry
    (:mod:`executor.relays`), each entry's problems named ``executor.relays[i].key``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(ConfigProblem(relays.KEY, "a list of mappings [{type: ..., device: "
                                      "...}]", describe(raw)))
        return ()
    out = []
    for i, entry in enumerate(raw):
        key = f"{relays.KEY}[{i}]"
        if not isinstance(entry, dict):
            problems.append(ConfigProblem(key, "a mapping {type: ..., device: ...}",
                                          describe(entry)))
            continue
        choice = build(relays.Choice, {k: entry[k] for k in ("type",) if k in entry}, key,
                       problems)
        if choice is None:
            continue
        cfg = relays.validate(choice.type, {k: v for k, v in entry.items() if k != "type"},
                              problems, key)
        if cfg is not None:
            out.append((choice.type, cfg))
    return tuple(out)


def _storage_url(storage: dict, config_dir: str, secrets: Secrets,
                 problems: list[ConfigProblem]) -> str | None:
    """``storage.url`` with a relative SQLite path resolved against the config directory."""
    try:
        url = secrets.resolve(storage.get("url", "sqlite:///helios.db"), "storage.url",
                              problems)
        password = secrets.resolve(storage.get("password"), "storage.password", problems)
    except DocumentError as exc:
        problems.append(exc.problem)
        return None
    if not isinstance(url, str):
        return None
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        url = prefix + os.path.join(config_dir, url[len(prefix):])
    if password and "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        user_host = rest.split("@", 1)
        if ":" not in user_host[0]:
            url = f"{scheme}://{user_host[0]}:{quote(str(password), safe='')}@{user_host[1]}"
    return url


def load(path: str) -> ExecutorConfig:
    """Load and validate the executor part of a config file (YAML or JSON).

    Raises
    ------
    ConfigError
        Naming every offending key (exit code 2).
    """
    path = os.path.abspath(path)
    try:
        doc = read_document(path)
    except DocumentError as exc:
        raise ConfigError(exc.problem, path) from None
    return from_mapping(doc, os.path.dirname(path), path)


def default(config_dir: str = ".") -> ExecutorConfig:
    """The built-in configuration: dry-run driver, ``schedule.json`` beside ``config_dir``."""
    return from_mapping({}, config_dir, "built-in defaults")


def explain() -> list[tuple[str, str, str, str]]:
    """(key path, default, unit, help) of every ``executor:`` key (driver options excluded)."""
    rows = explain_section(ExecutorSection, "executor") + explain_section(DriverChoice,
                                                                          "executor.driver")
    for name, cls in SECTIONS.items():
        rows += explain_section(cls, f"executor.{name}")
    rows += explain_section(evse.Choice, evse.KEY)
    rows += explain_section(evse_base.ChargerConfig, evse.KEY)
    rows += explain_section(relays.Choice, f"{relays.KEY}[]")
    rows += explain_section(relays_base.RelayConfig, f"{relays.KEY}[]")
    return rows
