"""Degraded modes: plan anyway, flagged, when an optional input fails (issue 4).

=================================  ========================================================
input failure                      what the plan uses instead (InputStatus.degraded = True)
=================================  ========================================================
prices unreachable, cache failed   a **flat price** for 24 h (the tariff applied to a spot
                                   price of 0.10 EUR/kWh; sell capped at 10 % of buy): with
                                   equal prices in every slot grid arbitrage earns nothing,
                                   so the optimiser only stores PV surplus for later use
                                   and discharges for the load (plain self-consumption),
                                   within the battery limits, as the inverter would on its
                                   own. The same optimiser and checks run, so the executor
                                   gets a normal schedule.
PV forecast unavailable            pvlib clear-sky GHI (Haurwitz, as in pvlib)
                                   x ``peak_kw`` of the PV provider (0 if it has none) x
                                   :data:`PV_CLEARSKY_FACTOR` (conservative: expect less PV).
load forecast unavailable          :data:`DEFAULT_LOAD_PROFILE_KW`, a typical household day
                                   (about 3,500 kWh/year), in the site's local time.
=================================  ========================================================

Only *transient* failures (:class:`ProviderUnavailable`: timeout, 5xx, 429, no forecast yet)
degrade. A permanent problem (bad token, unknown area, a CSV file with a gap) still ends the
run with exit 3: planning on made-up data would hide a configuration error.
Each degradation is logged once per process (a oneshot ``helios plan`` logs it once per run),
and is shown in the plan summary, the report and ``plan_history.inputs_degraded``.
This module holds the stand-ins; :mod:`planner.inputs.fallback` decides when the price
stand-in is used (after the price cache), :mod:`planner.inputs.gather` calls
:func:`forecast_or_fallback` for PV and load.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd

from planner import providers
from planner.config import HeliosConfig, ProviderConfig
from planner.core import timegrid
from planner.core.errors import HeliosError, ProviderError, ProviderUnavailable
from planner.core.solar import cos_zenith, haurwitz_ghi_w_per_m2
from planner.inputs.cache import fetch_limited
from planner.inputs.types import Inputs, InputStatus

__all__ = ["DEFAULT_LOAD_PROFILE_KW", "FLAT_SPOT_EUR_PER_KWH", "PV_CLEARSKY_FACTOR",
           "SELF_CONSUMPTION_HORIZON_H", "SELL_SHARE_OF_BUY", "as_self_consumption",
           "clearsky_pv_kw", "cos_zenith", "default_load_kw", "flat_price_config",
           "forecast_or_fallback", "is_transient_price_failure", "log_once"]

log = logging.getLogger(__name__)

#: clear-sky PV is scaled by this when the PV forecast is missing (rather too little PV)
PV_CLEARSKY_FACTOR = 0.5
#: hours planned on flat prices when neither the price provider nor the cache has prices
SELF_CONSUMPTION_HORIZON_H = 24.0
#: flat spot price of the self-consumption mode (the tariff is applied on top) [EUR/kWh]
FLAT_SPOT_EUR_PER_KWH = 0.10
#: in self-consumption mode the sell price is at most this share of the buy price
SELL_SHARE_OF_BUY = 0.1
#: typical household load per local hour of day [kW] (mean 0.40 kW ~ 3,500 kWh/year)
DEFAULT_LOAD_PROFILE_KW = np.array([
    0.25, 0.22, 0.20, 0.20, 0.21, 0.25, 0.38, 0.50, 0.45, 0.40, 0.40, 0.45,
    0.50, 0.45, 0.38, 0.36, 0.40, 0.52, 0.68, 0.72, 0.65, 0.55, 0.42, 0.31])

_logged: set[tuple[str, str]] = set()


def log_once(kind: str, message: str) -> None:
    """Log a degradation once per process (per input kind and message)."""
    if (kind, message) not in _logged:
        _logged.add((kind, message))
        log.warning("%s degraded: %s", kind, message)


def is_transient_price_failure(error: HeliosError) -> bool:
    """Whether ``error`` is a transient failure of the price provider (the only one the price
    cache and the flat-price plan may stand in for: a bad token must not be hidden)."""
    return isinstance(error, ProviderUnavailable) and str(error.provider).startswith("prices")


def clearsky_pv_kw(site, index: pd.DatetimeIndex, peak_kw: float,
                   factor: float = PV_CLEARSKY_FACTOR) -> np.ndarray:
    """Clear-sky PV power on the slot grid, scaled down. [kW]

    Haurwitz clear-sky GHI (as in pvlib: ``1098 cos z exp(-0.059 / cos z)`` W/m², needs no
    turbidity data) at the slot midpoints, treated as plane-of-array irradiance on a
    ``peak_kw`` array (1 kW/m² → ``peak_kw``), times ``factor``.
    """
    if peak_kw <= 0 or len(index) == 0:
        return np.zeros(len(index))
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=15)
    ghi = haurwitz_ghi_w_per_m2(cos_zenith(index + step / 2, site.latitude, site.longitude))
    return np.clip(ghi / 1000.0 * peak_kw * factor, 0.0, None)


def default_load_kw(site, index: pd.DatetimeIndex) -> np.ndarray:
    """:data:`DEFAULT_LOAD_PROFILE_KW` by the site's local hour of each slot. [kW]"""
    return DEFAULT_LOAD_PROFILE_KW[index.tz_convert(site.tz).hour.to_numpy()]


