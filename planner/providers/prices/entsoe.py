"""ENTSO-E transparency platform day-ahead prices (document A44), for zones Nord Pool and
Tibber do not cover (issue 4).

``GET {base_url}?securityToken=…&documentType=A44&in_Domain=EIC&out_Domain=EIC
&periodStart=YYYYMMDDHHMM&periodEnd=…`` (UTC) answers a ``Publication_MarketDocument``: one or
more ``TimeSeries/Period`` with a ``timeInterval``, a ``resolution`` (PT60M / PT15M) and
``Point``s (``position`` 1-based, ``price.amount`` in EUR/MWh). With ``curveType`` A03 a point
equal to the previous one is left out; :func:`parse_a44` fills it forward. "No data yet"
comes as an ``Acknowledgement_MarketDocument`` (reason 999), which is not an error for
tomorrow. The token travels in the query string, so requests are never logged with their URL
(and :mod:`planner.core.logsetup` redacts it from urllib3's debug lines).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries, min_interval_opt
from planner.providers.http import RetryPolicy, policy_for, request

NAME = "prices (entsoe)"

#: bidding zone → EIC code (a 16-character EIC code is accepted directly, too)
AREAS = {
    "AT": "10YAT-APG------L", "BE": "10YBE----------2", "CH": "10YCH-SWISSGRIDZ",
    "CZ": "10YCZ-CEPS-----N", "DE-LU": "10Y1001A1001A82H", "DK1": "10YDK-1--------W",
    "DK2": "10YDK-2--------M", "EE": "10Y1001A1001A39I", "ES": "10YES-REE------0",
    "FI": "10YFI-1--------U", "FR": "10YFR-RTE------C", "HU": "10YHU-MAVIR----U",
    "IT-NORD": "10Y1001A1001A73I", "LT": "10YLT-1001A0008Q", "LV": "10YLV-1001A00074",
    "NL": "10YNL----------L", "NO1": "10YNO-1--------2", "PL": "10YPL-AREA-----S",
    "PT": "10YPT-REN------W", "SE3": "10Y1001A1001A46L", "SE4": "10Y1001A1001A47J",
    "SI": "10YSI-ELES-----O", "SK": "10YSK-SEPS-----K",
}
_RES = {"PT15M": 900, "PT30M": 1800, "PT60M": 3600}


def local_tag(tag: str) -> str:
    """An XML tag without its namespace (ENTSO-E documents carry versioned namespaces)."""
    return tag.rsplit("}", 1)[-1]


def find_child(node: ET.Element, name: str) -> ET.Element | None:
    """The first child of ``node`` whose tag, without namespace, is ``name``."""
    return next((c for c in node if local_tag(c.tag) == name), None)


def area_eic(area: str, provider: str) -> str:
    """The EIC code of a bidding zone named in :data:`AREAS` (or given as a 16-character EIC
    code itself); anything else is a :class:`ProviderConfigError` of ``provider``."""
    eic = AREAS.get(area.upper())
    if eic is None and len(area) == 16 and area[:3] == "10Y":
        eic = area
    if eic is None:
        raise ProviderConfigError(provider, f"unknown area {area!r}; known: "
                                  f"{', '.join(AREAS)} (or a 16-character EIC code)")
    return eic


def parse_a44(xml_text: str | bytes) -> pd.Series | None:
    """An A44 ``Publication_MarketDocument`` → spot prices [EUR/kWh], or None (no data yet).

    Raises
    ------
    ProviderUnavailable
        Not XML, or an unexpected document / missing fields.
    ProviderConfigError
        An acknowledgement rejecting the request (other than "no matching data").
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ProviderUnavailable(NAME, f"malformed XML ({exc})") from None
    kind = local_tag(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        reason = find_child(root, "Reason")
        code = find_child(reason, "code").text if reason is not None and find_child(
            reason, "code") is not None else ""
        text = find_child(reason, "text").text if reason is not None and find_child(
            reason, "text") is not None else ""
        if code == "999" and "no matching data" in (text or "").lower():
            return None
        raise ProviderConfigError(NAME, f"ENTSO-E rejected the request: {(text or code)[:160]}")
    if kind != "Publication_MarketDocument":
        raise ProviderUnavailable(NAME, f"unexpected document {kind!r}")
    values: dict[pd.Timestamp, float] = {}
    try:
        for ts in (c for c in root if local_tag(c.tag) == "TimeSeries"):
            for period in (c for c in ts if local_tag(c.tag) == "Period"):
                interval = find_child(period, "timeInterval")
                start = pd.Timestamp(find_child(interval, "start").text)
                end = pd.Timestamp(find_child(interval, "end").text)
                step_s = _RES[find_child(period, "resolution").text.strip()]
                points = {int(find_child(p, "position").text):
                          float(find_child(p, "price.amount").text)
                          for p in period if local_tag(p.tag) == "Point"}
                n = int((end - start).total_seconds() // step_s)
                last = None
                for pos in range(1, n + 1):  # A03: a missing position repeats the previous
                    last = points.get(pos, last)
                    if last is not None:
                        values[start + pd.Timedelta(seconds=step_s * (pos - 1))] = last
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(NAME, f"malformed A44 document ({type(exc).__name__})"
                                  ) from None
    if not values:
        return None
    index = pd.DatetimeIndex(list(values), name="ts_utc").tz_convert("UTC")
    return pd.Series([v / 1000.0 for v in values.values()], index=index,
                     name="spot_eur_per_kwh").sort_index()


@register("prices", "entsoe")
class EntsoePrices:
    """ENTSO-E day-ahead prices of one bidding zone. [EUR/kWh]"""

    @dataclass(frozen=True)
    class Config:
        token: str = opt(help="ENTSO-E transparency API security token (use !secret)",
                         secret=True)
        area: str = opt(help=f"Bidding zone ({', '.join(AREAS)}) or its EIC code")
        base_url: str = opt("https://web-api.tp.entsoe.eu/api", "Transparency API endpoint")
        timeout_s: float = opt(20.0, "HTTP timeout per attempt", "s", gt=0)
        min_interval_s: int = min_interval_opt(
            900, "day-ahead prices change once a day; ENTSO-E limits calls per token")

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.policy = policy or policy_for(config.timeout_s)
        self.eic = area_eic(config.area, NAME)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """Prices for ``[start, end)`` as far as published."""
        fmt = "%Y%m%d%H%M"
        begin = start.tz_convert("UTC").floor("D") - pd.Timedelta(hours=2)
        params = {"securityToken": self.config.token, "documentType": "A44",
                  "in_Domain": self.eic, "out_Domain": self.eic,
                  "periodStart": begin.strftime(fmt),
                  "periodEnd": end.tz_convert("UTC").ceil("h").strftime(fmt)}
        response = request(NAME, "GET", self.config.base_url, params=params,
                           policy=self.policy, secrets=(self.config.token,))
        series = parse_a44(response.content)
        if series is None:
            raise ProviderUnavailable(NAME, f"no prices published for {self.config.area} from "
                                      f"{start:%Y-%m-%d %H:%M} UTC")
        steps = series.index.to_series().diff().dropna()
        resolution_s = int(steps.min().total_seconds()) if len(steps) else 3600
        return TimeSeries(series, resolution_s, f"ENTSO-E A44 {self.config.area}")
