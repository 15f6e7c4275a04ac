"""The car in a planning run: its live state, the one-off overrides and the session figures.

* **State** (:func:`ev_extra`): ``ev.vehicle`` is a vehicle provider (kind ``vehicle``:
  manual, tesla, kia_hyundai); its ``read(now)`` gives the SoC, plugged in and at home.
  ``ev.plugged_in`` in the config wins over the provider's. A provider that fails plans the
  car as not plugged in now (a warning; the battery's plan is made anyway).
* **Overrides** (``helios ev target 80 --by 07:30``, ``helios ev now 50``): a small JSON file
  beside schedule.json (:func:`override_path`, written atomically) that every ``helios
  plan`` reads; an override whose time has passed is removed by the next plan.
* **Session figures** (:func:`sessions`): per departure the SoC then, the target, the
  shortfall, and what the car's energy costs at each slot's buy price — as planned and
  charged at full power from plug-in until the target (the ``ev_earliest_kw`` profile the
  baselines use too).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from executor.schedule import atomic_write
from planner import providers
from planner.config import HeliosConfig
from planner.config.devices import vehicle_config
from planner.config.sections import ProviderConfig
from planner.core.errors import ConfigError, ProviderError
from planner.optimize.model import ev_spec
from planner.providers.base import ProviderContext

log = logging.getLogger(__name__)

__all__ = ["NAME", "OVERRIDE_FILE", "clear_override", "ev_extra", "next_departure",
           "next_local", "override_path", "read_override", "sessions", "write_override"]

NAME = "ev"
OVERRIDE_FILE = "ev_override.json"


def override_path(cfg: HeliosConfig) -> Path:
    """The override file: beside ``output.schedule_path``."""
    return Path(cfg.output.schedule_path).with_name(OVERRIDE_FILE)


def read_override(cfg: HeliosConfig, now: pd.Timestamp) -> dict[str, Any]:
    """The stored override still in force at ``now`` (``{}`` when none); one whose time has
    passed is removed."""
    path = override_path(cfg)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring the EV override %s: %s", path, exc)
        return {}
    out = {}
    for key, until_key in (("target_soc_pct", "by"), ("min_soc_now_pct", "until")):
        if key in data and until_key in data and pd.Timestamp(data[until_key]) > now:
            out[key] = float(data[key])
            if until_key == "by":
                out["by"] = pd.Timestamp(data["by"]).tz_convert("UTC")
    if not out and data:
        clear_override(cfg)
    return out


def write_override(cfg: HeliosConfig, values: dict[str, Any]) -> Path:
    """Merge ``values`` into the override file (atomic write)."""
    path = override_path(cfg)
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    old.update({k: (v.isoformat() if isinstance(v, pd.Timestamp) else v)
                for k, v in values.items()})
    atomic_write(path, json.dumps(old, indent=1, sort_keys=True) + "\n")
    return path


def clear_override(cfg: HeliosConfig) -> bool:
    """Remove the override file; True when there was one."""
    try:
        os.remove(override_path(cfg))
        return True
    except FileNotFoundError:
        return False


def next_local(hhmm: str, now: pd.Timestamp, tz: str) -> pd.Timestamp:
    """The next ``HH:MM`` on the local wall clock after ``now`` [UTC]."""
    hours, minutes = (int(x) for x in hhmm.split(":"))
    day = now.tz_convert(tz).normalize().tz_localize(None)
    for k in range(3):
        at = (day + pd.Timedelta(days=k, hours=hours, minutes=minutes)).tz_localize(
            tz, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")
        if at > now:
            return at
    raise ValueError(f"no {hhmm} after {now}")  # pragma: no cover - two days always have one


def next_departure(cfg: HeliosConfig, now: pd.Timestamp) -> pd.Timestamp:
    """The next scheduled departure after ``now`` [UTC] (in a week at most)."""
    spec = ev_spec(cfg)
    dep, _arr = spec.weekly()
    day = now.tz_convert(spec.tz).normalize().tz_localize(None)
    for k in range(8):
        d = day + pd.Timedelta(days=k)
        m = dep[d.weekday()]
        if m is None:
            continue
        at = (d + pd.Timedelta(minutes=m)).tz_localize(
            spec.tz, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")
        if at > now:
            return at
    return now + pd.Timedelta(days=1)


def _vehicle(cfg: HeliosConfig) -> ProviderConfig:
    problems: list = []
    got = vehicle_config(cfg.ev, problems)
    if got is None:
        raise ConfigError(problems, cfg.source or "")
    return ProviderConfig(*got)


def ev_extra(cfg: HeliosConfig, now: pd.Timestamp,
             warn: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """``extra`` for :func:`planner.optimize.model.solve`: ``{"ev": {...}}`` (``{}`` without
    an ``ev:`` section): SoC and plugged in now from the vehicle, plus the overrides."""
    if cfg.ev is None:
        return {}
    warn = warn or log.warning
    extra: dict[str, Any] = {}
    try:
        state = providers.create("vehicle", _vehicle(cfg),
                                 ProviderContext(cfg.site, now, cfg)).read(now)
        extra["soc_pct"] = float(state.soc_pct)
        extra["plugged_in"] = bool(state.plugged_in) and state.at_home is not False
    except ProviderError as exc:
        warn(f"ev: vehicle {cfg.ev.vehicle.get('type')} unavailable ({exc}); the car is "
             "planned as not plugged in now")
        extra["plugged_in"] = False
    if cfg.ev.plugged_in is not None:
        extra["plugged_in"] = bool(cfg.ev.plugged_in)
    extra.update(read_override(cfg, now))
    return {NAME: extra}


def sessions(plan: Any) -> list[dict[str, Any]]:
    """Per departure in the horizon: ``departure`` (ISO UTC), ``soc_pct`` then, the
    ``target_soc_pct``, ``shortfall_kwh``, ``energy_kwh`` drawn before it and its cost at
    the slots' buy prices, as planned (``cost_eur``) and charged at full power from plug-in
    until the target (``at_plugin_cost_eur``). Empty without a car."""
    out = plan.solution.outputs
    if f"{NAME}_power_kw" not in out:
        return []
    inputs = plan.inputs
    kw = np.asarray(out[f"{NAME}_power_kw"], dtype=float)
    plain = np.asarray(out[f"{NAME}_earliest_kw"], dtype=float)
    buy, dt = inputs.buy_eur_per_kwh, inputs.dt_h
    found = out.get(f"{NAME}_sessions") or []
    rows, start = [], 0
    for s in found:
        ended = int(s["ended"])
        part = slice(start, ended)
        rows.append({"departure": pd.Timestamp(s["departure"]).isoformat(),
                     "soc_pct": round(float(s["soc_pct"]), 3),
                     "target_soc_pct": round(float(s["target_soc_pct"]), 3),
                     "shortfall_kwh": round(float(s["shortfall_kwh"]), 4),
                     "energy_kwh": round(float(kw[part].sum() * dt), 4),
                     "cost_eur": round(float((kw[part] * buy[part]).sum() * dt), 4),
                     "at_plugin_cost_eur": round(float((plain[part] * buy[part]).sum() * dt),
                                                 4)})
        start = ended
    return rows
