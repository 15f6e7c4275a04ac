"""The flexible loads of config.yaml: ``water_heater:`` and ``loads:`` (issue 13, items 1-2).

Both are optional: without them the plan has no such component and nothing changes. Each
device becomes one component of the optimisation (:mod:`planner.optimize.components.water_heater`,
:mod:`planner.optimize.components.deferrable`); its planned power per slot is
``slots[i].devices.<name>.power_kw`` in schedule.json.

A window is ``{from: "HH:MM", to: "HH:MM"}`` in the site's local time (``site.timezone``),
read on the wall clock, so a DST day simply has an hour more or less of it; ``to`` at or
before ``from`` crosses midnight (``{from: "22:00", to: "06:00"}``), ``from == to`` is the
whole day. A slot belongs to a window when its start does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from executor.configspec import build, describe, opt
from planner import providers
from planner.core.errors import ConfigProblem

__all__ = ["RESERVED_NAMES", "BatteryUnitConfig", "EvConfig", "LoadConfig", "TankConfig",
           "WaterHeaterConfig", "carbon_config", "device_problems", "energy_source_config",
           "ev_problems", "parse_window", "tank_problems", "vehicle_config"]

#: component names of the standard house (a deferrable load may not take them)
RESERVED_NAMES = ("grid", "pv", "load", "battery", "water_heater", "ev")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_WINDOW_HELP = "{from: \"HH:MM\", to: \"HH:MM\"} local time (to <= from: crosses midnight)"


def _minutes(text: object) -> int | None:
    """``"HH:MM"`` → minutes after local midnight (0..1440), None when malformed."""
    m = _HHMM.match(text) if isinstance(text, str) else None
    if m is None:
        return None
    value = int(m.group(1)) * 60 + int(m.group(2))
    return value if value <= 1440 else None


def parse_window(window: dict) -> tuple[int, int]:
    """``(from_min, to_min)`` of a validated window (minutes after local midnight).

    Raises
    ------
    ValueError
        A malformed window (the config check reports it first, naming the key).
    """
    start, end = _minutes(window.get("from")), _minutes(window.get("to"))
    if start is None or end is None or set(window) != {"from", "to"}:
        raise ValueError(f"expected a window {_WINDOW_HELP}, got {window!r}")
    return start % 1440, end % 1440


@dataclass(frozen=True)
class TankConfig:
    """The heater's tank (optional): the heat it holds between ``min_temp_c`` and
    ``max_temp_c`` is a state with hard bounds in every slot; hot water drawn (``daily_kwh``
    per day along ``draw_profile_pct``) and the standing loss empty it, the element fills it
    (optimize/components/water_heater.py)."""

    capacity_kwh: float = opt(help="Heat the tank holds between min_temp_c and max_temp_c "
                              "(≈ litres × 1.163 Wh/K × (max − min) / 1000)", unit="kWh", gt=0)
    min_temp_c: float = opt(45.0, "Lowest tank temperature wanted (below it: cold water, "
                            "penalised)", "°C")
    max_temp_c: float = opt(65.0, "Thermostat's highest temperature (a hard bound)", "°C")
    ambient_temp_c: float = opt(20.0, "Temperature around the tank (the standing loss "
                                "is proportional to the difference)", "°C")
    standing_loss_pct_per_h: float = opt(1.0, "Heat lost per hour, in % of the heat above "
                                         "ambient", "%/h", ge=0, le=50)
    draw_profile_pct: list[float] | None = opt(
        None, "Share of daily_kwh drawn in each local hour 0..23 (24 numbers, normalised; "
        "default: even)")
    temp_c: float | None = opt(None, "The tank's temperature now when no sensor is given "
                               "(default: min_temp_c)", "°C")
    temperature: dict[str, Any] | None = opt(
        None, "A temperature sensor as state: {type: homeassistant, url, token, entity_id} "
        "(provider kind 'temperature'; default: temp_c)")


@dataclass(frozen=True)
class WaterHeaterConfig:
    """A hot-water heater planned with the battery: its daily energy in the cheapest and
    PV-surplus slots of its window (optimize/components/water_heater.py)."""

    power_kw: float = opt(3.0, "Element power (on/off: the power when on)", "kW", gt=0)
    daily_kwh: float | None = opt(6.0, "Energy it needs per local day, inside its window "
                                  "(or give daily_run_h)", "kWh", ge=0)
    daily_run_h: float | None = opt(None, "Alternatively a daily run time at power_kw "
                                    "(replaces daily_kwh)", "h", ge=0, le=24)
    modulating: bool = opt(True, "true: any power 0..power_kw; false: on/off at power_kw "
                           "(a MILP, solved only when such a device is configured)")
    window: dict[str, str] = opt({"from": "00:00", "to": "00:00"},
                                 "Local time it may run: " + _WINDOW_HELP + "; from == to: "
                                 "all day")
    plan_days_ahead: int = opt(1, "Days after today whose energy is planned too, each once "
                               "its whole window is inside the horizon (Darkstar's key)", "d",
                               ge=0, le=14)
    defer_up_to_hours: float = opt(0.0, "A day's energy may still be delivered this long "
                                   "after its window ends (Darkstar's key)", "h", ge=0, le=23)
    min_run_h: float = opt(0.0, "On/off only: shortest run once switched on", "h", ge=0)
    delivered_today: dict[str, Any] | None = opt(
        None, "Where the energy it took today comes from, subtracted from today's need at each "
        "re-plan: {type: homeassistant, url, token: !secret ha_token, entity_id: a daily "
        "energy entity} (provider kind 'device_energy'); absent: none")
    tank: TankConfig | None = opt(None, "Optional tank model: daily_kwh becomes the hot water "
                                  "drawn, the tank's heat stays within its bounds in every "
                                  "slot")

    @property
    def energy_kwh(self) -> float:
        """Energy needed per day. [kWh]"""
        if self.daily_run_h is not None:
            return self.power_kw * self.daily_run_h
        return self.daily_kwh or 0.0


@dataclass(frozen=True)
class LoadConfig:
    """One deferrable load (EMHASS-like): a dishwasher, a pool pump, ... that must take its
    energy (or run time) inside its window each day (optimize/components/deferrable.py)."""

    name: str = opt(help="Device name: lower-case letters, digits and _ (its key in "
                    "schedule.json's devices)")
    power_kw: float = opt(help="Power when running (on/off) or its maximum (modulating)",
                          unit="kW", gt=0)
    energy_kwh: float | None = opt(None, "Energy per day inside the window (or run_h)", "kWh",
                                   ge=0)
    run_h: float | None = opt(None, "Alternatively the run time per day at power_kw", "h",
                              ge=0, le=24)
    window: dict[str, str] = opt({"from": "00:00", "to": "00:00"},
                                 "Earliest start and deadline: " + _WINDOW_HELP)
    modulating: bool = opt(False, "false: on/off at power_kw (MILP); true: any power "
                           "0..power_kw")
    min_run_h: float = opt(0.0, "On/off only: shortest block once started (e.g. a 2 h "
                           "programme: run_h 2, min_run_h 2 = one block)", "h", ge=0)
    value_eur_per_kwh: float | None = opt(
        None, "Only if cheap: run only where a kWh costs less than this (default: must run; "
        "missing energy is then a violation)", "EUR/kWh", ge=0)
    days_ahead: int = opt(1, "Days after today planned too (each once its whole window is "
                          "inside the horizon)", "d", ge=0, le=14)

    @property
    def need_kwh(self) -> float:
        """Energy per day. [kWh]"""
        if self.run_h is not None:
            return self.power_kw * self.run_h
        return self.energy_kwh or 0.0


def _window_problems(window: dict, key: str, out: list[ConfigProblem]) -> None:
    for k in window:
        if k not in ("from", "to"):
            out.append(ConfigProblem(f"{key}.{k}", "one of the known keys from, to",
                                     "an unknown key"))
    for k in ("from", "to"):
        if k not in window:
            out.append(ConfigProblem(f"{key}.{k}", "a local time \"HH:MM\"", "nothing"))
        elif _minutes(window[k]) is None:
            out.append(ConfigProblem(f"{key}.{k}", "a local time \"HH:MM\" (00:00 to 24:00)",
                                     repr(window[k])))


@dataclass(frozen=True)
class BatteryUnitConfig:
    """One further battery (``batteries:`` list; the home battery stays ``battery:``): its
    own limits, efficiencies, SoC bounds and wear (optimize/components/battery.py,
    SpecBattery); its power per slot is ``devices.<name>.power_kw`` (+ = charging)."""

    name: str = opt(help="Battery name: lower-case letters, digits and _ (its key in "
                    "schedule.json's devices)")
    capacity_kwh: float = opt(help="Usable energy capacity at 100 % SoC", unit="kWh", gt=0)
    max_charge_kw: float = opt(help="Maximum charge power (AC side)", unit="kW", ge=0)
    max_discharge_kw: float = opt(help="Maximum discharge power (AC side)", unit="kW", ge=0)
    charge_efficiency: float = opt(0.95, "AC→battery efficiency", "", gt=0, le=1)
    discharge_efficiency: float = opt(0.95, "Battery→AC efficiency", "", gt=0, le=1)
    min_soc_pct: float = opt(10.0, "Hard lower SoC bound", "%", ge=0, le=100)
    max_soc_pct: float = opt(100.0, "Hard upper SoC bound", "%", ge=0, le=100)
    reserve_soc_pct: float | None = opt(None, "Soft lower bound (default: min_soc_pct)", "%",
                                        ge=0, le=100)
    cycle_cost_eur_per_kwh: float = opt(0.0, "Wear cost per kWh charged or discharged",
                                        "EUR/kWh", ge=0)
    soc_pct: float = opt(50.0, "Its state of charge (static for now: no live source yet)",
                         "%", ge=0, le=100)


def carbon_config(carbon: dict | None, problems: list[ConfigProblem],
                  base_dir: Any = None) -> Any:
    """``carbon:`` validated by the carbon provider's own ``Config``: ``(type, options)``,
    None when absent or wrong (then with a problem naming ``carbon.<key>``)."""
    if carbon is None:
        return None
    available = providers.available("carbon")
    typ = carbon.get("type") if isinstance(carbon, dict) else None
    if typ not in available:
        problems.append(ConfigProblem("carbon.type", f"one of {', '.join(available)}",
                                      describe(typ)))
        return None
    rest = {k: v for k, v in carbon.items() if k != "type"}
    options = build(providers.config_class("carbon", typ), rest, "carbon", problems,
                    base_dir=base_dir)
    return None if options is None else (typ, options)


def tank_problems(tank: TankConfig) -> list[ConfigProblem]:
    """Temperatures in order, a 24-hour draw profile, the sensor's provider options."""
    out: list[ConfigProblem] = []
    if not tank.ambient_temp_c < tank.min_temp_c < tank.max_temp_c:
        out.append(ConfigProblem("water_heater.tank.min_temp_c", "ambient_temp_c < min_temp_c "
                                 f"< max_temp_c ({tank.max_temp_c:g})",
                                 f"{tank.min_temp_c:g} (ambient {tank.ambient_temp_c:g})"))
    profile = tank.draw_profile_pct
    if profile is not None and (len(profile) != 24 or min(profile) < 0 or sum(profile) <= 0):
        out.append(ConfigProblem("water_heater.tank.draw_profile_pct",
                                 "24 numbers >= 0, not all 0", f"{len(profile)} numbers"))
    if tank.temperature is not None:
        data = tank.temperature
        available = providers.available("temperature")
        typ = data.get("type") if isinstance(data, dict) else None
        if typ not in available:
            out.append(ConfigProblem("water_heater.tank.temperature.type",
                                     f"one of {', '.join(available)}", describe(typ)))
        else:
            build(providers.config_class("temperature", typ),
                  {k: v for k, v in data.items() if k != "type"},
                  "water_heater.tank.temperature", out)
    return out


