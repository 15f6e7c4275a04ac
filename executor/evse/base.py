"""What an EV charger (EVSE) driver implements, and how the executor follows the plan with it.

A charger driver has ``read() -> ChargerState``, ``set_current(amps)`` (0 = stop charging;
otherwise a current per phase in [min_current_a, max_current_a]), ``release()`` (hand the
charger back to its own behaviour: Alfen's safe current, the Victron station's mode as it was
found) and ``close()``. Every driver's ``Config`` derives from :class:`ChargerConfig`, whose
keys say how a planned power becomes a current and what a stale plan does.

:class:`EvFollower.tick` is what the runner calls every tick with the current plan: the
current is the slot's ``devices.<device>.power_kw`` as ``A = W / (230 V × phases)``, clamped
to [min, max] (below half the minimum: 0 = stop, since a car does not charge below 6 A);
without a valid plan (stale, none, paused) the charger is released or stopped
(``on_stale``). In a slot the plan marks ``devices.<device>.mode: solar`` (the car charged
from PV) the current follows the measured PV surplus each tick instead (what the car draws
plus what is exported, [min, max]), until the slot's planned energy is charged. A driver
that must re-send its setpoint (Alfen's validity time) does so from ``set_current`` on every
tick, so the follower calls it every tick, not only on changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from executor.configspec import opt
from executor.errors import DriverError
from executor.schedule import Schedule

log = logging.getLogger("helios.executor.evse")

#: nominal phase voltage used to turn the planned power into a current [V]
VOLTAGE_V = 230.0


@dataclass(frozen=True)
class ChargerState:
    """What the charger reports now.

    Attributes
    ----------
    status : str
        The charger's own status text (Mode-3 state ``A``..``F``, or the Victron status name).
    connected : bool or None
        A car is plugged in (None: unknown).
    charging : bool or None
        Energy flows to the car (None: unknown).
    power_w : float or None
        Charging power. [W]
    current_a : float or None
        The current limit in force (per phase). [A]
    """

    status: str
    connected: bool | None = None
    charging: bool | None = None
    power_w: float | None = None
    current_a: float | None = None


@dataclass(frozen=True)
class ChargerConfig:
    """Keys every ``executor.ev_charger`` has besides ``type`` and the driver's own."""

    device: str = opt("ev", "Which schedule.json device entry to follow "
                      "(slots[i].devices.<device>.power_kw)")
    phases: int = opt(3, "Phases the car charges on (1 or 3)", ge=1, le=3)
    min_current_a: float = opt(6.0, "Lowest current the car charges at (IEC 61851: 6 A)", "A",
                               ge=0)
    max_current_a: float = opt(16.0, "Highest current per phase (cable, fuse, car)", "A", gt=0)
    on_stale: str = opt("release", "Without a valid plan (stale, none, paused): release = the "
                        "charger's own default (Alfen: its safe current; Victron: the mode it "
                        "was in), stop = current 0", choices=("release", "stop"))
    solar_follow: bool = opt(True, "In a slot the plan marks solar (devices.ev.mode: solar) "
                             "the current follows the measured PV surplus each tick, within "
                             "the slot's planned energy")


def current_a(power_kw: float, cfg: ChargerConfig) -> float:
    """The current per phase for a planned power: ``W / (230 V × phases)`` clamped to
    [min, max]; below half the minimum 0 (stop). [A]"""
    amps = max(power_kw, 0.0) * 1000.0 / (VOLTAGE_V * cfg.phases)
    if amps < cfg.min_current_a / 2 or amps <= 0:
        return 0.0
    return min(max(amps, cfg.min_current_a), cfg.max_current_a)


def surplus_a(measurement, charging_w: float, cfg: ChargerConfig) -> float:
    """The current the measured PV surplus allows, as :func:`current_a` rounds it (below half
    the minimum: 0). [A]

    The surplus is PV minus the house without the car: ``charging_w − grid_power_w −
    battery_power_w`` (export and battery charging count as surplus, so within the slot's
    planned energy the car goes before the home battery; a discharging battery lowers it, so
    the battery is not emptied into the car)."""
    surplus_w = charging_w - measurement.grid_power_w - measurement.battery_power_w
    return current_a(surplus_w / 1000.0, cfg)


