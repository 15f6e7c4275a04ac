"""Call each web provider only as often as its terms allow (issue 16).

``helios plan`` runs every 5 minutes (288 times a day); Solcast's free plan allows about 10
calls a day, Open-Meteo's forecasts change hourly at best, day-ahead prices once a day. A
provider with a ``min_interval_s`` option (:func:`planner.providers.base.min_interval_opt`;
defaults: Tibber, Nord Pool, ENTSO-E 900 s, Open-Meteo 3600 s, Solcast 9000 s) is called at
most that often: its answer is kept in SQL (``forecast_cache``, one series per provider and
options) and, until ``min_interval_s`` has passed, the run plans on that series. The input
status then names the provider ``<type> (cached)`` with the age of the data (``age_s`` in
``plan_history.inputs``); that is not *degraded*: it is the provider's answer, only not
asked again. A cached series that no longer covers the current slot is not used.

Without storage (``storage.enabled: false``) or with ``min_interval_s: 0`` every run calls
the provider. A failing cache is never a reason not to plan: the provider is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from planner.config import HeliosConfig
from planner.core.errors import StorageError
from planner.history.store import Store
from planner.providers.base import TimeSeries, cache_key

log = logging.getLogger(__name__)

__all__ = ["Fetched", "cache_key", "fetch_limited"]


@dataclass(frozen=True)
class Fetched:
    """A provider's series and, when it came from the cache, when it was fetched."""

    series: TimeSeries
    #: None = fetched during this run
    fetched_at: pd.Timestamp | None = None


def fetch_limited(kind: str, cfg: HeliosConfig, now: pd.Timestamp, start: pd.Timestamp,
                  call: Callable[[], TimeSeries]) -> Fetched:
    """``call()`` the ``kind`` provider, or reuse its last answer while it is younger than
    the provider's ``min_interval_s`` and still covers ``start``."""
    pconf = getattr(cfg, kind)
    interval_s = int(getattr(pconf.options, "min_interval_s", 0) or 0)
    if interval_s <= 0 or not cfg.storage.enabled:
        return Fetched(call())
    key = cache_key(pconf.type, pconf.options)
    try:
        with Store.from_config(cfg) as store:
            cached = store.cached_forecast(kind, key)
    except StorageError as exc:
        log.warning("%s (%s): forecast cache unavailable (%s); calling the provider", kind,
                    pconf.type, exc)
        cached = None
    if cached is not None:
        values, resolution_s, fetched_at, source = cached
        age_s = (now - fetched_at).total_seconds()
        ts = TimeSeries(values, resolution_s, source)
        if 0 <= age_s < interval_s and values.index[0] <= start < ts.end:
            return Fetched(ts, fetched_at)
    ts = call()
    try:
        with Store.from_config(cfg) as store:
            store.save_forecast(kind, key, ts.values, ts.resolution_s, now, ts.source)
    except StorageError as exc:
        log.warning("%s (%s): cannot cache the forecast (%s)", kind, pconf.type, exc)
    return Fetched(ts)
