"""PV forecast from Solcast's rooftop-site API (issue 4).

``GET {base_url}/rooftop_sites/{site_id}/forecasts?format=json&hours=48`` with
``Authorization: Bearer API_KEY`` answers ``{"forecasts": [{"pv_estimate": kW,
"pv_estimate10": kW, "pv_estimate90": kW, "period_end": ISO, "period": "PT30M"}, ...]}``.
Values are means over the period **ending** at ``period_end``; :func:`parse_forecasts`
relabels them to interval starts. ``estimate`` chooses the median or the cautious 10th
percentile; ``confidence_pct`` is applied on top, as for Open-Meteo. The free hobbyist plan
allows 10 calls a day: a 429 is reported (with Retry-After) and the plan degrades.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries, min_interval_opt
from planner.providers.http import RetryPolicy, json_body, policy_for, request

NAME = "pv (solcast)"
_FIELD = {"median": "pv_estimate", "p10": "pv_estimate10", "p90": "pv_estimate90"}


def parse_forecasts(payload: Any, estimate: str = "median") -> TimeSeries:
    """Solcast ``forecasts`` → PV power [kW] by UTC interval start."""
    try:
        rows = payload["forecasts"]
        ends = pd.to_datetime([r["period_end"] for r in rows], utc=True, format="ISO8601")
        periods = {r.get("period", "PT30M") for r in rows}
        values = [max(0.0, float(r[_FIELD[estimate]])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(NAME, f"malformed forecast ({type(exc).__name__})") from None
    if not rows:
        raise ProviderUnavailable(NAME, "Solcast returned no forecast")
    if len(periods) != 1:
        raise ProviderUnavailable(NAME, f"mixed periods {sorted(periods)}")
    step = pd.Timedelta(periods.pop())
    series = pd.Series(values, index=pd.DatetimeIndex(ends - step, name="ts_utc"),
                       name="pv_kw").sort_index()
    return TimeSeries(series, int(step.total_seconds()), f"Solcast {estimate}")


@register("pv", "solcast")
class SolcastPv:
    """PV power forecast for a Solcast rooftop site. [kW]"""

    @dataclass(frozen=True)
    class Config:
        api_key: str = opt(help="Solcast API key (use !secret)", secret=True)
        site_id: str = opt(help="Solcast rooftop site resource id")
        estimate: str = opt("median", "Which estimate", choices=("median", "p10", "p90"))
        confidence_pct: float = opt(100.0, "Safety margin: the forecast is multiplied by this",
                                    "%", gt=0, le=100)
        peak_kw: float = opt(0.0, "Array peak power, for the clear-sky fallback", "kW", ge=0)
        base_url: str = opt("https://api.solcast.com.au", "Solcast API")
        timeout_s: float = opt(10.0, "HTTP timeout per attempt", "s", gt=0)
        min_interval_s: int = min_interval_opt(
            9000, "Solcast's free hobbyist plan allows 10 calls a day: 2.5 h = 9.6 a day")

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.policy = policy or policy_for(config.timeout_s)

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """The next 48 h. [kW]"""
        c = self.config
        url = f"{c.base_url.rstrip('/')}/rooftop_sites/{c.site_id}/forecasts"
        response = request(NAME, "GET", url, params={"format": "json", "hours": 48},
                           headers={"Authorization": f"Bearer {c.api_key}"},
                           policy=self.policy, secrets=(c.api_key,))
        ts = parse_forecasts(json_body(NAME, response), c.estimate)
        return TimeSeries(ts.values * c.confidence_pct / 100.0, ts.resolution_s,
                          f"{ts.source}, confidence {c.confidence_pct:g} %")
