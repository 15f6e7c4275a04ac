"""PV forecast from Open-Meteo irradiance, turned into power with pvlib (issue 4).

Open-Meteo (free, no key) forecasts hourly ``shortwave_radiation`` (GHI),
``direct_normal_irradiance`` (DNI), ``diffuse_radiation`` (DHI) [W/m²] and ``temperature_2m``
[°C] for a latitude/longitude. Radiation values are **means over the preceding hour**
(labelled at the period end); :func:`parse_forecast` relabels them to interval starts.
:func:`pv_power_kw` then computes, per configured array, the solar position at each interval's
midpoint, the plane-of-array irradiance (isotropic sky transposition), the cell temperature
(Faiman) and PVWatts DC power, minus ``losses_pct``; the arrays are summed and the explicit
safety margin ``confidence_pct`` is applied last (Darkstar's ``pv.confidence``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from executor.configspec import opt
from planner.core.errors import ConfigError, ConfigProblem, HeliosError, ProviderUnavailable
from planner.core.solar import cos_zenith, haurwitz_ghi_w_per_m2
from planner.history.store import (
    Store,
    from_db_time,
    measurements,
    real_measurement,
    to_db_time,
)
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries, min_interval_opt
from planner.providers.http import RetryPolicy, json_body, policy_for, request
from planner.providers.load.history import read_csv_history

log = logging.getLogger(__name__)
NAME = "pv (openmeteo)"
_COLS = ("ghi_w_per_m2", "dni_w_per_m2", "dhi_w_per_m2", "temp_air_c")
_VARS = ("shortwave_radiation", "direct_normal_irradiance", "diffuse_radiation",
         "temperature_2m")


@dataclass(frozen=True)
class PvArray:
    """One PV array (a plane with its own orientation)."""

    kwp: float
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0  # 180 = south, 90 = east (pvlib convention)
    losses_pct: float = 14.0
    gamma_pct_per_c: float = -0.37  # power temperature coefficient


def build_arrays(arrays: dict) -> tuple[PvArray, ...]:
    """``pv.arrays`` (mapping name → {kwp, tilt_deg, azimuth_deg, losses_pct}) → PvArrays.

    Raises
    ------
    ConfigError
        Naming ``pv.arrays.NAME.KEY`` for every unknown key, missing kwp or bad value.
    """
    problems: list[ConfigProblem] = []
    out = []
    known = {f.name for f in fields(PvArray)}
    bounds = {"kwp": (0, 1000), "tilt_deg": (0, 90), "azimuth_deg": (0, 360),
              "losses_pct": (0, 100), "gamma_pct_per_c": (-2, 0)}
    for name, spec in (arrays or {}).items():
        path = f"pv.arrays.{name}"
        if not isinstance(spec, dict):
            problems.append(ConfigProblem(path, "a mapping with kwp, tilt_deg, azimuth_deg, "
                                          "losses_pct", type(spec).__name__))
            continue
        for key in set(spec) - known:
            problems.append(ConfigProblem(f"{path}.{key}", f"one of {', '.join(sorted(known))}",
                                          "an unknown key"))
        if "kwp" not in spec:
            problems.append(ConfigProblem(f"{path}.kwp", "the array's peak power [kWp]",
                                          "nothing"))
        ok = True
        for key, (lo, hi) in bounds.items():
            if key in spec:
                v = spec[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                    problems.append(ConfigProblem(f"{path}.{key}", f"a number in [{lo}, {hi}]",
                                                  repr(v)))
                    ok = False
        if ok and "kwp" in spec and not set(spec) - known:
            out.append(PvArray(**{k: float(v) for k, v in spec.items()}))
    if problems:
        raise ConfigError(problems)
    return tuple(out)


def pv_power_kw(latitude: float, longitude: float, starts: pd.DatetimeIndex, step_s: int,
                ghi, dni, dhi, temp_air_c, arrays: tuple[PvArray, ...]) -> np.ndarray:
    """AC-side PV power per interval from irradiance, summed over the arrays. [kW]

    Parameters
    ----------
    starts
        Interval starts (UTC); the sun's position is taken at the midpoints.
    ghi, dni, dhi
        Mean global horizontal, direct normal and diffuse horizontal irradiance. [W/m²]
    temp_air_c
        Air temperature. [°C]
    """
    import pvlib  # heavy (~0.5 s to import): only when this provider forecasts

    mid = starts + pd.Timedelta(seconds=step_s / 2)
    sun = pvlib.solarposition.get_solarposition(mid, latitude, longitude)
    ghi, dni, dhi = (np.clip(np.asarray(x, dtype=float), 0, None) for x in (ghi, dni, dhi))
    total = np.zeros(len(starts))
    for a in arrays:
        poa = pvlib.irradiance.get_total_irradiance(
            a.tilt_deg, a.azimuth_deg, sun["apparent_zenith"].to_numpy(),
            sun["azimuth"].to_numpy(), dni=dni, ghi=ghi, dhi=dhi, model="isotropic")
        poa_w = np.nan_to_num(np.asarray(poa["poa_global"], dtype=float), nan=0.0)
        cell_c = pvlib.temperature.faiman(poa_w, np.asarray(temp_air_c, dtype=float), 1.0)
        dc_kw = pvlib.pvsystem.pvwatts_dc(poa_w, cell_c, a.kwp, a.gamma_pct_per_c / 100.0)
        total += np.clip(np.asarray(dc_kw, dtype=float), 0, None) * (1 - a.losses_pct / 100)
    return total


def clearsky_power_kw(latitude: float, longitude: float, starts: pd.DatetimeIndex, step_s: int,
                      arrays: tuple[PvArray, ...]) -> np.ndarray:
    """The arrays' power under a clear sky (Haurwitz GHI, 15 % diffuse, 20 °C). [kW]"""
    cos_z = cos_zenith(starts + pd.Timedelta(seconds=step_s / 2), latitude, longitude)
    ghi = haurwitz_ghi_w_per_m2(cos_z)
    dhi = 0.15 * ghi
    dni = np.where(cos_z > 0.02, (ghi - dhi) / np.maximum(cos_z, 0.02), 0.0)
    return pv_power_kw(latitude, longitude, starts, step_s, ghi, dni, dhi,
                       np.full(len(starts), 20.0), arrays)


