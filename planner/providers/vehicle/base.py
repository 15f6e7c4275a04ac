"""The vehicle state, the at-home test and the SQL cache shared by the web vehicle providers.

A plan runs every 5 minutes; a vendor call costs money (Tesla bills every ``vehicle_data``,
US$0.002) or a daily quota (Kia/Hyundai forced refreshes), and waking a sleeping car drains
its 12 V battery. So each web provider is asked at most every ``min_interval_s`` and its last
state is kept in SQL, in the ``forecast_cache`` table (no new table: one row per provider,
``kind = 'vehicle'``, ``slot_start`` = when the car measured it, ``value`` = SoC [%], the
flags as a short JSON text in ``source``, ``fetched_at`` = when Helios last asked). In between,
and whenever the car is asleep, the cached state is returned with ``from_cache = True``.
Without storage (``storage.enabled: false``) every plan asks the vendor.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderUnavailable, StorageError
from planner.history.store import Store
from planner.providers.base import ProviderContext

log = logging.getLogger(__name__)

#: the ``forecast_cache.kind`` of a cached vehicle state
CACHE_KIND = "vehicle"
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class VehicleState:
    """What the planner needs to know about the car, as measured by the car."""

    soc_pct: float
    plugged_in: bool
    charging: bool
    #: within ``home_radius_m`` of the site; None = the car reported no location
    at_home: bool | None
    #: when the car measured this [UTC]
    measured_at: pd.Timestamp
    #: e.g. ``"tesla vehicle_data"``, ``"kia_hyundai cached status"``
    source: str
    #: the last answer kept in SQL (not asked again, or the car was asleep)
    from_cache: bool = False


def home_radius_opt() -> Any:
    return opt(150.0, "The car counts as at home within this distance of the site's "
               "latitude/longitude (or home_latitude/home_longitude)", "m", gt=0)


def home_latitude_opt() -> Any:
    return opt(None, "Home latitude (default site.latitude)", "deg", ge=-90, le=90)


def home_longitude_opt() -> Any:
    return opt(None, "Home longitude (default site.longitude)", "deg", ge=-180, le=180)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance between two points given in degrees. [m]"""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def at_home(lat: Any, lon: Any, home: tuple[float, float], radius_m: float) -> bool | None:
    """Whether (lat, lon) is within ``radius_m`` of ``home``; None when no location is known."""
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat_f) and math.isfinite(lon_f)):
        return None
    return distance_m(lat_f, lon_f, home[0], home[1]) <= radius_m


def home_of(options: Any, context: ProviderContext) -> tuple[float, float]:
    """The provider's home point: its own home_latitude/longitude, else the site's."""
    lat = getattr(options, "home_latitude", None)
    lon = getattr(options, "home_longitude", None)
    return (float(context.site.latitude if lat is None else lat),
            float(context.site.longitude if lon is None else lon))


def _encode(state: VehicleState) -> tuple[pd.Series, str]:
    flags = {"p": state.plugged_in, "c": state.charging, "h": state.at_home,
             "s": state.source[:120]}
    return pd.Series([state.soc_pct], index=pd.DatetimeIndex([state.measured_at])), \
        json.dumps(flags, separators=(",", ":"))


def _decode(values: pd.Series, text: str) -> VehicleState | None:
    try:
        flags = json.loads(text)
        return VehicleState(float(values.iloc[0]), bool(flags["p"]), bool(flags["c"]),
                            None if flags["h"] is None else bool(flags["h"]),
                            values.index[0], str(flags["s"]), from_cache=True)
    except (ValueError, KeyError, TypeError, IndexError):
        return None


class VehicleCache:
    """The last state of one vehicle provider in SQL (``forecast_cache``)."""

    def __init__(self, name: str, key: str, config: Any):
        self.name, self.key, self.cfg = name, key, config

    @property
    def enabled(self) -> bool:
        return self.cfg is not None and bool(self.cfg.storage.enabled)

    def load(self) -> tuple[VehicleState, pd.Timestamp] | None:
        """(state, when Helios last asked the vendor) or None (nothing kept, no storage)."""
        if not self.enabled:
            return None
        try:
            with Store.from_config(self.cfg) as store:
                got = store.cached_forecast(CACHE_KIND, self.key)
        except StorageError as exc:
            log.warning("%s: vehicle cache unavailable (%s); asking the vendor", self.name, exc)
            return None
        if got is None:
            return None
        values, _resolution, fetched_at, text = got
        state = _decode(values, text)
        return None if state is None else (state, fetched_at)

    def save(self, state: VehicleState, asked_at: pd.Timestamp) -> None:
        if not self.enabled:
            return
        values, text = _encode(state)
        try:
            with Store.from_config(self.cfg) as store:
                store.save_forecast(CACHE_KIND, self.key, values, 0, asked_at, text)
        except StorageError as exc:
            log.warning("%s: cannot cache the vehicle state (%s)", self.name, exc)


class CarAsleep(Exception):
    """The vendor says the car is asleep or offline: do not wake it, use the cached state."""


def read_limited(cache: VehicleCache, now: pd.Timestamp, min_interval_s: int,
                 fetch: Callable[[], VehicleState]) -> VehicleState:
    """The cached state while it was asked less than ``min_interval_s`` ago, else ``fetch()``.

    ``fetch`` raising :class:`CarAsleep` returns the cached state (of any age: a sleeping
    car's state does not change) and counts as an answer, so an asleep car is not polled more
    often than a live one. With nothing cached that is :class:`ProviderUnavailable`.
    """
    kept = cache.load()
    if kept is not None:
        state, asked_at = kept
        age_s = (now - asked_at).total_seconds()
        if 0 <= age_s < min_interval_s:
            return state
    try:
        state = fetch()
    except CarAsleep as exc:
        if kept is None:
            raise ProviderUnavailable(cache.name, f"{exc}; not woken, and no earlier state is "
                                      "cached") from None
        log.info("%s: %s; using the state measured %s (not woken)", cache.name, exc,
                 kept[0].measured_at.isoformat())
        cache.save(kept[0], now)
        return replace(kept[0], source=f"{kept[0].source} (asleep)", from_cache=True)
    cache.save(state, now)
    return state