def battery_problems(batteries: list[BatteryUnitConfig],
                     taken: set[str]) -> list[ConfigProblem]:
    """Names (pattern, reserved, unique among devices) and SoC bounds of ``batteries:``."""
    out: list[ConfigProblem] = []
    for i, b in enumerate(batteries):
        key = f"batteries[{i}]"
        if not _NAME.match(b.name) or b.name in RESERVED_NAMES:
            out.append(ConfigProblem(f"{key}.name", "lower-case letters, digits and _, not "
                                     f"one of {', '.join(RESERVED_NAMES)}", repr(b.name)))
        elif b.name in taken:
            out.append(ConfigProblem(f"{key}.name", "a name no other load or battery has",
                                     repr(b.name)))
        taken.add(b.name)
        if b.min_soc_pct > b.max_soc_pct:
            out.append(ConfigProblem(f"{key}.min_soc_pct",
                                     f"a value <= max_soc_pct ({b.max_soc_pct:g})",
                                     f"{b.min_soc_pct:g}"))
    return out


def energy_source_config(data: object, key: str, problems: list[ConfigProblem]) -> Any:
    """A ``delivered_today:`` mapping validated by its ``device_energy`` provider's own
    ``Config``: ``(type, options)``, or None with a problem naming ``<key>.<field>``."""
    available = providers.available("device_energy")
    typ = data.get("type") if isinstance(data, dict) else None
    if typ not in available:
        problems.append(ConfigProblem(f"{key}.type", f"one of {', '.join(available)}",
                                      describe(typ)))
        return None
    rest = {k: v for k, v in data.items() if k != "type"}
    options = build(providers.config_class("device_energy", typ), rest, key, problems)
    return None if options is None else (typ, options)


