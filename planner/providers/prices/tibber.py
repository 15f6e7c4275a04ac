"""Tibber prices: GraphQL ``priceInfo`` of the home's current subscription (issue 4).

Tibber publishes ``today`` and ``tomorrow`` (``tomorrow`` is empty until about 13:00 CET);
``startsAt`` is the local interval start with its offset, so DST days (23 or 25 hours) need no
special care. Helios takes the raw ``energy`` price (spot plus Tibber's margin, in the home's
currency per kWh) as ``spot_eur_per_kwh``; grid fees and taxes come from ``tariff.buy``, so the
same tariff formulas work for every price provider. ``resolution: quarter_hourly`` asks for
``priceInfo(resolution: QUARTER_HOURLY)`` (15-min prices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries, min_interval_opt
from planner.providers.http import RetryPolicy, json_body, policy_for, request

NAME = "prices (tibber)"
_QUERY = """{ viewer { homes { id currentSubscription { priceInfo%s {
  today { total energy tax startsAt currency }
  tomorrow { total energy tax startsAt currency } } } } } }"""


def parse_price_info(payload: Any, home_id: str | None = None) -> TimeSeries:
    """Tibber's GraphQL answer → spot prices. [EUR/kWh]

    Parameters
    ----------
    payload
        Decoded JSON of the ``viewer.homes[].currentSubscription.priceInfo`` query.
    home_id
        The home to use (default: the first home with a subscription).

    Returns
    -------
    TimeSeries
        ``spot_eur_per_kwh`` (Tibber's ``energy``) indexed by UTC interval start; today and,
        when published, tomorrow.

    Raises
    ------
    ProviderConfigError
        GraphQL ``UNAUTHENTICATED``, no such home, a home without subscription, not EUR.
    ProviderUnavailable
        Other GraphQL errors or an answer without the expected fields.
    """
    if not isinstance(payload, dict):
        raise ProviderUnavailable(NAME, "unexpected answer (not a JSON object)")
    errors = payload.get("errors")
    if errors:
        first = errors[0] if isinstance(errors, list) and errors else {}
        code = (first.get("extensions") or {}).get("code", "") if isinstance(first, dict) else ""
        message = first.get("message", "") if isinstance(first, dict) else str(first)
        if code in ("UNAUTHENTICATED", "FORBIDDEN") or "token" in message.lower():
            raise ProviderConfigError(NAME, f"Tibber rejected the token ({code or message}); "
                                      "check prices.token / secrets.yaml")
        raise ProviderUnavailable(NAME, f"Tibber API error: {message[:160]}")
    try:
        homes = payload["data"]["viewer"]["homes"]
    except (KeyError, TypeError):
        raise ProviderUnavailable(NAME, "answer lacks data.viewer.homes") from None
    candidates = [h for h in homes if isinstance(h, dict)
                  and (home_id is None or h.get("id") == home_id)]
    if not candidates:
        raise ProviderConfigError(NAME, f"no home with id {home_id!r} for this token"
                                  if home_id else "no home for this token")
    subscribed = [h for h in candidates if h.get("currentSubscription")]
    if not subscribed:
        raise ProviderConfigError(NAME, "the home has no current subscription (no prices)")
    info = (subscribed[0]["currentSubscription"] or {}).get("priceInfo")
    if not isinstance(info, dict):
        raise ProviderUnavailable(NAME, "answer lacks priceInfo")
    entries = list(info.get("today") or []) + list(info.get("tomorrow") or [])
    if not entries:
        raise ProviderUnavailable(NAME, "Tibber returned no prices for today")
    try:
        starts = pd.to_datetime([e["startsAt"] for e in entries], utc=True, format="ISO8601")
        values = [float(e["energy"]) for e in entries]
        currencies = {e.get("currency", "EUR") for e in entries}
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(NAME, f"malformed priceInfo entry ({exc})") from None
    if currencies - {"EUR"}:
        raise ProviderConfigError(NAME, f"prices are in {', '.join(sorted(currencies))}; "
                                  "Helios plans in EUR")
    series = pd.Series(values, index=pd.DatetimeIndex(starts, name="ts_utc"),
                       name="spot_eur_per_kwh").sort_index()
    series = series[~series.index.duplicated()]
    steps = series.index.to_series().diff().dropna()
    resolution_s = int(steps.min().total_seconds()) if len(steps) else 3600
    return TimeSeries(series, resolution_s, "Tibber priceInfo (energy)")


@register("prices", "tibber")
class TibberPrices:
    """Tibber's price for the home (``energy``: spot + margin). [EUR/kWh]"""

    @dataclass(frozen=True)
    class Config:
        token: str = opt(help="Tibber API token (use !secret)", secret=True)
        home_id: str | None = opt(None, "Tibber home id (default: the first home)")
        resolution: str = opt("hourly", "Price resolution", choices=("hourly",
                                                                     "quarter_hourly"))
        base_url: str = opt("https://api.tibber.com/v1-beta/gql", "GraphQL endpoint")
        timeout_s: float = opt(10.0, "HTTP timeout per attempt", "s", gt=0)
        min_interval_s: int = min_interval_opt(
            900, "Tibber publishes tomorrow's prices once a day; keep well under its rate limit")

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.policy = policy or policy_for(config.timeout_s)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """Today's and (when published) tomorrow's prices; the caller slices the horizon."""
        arg = "(resolution: QUARTER_HOURLY)" if self.config.resolution == "quarter_hourly" else ""
        response = request(NAME, "POST", self.config.base_url, policy=self.policy,
                           secrets=(self.config.token,),
                           json={"query": _QUERY % arg},
                           headers={"Authorization": f"Bearer {self.config.token}"})
        return parse_price_info(json_body(NAME, response), self.config.home_id)
