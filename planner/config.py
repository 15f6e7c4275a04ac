"""Configuration: YAML + ``!secret`` indirection → frozen, validated dataclasses.

Every key is declared once, in a dataclass below, with its unit, default, range and a help text
(``helios check-config --explain`` prints them). Validation is strict and complete: unknown keys,
wrong types, out-of-range values and inconsistent combinations are all collected and reported
together, one line per problem, each naming the dotted key path, what was expected and what
was found (:class:`planner.core.errors.ConfigError`, exit code 2).

Secrets live in ``secrets.yaml`` next to the config file and are referenced as
``token: !secret tibber_token``. Their values are remembered in ``HeliosConfig.secret_values``
so log filters can redact them; they never appear in error messages.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from planner.core.errors import ConfigError, ConfigProblem

# --------------------------------------------------------------------------------------------
# field metadata helpers


def opt(
    default: Any = MISSING,
    help: str = "",
    unit: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[str, ...] | None = None,
    path: bool = False,
    secret: bool = False,
) -> Any:
    """Declare a config key: default, unit, bounds and help (dataclass field with metadata)."""
    meta = {"help": help, "unit": unit, "ge": ge, "gt": gt, "le": le, "lt": lt,
            "choices": choices, "path": path, "secret": secret}
    if default is MISSING:
        return field(metadata=meta)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """A nested section whose every key has a default."""
    return field(default_factory=cls, metadata={"help": cls.__doc__ or ""})


# --------------------------------------------------------------------------------------------
# the schema


@dataclass(frozen=True)
class SiteConfig:
    """Where the site is."""

    timezone: str = opt("Europe/Berlin", "IANA time zone of the site; used for display only")
    latitude: float = opt(52.52, "Latitude, north positive", "deg", ge=-90, le=90)
    longitude: float = opt(13.40, "Longitude, east positive", "deg", ge=-180, le=180)

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)


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
        10.0, "Penalty per kWh (per slot) for missing a soft target (reserve, final SoC)",
        "EUR/kWh", gt=0)
    unserved_penalty_eur_per_kwh: float = opt(
        100.0, "Penalty per kWh of load the plan cannot supply (grid limit too low)",
        "EUR/kWh", gt=0)
    solver: str = opt("highs", "LP solver; the others are fallbacks", "",
                      choices=("highs", "clarabel", "ecos"))
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
    grid_hurdle_h: float = opt(6.0, "Lead time over which grid_hurdle_eur_per_kwh falls to 0",
                               "h", gt=0)


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


@dataclass(frozen=True)
class TariffConfig:
    """Buy and sell prices from the spot price: parts or a formula string in `price`."""

    buy: TariffParts | str = opt(TariffParts(), "Buy tariff: {multiplier, fixed_eur_per_kwh, "
                                 "vat_pct} or a formula like \"(price * 1.21) + 0.15\"")
    sell: TariffParts | str = opt(TariffParts(), "Sell (feed-in) tariff, same forms as buy")


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


_DEFAULT_PROVIDERS = {
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
    prices: ProviderConfig = opt(None, "Price provider: {type: csv | demo, ...}")
    pv: ProviderConfig = opt(None, "PV forecast provider: {type: csv | demo | none, ...}")
    load: ProviderConfig = opt(None, "Load forecast provider: {type: csv | demo | constant, ...}")
    state: ProviderConfig = opt(None, "Current state source: {type: static, soc_pct}")
    output: OutputConfig = section(OutputConfig)
    storage: StorageConfig = section(StorageConfig)
    report: ReportConfig = section(ReportConfig)
    #: the executor's own section: validated by ``executor/config.py`` (stdlib only), carried
    #: through untouched here so one config.yaml serves both programs
    executor: dict = opt({}, "helios-executor settings (validated by the executor)")
    #: values read through ``!secret`` (for log redaction); never printed
    secret_values: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    #: the config file this came from (None for built-in defaults)
    source: str | None = field(default=None, compare=False)


# --------------------------------------------------------------------------------------------
# YAML loading with !secret and duplicate-key detection


class _Secret(str):
    """Marker for a value that came from secrets.yaml (so it is redacted, never echoed)."""

    __slots__ = ()


class _SecretRef:
    def __init__(self, name: str, line: int):
        self.name = name
        self.line = line


class _Loader(yaml.SafeLoader):
    pass


def _secret_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> _SecretRef:
    return _SecretRef(loader.construct_scalar(node), node.start_mark.line + 1)


def _mapping_constructor(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor("!secret", _secret_constructor)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_constructor)


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            ConfigProblem(what, f"an existing file at {path}", "no such file")) from None
    except OSError as exc:
        raise ConfigError(ConfigProblem(what, f"a readable file at {path}", str(exc))) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(ConfigProblem(what, "valid YAML", f"{problem}{where}")) from None


def _resolve_secrets(node: Any, secrets: dict | None, secrets_path: Path, key_path: str,
                     problems: list[ConfigProblem], found: set[str]) -> Any:
    if isinstance(node, _SecretRef):
        if secrets is None:
            problems.append(ConfigProblem(key_path, f"secret {node.name!r} from {secrets_path}",
                                          "no secrets file"))
            return None
        if node.name not in secrets:
            problems.append(ConfigProblem(key_path, f"secret {node.name!r} in {secrets_path}",
                                          "no such name there"))
            return None
        value = secrets[node.name]
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            found.add(str(value))
            return _Secret(str(value))
        problems.append(ConfigProblem(key_path, f"secret {node.name!r} to be a string",
                                      type(value).__name__))
        return None
    if isinstance(node, dict):
        return {k: _resolve_secrets(v, secrets, secrets_path, _join(key_path, k), problems, found)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_secrets(v, secrets, secrets_path, f"{key_path}[{i}]", problems, found)
                for i, v in enumerate(node)]
    return node


def _join(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


# --------------------------------------------------------------------------------------------
# generic validation of dataclasses


def _describe(value: Any) -> str:
    if isinstance(value, _Secret):
        return "a secret value (redacted)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _bounds_text(meta: dict) -> str:
    parts = []
    for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if meta.get(key) is not None:
            parts.append(f"{sym} {meta[key]:g}")
    return " and ".join(parts)


def _expected(kind: str, meta: dict) -> str:
    text = kind
    bounds = _bounds_text(meta)
    if bounds:
        text += f" {bounds}"
    if meta.get("unit"):
        text += f" [{meta['unit']}]"
    return text


def _check_scalar(tp: Any, value: Any, key_path: str, meta: dict,
                  problems: list[ConfigProblem]) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        problems.append(ConfigProblem(key_path, "true or false", _describe(value)))
        return MISSING
    if tp in (int, float):
        kind = "a whole number" if tp is int else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(ConfigProblem(key_path, _expected(kind, meta), _describe(value)))
            return MISSING
        if tp is int and isinstance(value, float):
            if not value.is_integer():
                problems.append(ConfigProblem(key_path, _expected(kind, meta), _describe(value)))
                return MISSING
            value = int(value)
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(ConfigProblem(key_path, _expected(kind, meta), _describe(value)))
            return MISSING
        for key, ok in (("gt", lambda v, b: v > b), ("ge", lambda v, b: v >= b),
                        ("lt", lambda v, b: v < b), ("le", lambda v, b: v <= b)):
            bound = meta.get(key)
            if bound is not None and not ok(value, bound):
                problems.append(ConfigProblem(key_path, _expected(kind, meta), _describe(value)))
                return MISSING
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            problems.append(ConfigProblem(key_path, "a string", _describe(value)))
            return MISSING
        choices = meta.get("choices")
        if choices and value not in choices:
            problems.append(ConfigProblem(key_path, f"one of {', '.join(choices)}",
                                          _describe(value)))
            return MISSING
        return value
    raise TypeError(f"unsupported config type {tp!r} at {key_path}")  # programming error


def build_dataclass(cls: type, data: Any, key_path: str, problems: list[ConfigProblem],
                    base_dir: Path | None = None) -> Any:
    """Validate ``data`` (a mapping from YAML) into an instance of dataclass ``cls``.

    Problems are appended to ``problems``; returns the instance, or None when any field failed.
    Fields with ``path=True`` metadata are resolved relative to ``base_dir``.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(ConfigProblem(key_path or "(top level)", "a mapping of keys",
                                      _describe(data)))
        return None
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.init and f.name not in ("secret_values", "source")]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(ConfigProblem(_join(key_path, key),
                                          f"one of the known keys {', '.join(names)}{hint}",
                                          "an unknown key"))
    values: dict[str, Any] = {}
    failed = False
    for f in fields(cls):
        if f.name not in names:
            continue
        sub = _join(key_path, f.name)
        tp = hints[f.name]
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                problems.append(ConfigProblem(sub, _expected("a value", f.metadata), "nothing"))
                failed = True
            elif is_dataclass(tp) and tp is not ProviderConfig:
                values[f.name] = build_dataclass(tp, {}, sub, problems, base_dir)
            elif f.metadata.get("path") and base_dir is not None and f.default:
                values[f.name] = str((base_dir / f.default).resolve())
            continue
        value = build_value(tp, data[f.name], sub, f.metadata, problems, base_dir)
        if value is MISSING:
            failed = True
        else:
            values[f.name] = value
    if failed:
        return None
    return cls(**values)


