"""The water-heater tank's temperature from a Home Assistant entity (issue 13).

``water_heater: {tank: {temperature: {type: homeassistant, url, token: !secret ha_token,
entity_id: sensor.boiler_temp}}}`` reads ``GET /api/states/<entity_id>`` through the same
:class:`~planner.providers.state.homeassistant.HaClient` as the SoC (the token only in the
``Authorization`` header, never in an error). The value must be in °C (or have no unit).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy, policy_for
from planner.providers.state.homeassistant import (
    NO_VALUE,
    HaClient,
    parse_time,
    token_opt,
    url_opt,
)

__all__ = ["HomeAssistantTemperature"]


@register("temperature", "homeassistant")
class HomeAssistantTemperature:
    """A temperature entity of Home Assistant. [°C]"""

    @dataclass(frozen=True)
    class Config:
        url: str = url_opt()
        token: str = token_opt()
        entity_id: str = opt(help="The tank's temperature entity, e.g. sensor.boiler_temp "
                             "(in °C)")
        max_age_s: int = opt(3600, "Refuse a value HA last received longer ago than this "
                             "(0 = any age)", "s", ge=0)
        timeout_s: float = opt(10.0, "HTTP timeout per attempt", "s", gt=0)

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.name = "temperature (homeassistant)"
        self.client = HaClient(self.name, config.url, config.token,
                               policy or policy_for(config.timeout_s))

    def read(self, now: pd.Timestamp) -> float:
        """The entity's temperature. [°C]

        Raises
        ------
        ProviderUnavailable
            HA unreachable, the entity unavailable/unknown or too old, not a number.
        ProviderConfigError
            Bad token, unknown entity, not in °C.
        """
        entity = self.config.entity_id
        doc = self.client.state(entity)
        raw = str(doc["state"]).strip()
        if raw.lower() in NO_VALUE:
            raise ProviderUnavailable(self.name, f"{entity} is {raw or 'empty'} in Home "
                                      "Assistant")
        unit = (doc.get("attributes") or {}).get("unit_of_measurement")
        if unit not in (None, "°C", "C"):
            raise ProviderConfigError(self.name, f"{entity} is in {unit!r}, expected °C")
        try:
            temp_c = float(raw)
        except ValueError:
            raise ProviderUnavailable(self.name, f"{entity}: state {raw[:40]!r} is not a "
                                      "number") from None
        seen = doc.get("last_reported") or doc.get("last_updated")
        if self.config.max_age_s and seen:
            age_s = (now - parse_time(seen, "last_updated", self.name)).total_seconds()
            if age_s > self.config.max_age_s:
                raise ProviderUnavailable(
                    self.name, f"{entity} was last reported {age_s:.0f} s ago (max_age_s "
                    f"{self.config.max_age_s})")
        return temp_c
