"""A device's energy delivered today from a Home Assistant daily energy entity (issue 16).

``water_heater: {..., delivered_today: {type: homeassistant, url, token: !secret ha_token,
entity_id: sensor.water_heater_energy_today}}`` reads ``GET /api/states/<entity_id>`` of a
*daily* energy sensor — a ``utility_meter`` with ``cycle: daily``, or a device's own "energy
today" sensor — that restarts from 0 at local midnight. HA's payload of a daily utility
meter::

    {"entity_id": "sensor.water_heater_energy_today", "state": "2.417",
     "attributes": {"source": "sensor.water_heater_energy", "status": "collecting",
                    "last_period": "5.96", "last_valid_state": "1843.211",
                    "meter_period": "daily", "cron pattern": "0 0 * * *",
                    "last_reset": "2026-04-30T22:00:00.000061+00:00",
                    "state_class": "total_increasing", "unit_of_measurement": "kWh",
                    "device_class": "energy", "friendly_name": "Water heater energy today"},
     "last_changed": "...", "last_reported": "...", "last_updated": "...", "context": {...}}

The value must be from today (the site's local day): with ``last_reset`` (utility meters,
``state_class: total``) that is the reset time; without it, ``last_changed`` — a daily
sensor that has not changed since before midnight and is not 0 has not restarted yet, so
what it shows is (partly) yesterday's: refused as unavailable instead of being subtracted
from today's need. Units Wh, kWh, MWh.

Provider kind ``device_energy``: ``read(now) -> float`` energy delivered today [kWh].
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy, policy_for
from planner.providers.state.homeassistant import (
    HaClient,
    check_age,
    number_state,
    parse_time,
    token_opt,
    url_opt,
)

#: unit -> factor to kWh
UNITS = {"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3}

#: a reset a little before local midnight still counts as today's (HA's cron jitter) [s]
RESET_SLACK_S = 120.0


@register("device_energy", "homeassistant")
class HomeAssistantDailyEnergy:
    """Energy delivered today from a daily Home Assistant energy entity. [kWh]"""

    @dataclass(frozen=True)
    class Config:
        url: str = url_opt()
        token: str = token_opt()
        entity_id: str = opt(help="A daily energy entity that restarts at local midnight, "
                             "e.g. a utility_meter with cycle: daily (Wh, kWh or MWh)")
        max_age_s: int = opt(3600, "Refuse a value HA last received longer ago than this "
                             "(last_reported, else last_updated; 0 = any age)", "s", ge=0)
        timeout_s: float = opt(10.0, "HTTP timeout per attempt", "s", gt=0)

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None, name: str = "water heater energy"):
        self.config = config
        self.tz = context.site.timezone
        self.name = f"{name} (homeassistant)"
        self.client = HaClient(self.name, config.url, config.token,
                               policy or policy_for(config.timeout_s))

    def read(self, now: pd.Timestamp) -> float:
        """The energy delivered since local midnight. [kWh]

        Raises
        ------
        ProviderUnavailable
            HA unreachable; the entity unavailable/unknown, negative, too old, or not yet
            restarted today.
        ProviderConfigError
            Bad token, unknown entity, not an energy unit.
        """
        entity = self.config.entity_id
        doc = self.client.state(entity)
        attributes = doc.get("attributes") or {}
        value, unit = number_state(doc, entity, UNITS,
                                   f"; expected energy in {', '.join(UNITS)}", self.name)
        kwh = value * UNITS[unit]
        if not kwh >= 0.0:
            raise ProviderUnavailable(self.name, f"{entity}: {kwh:g} kWh is negative")
        now = pd.Timestamp(now).tz_convert("UTC")
        midnight = now.tz_convert(self.tz).normalize().tz_convert("UTC")
        check_age(doc, entity, now, self.config.max_age_s, self.name)
        seen = doc.get("last_reported") or doc.get("last_updated")
        if attributes.get("last_reset"):
            since = parse_time(attributes["last_reset"], "last_reset", self.name)
            what = "was last reset"
        else:
            since = parse_time(doc.get("last_changed") or seen, "last_changed", self.name)
            what = "last changed"
        if kwh > 0 and (midnight - since).total_seconds() > RESET_SLACK_S:
            raise ProviderUnavailable(
                self.name, f"{entity} {what} at {since.tz_convert(self.tz):%Y-%m-%d %H:%M}, "
                f"before today's local midnight: {kwh:g} kWh is not today's energy (a daily "
                "entity that restarts at midnight is needed)")
        return kwh