def build_value(tp: Any, value: Any, key_path: str, meta: Any, problems: list[ConfigProblem],
                base_dir: Path | None) -> Any:
    """Validate one value against type ``tp``; MISSING on failure (problem recorded)."""
    meta = dict(meta or {})
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return build_value(others[0], value, key_path, meta, problems, base_dir)
        # TariffParts | str
        if str in others and isinstance(value, str):
            return value
        dc = next(a for a in others if is_dataclass(a))
        if isinstance(value, dict):
            result = build_dataclass(dc, value, key_path, problems, base_dir)
            return MISSING if result is None else result
        problems.append(ConfigProblem(key_path, "a formula string or a mapping "
                                      f"({', '.join(x.name for x in fields(dc))})",
                                      _describe(value)))
        return MISSING
    if tp is ProviderConfig:
        return MISSING  # handled by _build_provider
    if tp is dict:
        if isinstance(value, dict):
            return value
        problems.append(ConfigProblem(key_path, "a mapping", _describe(value)))
        return MISSING
    if is_dataclass(tp):
        result = build_dataclass(tp, value, key_path, problems, base_dir)
        return MISSING if result is None else result
    result = _check_scalar(tp, value, key_path, meta, problems)
    if result is not MISSING and meta.get("path") and base_dir is not None:
        result = str((base_dir / os.path.expanduser(result)).resolve())
    if result is not MISSING and isinstance(value, _Secret):
        result = _Secret(result) if isinstance(result, str) else result
    return result


