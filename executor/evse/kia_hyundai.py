"""``kia_hyundai``: charging started and stopped through the car (Kia Connect / Hyundai
Bluelink EU cloud), for a charger that cannot be controlled itself.

The command is the one ``hyundai-kia-connect-api`` sends (``KiaUvoApiEU.start_charge`` /
``stop_charge``): ``POST {base_url}/api/v1/spa/vehicles/{vehicle_id}/control/charge`` with
``{"action": "start"|"stop", "deviceId": <device_id>}`` and the headers ``Authorization``
(the access token), ``ccsp-device-id`` and, where needed, ``Stamp`` — the same tokens the
planner's ``kia_hyundai`` vehicle provider uses (the login is not done here:
docs/ev.md). The car cannot be given a current over this API (only 100/90/60 % levels on
newer models), so the plan is followed by **start and stop only**: the car charges at the
charger's current while the plan's current is above 0. Every command counts towards the
account's daily limit and wakes the car's modem: only on a change, at most every
``min_command_interval_s`` (default 15 min here). An answer ``retCode: F`` is refused with its
``resCode`` (4004 "duplicate request" counts as done).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from executor.configspec import opt
from executor.errors import DriverError
from executor.evse import register
from executor.evse._carside import CarSide, CarSideConfig, HttpStatus, request
from executor.evse.base import ChargerState

BASE_URLS = {"kia": "https://prd.eu-ccapi.kia.com:8080",
             "hyundai": "https://prd.eu-ccapi.hyundai.com:8080"}
#: resCode that means the same command is already under way
DUPLICATE = "4004"


@register("kia_hyundai")
class KiaHyundai(CarSide):
    """A Kia or Hyundai started and stopped through its cloud."""

    TOKEN_KEY = "executor.ev_charger.access_token"
    SETS_AMPS = False

    @dataclass(frozen=True)
    class Config(CarSideConfig):
        """``executor.ev_charger: {type: kia_hyundai, vehicle_id: ..., access_token: ...}``."""

        vehicle_id: str = opt("", "The cloud's vehicle id")
        access_token: str = opt("", "Access token from the login (about 23 h)", secret=True)
        device_id: str = opt("", "ccsp-device-id registered at login")
        stamp: str = opt("", "The app's Stamp header, when the API requires one", secret=True)
        brand: Literal["kia", "hyundai"] = opt("kia", "Brand (chooses the default base_url)")
        min_command_interval_s: float = opt(900.0, "Shortest time between two commands "
                                            "(daily API limit)", "s", ge=0)

    def __init__(self, config: KiaHyundai.Config, *, clock):
        if not config.vehicle_id:
            raise DriverError("executor.ev_charger.vehicle_id: the cloud's vehicle id is "
                              "required")
        if not config.access_token:
            raise DriverError("executor.ev_charger.access_token: a token is required")
        super().__init__(config, clock=clock)

    def _url(self, tail: str) -> str:
        c = self.config
        base = (c.base_url or BASE_URLS[c.brand]).rstrip("/")
        return f"{base}/api/v1/spa/vehicles/{quote(c.vehicle_id, safe='')}/{tail}"

    def _headers(self) -> dict:
        c = self.config
        headers = {"Authorization": c.access_token, "ccsp-device-id": c.device_id}
        if c.stamp:
            headers["Stamp"] = c.stamp
        return headers

    def probe(self) -> ChargerState:
        """One cheap call for ``helios doctor``: the cloud's cached state
        (``GET …/status/latest``; does not wake the car)."""
        try:
            answer = request("GET", self._url("status/latest"), headers=self._headers(),
                             timeout_s=self.config.timeout_s)
        except HttpStatus as exc:
            if exc.status in (401, 403):
                raise DriverError(f"{exc} — check {self.TOKEN_KEY}") from None
            raise
        if not isinstance(answer, dict) or answer.get("retCode") == "F":
            code = answer.get("resCode") if isinstance(answer, dict) else "?"
            raise DriverError(f"kia_hyundai: the cloud answered an error (resCode {code})")
        return ChargerState("cloud answers (cached state)")

    def _send(self, want: tuple[bool, int]) -> None:
        c = self.config
        url = self._url("control/charge")
        headers = self._headers()
        self.commands += 1
        answer = request("POST", url, headers=headers, timeout_s=c.timeout_s,
                         body={"action": "start" if want[0] else "stop",
                               "deviceId": c.device_id})
        if isinstance(answer, dict) and answer.get("retCode") == "F" \
                and str(answer.get("resCode")) != DUPLICATE:
            raise DriverError(f"kia_hyundai {'start' if want[0] else 'stop'}: refused "
                              f"(resCode {answer.get('resCode')}: {answer.get('resMsg')})")
