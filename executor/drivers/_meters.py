"""Grid meters read over the LAN (read-only): HomeWizard P1 and Shelly EM/3EM.

The vendors' API facts are in ``reference/devices.md`` §2.1 (HomeWizard) and §2.4 (Shelly):

``homewizard``, ``api: 1``
    ``GET <url>/api/v1/data`` → ``active_power_w`` (W, + = import, − = export). No auth (the
    "Local API" switch in the HomeWizard app must be on). Fields the meter has no value for
    are omitted, so a missing ``active_power_w`` is "no reading".
``homewizard``, ``api: 2``
    ``GET <url>/api/measurement`` with ``Authorization: Bearer <token>`` and
    ``X-Api-Version: 2`` → ``power_w`` (sum of the phases, + = import). HTTPS; the certificate
    is signed by the HomeWizard CA for the name ``appliance/p1dongle/<serial>``, so it is
    checked against ``ca_file`` without the host name (or not at all without ``ca_file``).
``shelly``, ``gen: 1`` (Shelly EM, 3EM)
    ``GET <url>/status`` → ``total_power`` when present (3EM), else the sum of
    ``emeters[i].power`` over ``channels`` (all by default); optional Basic auth.
``shelly``, ``gen: 2`` (Pro 3EM, Pro EM, EM Gen3, 3EM-63 ...)
    ``GET <url>/rpc/EM.GetStatus?id=0`` → ``total_act_power`` (``component: EM1``:
    ``EM1.GetStatus`` → ``act_power``). Gen2 auth is SHA-256 digest, which ``urllib`` cannot
    do: leave authentication off on a Gen2 meter used here.

A Shelly's sign depends on the way its clamp is mounted: ``sign: export`` flips it. Every
failure (unreachable, HTTP 500, not JSON, a field missing or not a number) is logged once per
new message and :meth:`Meter.read` returns None — "no reading" — never raising.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from executor.configspec import opt
from executor.drivers._http import basic_auth, ca_tls, field, number, request_json, unverified_tls
from executor.errors import DriverError

log = logging.getLogger("helios.executor.meter")


@dataclass(frozen=True)
class MeterConfig:
    """``meter: {type: homewizard | shelly, url: ...}``: the grid meter."""

    type: str = opt(help="homewizard (P1 meter) or shelly (EM / 3EM / Pro 3EM)",
                    choices=("homewizard", "shelly"))
    url: str = opt(help="Base URL, e.g. http://192.168.1.40 (HomeWizard api 2: https://...)")
    api: int = opt(1, "HomeWizard local API: 1 (GET /api/v1/data, plain HTTP) or 2 (HTTPS "
                   "/api/measurement with a bearer token)", ge=1, le=2)
    token: str | None = opt(None, "HomeWizard api 2: the bearer token from the button-press "
                            "pairing (POST /api/user)", secret=True)
    ca_file: str | None = opt(None, "HomeWizard api 2: the HomeWizard CA certificate (PEM) "
                              "to verify the meter; none = encrypted but not verified")
    gen: int = opt(1, "Shelly generation: 1 (GET /status, emeters[].power) or 2 and later "
                   "(RPC EM.GetStatus, total_act_power)", ge=1, le=4)
    component: str = opt("EM", "Shelly gen 2+: EM (three-phase, total_act_power) or EM1 "
                         "(single phase, act_power)", choices=("EM", "EM1"))
    channel: int = opt(0, "Shelly gen 2+: the component id (?id=)", ge=0, le=3)
    channels: list[int] = opt([], "Shelly gen 1: the emeters to add up (empty: total_power "
                              "when the meter has it, else every channel)", ge=0, le=3)
    sign: str = opt("import", "What the meter counts positive: import (default) or export "
                    "(a Shelly clamp mounted the other way round)",
                    choices=("import", "export"))
    username: str | None = opt(None, "Shelly gen 1: HTTP Basic user (when auth is on)")
    password: str | None = opt(None, "Shelly gen 1: HTTP Basic password", secret=True)
    timeout_s: float = opt(2.0, "HTTP timeout", "s", gt=0, le=30)


class Meter:
    """Reads one grid meter; :meth:`read` returns W (+ = import) or None.

    Parameters
    ----------
    config : MeterConfig
    key_path : str
        Where the meter is configured, for messages (``executor.driver.meter``).
    """

    def __init__(self, config: MeterConfig, key_path: str = "executor.driver.meter"):
        self.config = config
        self.key_path = key_path
        self.last_error: str | None = None
        self.name = f"{config.type} {config.url}"
        base = config.url.rstrip("/")
        if "://" not in base:
            base = ("https://" if config.type == "homewizard" and config.api == 2
                    else "http://") + base
        self._base = base
        self._context = None
        self._headers: dict[str, str] = {}
        if config.type == "homewizard" and config.api == 2:
            if base.startswith("https://"):
                self._context = ca_tls(config.ca_file) if config.ca_file else unverified_tls()
            self._headers = {"X-Api-Version": "2"}
            if config.token:
                self._headers["Authorization"] = f"Bearer {config.token}"
        elif config.type == "shelly" and config.username:
            self._headers = {"Authorization": basic_auth(config.username,
                                                         config.password or "")}

    @property
    def url(self) -> str:
        """The URL read every tick."""
        c = self.config
        if c.type == "homewizard":
            return self._base + ("/api/v1/data" if c.api == 1 else "/api/measurement")
        if c.gen == 1:
            return self._base + "/status"
        return f"{self._base}/rpc/{c.component}.GetStatus?id={c.channel}"

    def read(self) -> float | None:
        """Grid power now, + = import [W]; None when there is no usable reading (logged)."""
        try:
            payload = request_json(self.url, headers=self._headers,
                                   timeout_s=self.config.timeout_s, context=self._context)
            power_w = self.parse(payload)
        except DriverError as exc:
            message = str(exc)
            if not message.startswith(("GET ", "POST ")):
                message = f"{self.url}: {message}"
            if message != self.last_error:
                log.error("meter %s: no reading (%s)", self.name, message)
            self.last_error = message
            return None
        if self.last_error is not None:
            log.info("meter %s: reading again (%+.0f W)", self.name, power_w)
        self.last_error = None
        return power_w if self.config.sign == "import" else -power_w

    def parse(self, payload: Any) -> float:
        """The power in the meter's own sign from a decoded answer. [W]

        Raises
        ------
        DriverError
            The answer lacks the field or it is not a number.
        """
        c = self.config
        if not isinstance(payload, dict):
            raise DriverError(f"expected a JSON object, got {type(payload).__name__}")
        if c.type == "homewizard":
            key = "active_power_w" if c.api == 1 else "power_w"
            return number(field(payload, key), key)
        if c.gen >= 2:
            key = "total_act_power" if c.component == "EM" else "act_power"
            return number(field(payload, key), key)
        if not c.channels and "total_power" in payload:
            return number(payload["total_power"], "total_power")
        emeters = field(payload, "emeters")
        if not isinstance(emeters, list) or not emeters:
            raise DriverError(f"emeters: expected a non-empty list, got {emeters!r}")
        picked = c.channels or list(range(len(emeters)))
        total = 0.0
        for i in picked:
            entry = field(emeters, i)
            if isinstance(entry, dict) and entry.get("is_valid") is False:
                raise DriverError(f"emeters[{i}].is_valid is false")
            total += number(field(emeters, i, "power"), f"emeters[{i}].power")
        return total
