"""Energinet's CO2 emission intensity per Danish price area (``api.energidataservice.dk``).

``GET {base_url}/dataset/CO2Emis?start=YYYY-MM-DDTHH:MM&end=...&filter={"PriceArea":["DK1"]}
&sort=Minutes5UTC ASC&timezone=utc`` answers ``{"records": [{"Minutes5UTC":
"2026-12-01T00:00:00", "PriceArea": "DK1", "CO2Emission": 123.0}, ...]}``: one value per
5 minutes, g CO2/kWh, ``Minutes5UTC`` in UTC without an offset. ``CO2Emis`` is the measured
series (until about now); ``CO2EmisProg`` (``dataset: CO2EmisProg``) is Energinet's forecast
with the same fields, the one that covers a plan's future. A series that ends before the
horizon is held at its last value by :mod:`planner.inputs.gather` (flagged there).
No key is needed; the data are public.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from executor.configspec import opt
from planner.core.errors import DataError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries, min_interval_opt
from planner.providers.http import RetryPolicy, json_body, policy_for, request

NAME = "carbon (energinet)"
RESOLUTION_S = 300
#: how far before the horizon start the measured series is asked (it lags "now")
LOOKBACK = pd.Timedelta(hours=6)


def parse_records(body: Any, area: str) -> pd.Series:
    """The API's JSON → g CO2/kWh per 5-min interval start (UTC), for ``area``.

    Raises
    ------
    ProviderUnavailable
        No ``records`` list, or no value for ``area``.
    DataError
        A record without a timestamp or with a non-numeric / negative value (names it).
    """
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        raise ProviderUnavailable(NAME, "the answer has no 'records' list")
    stamps, values = [], []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or r.get("PriceArea") != area:
            continue
        value = r.get("CO2Emission")
        if value is None:
            continue  # not yet published
        stamp = pd.to_datetime(r.get("Minutes5UTC"), utc=True, errors="coerce")
        if pd.isna(stamp):
            raise DataError(f"{NAME}: records[{i}].Minutes5UTC = {r.get('Minutes5UTC')!r} is "
                            "not a timestamp")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(f"{NAME}: records[{i}].CO2Emission = {value!r} is not a "
                            "number") from None
        if not np.isfinite(number) or number < 0:
            raise DataError(f"{NAME}: records[{i}].CO2Emission = {value!r}, expected a "
                            "value >= 0")
        stamps.append(stamp)
        values.append(number)
    if not values:
        raise ProviderUnavailable(NAME, f"no CO2 emission values for {area}")
    series = pd.Series(values, index=pd.DatetimeIndex(stamps, name="ts_utc"),
                       name="co2_g_per_kwh")
    series = series[~series.index.duplicated(keep="last")].sort_index()
    full = pd.date_range(series.index[0], series.index[-1], freq=f"{RESOLUTION_S}s")
    # a missing 5-min value inside the span takes the one before (a gap would end the plan)
    return series.reindex(full).ffill().rename_axis("ts_utc")


@register("carbon", "energinet")
class EnerginetCarbon:
    """Energinet's CO2 emission intensity of one price area (DK1, DK2). [g CO2/kWh]"""

    @dataclass(frozen=True)
    class Config:
        price_area: str = opt("DK1", "Danish price area", choices=("DK1", "DK2"))
        dataset: str = opt("CO2Emis", "CO2Emis (measured) or CO2EmisProg (forecast)",
                           choices=("CO2Emis", "CO2EmisProg"))
        base_url: str = opt("https://api.energidataservice.dk", "Energi Data Service API")
        timeout_s: float = opt(10.0, "HTTP timeout per attempt", "s", gt=0)
        min_interval_s: int = min_interval_opt(300, "the values change every 5 minutes")

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.policy = policy or policy_for(config.timeout_s)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """The values from a little before ``start`` up to ``end`` (UTC)."""
        c = self.config
        fmt = "%Y-%m-%dT%H:%M"
        params = {"start": (start - LOOKBACK).tz_convert("UTC").strftime(fmt),
                  "end": end.tz_convert("UTC").strftime(fmt),
                  "filter": json.dumps({"PriceArea": [c.price_area]}),
                  "sort": "Minutes5UTC ASC", "timezone": "utc", "limit": 0}
        url = f"{c.base_url.rstrip('/')}/dataset/{c.dataset}"
        response = request(NAME, "GET", url, policy=self.policy, params=params)
        series = parse_records(json_body(NAME, response), c.price_area)
        return TimeSeries(series, RESOLUTION_S, f"energidataservice {c.dataset} {c.price_area}")
