"""What a relay driver implements, and how the executor switches a load from the plan.

A relay driver has ``read() -> bool | None`` (the contact is closed = the load is powered;
None: unknown), ``set(on)`` (raises :class:`~executor.errors.DriverError` when the device
refuses or cannot be reached), ``close()`` and ``describe()``. Every driver's ``Config``
derives from :class:`RelayConfig`, whose keys say which planned device it follows and how.

:meth:`RelayFollower.tick` is what the runner calls every tick with the current plan:

* **on** when the slot's ``devices.<device>.power_kw`` > ``threshold_kw``, else off (a slot
  without an entry for the device plans 0 kW);
* a ``water`` / ``load NAME`` **override** in force in the overrides file
  (:func:`executor.overrides.device_override`, found by the runner every tick): **on** for
  its whole window, whatever the plan says and with no plan at all (between plans: the next
  plan carries it too); its ``kw`` is ignored (a relay is on or off); a pause still wins
  (paused = Helios hands the loads back to their safe state);
* without a valid plan (stale, none, paused) the **safe state** (``on_stale``): ``auto`` =
  on for ``water_heater`` (its own thermostat decides, as without Helios), off for any other
  load; ``on`` / ``off`` to choose;
* a change waits until the contact has been in its state for ``min_on_s`` / ``min_off_s``
  (contactor wear; this holds for the safe state and an override too, but not on exit, nor
  for setting back a state someone else changed);
* a state is written only when it changes, when the device reports another state (switched
  by hand, or rebooted), and every ``reassert_s`` (a device that lost it, e.g. a Shelly
  after a power cut, gets it back);
* on exit (:meth:`RelayFollower.shutdown`) the safe state at once.

Relay trouble is logged (once per new message) and never raised into the battery loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from executor.configspec import opt
from executor.errors import DriverError
from executor.evse.base import planned_power_kw
from executor.overrides import Override
from executor.schedule import Schedule, format_utc

log = logging.getLogger("helios.executor.relays")

#: the device whose own controller (a thermostat) is the safe state: ``on_stale: auto`` = on
THERMOSTAT_DEVICES = ("water_heater",)


@dataclass(frozen=True)
class RelayConfig:
    """Keys every ``executor.relays`` entry has besides ``type`` and the driver's own."""

    device: str = opt(help="Which schedule.json device to follow (slots[i].devices.<device>"
                      ".power_kw): water_heater or the name of a loads: entry")
    threshold_kw: float = opt(0.05, "On when the slot plans more than this", "kW", ge=0)
    min_on_s: float = opt(300.0, "Once on, stay on at least this long (contactor wear)", "s",
                          ge=0)
    min_off_s: float = opt(300.0, "Once off, stay off at least this long", "s", ge=0)
    reassert_s: float = opt(600.0, "Re-send the state this often even without a change "
                            "(0 = only on changes)", "s", ge=0)
    power_kw: float | None = opt(None, "The load's power while on, recorded as its measured "
                                 "power when the relay has no meter (a Shelly Gen2+ measures "
                                 "it; null: only a metered relay records it)", "kW", ge=0)
    on_stale: str = opt("auto", "Without a valid plan (stale, none, paused) and on exit: "
                        "auto = on for water_heater (its thermostat decides), off for other "
                        "loads; on; off", choices=("auto", "on", "off"))


def safe_state(cfg: RelayConfig) -> bool:
    """The state a relay returns to without a plan: True = on."""
    if cfg.on_stale == "auto":
        return cfg.device in THERMOSTAT_DEVICES
    return cfg.on_stale == "on"


def _word(on: bool | None) -> str:
    return "unknown" if on is None else ("on" if on else "off")


