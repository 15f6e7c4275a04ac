"""Built-in demo data (``helios plan --demo``): four real days shipped in ``planner/demo/``.

Prices are Energinet DK1 day-ahead prices (CC-BY-4.0), PV and load a CoSSMic household in
Konstanz (CC-BY-4.0); see ``planner/demo/README.md``. The second day has strongly negative
prices. The data are moved by whole days so that "now" falls on the first demo day, so the
demo always plans today and tomorrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries
from planner.providers.files.csv import read_series

_FILES = {"prices": ("prices.csv", "price_eur_per_kwh"), "pv": ("pv.csv", "pv_kw"),
          "load": ("load.csv", "load_kw")}


def demo_series(kind: str, now: pd.Timestamp) -> TimeSeries:
    """The demo series of ``kind``, shifted by whole days so that ``now`` is on its first day."""
    name, column = _FILES[kind]
    with resources.as_file(resources.files("planner") / "demo" / name) as path:
        ts = read_series(path, column, f"{kind} (demo)", kind != "prices")
    first = ts.values.index[0]
    days = (now - first) // pd.Timedelta(days=1)
    shifted = ts.values.copy()
    shifted.index = shifted.index + pd.Timedelta(days=int(days))
    return TimeSeries(shifted, ts.resolution_s, f"demo {name}")


class _Demo:
    kind = ""

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, config: Config, context: ProviderContext):
        self.now = context.now

    def _series(self) -> TimeSeries:
        return demo_series(self.kind, self.now)


@register("prices", "demo")
class DemoPrices(_Demo):
    """Demo spot prices. [EUR/kWh]"""

    kind = "prices"

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """The shifted demo prices."""
        return self._series()


@register("pv", "demo")
class DemoPv(_Demo):
    """Demo PV power. [kW]"""

    kind = "pv"

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """The shifted demo PV."""
        return self._series()


@register("load", "demo")
class DemoLoad(_Demo):
    """Demo household load. [kW]"""

    kind = "load"

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """The shifted demo load."""
        return self._series()
