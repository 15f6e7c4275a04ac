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
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from planner import providers
from planner.core import timegrid
from planner.core.errors import ProviderError, ProviderUnavailable

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
    cos_z = cos_zenith(index + step / 2, site.latitude, site.longitude)
    ghi = np.where(cos_z > 0, 1098.0 * cos_z * np.exp(-0.059 / np.maximum(cos_z, 1e-3)), 0.0)
    return np.clip(ghi / 1000.0 * peak_kw * factor, 0.0, None)


def cos_zenith(times: pd.DatetimeIndex, latitude: float, longitude: float) -> np.ndarray:
    """Cosine of the solar zenith angle (Spencer 1971 declination and equation of time;
    good to a few tenths of a degree, plenty for a fallback). [-]"""
    t = times.tz_convert("UTC")
    doy = t.day_of_year.to_numpy()
    hour = (t.hour + t.minute / 60.0 + t.second / 3600.0).to_numpy()
    g = 2 * np.pi / 365.0 * (doy - 1 + (hour - 12) / 24.0)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot_min = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                        - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    solar_time_h = hour + (eot_min + 4 * longitude) / 60.0
    hour_angle = np.radians(15.0 * (solar_time_h - 12.0))
    lat = np.radians(latitude)
    return np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)


def default_load_kw(site, index: pd.DatetimeIndex) -> np.ndarray:
    """:data:`DEFAULT_LOAD_PROFILE_KW` by the site's local hour of each slot. [kW]"""
    return DEFAULT_LOAD_PROFILE_KW[index.tz_convert(site.tz).hour.to_numpy()]


def forecast_or_fallback(kind: str, cfg, ctx, start: pd.Timestamp, index: pd.DatetimeIndex,
                         slot_s: int):
    """PV or load on the slot grid from the configured provider, else the fallback.

    Returns
    -------
    (numpy.ndarray, InputStatus)
        Power per slot [kW] and what was delivered (``degraded`` when the fallback was used).
    """
    from planner.inputs.gather import InputStatus

    pconf = getattr(cfg, kind)
    end = index[-1] + pd.Timedelta(seconds=slot_s)
    try:
        ts = providers.create(kind, pconf, ctx).forecast(start, end)
        values = timegrid.to_slot_grid(ts.values, ts.resolution_s, index, slot_s, "mean",
                                       f"{kind} ({pconf.type})")
        return values, InputStatus(kind, pconf.type, ts.source, ts.values.index[0], ts.end)
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


def self_consumption_inputs(cfg, now: pd.Timestamp, error: ProviderError):
    """Inputs for a plain self-consumption plan when no price is available (flat prices).

    Raises ``error`` again unless it is a transient price failure.
    """
    import dataclasses

    from planner.config import ProviderConfig
    from planner.inputs import gather as inputs_mod

    if not (isinstance(error, ProviderUnavailable) and str(error.provider).startswith("prices")):
        raise error
    hours = min(SELF_CONSUMPTION_HORIZON_H, cfg.planning.horizon_h)
    start = timegrid.floor_to_slot(timegrid.to_utc(now, "now"), cfg.planning.slot_s)
    flat = providers.config_class("prices", "flat")(price_eur_per_kwh=FLAT_SPOT_EUR_PER_KWH,
                                                    hours=hours)
    flat_cfg = dataclasses.replace(cfg, prices=ProviderConfig("flat", flat))
    inputs = inputs_mod.gather(flat_cfg, now)
    # buy well above sell in every slot, whatever the tariff: storing PV surplus and using it
    # later always pays, exporting beats curtailing, and buying to store never does
    buy = np.maximum(inputs.buy_eur_per_kwh, FLAT_SPOT_EUR_PER_KWH)
    sell = np.clip(inputs.sell_eur_per_kwh, 0.0, SELL_SHARE_OF_BUY * buy)
    sell = np.maximum(sell, 1e-3)
    inputs = dataclasses.replace(inputs, buy_eur_per_kwh=buy, sell_eur_per_kwh=sell)
    detail = (f"{error}; no cached prices: plain self-consumption plan on a flat price for "
              f"{hours:g} h (no grid charging, no arbitrage)")
    log_once("prices", detail)
    status = tuple(
        inputs_mod.InputStatus("prices", f"{cfg.prices.type} (unavailable)", "flat price",
                               start, inputs.end, True, detail)
        if st.kind == "prices" else st for st in inputs.status)
    return dataclasses.replace(inputs, status=status)