def device_problems(water_heater: WaterHeaterConfig | None,
                    loads: list[LoadConfig], ev: EvConfig | None = None,
                    batteries: list[BatteryUnitConfig] = (), carbon: dict | None = None,
                    base_dir: Any = None) -> list[ConfigProblem]:
    """The rules across keys of ``water_heater:``, ``loads:`` (windows, names, energy or
    run time, a minimum run for on/off devices only), ``ev:`` (:func:`ev_problems`),
    ``batteries:`` (:func:`battery_problems`) and ``carbon:`` (:func:`carbon_config`)."""
    out: list[ConfigProblem] = ev_problems(ev)
    out.extend(battery_problems(list(batteries), {x.name for x in loads}))
    carbon_config(carbon, out, base_dir)
    if water_heater is not None:
        w = water_heater
        _window_problems(w.window, "water_heater.window", out)
        if w.min_run_h > 0 and w.modulating:
            out.append(ConfigProblem("water_heater.min_run_h",
                                     "0 unless modulating: false (a run block is on/off)",
                                     f"{w.min_run_h:g}"))
        if w.delivered_today is not None:
            energy_source_config(w.delivered_today, "water_heater.delivered_today", out)
        if w.tank is not None:
            out.extend(tank_problems(w.tank))
    seen: set[str] = set()
    for i, load in enumerate(loads):
        key = f"loads[{i}]"
        if not _NAME.match(load.name) or load.name in RESERVED_NAMES:
            out.append(ConfigProblem(f"{key}.name", "lower-case letters, digits and _, not "
                                     f"one of {', '.join(RESERVED_NAMES)}", repr(load.name)))
        elif load.name in seen:
            out.append(ConfigProblem(f"{key}.name", "a name no other load has",
                                     repr(load.name)))
        seen.add(load.name)
        _window_problems(load.window, f"{key}.window", out)
        if (load.energy_kwh is None) == (load.run_h is None):
            out.append(ConfigProblem(f"{key}.energy_kwh", "exactly one of energy_kwh, run_h",
                                     "both" if load.run_h is not None else "neither"))
        if load.min_run_h > 0 and load.modulating:
            out.append(ConfigProblem(f"{key}.min_run_h",
                                     "0 unless modulating: false (a run block is on/off)",
                                     f"{load.min_run_h:g}"))
    return out


