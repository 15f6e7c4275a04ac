"""Grid carbon intensity from a CSV file: ``ts_utc`` and ``co2_g_per_kwh`` (or ``column:``),
checked like every CSV series (:func:`planner.providers.files.csv.read_series`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from executor.configspec import opt
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries
from planner.providers.files.csv import read_series

NAME = "carbon (csv)"


@register("carbon", "csv")
class CsvCarbon:
    """Carbon intensity of grid electricity from a CSV file. [g CO2/kWh]"""

    @dataclass(frozen=True)
    class Config:
        path: str = opt(help="CSV file with ts_utc and the carbon column", path=True)
        column: str = opt("co2_g_per_kwh", "Name of the carbon-intensity column [g CO2/kWh]")

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """All values in the file (the caller slices the horizon); negative values refused."""
        return read_series(self.config.path, self.config.column, NAME, True)
