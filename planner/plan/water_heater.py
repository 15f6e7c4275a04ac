"""The water heater's energy today from a configured source (issue 16).

:func:`delivered_today_kwh` reads ``water_heater.delivered_today`` (a ``device_energy``
provider, e.g. a Home Assistant daily energy entity) [kWh since local midnight].
:func:`planner.plan.heater.heater_extra` uses it first and falls back to the executor's
measurements; this module stays free of cvxpy so ``helios doctor`` can call it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from planner import providers
from planner.config import HeliosConfig
from planner.config.devices import energy_source_config
from planner.config.sections import ProviderConfig
from planner.core.errors import ConfigError, ProviderError
from planner.providers.base import ProviderContext

log = logging.getLogger(__name__)

__all__ = ["NAME", "delivered_today_kwh"]

#: the component's name (:data:`planner.optimize.components.water_heater.NAME`, equal by test):
#: not imported from there, so `helios doctor` can call :func:`delivered_today_kwh` without
#: loading cvxpy
NAME = "water_heater"


def _source(cfg: HeliosConfig) -> ProviderConfig | None:
    data = cfg.water_heater.delivered_today if cfg.water_heater is not None else None
    if data is None:
        return None
    problems: list = []
    got = energy_source_config(data, "water_heater.delivered_today", problems)
    if got is None:
        raise ConfigError(problems, cfg.source or "")
    return ProviderConfig(*got)


def delivered_today_kwh(cfg: HeliosConfig, now: pd.Timestamp,
                        warn: Callable[[str], None] | None = None) -> float | None:
    """The water heater's energy delivered since local midnight [kWh], or None: no
    ``water_heater:``, no ``delivered_today:`` source, or the source failed (then ``warn``
    gets one line and the plan asks for today's whole energy)."""
    source = _source(cfg)
    if source is None:
        return None
    warn = warn or log.warning
    try:
        provider = providers.create("device_energy", source, ProviderContext(cfg.site, now, cfg))
        kwh = float(provider.read(now))
    except ProviderError as exc:
        warn(f"water_heater: energy delivered today unavailable ({exc}); today's whole "
             "energy is planned")
        return None
    # the heater cannot have taken more than power_kw since local midnight: more is a
    # lifetime counter (or another device's), not today's energy
    now = pd.Timestamp(now).tz_convert("UTC")
    midnight = now.tz_convert(cfg.site.timezone).normalize().tz_convert("UTC")
    hours = (now - midnight).total_seconds() / 3600.0
    most_kwh = cfg.water_heater.power_kw * hours * 1.05 + 0.05
    if kwh > most_kwh:
        warn(f"water_heater: delivered_today says {kwh:g} kWh, more than power_kw "
             f"({cfg.water_heater.power_kw:g} kW) for the {hours:.1f} h since local midnight "
             "allows: not a daily entity (a lifetime counter? use a utility_meter with cycle: "
             "daily); today's whole energy is planned")
        return None
    return kwh

