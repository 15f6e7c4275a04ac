"""The whole input fallback chain of a planning run: fresh → price cache → flat prices.

=====================================  ==================================================
what failed                            what the run plans on (flagged ``degraded``)
=====================================  ==================================================
nothing                                the providers' data (:func:`gather.gather`)
PV or load forecast (transient)        clear-sky PV / the default load profile, inside
                                       :func:`gather.gather` (:mod:`planner.inputs.degraded`)
price provider (transient)             the spot prices of the last saved plans
                                       (``price_cache``, :func:`from_price_cache`)
price provider and the cache           a flat price: plain self-consumption
                                       (:func:`without_prices`)
=====================================  ==================================================

Only a transient price failure (:class:`ProviderUnavailable`: timeout, 5xx) falls through; a
bad token or a missing file is a configuration problem and is raised, never hidden by old or
made-up data. ``helios plan``, :func:`planner.plan.run.plan_once` (benchmarks, tests) and
anything else that plans from a config all go through :func:`gather_with_fallback`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import pandas as pd

from planner.config import HeliosConfig
from planner.core import timegrid
from planner.core.errors import HeliosError, ProviderError, StorageError
from planner.history.store import Store
from planner.inputs import degraded
from planner.inputs.gather import gather
from planner.inputs.types import Inputs
from planner.providers.base import TimeSeries

log = logging.getLogger(__name__)

#: how a step of the chain tells the caller that it stands in for the providers
Warn = Callable[[str], None]


def _log_warning(message: str) -> None:
    log.warning("%s", message)


def gather_with_fallback(cfg: HeliosConfig, now: pd.Timestamp,
                         warn: Warn | None = None) -> Inputs:
    """The inputs of a run at ``now``: fresh, else on cached prices, else on a flat price.

    ``warn`` receives one line when the prices are not fresh (``helios plan`` prints it on
    stderr as ``helios: warning: ...``; default: a log warning).

    Raises
    ------
    HeliosError
        Anything the chain may not stand in for (see the module docstring).
    """
    warn = warn or _log_warning
    try:
        return gather(cfg, now)
    except ProviderError as exc:  # prices down: plan on the history's price cache, if any
        try:
            return from_price_cache(cfg, now, exc, warn)
        except ProviderError as cache_exc:  # no cache either: self-consumption, flagged
            return without_prices(cfg, now, cache_exc, warn)


def from_price_cache(cfg: HeliosConfig, now: pd.Timestamp, error: HeliosError,
                     warn: Warn | None = None) -> Inputs:
    """Inputs on the last known prices when the price provider is down (transiently).

    The cached spot prices (``price_cache``, filled by every saved plan) from the current
    slot on, as far as they are contiguous, go through the tariff like fresh ones; the prices
    input is marked *degraded*, with the data's age. Re-raises ``error`` when there is nothing
    usable (or it is not a transient price failure, or storage is off).
    """
    if not (degraded.is_transient_price_failure(error) and cfg.storage.enabled):
        raise error
    now = timegrid.to_utc(now, "now")
    start = timegrid.floor_to_slot(now, cfg.planning.slot_s)
    end = start + pd.Timedelta(hours=cfg.planning.horizon_h)
    try:
        with Store.from_config(cfg) as store:
            cached = store.cached_prices(cfg.prices.type, start, end)
    except StorageError:
        raise error from None
    if cached.empty or cached.index[0] != start:
        raise error
    slot_s = int(cached["slot_s"].iloc[0])
    gaps = (cached.index[1:] - cached.index[:-1]) != pd.Timedelta(seconds=slot_s)
    if gaps.any():  # use the contiguous part from now on
        cached = cached.iloc[: int(gaps.argmax()) + 1]
    fetched = cached["fetched_at"].min()
    spot = pd.Series(cached["spot_eur_per_kwh"].to_numpy(dtype=float),
                     index=cached.index.rename("ts_utc"), name="spot_eur_per_kwh")
    inputs = gather(cfg, now, prices=TimeSeries(spot, slot_s, "price_cache table"))
    status = tuple(
        dataclasses.replace(
            st, provider=f"{cfg.prices.type} (cached)", source="price_cache table",
            degraded=True, fetched_at=fetched,
            detail=f"{error}; planned on prices fetched "
                   f"{fetched.tz_convert(cfg.site.tz):%Y-%m-%d %H:%M %Z}")
        if st.kind == "prices" else st for st in inputs.status)
    inputs = dataclasses.replace(inputs, status=status)
    (warn or _log_warning)(
        f"{error}; planning on cached prices until "
        f"{inputs.end.tz_convert(cfg.site.tz):%Y-%m-%d %H:%M %Z}")
    return inputs


def without_prices(cfg: HeliosConfig, now: pd.Timestamp, error: HeliosError,
                   warn: Warn | None = None) -> Inputs:
    """The last resort: inputs for a plain self-consumption plan on a flat price, flagged
    (:func:`planner.inputs.degraded.as_self_consumption`). Re-raises ``error`` unless it is a
    transient price failure."""
    if not degraded.is_transient_price_failure(error):
        raise error
    inputs = gather(degraded.flat_price_config(cfg), now)
    inputs = degraded.as_self_consumption(inputs, cfg, error)
    (warn or _log_warning)(
        f"{error}; no cached prices: planning plain self-consumption "
        "(flat price), flagged as degraded")
    return inputs
