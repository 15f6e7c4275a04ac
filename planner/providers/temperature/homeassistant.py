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
from planner.providers import register
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy, policy_for
from planner.providers.state.homeassistant import (
    HaClient,
    check_age,
    number_state,
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
        temp_c, _ = number_state(doc, entity, (None, "°C", "C"), ", expected °C", self.name)
        check_age(doc, entity, now, self.config.max_age_s, self.name)
        return temp_c
