"""The water heater's per-solve inputs (issue 13): energy already delivered today and the
tank's temperature.

:func:`heater_extra` gives :func:`planner.optimize.model.solve` its ``extra["water_heater"]``:

* ``delivered_kwh``: what the heater took today, so a re-plan asks only for the rest of the
  day's energy. From ``water_heater.delivered_today`` when configured (a ``device_energy``
  provider, e.g. a Home Assistant daily energy entity: since local midnight,
  :func:`planner.plan.water_heater.delivered_today_kwh`); otherwise, or when that source
  fails, integrated from ``measurements.water_heater_power_w`` in the SQL history since the
  start of today's period (its window's start on the local wall clock; the executor stores
  it from the heater's relay, migration 0008). Nothing measured (no database, no relay that
  measures, no ``power_kw`` on the relay): 0.
* ``temp_c``: the tank's temperature from ``water_heater.tank.temperature`` (provider kind
  ``temperature``); unavailable: the static ``tank.temp_c`` with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import pandas as pd

from executor.configspec import build
from planner import providers
from planner.config import HeliosConfig
from planner.config.sections import ProviderConfig
from planner.core.errors import ConfigError, ProviderError, StorageError
from planner.history.store import Store
from planner.optimize.components.deferrable import day_of_slots
from planner.optimize.components.water_heater import NAME, heater_spec
from planner.plan import water_heater
from planner.providers.base import ProviderContext

__all__ = ["delivered_kwh", "heater_extra", "period_start"]

log = logging.getLogger("helios.plan.heater")


def period_start(cfg: HeliosConfig, now: pd.Timestamp) -> pd.Timestamp | None:
    """The start of the heater's period that ``now`` is in [UTC] (None: outside every
    period, nothing delivered counts)."""
    spec = heater_spec(cfg.water_heater, cfg.site.timezone)
    day, _today, _planned = day_of_slots(pd.DatetimeIndex([now]), 60, spec)
    if day[0] < 0:
        return None
    midnight = (pd.Timestamp(int(day[0]), unit="D")
                .tz_localize(spec.tz, ambiguous=True, nonexistent="shift_forward"))
    local = midnight.tz_localize(None) + pd.Timedelta(minutes=spec.from_min)
    return local.tz_localize(spec.tz, ambiguous=True,
                             nonexistent="shift_forward").tz_convert("UTC")


def _has_database(cfg: HeliosConfig) -> bool:
    url = cfg.storage.url
    if not cfg.storage.enabled:
        return False
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return os.path.exists(url[len("sqlite:///"):].split("?", 1)[0])
    return True


def delivered_kwh(cfg: HeliosConfig, now: pd.Timestamp) -> float:
    """Energy the heater took today before ``now`` (0 without measurements). [kWh]"""
    start = period_start(cfg, now)
    if start is None or start >= now or not _has_database(cfg):
        return 0.0
    with Store.from_config(cfg) as store:
        got = store.heater_energy_kwh(start, now)
    return 0.0 if got is None else float(got)


def heater_extra(cfg: HeliosConfig, now: pd.Timestamp,
                 warn: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """``{"water_heater": {"delivered_kwh": x, "temp_c": y}}`` for the solve (``{}``
    without a ``water_heater:`` section); trouble is a warning, never an error."""
    if cfg.water_heater is None:
        return {}
    warn = warn or log.warning
    extra: dict[str, Any] = {}
    source_kwh = water_heater.delivered_today_kwh(cfg, now, warn)
    if source_kwh is not None:
        extra["delivered_kwh"] = source_kwh
    else:
        try:
            extra["delivered_kwh"] = delivered_kwh(cfg, now)
        except StorageError as exc:
            warn(f"water_heater: energy delivered today unknown ({exc}); planned in full")
    tank = cfg.water_heater.tank
    if tank is not None and tank.temperature is not None:
        data = dict(tank.temperature)
        typ = data.pop("type")
        problems: list = []
        options = build(providers.config_class("temperature", typ), data,
                        "water_heater.tank.temperature", problems)
        if options is None:  # checked when the config was loaded; kept for direct callers
            raise ConfigError(problems, cfg.source or "")
        pc = ProviderConfig(typ, options)
        try:
            extra["temp_c"] = float(providers.create(
                "temperature", pc, ProviderContext(cfg.site, now, cfg)).read(now))
        except ProviderError as exc:
            warn(f"water_heater: tank temperature unavailable ({exc}); planned from "
                 f"tank.temp_c")
    return {NAME: extra}
