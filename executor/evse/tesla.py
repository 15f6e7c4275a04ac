"""``tesla``: charging controlled through the car (Fleet API commands), for a charger that
cannot be controlled itself.

Commands go through Tesla's signed-command proxy (``tesla-http-proxy`` of
``teslamotors/vehicle-command``, e.g. ``https://localhost:4443`` with its own certificate in
``ca_cert``), which signs them with the app's key (../shared/reference/devices.md §2.6):
``POST /api/1/vehicles/{vin}/command/charge_start`` ``{}``, ``…/charge_stop`` ``{}``,
``…/set_charging_amps`` ``{"charging_amps": A}``, bearer ``token``. Teslemetry
(``https://api.teslemetry.com``) takes the same paths.

Tesla bills every answer below HTTP 500 (commands US$0.001, ``wake_up`` US$0.02), so the
driver commands only on a change and at most every ``min_command_interval_s``
(:mod:`executor.evse._carside`). Answers: ``{"response": {"result": true}}``; ``result:
false`` with ``reason`` ``is_charging`` (start) / ``not_charging`` (stop) means it already is
so; ``complete`` = at its charge limit. An asleep car answers **HTTP 408** "vehicle
unavailable": a stop is then done (an asleep car does not charge); a start wakes it only with
``wake_to_start: true`` (one ``wake_up``, the command follows on a later tick), else waits.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from urllib.parse import quote

from executor.configspec import opt
from executor.errors import DriverError
from executor.evse import register
from executor.evse._carside import Asleep, CarSide, CarSideConfig, HttpStatus, request
from executor.evse.base import ChargerState

log = logging.getLogger("helios.executor.evse.tesla")

#: ``result: false`` reasons that mean "it already is so"
ALREADY = {"charge_start": ("is_charging", "complete"), "charge_stop": ("not_charging",)}


@register("tesla")
class Tesla(CarSide):
    """A Tesla charged from any charger, its current set through the car."""

    TOKEN_KEY = "executor.ev_charger.token"
    SETS_AMPS = True

    @dataclass(frozen=True)
    class Config(CarSideConfig):
        """``executor.ev_charger: {type: tesla, vin: ..., token: !secret ...}``."""

        vin: str = opt("", "The car's VIN")
        token: str = opt("", "Fleet API OAuth access token (vehicle_charging_cmds scope)",
                         secret=True)
        base_url: str = opt("https://localhost:4443", "The signed-command proxy "
                            "(tesla-http-proxy) or Teslemetry")
        ca_cert: str | None = opt(None, "The proxy's TLS certificate (PEM)", path=True)
        wake_to_start: bool = opt(False, "Wake an asleep car to start charging (US$0.02 a "
                                  "wake-up); false: wait until it wakes")
        max_current_a: float = opt(16.0, "Highest current per phase (the car's charger)", "A",
                                   gt=0)

    def __init__(self, config: Tesla.Config, *, clock):
        if not config.vin:
            raise DriverError("executor.ev_charger.vin: the car's VIN is required")
        if not config.token:
            raise DriverError("executor.ev_charger.token: a Fleet API token is required")
        super().__init__(config, clock=clock)
        self.wakes = 0
        self._context = (ssl.create_default_context(cafile=config.ca_cert)
                         if config.ca_cert else None)

    def _url(self, tail: str) -> str:
        return (f"{self.config.base_url.rstrip('/')}/api/1/vehicles/"
                f"{quote(self.config.vin, safe='')}/{tail}")

    def _post(self, tail: str, body: dict):
        self.commands += 1
        try:
            return request("POST", self._url(tail), body=body, timeout_s=self.config.timeout_s,
                           headers={"Authorization": f"Bearer {self.config.token}"},
                           context=self._context)
        except HttpStatus as exc:
            if exc.status == 408:
                raise Asleep(f"{exc}: the car is asleep or offline") from None
            raise

    def probe(self) -> ChargerState:
        """One cheap call for ``helios doctor``: ``GET /api/1/vehicles/{vin}`` (the car's
        online/asleep state; does not wake it). Raises as the commands do (401 naming the
        token key)."""
        url = f"{self.config.base_url.rstrip('/')}/api/1/vehicles/{quote(self.config.vin, safe='')}"
        try:
            answer = request("GET", url, timeout_s=self.config.timeout_s, context=self._context,
                             headers={"Authorization": f"Bearer {self.config.token}"})
        except HttpStatus as exc:
            if exc.status in (401, 403):
                raise DriverError(f"{exc} — check {self.TOKEN_KEY}") from None
            if exc.status == 408:
                return ChargerState("asleep")
            raise
        res = answer.get("response") if isinstance(answer, dict) else None
        state = res.get("state") if isinstance(res, dict) else None
        if not isinstance(state, str):
            raise DriverError(f"GET {url}: no response.state in the answer")
        return ChargerState(state)

    def _command(self, name: str, body: dict) -> None:
        answer = self._post(f"command/{name}", body)
        res = answer.get("response") if isinstance(answer, dict) else None
        if not isinstance(res, dict) or "result" not in res:
            raise DriverError(f"tesla {name}: unexpected answer {str(answer)[:80]!r}")
        if not res["result"]:
            reason = str(res.get("reason") or "")
            if reason in ALREADY.get(name, ()):
                log.info("tesla %s: %s", name, reason)
                return
            raise DriverError(f"tesla {name}: refused ({reason or 'no reason'})")

    def _send(self, want: tuple[bool, int]) -> None:
        on, amps = want
        was_on = self.sent is not None and self.sent[0]
        try:
            if not on:
                self._command("charge_stop", {})
                return
            if self.sent is None or self.sent[1] != amps or not was_on:
                self._command("set_charging_amps", {"charging_amps": int(amps)})
            if not was_on:
                self._command("charge_start", {})
        except Asleep:
            if not on:
                log.info("tesla: asleep, so not charging: stop needs no command")
                return
            if self.config.wake_to_start:
                self.wakes += 1
                self._post("wake_up", {})  # the start follows once it is awake
                raise Asleep("tesla: the car was asleep; woken, the start follows") from None
            raise