def _build_provider(kind: str, data: Any, problems: list[ConfigProblem],
                    base_dir: Path | None) -> ProviderConfig | None:
    from planner import providers  # late import: providers register on import

    if not isinstance(data, dict):
        problems.append(ConfigProblem(kind, "a mapping with a 'type' key", _describe(data)))
        return None
    available = providers.available(kind)
    typ = data.get("type")
    if typ not in available:
        problems.append(ConfigProblem(f"{kind}.type", f"one of {', '.join(available)}",
                                      _describe(typ)))
        return None
    options_cls = providers.config_class(kind, typ)
    rest = {k: v for k, v in data.items() if k != "type"}
    options = build_dataclass(options_cls, rest, kind, problems, base_dir)
    if options is None:
        return None
    for problem in getattr(options, "problems", lambda: [])():
        problems.append(ConfigProblem(f"{kind}.{problem[0]}", problem[1], problem[2]))
    return ProviderConfig(typ, options)


# --------------------------------------------------------------------------------------------
# cross-field checks


def _consistency(cfg: HeliosConfig, problems: list[ConfigProblem]) -> None:
    b, p = cfg.battery, cfg.planning
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
                                      _describe(cfg.site.timezone)))
    _check_storage(cfg, problems)
    from planner.core.tariff import TariffFormulaError, compile_tariff

    for name in ("buy", "sell"):
        try:
            compile_tariff(getattr(cfg.tariff, name))
        except TariffFormulaError as exc:
            problems.append(ConfigProblem(f"tariff.{name}", exc.expected, exc.got))


_DB_SCHEMES = ("sqlite", "mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql")