def learn_correction(measured_kw: pd.Series, latitude: float, longitude: float,
                     arrays: tuple[PvArray, ...], tz, min_days: int) -> np.ndarray | None:
    """Per-local-hour correction factors from measured PV history, or None (too little).

    For every daylight hour the clear-sky index of the *measurement* (measured / modelled
    clear-sky power of the configured arrays) is computed; its 90th percentile per local hour
    of day (the clear days) says how far the configuration is off at that hour: a wrong kWp
    or orientation, shading by a tree in the afternoon, soiling. The forecast is multiplied
    by these factors (clipped to [0.3, 1.5]); hours without enough data keep 1.
    """
    h = measured_kw.astype(float).resample("1h").mean().dropna()
    if len(h) < min_days * 24:
        return None
    cs = clearsky_power_kw(latitude, longitude, h.index, 3600, arrays)
    peak = sum(a.kwp for a in arrays)
    day = cs > 0.1 * peak
    ratio = pd.Series(h.to_numpy()[day] / cs[day], index=h.index[day])
    hours = ratio.index.tz_convert(tz).hour
    factors = np.ones(24)
    for hour, part in ratio.groupby(hours):
        if len(part) >= min_days:
            factors[hour] = float(np.clip(np.quantile(part, 0.9), 0.3, 1.5))
    return factors


def parse_forecast(payload: Any) -> tuple[pd.DataFrame, int]:
    """Open-Meteo ``/v1/forecast`` JSON → irradiance frame by interval start (UTC), step [s].

    Columns ``ghi_w_per_m2``, ``dni_w_per_m2``, ``dhi_w_per_m2``, ``temp_air_c``.
    """
    try:
        block = payload["hourly"]
        times = pd.to_datetime(block["time"], utc=True, format="ISO8601")
        frame = pd.DataFrame({name: pd.to_numeric(pd.Series(block[v], dtype=object),
                                                  errors="coerce").to_numpy(dtype=float)
                              for name, v in zip(_COLS, _VARS, strict=True)})
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(NAME, f"malformed forecast ({type(exc).__name__}: {exc})"
                                  ) from None
    if payload.get("utc_offset_seconds", 0) not in (0, None):
        raise ProviderUnavailable(NAME, "forecast not in UTC (ask with timezone=UTC)")
    if len(times) < 2:
        raise ProviderUnavailable(NAME, "forecast has fewer than two values")
    step_s = int((times[1] - times[0]).total_seconds())
    frame.index = pd.DatetimeIndex(times - pd.Timedelta(seconds=step_s), name="ts_utc")
    frame = frame.dropna(subset=["ghi_w_per_m2"])  # beyond the model's horizon
    frame = frame.fillna({"dni_w_per_m2": 0.0, "dhi_w_per_m2": 0.0, "temp_air_c": 15.0})
    return frame, step_s


