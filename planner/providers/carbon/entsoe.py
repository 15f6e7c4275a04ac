"""Grid carbon intensity from ENTSO-E's actual generation per production type (document
A75, process A16 "realised"), weighted by life-cycle emission factors per type (issue 13).

``GET {base_url}?securityToken=…&documentType=A75&processType=A16&in_Domain=EIC
&periodStart=YYYYMMDDHHMM&periodEnd=…`` (UTC) answers a ``GL_MarketDocument`` with one
``TimeSeries`` per production type (``MktPSRType/psrType``, B01 … B20) and ``Period``s of
``Point``s (``position`` 1-based, ``quantity`` in MW; A03 curves leave out a point equal to
the previous one). A series with ``outBiddingZone_Domain.mRID`` instead of
``inBiddingZone_Domain.mRID`` is consumption (pumped storage pumping) and is not generation.
The intensity of each interval is ``Σ_type MW × factor / Σ_type MW`` [g CO2/kWh] — the
production mix inside the zone; imports are not traced. Actual generation is published with
about an hour's delay, so the series ends before the plan's future, which
:mod:`planner.inputs.gather` holds at its last value (flagged there). "No data yet" is an
``Acknowledgement_MarketDocument`` (reason 999). The token travels in the query string and
is never logged (:mod:`planner.providers.http` gets it as a secret).

Emission factors (g CO2-eq/kWh, life cycle, medians): IPCC AR5 WG III (2014), Annex III,
Table A.III.2 — coal (pulverised) 820 (used for hard coal, lignite, coal-derived gas and
peat), gas (combined cycle) 490, biomass (dedicated) 230, geothermal 38, hydropower 24
(run-of-river, reservoir, pumped storage generation), nuclear 12, solar (utility PV) 48,
wind onshore 11, wind offshore 12, ocean 17 (marine). Oil (B06, shale oil B07) 650 and
"other" / "other renewable" / waste (B20, B15, B17) 700 / 50 / 240 are not in that table:
they are the defaults Electricity Maps publishes for these types (an assumption; override
them with ``factors_g_per_kwh``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pandas as pd

from executor.configspec import opt
from planner.core.errors import DataError, ProviderConfigError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries, min_interval_opt
from planner.providers.http import RetryPolicy, policy_for, request
from planner.providers.prices.entsoe import AREAS, area_eic, find_child, local_tag

__all__ = ["FACTORS_G_PER_KWH", "EntsoeCarbon", "intensity", "parse_a75"]

NAME = "carbon (entsoe)"
#: how far before the horizon start generation is asked (it lags "now")
LOOKBACK = pd.Timedelta(hours=6)
_RES = {"PT15M": 900, "PT30M": 1800, "PT60M": 3600}

#: life-cycle g CO2-eq/kWh per ENTSO-E production type (see the module docstring)
FACTORS_G_PER_KWH = {
    "B01": 230.0,  # biomass
    "B02": 820.0,  # fossil brown coal / lignite
    "B03": 820.0,  # fossil coal-derived gas
    "B04": 490.0,  # fossil gas
    "B05": 820.0,  # fossil hard coal
    "B06": 650.0,  # fossil oil
    "B07": 650.0,  # fossil oil shale
    "B08": 820.0,  # fossil peat
    "B09": 38.0,   # geothermal
    "B10": 24.0,   # hydro pumped storage (generation)
    "B11": 24.0,   # hydro run-of-river and poundage
    "B12": 24.0,   # hydro water reservoir
    "B13": 17.0,   # marine
    "B14": 12.0,   # nuclear
    "B15": 50.0,   # other renewable
    "B16": 48.0,   # solar
    "B17": 240.0,  # waste
    "B18": 12.0,   # wind offshore
    "B19": 11.0,   # wind onshore
    "B20": 700.0,  # other
}


def parse_a75(xml_text: str | bytes) -> pd.DataFrame | None:
    """An A75 ``GL_MarketDocument`` → MW per interval start (UTC) and production type, or
    None (no data yet). Consumption series are left out; a type given twice is summed.

    Raises
    ------
    ProviderUnavailable
        Not XML, an unexpected document, or missing fields.
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
        code = getattr(find_child(reason, "code"), "text", "") if reason is not None else ""
        text = getattr(find_child(reason, "text"), "text", "") if reason is not None else ""
        if code == "999" and "no matching data" in (text or "").lower():
            return None
        raise ProviderConfigError(NAME, f"ENTSO-E rejected the request: {(text or code)[:160]}")
    if kind != "GL_MarketDocument":
        raise ProviderUnavailable(NAME, f"unexpected document {kind!r}")
    rows: dict[tuple[pd.Timestamp, str], float] = {}
    try:
        for ts in (c for c in root if local_tag(c.tag) == "TimeSeries"):
            if find_child(ts, "outBiddingZone_Domain.mRID") is not None:
                continue  # consumption (pumping), not generation
            psr = find_child(find_child(ts, "MktPSRType"), "psrType").text.strip()
            for period in (c for c in ts if local_tag(c.tag) == "Period"):
                interval = find_child(period, "timeInterval")
                start = pd.Timestamp(find_child(interval, "start").text)
                end = pd.Timestamp(find_child(interval, "end").text)
                step_s = _RES[find_child(period, "resolution").text.strip()]
                points = {int(find_child(p, "position").text): float(find_child(p, "quantity").text)
                          for p in period if local_tag(p.tag) == "Point"}
                last = None
                for pos in range(1, int((end - start).total_seconds() // step_s) + 1):
                    last = points.get(pos, last)  # A03: a missing position repeats
                    if last is not None:
                        at = start + pd.Timedelta(seconds=step_s * (pos - 1))
                        rows[(at, psr)] = rows.get((at, psr), 0.0) + last
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(NAME, f"malformed A75 document ({type(exc).__name__})"
                                  ) from None
    if not rows:
        return None
    index = pd.MultiIndex.from_tuples(list(rows), names=["ts_utc", "psr"])
    mw = pd.Series(list(rows.values()), index=index).unstack("psr").sort_index()
    mw.index = pd.DatetimeIndex(mw.index).tz_convert("UTC").rename("ts_utc")
    return mw


def intensity(mw: pd.DataFrame, factors: dict[str, float]) -> pd.Series:
    """g CO2/kWh of each interval: the generation-weighted mean of ``factors``; intervals
    with a type missing (not yet reported) take the types that are there.

    Raises
    ------
    DataError
        A production type without a factor, or an interval with no generation.
    """
    unknown = [t for t in mw.columns if t not in factors]
    if unknown:
        raise DataError(f"{NAME}: no emission factor for production type(s) "
                        f"{', '.join(unknown)} (add them to factors_g_per_kwh)")
    mw = mw.clip(lower=0.0)
    total = mw.sum(axis=1, min_count=1)
    if (total.fillna(0) <= 0).any():
        at = total.index[int((total.fillna(0) <= 0).to_numpy().argmax())]
        raise DataError(f"{NAME}: no generation reported at {at.isoformat()}")
    weighted = (mw * pd.Series(factors)[mw.columns]).sum(axis=1)
    return (weighted / total).rename("co2_g_per_kwh")


@register("carbon", "entsoe")
class EntsoeCarbon:
    """Carbon intensity of a bidding zone's generation mix (ENTSO-E A75). [g CO2/kWh]"""

    @dataclass(frozen=True)
    class Config:
        token: str = opt(help="ENTSO-E transparency API security token (use !secret)",
                         secret=True)
        area: str = opt(help=f"Bidding zone ({', '.join(AREAS)}) or its EIC code")
        factors_g_per_kwh: dict[str, float] = opt(
            {}, "Emission factors per production type replacing the built-in ones, e.g. "
            "{B02: 1100} (g CO2-eq/kWh)")
        base_url: str = opt("https://web-api.tp.entsoe.eu/api", "Transparency API endpoint")
        timeout_s: float = opt(20.0, "HTTP timeout per attempt", "s", gt=0)
        min_interval_s: int = min_interval_opt(
            900, "generation is published per 15 min / hour; ENTSO-E limits calls per token")

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.policy = policy or policy_for(config.timeout_s)
        self.eic = area_eic(config.area, NAME)
        self.factors = {**FACTORS_G_PER_KWH, **{k.upper(): float(v) for k, v in
                                                 config.factors_g_per_kwh.items()}}

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """The intensity from a little before ``start`` up to ``end`` as far as published."""
        fmt = "%Y%m%d%H%M"
        params = {"securityToken": self.config.token, "documentType": "A75",
                  "processType": "A16", "in_Domain": self.eic,
                  "periodStart": (start - LOOKBACK).tz_convert("UTC").floor("h").strftime(fmt),
                  "periodEnd": end.tz_convert("UTC").ceil("h").strftime(fmt)}
        response = request(NAME, "GET", self.config.base_url, params=params,
                           policy=self.policy, secrets=(self.config.token,))
        mw = parse_a75(response.content)
        if mw is None:
            raise ProviderUnavailable(NAME, f"no generation published for {self.config.area} "
                                      f"from {start:%Y-%m-%d %H:%M} UTC")
        series = intensity(mw, self.factors)
        steps = series.index.to_series().diff().dropna()
        resolution_s = int(steps.min().total_seconds()) if len(steps) else 3600
        return TimeSeries(series, resolution_s, f"ENTSO-E A75 {self.config.area}")
