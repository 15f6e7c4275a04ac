"""The ``executor:`` section of config.yaml, validated with the standard library only.

One config file serves both programs: the planner validates everything except ``executor:``
(it carries that section through untouched), the executor validates ``executor:`` and reads the
few shared keys it needs as defaults (``battery.*``, ``grid.*``, ``planning.plan_valid_s``,
``output.schedule_path``, ``storage.url``). Errors are collected, one line per problem, each
naming the dotted key path, what was expected and what was found
(:class:`executor.errors.ConfigError`, exit code 2) — the same shape as ``helios check-config``.

PyYAML is optional: a GX has none, so a ``.json`` file with the same structure is accepted
(and a YAML file is refused with a clear message when PyYAML is missing).

Example::

    executor:
      interval_s: 10
      driver: {type: victron_modbus, host: 192.168.1.20, mode: setpoint}
      plan: {source: file}                  # file | sql | http
      correction: {soc_gain_w_per_pct: 100, soc_deadband_pct: 1}
      telemetry: {interval_s: 60}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from executor.control import Limits
from executor.errors import ConfigError, ConfigProblem


def opt(default: Any = MISSING, help: str = "", unit: str = "", kind: Any = None,
        ge: float | None = None, gt: float | None = None, le: float | None = None,
        choices: tuple | None = None, optional: bool | None = None) -> Any:
    """Declare a key: default, bounds, unit and help text.

    The type comes from the field's annotation (``bool``, ``int``, ``float``, ``str``, each
    optionally ``| None`` / ``Optional[...]``, which also allows ``null``), so it is written
    once. ``kind`` and ``optional`` may still be given; they must agree with the annotation
    (checked by :func:`build`; a mismatch is a programming error, :class:`TypeError`).
    """
    meta = {"help": help, "unit": unit, "kind": kind, "ge": ge, "gt": gt, "le": le,
            "choices": choices, "optional": optional}
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


_KINDS = {"bool": bool, "int": int, "float": float, "str": str}


def _annotation(tp: Any) -> tuple[Any, bool] | None:
    """``(kind, optional)`` of a field annotation, or None when it is not a plain scalar.

    Annotations are strings under ``from __future__ import annotations``; they are parsed,
    not evaluated (``str | None`` cannot be evaluated on Python 3.8).
    """
    if isinstance(tp, type):
        return (tp, False) if tp in _KINDS.values() else None
    text = str(tp).replace(" ", "").replace("typing.", "")
    optional = False
    for prefix in ("Optional[", "Union["):
        if text.startswith(prefix) and text.endswith("]"):
            text = text[len(prefix):-1].replace(",", "|")
            optional = prefix == "Optional["
    parts = text.split("|")
    if "None" in parts or "NoneType" in parts:
        optional = True
        parts = [p for p in parts if p not in ("None", "NoneType")]
    if len(parts) != 1 or parts[0] not in _KINDS:
        return None
    return _KINDS[parts[0]], optional


def key_type(f: Any) -> tuple[Any, bool]:
    """``(kind, optional)`` of a field declared with :func:`opt`.

    Raises
    ------
    TypeError
        The annotation is not a scalar type, or an explicit ``kind``/``optional`` disagrees
        with it (so a ``bool`` key can never be validated as a number again).
    """
    meta = f.metadata
    found = _annotation(f.type)
    if found is None:
        raise TypeError(f"config key {f.name!r}: unsupported annotation {f.type!r}")
    kind, optional = found
    if meta.get("kind") is not None and meta["kind"] is not kind:
        raise TypeError(f"config key {f.name!r}: kind={meta['kind'].__name__} but annotated "
                        f"{f.type!r}")
    if meta.get("optional") is not None and bool(meta["optional"]) != optional:
        raise TypeError(f"config key {f.name!r}: optional={meta['optional']} but annotated "
                        f"{f.type!r}")
    return kind, optional


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _check_value(value: Any, f: Any, key: str, problems: list[ConfigProblem]) -> Any:
    """Coerce/validate one value of field ``f``; append a problem and return MISSING when wrong.

    Booleans are not numbers here (``True`` for a number, ``1`` for a bool are both refused).
    """
    meta = f.metadata
    kind, optional = key_type(f)
    unit = f" [{meta['unit']}]" if meta["unit"] else ""
    if value is None and optional:
        return None
    if kind is bool:
        if not isinstance(value, bool):
            problems.append(ConfigProblem(key, "true or false", _describe(value)))
            return MISSING
        return value
    if kind in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and kind is int and isinstance(value, float):
            ok = value.is_integer()
        if not ok or not math.isfinite(value):
            what = "a whole number" if kind is int else "a number"
            problems.append(ConfigProblem(key, what + unit, _describe(value)))
            return MISSING
        value = kind(value)
        for bound, test, text in (("ge", lambda v, b: v >= b, ">="),
                                  ("gt", lambda v, b: v > b, ">"),
                                  ("le", lambda v, b: v <= b, "<=")):
            b = meta[bound]
            if b is not None and not test(value, b):
                problems.append(ConfigProblem(key, f"a number {text} {b:g}{unit}", repr(value)))
                return MISSING
        return value
    if kind is str:
        choices = meta["choices"]
        if choices and value not in choices:
            problems.append(ConfigProblem(key, f"one of {', '.join(choices)}", _describe(value)))
            return MISSING
        if not isinstance(value, str) or not value:
            problems.append(ConfigProblem(key, "a non-empty string", _describe(value)))
            return MISSING
        return value
    raise TypeError(f"unsupported kind {kind!r}")  # pragma: no cover - programming error


def build(cls: type, raw: Any, key_path: str, problems: list[ConfigProblem],
          defaults: dict[str, Any] | None = None, ignore: tuple = ()) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``, collecting problems (unknown keys too).

    ``defaults`` override the dataclass defaults (e.g. values taken from ``battery:``);
    keys in ``ignore`` are accepted and skipped (handled by the caller).
    Returns None when any problem was found in this mapping.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(key_path, "a mapping", _describe(raw)))
        return None
    known = {f.name: f for f in fields(cls)}
    before = len(problems)
    for key in raw:
        if key not in known and key not in ignore:
            problems.append(ConfigProblem(f"{key_path}.{key}",
                                          f"one of the keys {', '.join(sorted(known))}",
                                          "an unknown key"))
    values = {}
    for name, f in known.items():
        key_type(f)  # a declaration error shows on the first use, whatever the file says
        if name in raw:
            value = _check_value(raw[name], f, f"{key_path}.{name}", problems)
            if value is not MISSING:
                values[name] = value
        elif defaults and name in defaults:
            values[name] = defaults[name]
        elif f.default is MISSING:
            problems.append(ConfigProblem(f"{key_path}.{name}", "a value (required)", "nothing"))
    if len(problems) > before:
        return None
    return cls(**values)


# --------------------------------------------------------------------------------------------
# the schema


@dataclass(frozen=True)
class PlanSourceConfig:
    """Where the plan comes from."""

    source: str = opt("file", "file: schedule.json by path; sql: newest plan in the database; "
                      "http: GET a schedule.json", kind=str, choices=("file", "sql", "http"))
    path: str = opt("schedule.json", "Schedule file (relative to the config file)", kind=str)
    url: str | None = opt(None, "sql: SQLAlchemy URL (default storage.url); http: the URL",
                             kind=str, optional=True)
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
    export_enabled: bool = opt(True, "false = never feed in", kind=bool)
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

    enabled: bool = opt(True, "Store measurements (SQL or the JSONL buffer)", kind=bool)
    interval_s: float = opt(60.0, "How often a measurement row is stored", "s", gt=0)
    sql_url: str | None = opt(None, "SQLAlchemy URL (default storage.url when "
                                 "storage.enabled; none on a GX: JSONL only)", kind=str,
                                 optional=True)
    buffer_path: str = opt("helios-measurements.jsonl", "Rows not yet stored in SQL (or all "
                           "rows, without SQL); relative to state_dir", kind=str)


@dataclass(frozen=True)
class DriverChoice:
    """``driver: {type: ..., <that driver's options>}``."""

    type: str = opt("dry_run", "simulated | dry_run | victron_dbus | victron_modbus", kind=str,
                    choices=("simulated", "dry_run", "victron_dbus", "victron_modbus"))


@dataclass(frozen=True)
class ExecutorSection:
    """Top-level scalar keys of ``executor:``."""

    interval_s: float = opt(10.0, "Tick length", "s", ge=1, le=3600)
    state_dir: str = opt(".", "Pause file and telemetry buffer (relative to the config file; "
                         "default $STATE_DIRECTORY under systemd, else the config's directory)",
                         kind=str)
    log_level: str = opt("info", "debug | info | warning", kind=str,
                         choices=("debug", "info", "warning"))
    pause_file: str = opt("helios-executor.pause.json", "Pause file name (relative to "
                          "state_dir)", kind=str)


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

    @property
    def buffer_path(self) -> str:
        """Absolute path of the telemetry JSONL buffer."""
        return os.path.join(self.state_dir, self.telemetry.buffer_path)


# --------------------------------------------------------------------------------------------
# reading files


class _SecretRef:
    def __init__(self, name: str):
        self.name = name


def _read_yaml(text: str, where: str) -> Any:
    try:
        import yaml  # optional: absent on a GX
    except ImportError:
        raise ConfigError(ConfigProblem(where, "a .json config (PyYAML is not installed here)",
                                        "a YAML file")) from None

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor(
        "!secret", lambda loader, node: _SecretRef(loader.construct_scalar(node)))
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(ConfigProblem(where, "valid YAML", str(exc).replace("\n", " "))) \
            from None


def read_document(path: str) -> Any:
    """Read a YAML or JSON config document (JSON when the name ends in ``.json``).

    Raises
    ------
    ConfigError
        Unreadable file, bad syntax, or YAML without PyYAML.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(ConfigProblem(path, "a readable config file", exc.strerror or str(exc))) \
            from None
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(ConfigProblem(path, "valid JSON", str(exc))) from None
    return _read_yaml(text, path)


def _resolve_secret(value: Any, key: str, config_dir: str, problems: list[ConfigProblem]) -> Any:
    if not isinstance(value, _SecretRef):
        return value
    for name in ("secrets.yaml", "secrets.json"):
        spath = os.path.join(config_dir, name)
        if os.path.exists(spath):
            doc = read_document(spath) or {}
            if isinstance(doc, dict) and isinstance(doc.get(value.name), str):
                return doc[value.name]
    problems.append(ConfigProblem(key, f"secret {value.name!r} in secrets.yaml", "nothing"))
    return None


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


def from_mapping(doc: Any, config_dir: str = ".", source: str = "") -> ExecutorConfig:
    """Validate a whole config document (all of config.yaml) into an :class:`ExecutorConfig`.

    Raises
    ------
    ConfigError
        Listing every problem in ``executor:`` (the shared sections are the planner's job;
        a missing or malformed shared key just leaves the executor's default in place).
    """
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(ConfigProblem("(top level)", "a mapping", _describe(doc)), source)
    config_dir = os.path.abspath(config_dir)
    problems: list[ConfigProblem] = []
    ex = doc.get("executor", {})
    if ex is None:
        ex = {}
    if not isinstance(ex, dict):
        raise ConfigError(ConfigProblem("executor", "a mapping", _describe(ex)), source)

    battery, grid = _section(doc, "battery"), _section(doc, "grid")
    planning, output, storage = (_section(doc, "planning"), _section(doc, "output"),
                                 _section(doc, "storage"))

    scalars = [f.name for f in fields(ExecutorSection)]
    keys = sorted([*scalars, "driver", *SECTIONS])
    top = build(ExecutorSection, {k: v for k, v in ex.items() if k in scalars},
                "executor", problems)
    for key in ex:
        if key not in keys:
            problems.append(ConfigProblem(f"executor.{key}", f"one of the keys {', '.join(keys)}",
                                          "an unknown key"))

    # driver: type here, options validated by the driver's own Config
    raw_driver = ex.get("driver", {"type": "dry_run"})
    driver_type, driver_options = "dry_run", {}
    if isinstance(raw_driver, str):
        raw_driver = {"type": raw_driver}
    if not isinstance(raw_driver, dict):
        problems.append(ConfigProblem("executor.driver", "a mapping {type: ...}",
                                      _describe(raw_driver)))
    else:
        choice = build(DriverChoice, {"type": raw_driver.get("type", "dry_run")},
                       "executor.driver", problems)
        if choice is not None:
            driver_type = choice.type
        driver_options = {k: v for k, v in raw_driver.items() if k != "type"}
        window = driver_options.get("dess_window_s")
        if (top is not None and isinstance(window, (int, float)) and not isinstance(window, bool)
                and window <= top.interval_s):
            # a Dynamic ESS window must outlive the tick that renews it, or DESS drops out
            problems.append(ConfigProblem(
                "executor.driver.dess_window_s",
                f"a number > executor.interval_s ({top.interval_s:g}) [s]", repr(window)))

    plan_defaults: dict[str, Any] = {}
    if isinstance(output.get("schedule_path"), str):
        plan_defaults["path"] = output["schedule_path"]
    age = _shared_number(planning, "plan_valid_s")
    if age is not None and age > 0:
        plan_defaults["max_age_s"] = age
    plan = build(PlanSourceConfig, ex.get("plan"), "executor.plan", problems, plan_defaults)
    if plan is not None:
        url = _resolve_secret(plan.url, "executor.plan.url", config_dir, problems)
        if plan.source == "sql" and url is None:
            url = _storage_url(storage, config_dir, problems)
        if plan.source in ("sql", "http") and not url:
            problems.append(ConfigProblem("executor.plan.url",
                                          f"a URL for plan.source {plan.source}", "nothing"))
        path = plan.path if os.path.isabs(plan.path) else os.path.join(config_dir, plan.path)
        plan = replace(plan, path=path, url=url)

    limit_defaults: dict[str, Any] = {}
    for key, shared, scale in (("min_soc_pct", "min_soc_pct", 1.0),
                               ("max_soc_pct", "max_soc_pct", 1.0),
                               ("max_charge_w", "max_charge_kw", 1000.0),
                               ("max_discharge_w", "max_discharge_kw", 1000.0),
                               ("capacity_kwh", "capacity_kwh", 1.0),
                               ("charge_efficiency", "charge_efficiency", 1.0),
                               ("discharge_efficiency", "discharge_efficiency", 1.0)):
        value = _shared_number(battery, shared, scale)
        if value is not None:
            limit_defaults[key] = value
    for key, shared in (("max_import_w", "max_import_kw"), ("max_export_w", "max_export_kw")):
        value = _shared_number(grid, shared, 1000.0)
        if value is not None:
            limit_defaults[key] = value
    if isinstance(grid.get("export_enabled"), bool):
        limit_defaults["export_enabled"] = grid["export_enabled"]
    lim = build(LimitsConfig, ex.get("limits"), "executor.limits", problems, limit_defaults)
    if lim is not None and lim.min_soc_pct > lim.max_soc_pct:
        problems.append(ConfigProblem("executor.limits.min_soc_pct",
                                      f"a value <= max_soc_pct ({lim.max_soc_pct:g})",
                                      repr(lim.min_soc_pct)))
    corr = build(CorrectionConfig, ex.get("correction"), "executor.correction", problems)

    tel = build(TelemetryConfig, ex.get("telemetry"), "executor.telemetry", problems)
    if tel is not None and "sql_url" not in (ex.get("telemetry") or {}):
        if storage.get("enabled", True) is not False and "url" in storage:
            tel = replace(tel, sql_url=_storage_url(storage, config_dir, problems))

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
        source=source,
    )


def _storage_url(storage: dict, config_dir: str, problems: list[ConfigProblem]) -> str | None:
    """``storage.url`` with a relative SQLite path resolved against the config directory."""
    url = _resolve_secret(storage.get("url", "sqlite:///helios.db"), "storage.url", config_dir,
                          problems)
    if not isinstance(url, str):
        return None
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        url = prefix + os.path.join(config_dir, url[len(prefix):])
    password = _resolve_secret(storage.get("password"), "storage.password", config_dir,
                               problems)
    if password and "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        user_host = rest.split("@", 1)
        if ":" not in user_host[0]:
            from urllib.parse import quote

            url = f"{scheme}://{user_host[0]}:{quote(password, safe='')}@{user_host[1]}"
    return url


def load(path: str) -> ExecutorConfig:
    """Load and validate the executor part of a config file (YAML or JSON).

    Raises
    ------
    ConfigError
        Naming every offending key (exit code 2).
    """
    path = os.path.abspath(path)
    return from_mapping(read_document(path), os.path.dirname(path), path)


def default(config_dir: str = ".") -> ExecutorConfig:
    """The built-in configuration: dry-run driver, ``schedule.json`` beside ``config_dir``."""
    return from_mapping({}, config_dir, "built-in defaults")
