"""The water heater's per-solve input: the energy it already took today (issue 16).

:func:`delivered_today_kwh` is the one place a plan asks "how much has the heater had today?"
[kWh, the site's local day]; :func:`heater_extra` turns it into the component's per-solve
input (``Context.extra["water_heater"] = {"delivered_kwh": x}``,
:class:`planner.optimize.components.deferrable.DeferrableLoad`), which is subtracted from
today's need. Today's source is ``water_heater.delivered_today`` (a ``device_energy``
provider, e.g. a Home Assistant daily energy entity); another source (the executor's
measurements) plugs in here as a fallback when that key is absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from planner import providers
from planner.config import HeliosConfig
from planner.config.devices import energy_source_config
from planner.config.sections import ProviderConfig
from planner.core.errors import ConfigError, ProviderError
from planner.providers.base import ProviderContext

log = logging.getLogger(__name__)

__all__ = ["NAME", "delivered_today_kwh", "heater_extra"]

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
    try:
        provider = providers.create("device_energy", source, ProviderContext(cfg.site, now, cfg))
        return float(provider.read(now))
    except ProviderError as exc:
        (warn or log.warning)(f"water_heater: energy delivered today unavailable ({exc}); "
                              "today's whole energy is planned")
        return None


def heater_extra(cfg: HeliosConfig, now: pd.Timestamp,
                 warn: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """``extra`` for :func:`planner.optimize.model.solve`: ``{"water_heater": {"delivered_kwh":
    x}}``, or ``{}`` when nothing is known about today."""
    kwh = delivered_today_kwh(cfg, now, warn)
    return {} if kwh is None else {NAME: {"delivered_kwh": kwh}}
