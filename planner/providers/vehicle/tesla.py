"""``vehicle: {type: tesla}``: the Fleet API's ``vehicle_data`` (devices.md §2.6).

``GET {base_url}/api/1/vehicles/{vin}/vehicle_data?endpoints=charge_state;drive_state;
location_data`` with ``Authorization: Bearer <token>``. ``base_url`` is the regional Fleet API
(default EU), Tesla's signed-command proxy (``tesla-http-proxy``, e.g. ``https://localhost:4443``
with ``ca_cert``: it passes ``vehicle_data`` through unsigned) or Teslemetry
(``https://api.teslemetry.com``, same paths). Read: ``charge_state.battery_level`` [%],
``charging_state`` (``Disconnected`` = not plugged in; ``Charging``/``Starting`` = charging),
``charge_state.timestamp`` [ms], ``drive_state.latitude/longitude`` (firmware 2023.38+ only
with ``location_data`` requested, scope ``vehicle_location``).

Never wakes the car: ``wake_up`` costs US$0.02 and the car's 12 V battery. An asleep or offline
car (HTTP 408, or ``state`` asleep/offline) returns the last state kept in SQL. Every answer
below HTTP 500 is billed (US$0.002 per ``vehicle_data``), hence ``min_interval_s`` 900 s by
default: 96 calls a day ≈ US$5.8 a month, inside Tesla's US$10 monthly discount (at the
planner's 5 minutes it would be ≈ US$17).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext, cache_key, min_interval_opt
from planner.providers.http import RetryPolicy, json_body, make_session, policy_for, request
from planner.providers.vehicle.base import (
    CarAsleep,
    VehicleCache,
    VehicleState,
    at_home,
    home_latitude_opt,
    home_longitude_opt,
    home_of,
    home_radius_opt,
    read_limited,
)

NAME = "vehicle (tesla)"
EU_FLEET_URL = "https://fleet-api.prd.eu.vn.cloud.tesla.com"
ENDPOINTS = "charge_state;drive_state;location_data"
_CHARGING = {"Charging", "Starting"}
_UNPLUGGED = {"Disconnected", ""}


def parse_vehicle_data(payload: Any, now: pd.Timestamp, home: tuple[float, float],
                       radius_m: float) -> VehicleState:
    """A ``vehicle_data`` answer → :class:`VehicleState`.

    Raises
    ------
    CarAsleep
        ``response.state`` is asleep or offline.
    ProviderUnavailable
        No ``charge_state.battery_level`` in the answer.
    """
    response = payload.get("response") if isinstance(payload, dict) else None
    if not isinstance(response, dict):
        raise ProviderUnavailable(NAME, "unexpected answer (no 'response' object)")
    if response.get("state") in ("asleep", "offline"):
        raise CarAsleep(f"the car is {response['state']}")
    charge = response.get("charge_state")
    if not isinstance(charge, dict) or charge.get("battery_level") is None:
        raise ProviderUnavailable(NAME, "answer lacks charge_state.battery_level")
    try:
        soc_pct = float(charge["battery_level"])
    except (TypeError, ValueError):
        raise ProviderUnavailable(NAME, "charge_state.battery_level is not a number") from None
    charging_state = str(charge.get("charging_state") or "")
    drive = response.get("drive_state") if isinstance(response.get("drive_state"), dict) else {}
    stamp_ms = charge.get("timestamp") or drive.get("timestamp")
    measured_at = (pd.Timestamp(int(stamp_ms), unit="ms", tz="UTC")
                   if isinstance(stamp_ms, int | float) else pd.Timestamp(now).tz_convert("UTC"))
    return VehicleState(
        soc_pct=soc_pct, plugged_in=charging_state not in _UNPLUGGED,
        charging=charging_state in _CHARGING,
        at_home=at_home(drive.get("latitude"), drive.get("longitude"), home, radius_m),
        measured_at=measured_at, source=f"tesla vehicle_data ({charging_state or 'no state'})")


@register("vehicle", "tesla")
class TeslaVehicle:
    """A Tesla read through the Fleet API (or the signed-command proxy, or Teslemetry)."""

    @dataclass(frozen=True)
    class Config:
        vin: str = opt(help="The car's VIN (or the Fleet API vehicle id)")
        token: str = opt(help="Fleet API OAuth access token (scopes vehicle_device_data, "
                         "vehicle_location); use !secret", secret=True)
        base_url: str = opt(EU_FLEET_URL, "Fleet API base: the regional Fleet API, the local "
                            "tesla-http-proxy (https://localhost:4443) or Teslemetry "
                            "(https://api.teslemetry.com)")
        ca_cert: str = opt("", "CA certificate for a proxy with its own TLS certificate "
                           "(empty: the system's CAs)", path=True)
        min_interval_s: int = min_interval_opt(900, "Tesla bills every vehicle_data, "
                                               "US$0.002: 96 a day stay inside the US$10 "
                                               "monthly discount")
        home_radius_m: float = home_radius_opt()
        home_latitude: float | None = home_latitude_opt()
        home_longitude: float | None = home_longitude_opt()
        timeout_s: float = opt(10.0, "HTTP timeout", "s", gt=0)

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        if not config.vin.strip():
            raise ProviderConfigError(NAME, "vehicle.vin is empty")
        if not config.token.strip():
            raise ProviderConfigError(NAME, "vehicle.token is empty (a Fleet API access token "
                                      "from secrets.yaml)")
        self.config = config
        self.home = home_of(config, context)
        self.policy = policy
        self.cache = VehicleCache(NAME, cache_key("tesla", config), context.config)

    def read(self, now: pd.Timestamp) -> VehicleState:
        """The car's state: cached while younger than ``min_interval_s`` or the car sleeps.

        Raises
        ------
        ProviderConfigError
            HTTP 401/403 (the token in ``vehicle.token``), 404 (``vehicle.vin``).
        ProviderUnavailable
            429 (after ``Retry-After``), 5xx, timeouts; an asleep car with nothing cached.
        """
        return read_limited(self.cache, pd.Timestamp(now).tz_convert("UTC"),
                            self.config.min_interval_s, lambda: self._fetch(now))

    def _fetch(self, now: pd.Timestamp) -> VehicleState:
        c = self.config
        session = make_session()
        statuses: list[int] = []
        session.hooks["response"].append(lambda r, *a, **k: statuses.append(r.status_code))
        if c.ca_cert:
            session.verify = c.ca_cert
        url = f"{c.base_url.rstrip('/')}/api/1/vehicles/{c.vin}/vehicle_data"
        try:
            response = request(NAME, "GET", url, session=session,
                               policy=self.policy or policy_for(c.timeout_s),
                               secrets=(c.token,), params={"endpoints": ENDPOINTS},
                               headers={"Authorization": f"Bearer {c.token}"})
        except ProviderConfigError as exc:
            status = statuses[-1] if statuses else 0
            if status == 408:  # Fleet API: the vehicle is asleep or offline
                raise CarAsleep("the car is asleep or offline (HTTP 408)") from None
            if status in (401, 403):
                raise ProviderConfigError(NAME, f"HTTP {status}: the Fleet API refused the "
                                          "token; check vehicle.token (secrets.yaml) and its "
                                          "scopes (vehicle_device_data, vehicle_location)"
                                          ) from None
            if status == 404:
                raise ProviderConfigError(NAME, "HTTP 404: no such vehicle; check "
                                          "vehicle.vin and vehicle.base_url") from None
            raise exc from None
        return parse_vehicle_data(json_body(NAME, response), now, self.home, c.home_radius_m)