_HHMM_EV = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIMES_HELP = ("\"HH:MM\" local every day, or per weekday {mon: \"07:30\", ..., sun: null} "
               "(null or missing: none that day)")


@dataclass(frozen=True)
class EvConfig:
    """An electric car charged from the house (issue 14; optimize/components/ev.py): its
    targets by each departure are met in the cheapest and sunniest plugged-in slots."""

    capacity_kwh: float = opt(60.0, "Usable battery of the car", "kWh", gt=0)
    max_charge_kw: float = opt(11.0, "Highest AC charging power (charger or car)", "kW", gt=0)
    min_charge_kw: float | None = opt(None, "Lowest charging power (default 6 A x phases x "
                                      "230 V)", "kW", ge=0)
    phases: int = opt(3, "Phases the car charges on (1 or 3)", ge=1, le=3)
    charge_efficiency: float = opt(0.9, "Energy into the car's battery per kWh drawn", gt=0,
                                   le=1)
    vehicle: dict[str, Any] = opt({"type": "manual"}, "Where the car's state comes from: "
                                  "{type: manual, soc_pct: 30} | {type: tesla, ...} | "
                                  "{type: kia_hyundai, ...} (provider kind 'vehicle')")
    plugged_in: bool | None = opt(None, "Plugged in now (null: from the vehicle provider)")
    departure: str | dict[str, str | None] = opt("07:30", "When the car leaves: " + _TIMES_HELP)
    arrival: str | dict[str, str | None] = opt("18:00", "When it is plugged in again: "
                                               + _TIMES_HELP)
    target_soc_pct: float = opt(80.0, "State of charge wanted at each departure (soft: a "
                                "violation when it cannot be met)", "%", ge=0, le=100)
    max_soc_pct: float = opt(100.0, "The car's own charge limit", "%", ge=0, le=100)
    trip_kwh: float = opt(7.0, "Energy a trip uses (the car comes home with that much less)",
                          "kWh", ge=0)
    shortfall_penalty_eur_per_kwh: float = opt(1.0, "Cost of a kWh missing at a departure "
                                               "(above any grid price: the target comes "
                                               "first)", "EUR/kWh", ge=0)


