"""Static providers: a fixed state of charge, a constant load, no PV."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from executor.configspec import opt
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries


@register("state", "static")
class StaticState:
    """A state of charge given in the config (tests, first runs, no GX reachable)."""

    @dataclass(frozen=True)
    class Config:
        soc_pct: float = opt(50.0, "State of charge at plan time", "%", ge=0, le=100)

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config

    def read(self, now: pd.Timestamp) -> float:
        """The configured state of charge. [%]"""
        return self.config.soc_pct


def _flat(value: float, start: pd.Timestamp, end: pd.Timestamp, name: str) -> TimeSeries:
    index = pd.date_range(start.floor("h"), end.ceil("h"), freq="h", inclusive="left",
                          name="ts_utc")
    return TimeSeries(pd.Series(value, index=index, name=name), 3600, "constant")


@register("load", "constant")
class ConstantLoad:
    """The same household load in every slot. [kW]"""

    @dataclass(frozen=True)
    class Config:
        load_kw: float = opt(0.5, "Constant household load", "kW", ge=0)

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """A flat series covering ``[start, end)``."""
        return _flat(self.config.load_kw, start, end, "load_kw")


@register("pv", "none")
class NoPv:
    """No PV at the site."""

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """Zero everywhere."""
        return _flat(0.0, start, end, "pv_kw")


@register("prices", "flat")
class FlatPrices:
    """The same spot price in every slot (degraded self-consumption mode, tests)."""

    @dataclass(frozen=True)
    class Config:
        price_eur_per_kwh: float = opt(0.0, "Spot price in every slot", "EUR/kWh")
        hours: float = opt(24.0, "How far ahead the price is known", "h", gt=0)

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """A flat series from ``start`` for ``hours``."""
        stop = min(end, start + pd.Timedelta(hours=self.config.hours))
        return _flat(self.config.price_eur_per_kwh, start, stop, "spot_eur_per_kwh")
