"""Input providers (prices, PV forecast, load forecast, state) and their registry.

A provider is a class with a nested frozen ``Config`` dataclass (its options, validated by
:mod:`planner.config` like every other key) registered under ``(kind, type)``; the config
chooses it with ``type:``. To add one, write a module here, decorate the class with
``@register("prices", "myname")`` and import the module at the bottom of this file.

Kinds and what ``create()`` returns:

=========  ===================================================================
prices     ``fetch(start, end) -> TimeSeries`` of spot prices [EUR/kWh]
pv         ``forecast(start, end) -> TimeSeries`` of PV power [kW]
load       ``forecast(start, end) -> TimeSeries`` of household load [kW]
state      ``read(now) -> float`` state of charge [%]
=========  ===================================================================
"""

from __future__ import annotations

from typing import Any

from planner.providers.base import ProviderContext, TimeSeries

KINDS = ("prices", "pv", "load", "state")
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


def available(kind: str) -> list[str]:
    """Registered provider names of one kind, sorted."""
    return sorted(name for k, name in _REGISTRY if k == kind)


def config_class(kind: str, name: str) -> type:
    """The ``Config`` dataclass of a provider."""
    return _REGISTRY[(kind, name)].Config


def create(kind: str, provider_config: Any, context: ProviderContext) -> Any:
    """Instantiate the provider chosen by a validated :class:`planner.config.ProviderConfig`."""
    cls = _REGISTRY[(kind, provider_config.type)]
    return cls(provider_config.options, context)


__all__ = ["KINDS", "ProviderContext", "TimeSeries", "available", "config_class", "create",
           "register"]

# built-in providers register themselves on import
from planner.providers import (  # noqa: E402,F401
    csv,
    demo,
    entsoe,
    history,
    nordpool,
    openmeteo,
    solcast,
    state_live,
    static,
    tibber,
)
