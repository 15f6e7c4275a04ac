"""Load forecast from a Home Assistant consumption entity's history (issue 16).

``load: {type: homeassistant, url, token: !secret ha_token, entity_id: sensor.house_power}``
fetches ``window_days`` of the entity's history in one call,
``GET /api/history/period/<start>?filter_entity_id=<entity>&end_time=<end>&minimal_response``
(a list with one list of state changes; with ``minimal_response`` only the first row carries
``attributes``), turns it into hourly load [kW] and fits the same model as ``load: history``
(:func:`planner.providers.load.history.fit`: weekday/weekend hourly profile, recent level,
baseload floor, safety margin).

The entity is either

* a **power** sensor (``unit_of_measurement`` W or kW): a step function between state
  changes, averaged over each hour (time-weighted);
* an **energy** meter (Wh or kWh, ``total_increasing``): the increase within each hour is the
  mean power; a decrease (meter reset) leaves that hour out.

``unavailable``/``unknown`` states are gaps, not zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries, min_interval_opt
from planner.providers.http import RetryPolicy, policy_for
from planner.providers.load.history import fit
from planner.providers.state.homeassistant import (
    NO_VALUE,
    HaClient,
    parse_time,
    token_opt,
    url_opt,
)

NAME = "load (homeassistant)"
#: unit -> (quantity, factor to kW or kWh)
UNITS = {"W": ("power", 1e-3), "kW": ("power", 1.0), "Wh": ("energy", 1e-3),
         "kWh": ("energy", 1.0)}


def parse_history(payload: object, entity_id: str) -> tuple[pd.Series, str | None]:
    """HA's history answer → (values at each state change [float, NaN = no value], unit)."""
    if not isinstance(payload, list):
        raise ProviderUnavailable(NAME, "malformed history (expected a list)")
    rows = next((r for r in payload if isinstance(r, list) and r
                 and (r[0].get("entity_id") in (None, entity_id))), [])
    unit = None
    times, values = [], []
    for row in rows:
        if not isinstance(row, dict) or "state" not in row or "last_changed" not in row:
            raise ProviderUnavailable(NAME, "malformed history row (no state/last_changed)")
        unit = unit or (row.get("attributes") or {}).get("unit_of_measurement")
        raw = str(row["state"]).strip()
        try:
            value = np.nan if raw.lower() in NO_VALUE else float(raw)
        except ValueError:
            value = np.nan
        times.append(parse_time(row["last_changed"], "last_changed", NAME))
        values.append(value)
    index = pd.DatetimeIndex(times, name="ts_utc")
    series = pd.Series(values, index=index, dtype=float).sort_index()
    return series[~series.index.duplicated(keep="last")], unit


def _held(changes: pd.Series, grid: pd.DatetimeIndex) -> pd.Series:
    """The step function of ``changes`` sampled at ``grid`` (NaN before the first value and
    while HA had no value)."""
    marked = changes.fillna(-np.inf)  # keep "no value" as a held state
    held = marked.reindex(marked.index.union(grid)).ffill().reindex(grid)
    return held.replace(-np.inf, np.nan)


def hourly_load_kw(changes: pd.Series, quantity: str, factor: float,
                   start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Hourly mean load [kW] over ``[start, end)`` (whole UTC hours)."""
    hours = pd.date_range(start.ceil("h"), end.floor("h"), freq="1h", name="ts_utc")
    if len(hours) < 2 or changes.empty:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC", name="ts_utc"))
    if quantity == "power":
        minutes = pd.date_range(hours[0], hours[-1], freq="1min", inclusive="left")
        kw = _held(changes, minutes) * factor
        hourly = kw.resample("1h").mean()
        complete = kw.notna().resample("1h").mean() >= 0.9  # most of the hour known
        return hourly.where(complete).reindex(hours[:-1])
    kwh = _held(changes, hours) * factor
    step = kwh.diff().shift(-1).iloc[:-1]  # energy within [h, h+1)
    return step.where(step >= 0)


@register("load", "homeassistant")
class HomeAssistantLoad:
    """Load forecast from a Home Assistant power or energy entity's history. [kW]"""

    @dataclass(frozen=True)
    class Config:
        url: str = url_opt()
        token: str = token_opt()
        entity_id: str = opt(help="The household consumption entity: power (W, kW) or an "
                             "energy meter (Wh, kWh), e.g. sensor.house_consumption")
        window_days: int = opt(28, "Days of history in the profile (HA's recorder keeps 10 "
                               "by default: raise purge_keep_days)", "d", ge=1, le=365)
        min_days: int = opt(7, "Less history than this: default profile (degraded)", "d",
                            ge=1)
        safety_margin_pct: float = opt(10.0, "Added to the forecast", "%", ge=0, le=100)
        timeout_s: float = opt(30.0, "HTTP timeout per attempt (history can be large)", "s",
                               gt=0)
        min_interval_s: int = min_interval_opt(3600, "the profile changes slowly; one "
                                               "history call per hour spares HA's recorder")

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.context = context
        self.client = HaClient(NAME, config.url, config.token,
                               policy or policy_for(config.timeout_s))

    def history(self, until: pd.Timestamp) -> pd.Series:
        """Hourly load [kW] of the ``window_days`` before ``until`` (UTC)."""
        entity = self.config.entity_id
        start = (until - pd.Timedelta(days=self.config.window_days)).floor("h")
        path = "/api/history/period/" + quote(start.isoformat(), safe="")
        payload = self.client.get(path, params={
            "filter_entity_id": entity, "end_time": until.isoformat(),
            "minimal_response": "", "significant_changes_only": "0"}, entity_id=entity)
        changes, unit = parse_history(payload, entity)
        if changes.empty:
            raise ProviderUnavailable(NAME, f"Home Assistant has no history of {entity} "
                                      f"since {start:%Y-%m-%d %H:%M}Z")
        if unit not in UNITS:
            raise ProviderConfigError(NAME, f"{entity} is in {unit!r}; expected power (W, "
                                      "kW) or energy (Wh, kWh)")
        quantity, factor = UNITS[unit]
        return hourly_load_kw(changes, quantity, factor, start, until)

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """Hourly forecast covering ``[start, end)``. [kW]"""
        tz = self.context.site.tz
        h = self.history(self.context.now).dropna()
        days = len(h) / 24.0
        if days < self.config.min_days:
            raise ProviderUnavailable(NAME, f"only {days:.1f} days of load history in Home "
                                      f"Assistant (min_days is {self.config.min_days})")
        model = fit(h, tz, self.config.window_days)
        idx = pd.date_range(start.floor("h"), end.ceil("h"), freq="1h", inclusive="left",
                            name="ts_utc")
        kw = model.predict(idx, tz) * (1 + self.config.safety_margin_pct / 100.0)
        return TimeSeries(pd.Series(kw, index=idx, name="load_kw"), 3600,
                          f"Home Assistant {self.config.entity_id} profile ({days:.0f} d, "
                          f"level {model.level:.2f}, +{self.config.safety_margin_pct:g} %)")