def _resolve_storage_url(cfg: HeliosConfig, base_dir: Path | None) -> HeliosConfig:
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
            "a secret value (redacted)" if isinstance(url, _Secret) else _describe(
                url.split("@")[-1] if "@" in url else url)))
    elif not scheme.startswith("sqlite") and ":" in url.partition("://")[2].partition("@")[0] \
            and not isinstance(url, _Secret):
        problems.append(ConfigProblem(
            "storage.url", "no password in the URL (put it in secrets.yaml and use "
            "storage.password: !secret NAME)", "a password in the URL"))


# --------------------------------------------------------------------------------------------
# public API


def from_mapping(data: Any, base_dir: Path | None = None, source: str = "",
                 secret_values: frozenset[str] = frozenset()) -> HeliosConfig:
    """Validate an already-parsed mapping into a :class:`HeliosConfig`.

    Raises
    ------
    ConfigError
        With every problem found (not just the first).
    """
    problems: list[ConfigProblem] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(ConfigProblem("(top level)", "a mapping of sections", _describe(data)),
                          source)
    data = dict(data)
    provider_data = {kind: data.pop(kind, _DEFAULT_PROVIDERS[kind]) for kind in _DEFAULT_PROVIDERS}
    cfg = build_dataclass(HeliosConfig, data, "", problems, base_dir)
    built = {kind: _build_provider(kind, value, problems, base_dir)
             for kind, value in provider_data.items()}
    if cfg is None or any(v is None for v in built.values()):
        raise ConfigError(problems, source)
    cfg = replace(cfg, **built, secret_values=secret_values, source=source or None)
    cfg = _resolve_storage_url(cfg, base_dir)
    _consistency(cfg, problems)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def load(path: str | os.PathLike, secrets_path: str | os.PathLike | None = None) -> HeliosConfig:
    """Load and validate ``config.yaml`` (and ``secrets.yaml`` beside it, when referenced).

    Raises
    ------
    ConfigError
        Naming every offending key (exit code 2 in the CLI).
    """
    path = Path(path)
    data = _read_yaml(path, str(path))
    spath = Path(secrets_path) if secrets_path else path.with_name("secrets.yaml")
    secrets = None
    if spath.exists():
        secrets = _read_yaml(spath, str(spath)) or {}
        if not isinstance(secrets, dict):
            raise ConfigError(ConfigProblem(str(spath), "a mapping name: value", "something else"))
    problems: list[ConfigProblem] = []
    found: set[str] = set()
    data = _resolve_secrets(data, secrets, spath, "", problems, found)
    if problems:
        raise ConfigError(problems, str(path))
    return from_mapping(data, path.parent.resolve(), str(path), frozenset(found))


def default() -> HeliosConfig:
    """The built-in configuration (demo providers, defaults everywhere)."""
    return from_mapping({}, Path.cwd(), "built-in defaults")


def with_demo_providers(cfg: HeliosConfig) -> HeliosConfig:
    """Replace the price, PV and load providers by the built-in demo data (``--demo``)."""
    demo = from_mapping({k: v for k, v in _DEFAULT_PROVIDERS.items() if k != "state"})
    return replace(cfg, prices=demo.prices, pv=demo.pv, load=demo.load)


def explain() -> list[tuple[str, str, str, str]]:
    """(key path, default, unit, help) for every documented key, for ``check-config --explain``."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        for f in fields(cls):
            if not f.init or f.name in ("secret_values", "source"):
                continue
            hint = typing.get_type_hints(cls)[f.name]
            key = _join(prefix, f.name)
            if hint is ProviderConfig:
                from planner import providers

                names = providers.available(f.name)
                default_type = _DEFAULT_PROVIDERS[f.name]["type"]
                rows.append((f"{key}.type", repr(default_type), "",
                             f"{f.metadata.get('help', '')}; one of {', '.join(names)}"))
                for name in names:
                    walk(providers.config_class(f.name, name), f"{key} (type {name})")
                continue
            if is_dataclass(hint):
                walk(hint, key)
                continue
            default = f.default if f.default is not MISSING else (
                f.default_factory() if f.default_factory is not MISSING else "(required)")
            rows.append((key, repr(default) if not is_dataclass(default) else "(section)",
                         f.metadata.get("unit", ""), f.metadata.get("help", "")))

    walk(HeliosConfig, "")
    return rows
