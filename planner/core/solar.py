"""Solar geometry without pvlib: the sun's zenith angle and the Haurwitz clear-sky GHI.

Good to a few tenths of a degree (Spencer 1971), plenty for the degraded PV fallback
(:mod:`planner.inputs.degraded`) and the clear-sky shape of the Open-Meteo provider; the
forecast itself uses pvlib's solar position.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def haurwitz_ghi_w_per_m2(cos_z: np.ndarray) -> np.ndarray:
    """Clear-sky global horizontal irradiance (Haurwitz, as in pvlib:
    ``1098 cos z exp(-0.059 / cos z)``; needs no turbidity data), 0 at night. [W/m²]"""
    return np.where(cos_z > 0, 1098.0 * cos_z * np.exp(-0.059 / np.maximum(cos_z, 1e-3)), 0.0)