def forecast_or_fallback(kind: str, cfg, ctx, start: pd.Timestamp, index: pd.DatetimeIndex,
                         slot_s: int) -> tuple[np.ndarray, InputStatus]:
    """PV or load on the slot grid from the configured provider (or its last answer within
    its ``min_interval_s``, :mod:`planner.inputs.cache`), else the fallback.

    Returns
    -------
    (numpy.ndarray, InputStatus)
        Power per slot [kW] and what was delivered (``degraded`` when the fallback was used).
    """
    pconf = getattr(cfg, kind)
    end = index[-1] + pd.Timedelta(seconds=slot_s)
    try:
        got = fetch_limited(kind, cfg, ctx.now, start,
                            lambda: providers.create(kind, pconf, ctx).forecast(start, end))
        ts = got.series
        values = timegrid.to_slot_grid(ts.values, ts.resolution_s, index, slot_s, "mean",
                                       f"{kind} ({pconf.type})")
        name = pconf.type if got.fetched_at is None else f"{pconf.type} (cached)"
        return values, InputStatus(kind, name, ts.source, ts.values.index[0], ts.end,
                                   fetched_at=got.fetched_at)
    except ProviderUnavailable as exc:
        reason = str(exc)
    if kind == "pv":
        peak = float(getattr(pconf.options, "peak_kw", 0.0) or 0.0)
        values = clearsky_pv_kw(cfg.site, index, peak)
        detail = (f"{reason}; using clear-sky PV x {PV_CLEARSKY_FACTOR:g} "
                  f"({peak:g} kW peak)")
        source = "clear-sky (Haurwitz)"
    else:
        values = default_load_kw(cfg.site, index)
        detail = f"{reason}; using the default household profile (~3,500 kWh/year)"
        source = "default load profile"
    log_once(kind, detail)
    return values, InputStatus(kind, f"{pconf.type} (fallback)", source, index[0], end,
                               True, detail)


def _flat_hours(cfg: HeliosConfig) -> float:
    return min(SELF_CONSUMPTION_HORIZON_H, cfg.planning.horizon_h)


def flat_price_config(cfg: HeliosConfig) -> HeliosConfig:
    """``cfg`` with the ``flat`` price provider at :data:`FLAT_SPOT_EUR_PER_KWH` for
    :data:`SELF_CONSUMPTION_HORIZON_H` (at most the planning horizon)."""
    flat = providers.config_class("prices", "flat")(price_eur_per_kwh=FLAT_SPOT_EUR_PER_KWH,
                                                    hours=_flat_hours(cfg))
    return dataclasses.replace(cfg, prices=ProviderConfig("flat", flat))


def as_self_consumption(inputs: Inputs, cfg: HeliosConfig, error: ProviderError) -> Inputs:
    """Inputs gathered on :func:`flat_price_config` made into a plain self-consumption plan's,
    with the prices flagged as degraded (``error`` says why there were none)."""
    # buy well above sell in every slot, whatever the tariff: storing PV surplus and using it
    # later always pays, exporting beats curtailing, and buying to store never does
    buy = np.maximum(inputs.buy_eur_per_kwh, FLAT_SPOT_EUR_PER_KWH)
    sell = np.clip(inputs.sell_eur_per_kwh, 0.0, SELL_SHARE_OF_BUY * buy)
    sell = np.maximum(sell, 1e-3)
    inputs = dataclasses.replace(inputs, buy_eur_per_kwh=buy, sell_eur_per_kwh=sell)
    detail = (f"{error}; no cached prices: plain self-consumption plan on a flat price for "
              f"{_flat_hours(cfg):g} h (no grid charging, no arbitrage)")
    log_once("prices", detail)
    status = tuple(
        InputStatus("prices", f"{cfg.prices.type} (unavailable)", "flat price",
                    inputs.index[0], inputs.end, True, detail)
        if st.kind == "prices" else st for st in inputs.status)
    return dataclasses.replace(inputs, status=status)