@register("pv", "openmeteo")
class OpenMeteoPv:
    """PV power forecast from Open-Meteo irradiance and pvlib. [kW]"""

    @dataclass(frozen=True)
    class Config:
        arrays: dict = opt({"main": {"kwp": 5.0, "tilt_deg": 30.0, "azimuth_deg": 180.0}},
                           "PV arrays: NAME: {kwp, tilt_deg, azimuth_deg (180 = south), "
                           "losses_pct (default 14)}")
        confidence_pct: float = opt(90.0, "Safety margin: the forecast is multiplied by this",
                                    "%", gt=0, le=100)
        forecast_days: int = opt(2, "Days fetched", "d", ge=1, le=16)
        correction: bool = opt(True, "Correct the forecast per hour of day from measured PV "
                               "history (measurements table or history_path)")
        history_path: str | None = opt(None, "CSV export of measured PV (ts_utc, pv_kw) for "
                                       "the correction (default: the measurements table)",
                                       path=True)
        correction_min_days: int = opt(14, "History needed before the correction is used",
                                       "d", ge=1)
        base_url: str = opt("https://api.open-meteo.com/v1/forecast", "Open-Meteo endpoint")
        timeout_s: float = opt(10.0, "HTTP timeout per attempt", "s", gt=0)
        min_interval_s: int = min_interval_opt(
            3600, "Open-Meteo's models update hourly at best; free use: 10,000 calls a day")

        def __post_init__(self) -> None:
            object.__setattr__(self, "_arrays", build_arrays(self.arrays))

        @property
        def peak_kw(self) -> float:
            """Sum of the arrays' peak power (the clear-sky fallback uses it). [kW]"""
            return float(sum(a.kwp for a in self._arrays))

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.site = context.site
        self.now = context.now
        self.cfg = context.config
        self.policy = policy or policy_for(config.timeout_s)

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """PV power from now for ``forecast_days`` (interval-start labelled). [kW]"""
        params = {"latitude": self.site.latitude, "longitude": self.site.longitude,
                  "hourly": ",".join(_VARS), "timezone": "UTC",
                  "forecast_days": self.config.forecast_days}
        response = request(NAME, "GET", self.config.base_url, params=params, policy=self.policy)
        frame, step_s = parse_forecast(json_body(NAME, response))
        kw = pv_power_kw(self.site.latitude, self.site.longitude, frame.index, step_s,
                         frame.ghi_w_per_m2, frame.dni_w_per_m2, frame.dhi_w_per_m2,
                         frame.temp_air_c, self.config._arrays)
        note = ""
        factors = self._correction() if self.config.correction else None
        if factors is not None:
            kw = kw * factors[frame.index.tz_convert(self.site.tz).hour.to_numpy()]
            note = ", corrected by measured history"
        kw = kw * self.config.confidence_pct / 100.0
        return TimeSeries(pd.Series(kw, index=frame.index, name="pv_kw"), step_s,
                          f"Open-Meteo + pvlib ({len(self.config._arrays)} array(s)"
                          f"{note}, confidence {self.config.confidence_pct:g} %)")

    def _measured(self) -> pd.Series:
        now = self.now
        since = now - pd.Timedelta(days=60)
        if self.config.history_path:
            s = read_csv_history(self.config.history_path, "pv_kw")
        elif self.cfg is not None and self.cfg.storage.enabled:
            s = _measured_pv(self.cfg, since)
        else:
            return pd.Series(dtype=float)
        return s[(s.index >= since) & (s.index < now)]

    def _correction(self) -> np.ndarray | None:
        try:
            measured = self._measured()
        except HeliosError as exc:  # no history: forecast uncorrected
            log.debug("%s: no PV history for the correction: %s", NAME, exc)
            return None
        if measured.empty:
            return None
        return learn_correction(measured, self.site.latitude, self.site.longitude,
                                self.config._arrays, self.site.tz,
                                self.config.correction_min_days)


def _measured_pv(cfg, since: pd.Timestamp) -> pd.Series:
    """``measurements.pv_power_w`` since ``since`` → PV power [kW] (UTC)."""
    try:
        with Store.from_config(cfg) as store:
            store.ensure_schema()
            with store.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(measurements.c.measured_at, measurements.c.pv_power_w)
                    .where(measurements.c.measured_at >= to_db_time(since),
                           measurements.c.pv_power_w.is_not(None),
                           real_measurement())  # never learn from a simulated plant
                    .order_by(measurements.c.measured_at)).all()
    except sa.exc.SQLAlchemyError as exc:
        raise ProviderUnavailable(NAME, f"cannot read measurements ({exc})") from None
    index = pd.DatetimeIndex([from_db_time(r[0]) for r in rows], name="ts_utc", tz="UTC")
    return pd.Series([r[1] / 1000.0 for r in rows], index=index, dtype=float)
