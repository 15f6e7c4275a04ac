"""Nord Pool day-ahead prices through the ``nordpool`` package (issue 4).

The package (``nordpool.elspot.Prices``) knows the data-portal API: it builds the request
(``/api/DayAheadPriceIndices?date=...&market=DayAhead&indexNames=SE3&currency=EUR
&resolutionInMinutes=60``) and parses ``multiIndexEntries[].entryPerArea``. Helios lets it do
both but sends the request itself through :mod:`planner.providers.http` (timeouts, retries, the
same error messages as every other provider); ``base_url`` replaces the package's
``API_URL`` (tests point it at a loopback server).

Nord Pool delivery days are CET days. A day not yet published (HTTP 204, or no entries: the
package returns ``None``) ends the series; it is not an error unless it is today.
Prices arrive in EUR/MWh and are converted to EUR/kWh in :func:`parse_elspot`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from nordpool import elspot

from executor.configspec import opt
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries, min_interval_opt
from planner.providers.http import RetryPolicy, json_body, policy_for, request

NAME = "prices (nordpool)"
CET = "Europe/Amsterdam"


def parse_elspot(parsed: dict | None, area: str) -> pd.Series | None:
    """The ``nordpool`` package's parsed day → spot prices [EUR/kWh], or None (not published).

    Parameters
    ----------
    parsed
        What ``Prices._parse_json`` returns: ``{"areas": {area: {"values": [{"start", "end",
        "value"}]}}, ...}`` with values in [currency/MWh]; ``None`` when the day has no data.
    area
        The bidding zone, e.g. ``"SE3"``.
    """
    if parsed is None:
        return None
    values = (parsed.get("areas", {}).get(area) or {}).get("values") or []
    rows = [(v["start"], v["value"]) for v in values if v.get("value") is not None]
    if not rows:
        return None
    index = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows], utc=True), name="ts_utc")
    return pd.Series([float(r[1]) / 1000.0 for r in rows], index=index,
                     name="spot_eur_per_kwh")


@register("prices", "nordpool")
class NordpoolPrices:
    """Nord Pool day-ahead spot prices of one bidding zone. [EUR/kWh]"""

    @dataclass(frozen=True)
    class Config:
        area: str = opt(help="Bidding zone, e.g. SE3, DK1, NO1, FI, GER, NL")
        currency: str = opt("EUR", "Currency asked from Nord Pool (Helios plans in EUR)",
                            choices=("EUR",))
        resolution_min: int = opt(60, "Price resolution", "min", ge=15, le=60)
        base_url: str = opt(elspot.Prices.API_URL, "Nord Pool data portal API")
        timeout_s: float = opt(10.0, "HTTP timeout per attempt", "s", gt=0)
        min_interval_s: int = min_interval_opt(
            900, "day-ahead prices change once a day")

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.policy = policy or policy_for(config.timeout_s)
        if config.area not in elspot.Prices.AREAS:
            raise ProviderConfigError(NAME, f"unknown area {config.area!r}; Nord Pool areas: "
                                      f"{', '.join(elspot.Prices.AREAS)}")
        if config.resolution_min not in elspot.Prices.SUPPORTED_RESOLUTIONS:
            raise ProviderConfigError(NAME, "resolution_min must be 15, 30 or 60")
        self._lib = elspot.Prices(currency=config.currency, timeout=config.timeout_s)
        self._lib.API_URL = config.base_url.rstrip("/")

    def _day(self, day: pd.Timestamp) -> pd.Series | None:
        url, params, areas = self._lib._get_url_params_areas(
            elspot.Prices.HOURLY, day.date(), [self.config.area], self.config.resolution_min)
        response = request(NAME, "GET", url, params=params, policy=self.policy)
        if response.status_code == 204 or not response.content.strip():
            return None
        payload: Any = json_body(NAME, response)
        try:
            parsed = self._lib._parse_json(payload, elspot.Prices.HOURLY, areas)
        except elspot.CurrencyMismatch:
            raise ProviderUnavailable(NAME, "answer is in another currency than asked"
                                      ) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderUnavailable(NAME, f"malformed answer ({type(exc).__name__})"
                                      ) from None
        return parse_elspot(parsed, self.config.area)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """Prices from the CET day of ``start`` until ``end`` or the first unpublished day."""
        first = start.tz_convert(CET).normalize()
        last = (end - pd.Timedelta(seconds=1)).tz_convert(CET).normalize()
        parts = []
        for day in pd.date_range(first, last, freq="D"):
            part = self._day(day)
            if part is None:
                if not parts:
                    raise ProviderUnavailable(
                        NAME, f"no prices published for {self.config.area} on {day:%Y-%m-%d}")
                break  # tomorrow not published yet: not an error
            parts.append(part)
        series = pd.concat(parts).sort_index()
        series = series[~series.index.duplicated()]
        return TimeSeries(series, self.config.resolution_min * 60,
                          f"Nord Pool day-ahead {self.config.area}")
