"""``vehicle: {type: kia_hyundai}``: Kia Connect / Hyundai Bluelink, Europe (devices.md §2.7).

The reference client is ``hyundai-kia-connect-api`` (not a dependency: its login pulls in a
browser-like OAuth flow, push registration and more packages). This provider speaks the same
cloud API directly, through a configurable ``base_url`` (default the brand's EU endpoint,
``https://prd.eu-ccapi.{kia,hyundai}.com:8080``), with the tokens that client (or a bridge
keeping them fresh) obtains: ``access_token``, ``device_id`` (``ccsp-device-id``) and the
app ``stamp``.

Two calls:

* **cached state** (``GET /api/v1/spa/vehicles/{id}/status/latest``, the library's
  ``update_all_vehicles_with_cached_state``): the cloud's copy, does **not** wake the car.
  Used on every read, at most every ``min_interval_s``.
* **forced refresh** (``GET /api/v1/spa/vehicles/{id}/status``, ``force_refresh_vehicle_state``):
  asks the car itself and is rate-limited per day by the OEM. Made only when the cloud's copy
  is older than ``force_refresh_after_s`` *and* fewer than ``force_refresh_per_day`` were made
  in the last 24 h, counted in SQL (``forecast_cache``, kind ``vehicle_refresh``: one row per
  refresh) or, without storage, in ``state_file``. With neither there is no forced refresh.

Fields read (``resMsg.vehicleStatusInfo``): ``vehicleStatus.evStatus.batteryStatus`` [%],
``batteryCharge`` (charging), ``batteryPlugin`` (0 = not plugged in), ``vehicleStatus.time``
(``YYYYMMDDHHMMSS``, local time of the site), ``vehicleLocation.coord.lat/lon``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderConfigError, ProviderUnavailable, StorageError
from planner.history.store import Store
from planner.providers import register
from planner.providers.base import ProviderContext, cache_key, min_interval_opt
from planner.providers.http import RetryPolicy, json_body, make_session, policy_for, request
from planner.providers.vehicle.base import (
    VehicleCache,
    VehicleState,
    at_home,
    home_latitude_opt,
    home_longitude_opt,
    home_of,
    home_radius_opt,
    read_limited,
)

log = logging.getLogger(__name__)

NAME = "vehicle (kia_hyundai)"
BASE_URLS = {"kia": "https://prd.eu-ccapi.kia.com:8080",
             "hyundai": "https://prd.eu-ccapi.hyundai.com:8080"}
REFRESH_KIND = "vehicle_refresh"
DAY = pd.Timedelta(hours=24)


def _local_time(text: Any, tz: Any) -> pd.Timestamp | None:
    try:
        return (pd.Timestamp(pd.to_datetime(str(text), format="%Y%m%d%H%M%S"))
                .tz_localize(tz, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC"))
    except (ValueError, TypeError):
        return None


def parse_status(status: Any, location: Any, now: pd.Timestamp, tz: Any,
                 home: tuple[float, float], radius_m: float, source: str) -> VehicleState:
    """A ``vehicleStatus`` object (+ optional ``vehicleLocation``) → :class:`VehicleState`."""
    ev = status.get("evStatus") if isinstance(status, dict) else None
    if not isinstance(ev, dict) or ev.get("batteryStatus") is None:
        raise ProviderUnavailable(NAME, "answer lacks vehicleStatus.evStatus.batteryStatus")
    try:
        soc_pct = float(ev["batteryStatus"])
        plugin = int(ev.get("batteryPlugin") or 0)
    except (TypeError, ValueError):
        raise ProviderUnavailable(NAME, "evStatus.batteryStatus/batteryPlugin not numbers"
                                  ) from None
    coord = (location or {}).get("coord") if isinstance(location, dict) else None
    coord = coord if isinstance(coord, dict) else {}
    return VehicleState(
        soc_pct=soc_pct, plugged_in=plugin != 0,
        charging=bool(ev.get("batteryCharge")) and plugin != 0,
        at_home=at_home(coord.get("lat"), coord.get("lon"), home, radius_m),
        measured_at=_local_time(status.get("time"), tz) or pd.Timestamp(now).tz_convert("UTC"),
        source=source)


class RefreshBudget:
    """Forced refreshes of the last 24 h, in SQL (``forecast_cache``) or a JSON state file."""

    def __init__(self, key: str, config: Any, state_file: str):
        self.key, self.cfg = key, config
        self.path = Path(state_file) if state_file else None
        self.sql = config is not None and bool(config.storage.enabled)

    @property
    def countable(self) -> bool:
        return self.sql or self.path is not None

    def _times(self) -> list[pd.Timestamp]:
        if self.sql:
            with Store.from_config(self.cfg) as store:
                got = store.cached_forecast(REFRESH_KIND, self.key)
            return [] if got is None else list(got[0].index)
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                return [pd.Timestamp(t).tz_convert("UTC") for t in data.get(self.key, [])]
            except (ValueError, TypeError, AttributeError, OSError) as exc:
                log.warning("%s: unreadable %s (%s); counting from 0", NAME, self.path, exc)
        return []

    def used(self, now: pd.Timestamp) -> int:
        """Forced refreshes in the 24 h before ``now``."""
        return sum(1 for t in self._times() if now - DAY < t <= now)

    def record(self, now: pd.Timestamp) -> None:
        """Count one forced refresh at ``now`` (before the call: the OEM counts failed ones)."""
        times = sorted([t for t in self._times() if now - DAY < t <= now] + [now])
        if self.sql:
            with Store.from_config(self.cfg) as store:
                store.save_forecast(REFRESH_KIND, self.key,
                                    pd.Series(1.0, index=pd.DatetimeIndex(times)), 0, now,
                                    "kia_hyundai forced refresh")
            return
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (ValueError, OSError):
            data = {}
        data[self.key] = [t.isoformat() for t in times]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)


@register("vehicle", "kia_hyundai")
class KiaHyundaiVehicle:
    """A Kia or Hyundai read from the OEM cloud: cached state, forced refresh on a budget."""

    @dataclass(frozen=True)
    class Config:
        vehicle_id: str = opt(help="The vehicle id of the account (vehicles[].vehicleId)")
        access_token: str = opt(help="Access token of the Kia Connect / Bluelink account "
                                "(from hyundai-kia-connect-api's login or a bridge); use "
                                "!secret", secret=True)
        device_id: str = opt("", "ccsp-device-id registered at login")
        stamp: str = opt("", "The app's Stamp header, when the API requires one", secret=True)
        brand: Literal["kia", "hyundai"] = opt("kia", "Brand (chooses the default base_url)")
        base_url: str = opt("", "API base (default: the brand's EU endpoint)")
        min_interval_s: int = min_interval_opt(
            900, "the cloud's cached state; every call counts towards the account's daily "
            "API limit")
        force_refresh_per_day: int = opt(
            2, "Forced refreshes (the car is asked, OEM rate-limited per day) allowed in any "
            "24 h; 0 = never", ge=0, le=30)
        force_refresh_after_s: int = opt(
            4 * 3600, "Force a refresh only when the cloud's state is older than this", "s",
            gt=0)
        state_file: str = opt("", "Where the forced refreshes are counted without storage "
                              "(JSON; empty: in SQL, or no forced refresh without storage)",
                              path=True)
        home_radius_m: float = home_radius_opt()
        home_latitude: float | None = home_latitude_opt()
        home_longitude: float | None = home_longitude_opt()
        timeout_s: float = opt(15.0, "HTTP timeout", "s", gt=0)

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        if not config.vehicle_id.strip():
            raise ProviderConfigError(NAME, "vehicle.vehicle_id is empty")
        if not config.access_token.strip():
            raise ProviderConfigError(NAME, "vehicle.access_token is empty (from secrets.yaml)")
        self.config = config
        self.tz = context.site.tz
        self.home = home_of(config, context)
        self.policy = policy
        key = cache_key("kia_hyundai", config)
        self.cache = VehicleCache(NAME, key, context.config)
        self.budget = RefreshBudget(key, context.config, config.state_file)

    def read(self, now: pd.Timestamp) -> VehicleState:
        """The car's state from the cloud's cache, refreshed from the car within the budget.

        Raises
        ------
        ProviderConfigError
            HTTP 401/403 (``vehicle.access_token``), 404 (``vehicle.vehicle_id``).
        ProviderUnavailable
            429 (after ``Retry-After``), 5xx, timeouts, an answer with ``retCode: F``.
        """
        now = pd.Timestamp(now).tz_convert("UTC")
        return read_limited(self.cache, now, self.config.min_interval_s,
                            lambda: self._fetch(now))

    # ------------------------------------------------------------------ calls

    def _get(self, path: str) -> Any:
        c = self.config
        token = c.access_token if c.access_token.lower().startswith("bearer ") \
            else f"Bearer {c.access_token}"
        headers = {"Authorization": token, "ccsp-device-id": c.device_id}
        if c.stamp:
            headers["Stamp"] = c.stamp
        session = make_session()
        statuses: list[int] = []
        session.hooks["response"].append(lambda r, *a, **k: statuses.append(r.status_code))
        url = f"{(c.base_url or BASE_URLS[c.brand]).rstrip('/')}{path}"
        try:
            response = request(NAME, "GET", url, session=session, headers=headers,
                               policy=self.policy or policy_for(c.timeout_s),
                               secrets=tuple(s for s in (c.access_token, c.stamp) if s))
        except ProviderConfigError as exc:
            status = statuses[-1] if statuses else 0
            if status in (401, 403):
                raise ProviderConfigError(NAME, f"HTTP {status}: the cloud refused the token; "
                                          "check vehicle.access_token (secrets.yaml), it "
                                          "lasts about 23 h") from None
            if status == 404:
                raise ProviderConfigError(NAME, "HTTP 404: check vehicle.vehicle_id and "
                                          "vehicle.base_url") from None
            raise exc from None
        body = json_body(NAME, response)
        if not isinstance(body, dict) or body.get("retCode") == "F":
            code = body.get("resCode", "?") if isinstance(body, dict) else "?"
            raise ProviderUnavailable(NAME, f"the cloud answered an error (resCode {code})")
        return body.get("resMsg")

    def _fetch(self, now: pd.Timestamp) -> VehicleState:
        c = self.config
        info = self._get(f"/api/v1/spa/vehicles/{c.vehicle_id}/status/latest")
        info = (info or {}).get("vehicleStatusInfo") if isinstance(info, dict) else None
        if not isinstance(info, dict):
            raise ProviderUnavailable(NAME, "answer lacks resMsg.vehicleStatusInfo")
        location = info.get("vehicleLocation")
        state = parse_status(info.get("vehicleStatus"), location, now, self.tz, self.home,
                             c.home_radius_m, "kia_hyundai cached status")
        age_s = (now - state.measured_at).total_seconds()
        if age_s <= c.force_refresh_after_s or c.force_refresh_per_day == 0:
            return state
        if not self.budget.countable:
            log.info("%s: cloud state is %.0f min old; no forced refresh (no storage and no "
                     "state_file to count them in)", NAME, age_s / 60)
            return state
        try:
            used = self.budget.used(now)
            if used >= c.force_refresh_per_day:
                log.info("%s: cloud state is %.0f min old; daily forced-refresh budget used "
                         "(%d of %d)", NAME, age_s / 60, used, c.force_refresh_per_day)
                return state
            self.budget.record(now)
        except (StorageError, OSError) as exc:
            log.warning("%s: cannot count forced refreshes (%s); none made", NAME, exc)
            return state
        fresh = self._get(f"/api/v1/spa/vehicles/{c.vehicle_id}/status")
        if isinstance(fresh, dict) and isinstance(fresh.get("vehicleStatusInfo"), dict):
            fresh = fresh["vehicleStatusInfo"]
        status = fresh.get("vehicleStatus", fresh) if isinstance(fresh, dict) else None
        got = parse_status(status, location, now, self.tz, self.home, c.home_radius_m,
                           "kia_hyundai forced refresh")
        # the forced answer carries no location: the cached one is kept
        return replace(got, at_home=got.at_home if got.at_home is not None else state.at_home)
