"""Home Assistant as a source (issue 16): its REST API with a long-lived access token.

``state: {type: homeassistant, url, token: !secret ha_token, entity_id: sensor.battery_soc}``
reads the battery's state of charge from ``GET /api/states/<entity_id>``; the load provider
(:mod:`planner.providers.load.homeassistant`) reads a consumption entity's history through the
same :class:`HaClient`. HA's payload::

    {"entity_id": "sensor.battery_soc", "state": "63.5",
     "attributes": {"unit_of_measurement": "%", "device_class": "battery", ...},
     "last_changed": "2026-05-01T09:58:12.123456+00:00",
     "last_reported": "...", "last_updated": "...", "context": {...}}

``state`` is a string; ``unavailable`` / ``unknown`` mean HA has no value (transient). HTTP goes
through :mod:`planner.providers.http` with the token as a secret: it is sent only in the
``Authorization`` header and never appears in an error or a log line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pandas as pd

from executor.configspec import opt
from planner.core.errors import ProviderConfigError, ProviderUnavailable
from planner.providers import register
from planner.providers.base import ProviderContext
from planner.providers.http import RetryPolicy, json_body, make_session, policy_for, request

#: HA's words for "no value"
NO_VALUE = {"unavailable", "unknown", "none", ""}


def url_opt() -> Any:
    return opt(help="Home Assistant's base URL, e.g. http://homeassistant.local:8123")


def token_opt() -> Any:
    return opt(help="A long-lived access token (HA profile > Security; use !secret)",
               secret=True)


class HaClient:
    """GET requests to one Home Assistant, named ``provider`` in every message."""

    def __init__(self, provider: str, url: str, token: str, policy: RetryPolicy):
        self.provider = provider
        self.base = url.rstrip("/")
        self.token = token
        self.policy = policy
        self.session = make_session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, params: dict | None = None, entity_id: str = "") -> Any:
        """The decoded JSON of ``GET <url><path>``.

        Raises
        ------
        ProviderConfigError
            401/403 (the token) or 404 (no such entity), naming the entity, never the token.
        ProviderUnavailable
            HA unreachable, 5xx, malformed JSON.
        """
        try:
            response = request(self.provider, "GET", self.base + path, session=self.session,
                               policy=self.policy, secrets=(self.token,), params=params)
        except ProviderConfigError as exc:
            if "HTTP 404" in str(exc) and entity_id:
                raise ProviderConfigError(
                    self.provider, f"Home Assistant has no entity {entity_id!r} (HTTP 404): "
                    "check entity_id (HA > Settings > Entities)") from None
            raise
        return json_body(self.provider, response)

    def state(self, entity_id: str) -> dict:
        """``/api/states/<entity_id>`` (a mapping with ``state`` and ``attributes``)."""
        doc = self.get(f"/api/states/{quote(entity_id)}", entity_id=entity_id)
        if not isinstance(doc, dict) or "state" not in doc:
            raise ProviderUnavailable(self.provider, f"malformed state of {entity_id!r} "
                                      "(no 'state' key)")
        return doc


def parse_time(value: Any, what: str, provider: str) -> pd.Timestamp:
    """An HA timestamp (ISO 8601 with offset) as aware UTC."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ProviderUnavailable(provider, f"malformed {what} {value!r}") from None
    if ts.tzinfo is None:
        raise ProviderUnavailable(provider, f"{what} {value!r} has no UTC offset")
    return ts.tz_convert("UTC")


def number_state(doc: dict, entity: str, units: Any, unit_error: str, provider: str
                 ) -> tuple[float, Any]:
    """An entity's numeric state and its unit from HA's ``/api/states`` document: no value
    (``unavailable``, ...) or not a number is :class:`ProviderUnavailable`, a unit not in
    ``units`` a :class:`ProviderConfigError` ending in ``unit_error``."""
    raw = str(doc["state"]).strip()
    if raw.lower() in NO_VALUE:
        raise ProviderUnavailable(provider, f"{entity} is {raw or 'empty'} in Home Assistant")
    unit = (doc.get("attributes") or {}).get("unit_of_measurement")
    if unit not in units:
        raise ProviderConfigError(provider, f"{entity} is in {unit!r}{unit_error}")
    try:
        return float(raw), unit
    except ValueError:
        raise ProviderUnavailable(provider, f"{entity}: state {raw[:40]!r} is not a "
                                  "number") from None


def check_age(doc: dict, entity: str, now: pd.Timestamp, max_age_s: int, provider: str) -> None:
    """Refuse a state HA last received more than ``max_age_s`` before ``now`` (last_reported,
    else last_updated; 0 = any age): :class:`ProviderUnavailable`."""
    seen = doc.get("last_reported") or doc.get("last_updated")
    if max_age_s and seen:
        age_s = (now - parse_time(seen, "last_updated", provider)).total_seconds()
        if age_s > max_age_s:
            raise ProviderUnavailable(
                provider, f"{entity} was last reported {age_s:.0f} s ago (max_age_s "
                f"{max_age_s})")


@register("state", "homeassistant")
class HomeAssistantState:
    """State of charge from a Home Assistant entity (``/api/states/<entity_id>``). [%]"""

    @dataclass(frozen=True)
    class Config:
        url: str = url_opt()
        token: str = token_opt()
        entity_id: str = opt(help="The battery's SoC entity, e.g. sensor.battery_soc (in %)")
        max_age_s: int = opt(3600, "Refuse a value HA last received longer ago than this "
                             "(last_reported, else last_updated; 0 = any age)", "s", ge=0)
        timeout_s: float = opt(10.0, "HTTP timeout per attempt", "s", gt=0)

    def __init__(self, config: Config, context: ProviderContext,
                 policy: RetryPolicy | None = None):
        self.config = config
        self.name = "state (homeassistant)"
        self.client = HaClient(self.name, config.url, config.token,
                               policy or policy_for(config.timeout_s))

    def read(self, now: pd.Timestamp) -> float:
        """The entity's SoC. [%]

        Raises
        ------
        ProviderUnavailable
            HA unreachable, the entity unavailable/unknown, too old.
        ProviderConfigError
            Bad token, unknown entity, not a percentage.
        """
        entity = self.config.entity_id
        doc = self.client.state(entity)
        soc_pct, _ = number_state(doc, entity, (None, "%"),
                                  ", expected a state of charge in %", self.name)
        if not 0.0 <= soc_pct <= 100.0:
            raise ProviderUnavailable(self.name, f"{entity}: {soc_pct:g} % is outside 0-100")
        check_age(doc, entity, now, self.config.max_age_s, self.name)
        return soc_pct