class RelayFollower:
    """Switches one relay from the plan; :meth:`tick` never raises for relay trouble.

    Attributes
    ----------
    last_sent : bool or None
        The state last written successfully (None: nothing written yet).
    last_reported : bool or None
        What the relay reported at the last tick (None: unknown or read failed).
    last_reason : str
        Why the relay is in its state (plan entry, stale plan, held by the minimum time,
        or ``failed: ...``).
    """

    def __init__(self, relay, max_plan_age_s: float):
        self.relay = relay
        self.config: RelayConfig = relay.config
        self.max_plan_age_s = max_plan_age_s
        self.name = f"relay {self.config.device} ({relay.describe()})"
        self.last_sent: bool | None = None
        self.last_reported: bool | None = None
        self.last_reason = ""
        self.in_force: bool | None = None  # the state after the last tick (None: unknown)
        self._switched_at: datetime | None = None  # when the contact last changed (by us)
        self._written_at: datetime | None = None
        self._logged: tuple = ()
        self._errors: dict[str, str] = {}  # "read" / "set" → the last message logged

    def _warn(self, kind: str, text: str) -> None:
        if self._errors.get(kind) != text:  # once per new message, not every tick
            log.warning("%s: %s", self.name, text)
        self._errors[kind] = text

    def wanted(self, plan: Schedule | None, now: datetime, paused: bool = False,
               override: Override | None = None) -> tuple[bool, str]:
        """The state the plan (or a device override in force) asks for now and why (before
        the minimum on/off times)."""
        cfg = self.config
        if override is not None and override.in_force(now) and not paused:
            ident = "" if override.id is None else f" #{override.id}"
            return True, (f"override{ident} {override.kind} until "
                          f"{format_utc(override.end)}")
        power, why = planned_power_kw(plan, now, cfg.device, self.max_plan_age_s)
        if paused:
            power, why = None, "paused"
        if power is None:
            safe = safe_state(cfg)
            return safe, f"{why}: safe state {_word(safe)}"
        return power > cfg.threshold_kw, why

    def tick(self, plan: Schedule | None, now: datetime, paused: bool = False,
             override: Override | None = None) -> bool | None:
        """Switch the relay for ``now`` (``override``: the device override in force, see
        :meth:`wanted`): the state in force (True = on; None = unknown)."""
        self.in_force = self._tick(plan, now, paused, override)
        return self.in_force

    def _tick(self, plan: Schedule | None, now: datetime, paused: bool,
              override: Override | None) -> bool | None:
        cfg = self.config
        want, why = self.wanted(plan, now, paused, override)
        try:
            self.last_reported = self.relay.read()
            self._errors.pop("read", None)
        except DriverError as exc:
            self.last_reported = None
            self._warn("read", f"read failed: {exc}")
        current = self.last_reported if self.last_reported is not None else self.last_sent
        # switched by someone else (by hand, a reboot): set back at once, no minimum time
        foreign = self.last_sent is not None and current != self.last_sent
        reason = why
        if (current is not None and want != current and self._switched_at is not None
                and not foreign):
            held_s = (now - self._switched_at).total_seconds()
            need_s = cfg.min_on_s if current else cfg.min_off_s
            if held_s < need_s:
                want = current
                reason = f"{why} (held {_word(current)} for the minimum time)"
        due = (self._written_at is None or (cfg.reassert_s > 0 and (
            now - self._written_at).total_seconds() >= cfg.reassert_s))
        if want != self.last_sent or want != current or due:
            try:
                self.relay.set(want)
            except DriverError as exc:
                self._warn("set", f"switching {_word(want)} failed: {exc}")
                self.last_reason = f"failed: {exc}"
                return current
            if want != current:
                self._switched_at = now
            self.last_sent, self._written_at = want, now
            self._errors.pop("set", None)
        if (want, reason) != self._logged:
            log.info("%s: %s → %s", self.name, reason, _word(want))
            self._logged = (want, reason)
        self.last_reason = reason
        return want

    def power_w(self) -> float | None:
        """The load's power now for the measurements: the relay's meter (a Shelly Gen2+),
        else ``power_kw`` while on and 0 while off; None when neither is known. [W]"""
        meter = getattr(self.relay, "power_w", None)
        measured = meter() if callable(meter) else None
        if measured is not None:
            return max(0.0, float(measured))
        state = self.in_force
        if self.config.power_kw is None or state is None:
            return None
        return self.config.power_kw * 1000.0 if state else 0.0

    def shutdown(self) -> None:
        """Put the relay in its safe state at once (no minimum time) and close it."""
        safe = safe_state(self.config)
        try:
            self.relay.set(safe)
            log.info("%s: exit → safe state %s", self.name, _word(safe))
        except DriverError as exc:
            log.error("%s: safe state %s on exit failed: %s", self.name, _word(safe), exc)
        try:
            self.relay.close()
        except Exception as exc:  # closing must not hide the safe state above
            log.warning("%s: closing: %s", self.name, exc)
