"""Input providers (prices, PV forecast, load forecast, state) and their registry.

A provider is a class with a nested frozen ``Config`` dataclass (its options, validated by
:mod:`planner.config` like every other key) registered under ``(kind, type)``; the config
chooses it with ``type:``. To add one, write a module here, decorate the class with
``@register("prices", "myname")`` and add ``("prices", "myname"): "module"`` to ``_BUILTIN``
below (modules are imported only when their provider is used).

Kinds and what ``create()`` returns:

=============  ===================================================================
prices         ``fetch(start, end) -> TimeSeries`` of spot prices [EUR/kWh]
pv             ``forecast(start, end) -> TimeSeries`` of PV power [kW]
load           ``forecast(start, end) -> TimeSeries`` of household load [kW]
state          ``read(now) -> float`` state of charge [%]
vehicle        ``read(now) -> VehicleState`` the car (SoC, plugged in, charging, at home)
carbon         ``fetch(start, end) -> TimeSeries`` of grid carbon intensity [g CO2/kWh]
device_energy  ``read(now) -> float`` a device's energy delivered today (local day) [kWh]
=============  ===================================================================
"""

from __future__ import annotations

import importlib
from typing import Any

from planner.providers.base import ProviderContext, TimeSeries

KINDS = ("prices", "pv", "load", "state", "vehicle", "carbon", "device_energy", "temperature")
_REGISTRY: dict[tuple[str, str], type] = {}


def register(kind: str, name: str):
    """Class decorator: register a provider class under ``(kind, name)``."""
    if kind not in KINDS:
        raise ValueError(f"unknown provider kind {kind!r}")

    def wrap(cls: type) -> type:
        if (kind, name) in _REGISTRY:
            raise RuntimeError(f"duplicate {kind} provider {name!r}")
        _REGISTRY[(kind, name)] = cls
        cls.provider_name = name
        return cls

    return wrap


#: built-in providers: (kind, type) -> module that registers it. Imported only when that
#: provider is configured (or listed by ``check-config --explain``): `helios plan` runs every
#: 5 minutes on small machines and should not pay for HTTP stacks it does not use.
_BUILTIN: dict[tuple[str, str], str] = {
    ("prices", "csv"): "files.csv", ("pv", "csv"): "files.csv", ("load", "csv"): "files.csv",
    ("prices", "demo"): "files.demo", ("pv", "demo"): "files.demo", ("load", "demo"): "files.demo",
    ("prices", "flat"): "static", ("pv", "none"): "static", ("load", "constant"): "static",
    ("state", "static"): "static",
    ("prices", "tibber"): "prices.tibber", ("prices", "nordpool"): "prices.nordpool",
    ("prices", "entsoe"): "prices.entsoe",
    ("pv", "openmeteo"): "pv.openmeteo", ("pv", "solcast"): "pv.solcast",
    ("load", "history"): "load.history",
    ("state", "gx"): "state.live", ("state", "measurements"): "state.live",
    ("state", "homeassistant"): "state.homeassistant",
    ("load", "homeassistant"): "load.homeassistant",
    ("device_energy", "homeassistant"): "state.homeassistant_energy",
    ("vehicle", "manual"): "vehicle.manual", ("vehicle", "tesla"): "vehicle.tesla",
    ("vehicle", "kia_hyundai"): "vehicle.kia_hyundai",
    ("temperature", "homeassistant"): "temperature.homeassistant",
    ("carbon", "csv"): "carbon.csv", ("carbon", "energinet"): "carbon.energinet",
    ("carbon", "entsoe"): "carbon.entsoe",
}


def _lookup(kind: str, name: str) -> type:
    if (kind, name) not in _REGISTRY and (kind, name) in _BUILTIN:
        importlib.import_module(f"planner.providers.{_BUILTIN[(kind, name)]}")
    return _REGISTRY[(kind, name)]


def available(kind: str) -> list[str]:
    """Provider names of one kind (built-in and registered), sorted."""
    return sorted({name for k, name in _BUILTIN if k == kind}
                  | {name for k, name in _REGISTRY if k == kind})


def config_class(kind: str, name: str) -> type:
    """The ``Config`` dataclass of a provider."""
    return _lookup(kind, name).Config


def create(kind: str, provider_config: Any, context: ProviderContext) -> Any:
    """Instantiate the provider chosen by a validated :class:`planner.config.ProviderConfig`."""
    cls = _lookup(kind, provider_config.type)
    return cls(provider_config.options, context)


__all__ = ["KINDS", "ProviderContext", "TimeSeries", "available", "config_class", "create",
           "register"]