def vehicle_config(ev: EvConfig, problems: list[ConfigProblem]) -> Any:
    """``ev.vehicle`` validated by the vehicle provider's own ``Config`` (a
    :class:`~planner.config.sections.ProviderConfig`-like pair ``(type, options)``), None
    with a problem naming ``ev.vehicle.<key>`` when it is wrong."""
    data = ev.vehicle
    available = providers.available("vehicle")
    typ = data.get("type") if isinstance(data, dict) else None
    if typ not in available:
        problems.append(ConfigProblem("ev.vehicle.type", f"one of {', '.join(available)}",
                                      describe(typ)))
        return None
    rest = {k: v for k, v in data.items() if k != "type"}
    options = build(providers.config_class("vehicle", typ), rest, "ev.vehicle", problems)
    return None if options is None else (typ, options)


def _times_problems(value: object, key: str, out: list[ConfigProblem]) -> None:
    if isinstance(value, dict):
        for day, text in value.items():
            if day not in _WEEKDAYS:
                out.append(ConfigProblem(f"{key}.{day}", f"one of {', '.join(_WEEKDAYS)}",
                                         "an unknown key"))
            elif text is not None and not (isinstance(text, str) and _HHMM_EV.match(text)):
                out.append(ConfigProblem(f"{key}.{day}", "a local time \"HH:MM\" or null",
                                         describe(text)))
    elif not (isinstance(value, str) and _HHMM_EV.match(value)):
        out.append(ConfigProblem(key, _TIMES_HELP, describe(value)))


def ev_problems(ev: EvConfig | None) -> list[ConfigProblem]:
    """The rules across keys of ``ev:`` (times, phases, minimum power, the vehicle)."""
    out: list[ConfigProblem] = []
    if ev is None:
        return out
    if ev.phases not in (1, 3):
        out.append(ConfigProblem("ev.phases", "1 or 3", f"{ev.phases}"))
    min_kw = ev.min_charge_kw if ev.min_charge_kw is not None else 6 * ev.phases * 0.23
    if min_kw > ev.max_charge_kw:
        out.append(ConfigProblem("ev.min_charge_kw",
                                 f"a value <= ev.max_charge_kw ({ev.max_charge_kw:g} kW)",
                                 f"{min_kw:g}"))
    _times_problems(ev.departure, "ev.departure", out)
    _times_problems(ev.arrival, "ev.arrival", out)
    vehicle_config(ev, out)
    return out