def planned_power_kw(plan: Schedule | None, now: datetime, device: str,
                     max_plan_age_s: float) -> tuple[float | None, str]:
    """The slot's planned power for ``device`` now, or None and why not.

    A plan is stale once ``valid_until`` has passed or it was generated more than
    ``max_plan_age_s`` ago (the battery's rule, :func:`executor.control.no_slot_reason`).
    A slot without an entry for ``device`` plans 0 kW (the device is off in it).
    """
    if plan is None:
        return None, "no plan"
    if now >= plan.valid_until:
        return None, "plan stale (valid_until passed)"
    if (now - plan.generated_at).total_seconds() > max_plan_age_s:
        return None, "plan stale (too old)"
    slot = plan.slot_at(now)
    if slot is None:
        return None, "no slot of the plan covers now"
    entry = (slot.devices or {}).get(device)
    if entry is None:
        return 0.0, f"slot without devices.{device}: 0 kW"
    return float(entry["power_kw"]), f"devices.{device}.power_kw {float(entry['power_kw']):.2f}"


class EvFollower:
    """Drives one charger from the plan; :meth:`tick` never raises for charger trouble."""

    def __init__(self, charger, max_plan_age_s: float):
        self.charger = charger
        self.config: ChargerConfig = charger.config
        self.max_plan_age_s = max_plan_age_s
        self.last_current_a: float | None = None  # None: released
        self.last_reason = ""
        self.last_state: ChargerState | None = None
        # PV-surplus following: the slot being followed, energy sent in it, the last tick
        self._slot_start: datetime | None = None
        self.slot_energy_kwh = 0.0
        self._last_tick: datetime | None = None

    def _charging_w(self) -> float:
        """What the car draws now: the charger's power, else the last current sent. [W]"""
        st = self.last_state
        if st is not None and st.power_w is not None:
            return max(st.power_w, 0.0)
        return (self.last_current_a or 0.0) * VOLTAGE_V * self.config.phases

    def _solar(self, plan: Schedule, now: datetime, power_kw: float,
               measurement) -> tuple[float, str] | None:
        """The current in a solar slot: the PV surplus, while the slot's planned energy
        (``power_kw`` × slot length) is not used up; None when the slot is not solar."""
        cfg = self.config
        slot = plan.slot_at(now)
        entry = (slot.devices or {}).get(cfg.device) if slot is not None else None
        if (not cfg.solar_follow or measurement is None or entry is None
                or entry.get("mode") != "solar"):
            return None
        if slot.start != self._slot_start:
            self._slot_start, self.slot_energy_kwh = slot.start, 0.0
        budget_kwh = power_kw * plan.slot_s / 3600.0
        if self.slot_energy_kwh >= budget_kwh - 1e-6:
            return 0.0, f"solar: the slot's {budget_kwh:.2f} kWh are charged"
        amps = surplus_a(measurement, self._charging_w(), cfg)
        return amps, f"solar: PV surplus → {amps:.1f} A ({self.slot_energy_kwh:.2f} of " \
                     f"{budget_kwh:.2f} kWh)"

    def tick(self, plan: Schedule | None, now: datetime, paused: bool = False,
             measurement=None) -> float | None:
        """Set the charger for ``now``: the current sent (A), or None when released.

        ``measurement`` (the battery driver's :class:`executor.drivers.base.Measurement`):
        in a slot marked ``devices.<device>.mode: solar`` the current follows its PV surplus.
        """
        cfg = self.config
        if self._last_tick is not None and self.last_current_a:
            dt_h = max((now - self._last_tick).total_seconds(), 0.0) / 3600.0
            self.slot_energy_kwh += self._charging_w() / 1000.0 * dt_h
        self._last_tick = now
        power, why = planned_power_kw(plan, now, cfg.device, self.max_plan_age_s)
        if paused:
            power, why = None, "paused"
        try:
            self.last_state = self.charger.read()
        except DriverError as exc:
            self.last_state = None
            log.warning("ev charger: read failed (%s)", exc)
        solar = None if power is None else self._solar(plan, now, power, measurement)
        try:
            if power is None and cfg.on_stale == "release":
                self.charger.release()
                sent = None
            elif solar is not None:
                sent, why = solar
                self.charger.set_current(sent)
            else:
                sent = 0.0 if power is None else current_a(power, cfg)
                self.charger.set_current(sent)
        except DriverError as exc:
            log.warning("ev charger: %s failed (%s)", why, exc)
            self.last_reason = f"failed: {exc}"
            return self.last_current_a
        if sent != self.last_current_a or why != self.last_reason:
            log.info("ev charger: %s → %s", why,
                     "released" if sent is None else f"{sent:.1f} A")
        self.last_current_a, self.last_reason = sent, why
        return sent

    def shutdown(self) -> None:
        """Release the charger and close it (on exit)."""
        try:
            self.charger.release()
        except DriverError as exc:
            log.error("ev charger: release on exit failed: %s", exc)
        close = getattr(self.charger, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:  # closing must not hide the release above
                log.warning("ev charger: closing: %s", exc)
