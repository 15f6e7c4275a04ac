"""The control loop: one :meth:`Executor.tick` every ``interval_s``.

Each tick: poll the plan source (keep the last good plan), read the pause file, read the
device, :func:`executor.control.decide`, then ``apply`` or ``release``, log one line and feed
telemetry. Any error inside a tick releases control and logs the reason; the loop goes on
(daemontools/systemd restart the process if it dies). ``stop()`` — called from the SIGTERM /
SIGINT handler — ends the loop after the current tick, releases, closes and returns.

An optional EV charger (``ev_charger``: an :class:`executor.evse.base.EvFollower`) follows
the slot's ``devices.<device>.power_kw`` after the battery, every tick; its trouble is logged
and never touches the battery's decision. Optional relays (``relays``: a list of
:class:`executor.relays.base.RelayFollower`) switch loads (water heater, deferrable loads) from
the slot's ``devices.<device>.power_kw`` in the same way, each on its own; a ``water``/``load``
override in force in the overrides file switches its device's relays on at once, between
plans (:func:`executor.overrides.device_override`).

Time is injected (``clock``, ``sleep``) so tests run a whole day in seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from executor import control, overrides, pause
from executor.control import Apply, Decision, Limits, Release
from executor.drivers.base import Measurement
from executor.errors import DriverError, ForeignControllerError
from executor.plansource import PlanTracker
from executor.telemetry import Telemetry

log = logging.getLogger("helios.executor")


def utc_now() -> datetime:
    """The wall clock. [UTC, aware]"""
    return datetime.now(timezone.utc)


def format_measurement(m: Measurement | None) -> str:
    """One short log fragment for a measurement."""
    if m is None:
        return "no reading"
    soc = "?" if m.soc_pct is None else f"{m.soc_pct:.1f}%"
    load = "" if m.load_power_w is None else f" load {m.load_power_w:.0f} W"
    return (f"SoC {soc} battery {m.battery_power_w:+.0f} W grid {m.grid_power_w:+.0f} W "
            f"pv {m.pv_power_w:.0f} W{load}")


class Executor:
    """Follows the plan through a driver.

    Parameters
    ----------
    driver
        Anything implementing :class:`executor.drivers.base.Driver`.
    tracker : PlanTracker
        The plan source with last-good-plan memory.
    limits : Limits
        Every bound to enforce.
    pause_path : str
        The pause state file.
    telemetry : Telemetry, optional
    clock : callable
        ``clock() -> datetime`` (aware UTC).
    interval_s : float
        Tick length. [s]
    ev_charger : EvFollower, optional
        Follows the plan's EV power on a charger (``executor.ev_charger``).
    relays : sequence of RelayFollower, optional
        Switch loads from the plan (``executor.relays``).
    overrides_path : str, optional
        The manual overrides file (:mod:`executor.overrides`), read every tick; the battery
        override in force is applied over the plan's intent, inside every clamp.
    """

    def __init__(self, driver, tracker: PlanTracker, limits: Limits, pause_path: str,
                 telemetry: Telemetry | None = None, clock: Callable[[], datetime] = utc_now,
                 interval_s: float = 10.0, ev_charger=None, relays=(),
                 overrides_path: str | None = None):
        self.driver = driver
        self.tracker = tracker
        self.limits = limits
        self.pause_path = pause_path
        self.telemetry = telemetry
        self.clock = clock
        self.interval_s = interval_s
        self.ev_charger = ev_charger
        self.relays = list(relays)
        self.overrides_path = overrides_path
        self._overrides_problem: str | None = None
        self.last_decision: Decision | None = None
        self.last_measurement: Measurement | None = None
        self.ticks = 0
        self._stop = threading.Event()
        self._stop_reason = "stopped"

    # ---------------------------------------------------------------------------------------

    def tick(self) -> Decision:
        """One control step; never raises for device or plan trouble (it releases instead)."""
        now = self.clock()
        self.ticks += 1
        try:
            plan = self.tracker.poll()
        except Exception as exc:  # a plan source bug must not leave an old setpoint in force
            log.exception("plan source failed")
            plan, self.tracker.plan = None, None
            self.tracker.reason = f"plan source failed ({type(exc).__name__}: {exc})"
        paused_until = pause.read(self.pause_path)
        found = self._overrides()
        read_error = None
        try:
            measurement = self.driver.read()
        except DriverError as exc:
            measurement, read_error = None, str(exc)
        self.last_measurement = measurement
        planned = control.slot_at(plan, now, self.limits)
        no_plan = control.no_slot_reason(plan, now, self.limits, self.tracker.reason)
        decision = control.decide(planned, measurement, self.limits, now,
                                  paused_until=paused_until, no_plan_reason=no_plan,
                                  override=overrides.battery_override(found, now))
        if isinstance(decision, Release) and decision.reason == "no measurement" and read_error:
            decision = Release(f"device unavailable ({read_error})")
        decision = self._send(decision)
        if self.ev_charger is not None:
            paused = paused_until is not None and now < paused_until
            try:
                self.ev_charger.tick(plan, now, paused=paused, measurement=measurement)
            except Exception:  # the EV must never stop the battery loop
                log.exception("ev charger failed")
        for relay in self.relays:
            try:
                relay.tick(plan, now, paused=paused_until is not None and now < paused_until,
                           override=overrides.device_override(found, now,
                                                              relay.config.device))
            except Exception as exc:  # a relay must never stop the battery loop
                log.error("%s failed: %s: %s", relay.name, type(exc).__name__, exc)
        self._log(decision, measurement)
        self.last_decision = decision
        if self.telemetry is not None:
            try:
                self.telemetry.record(measurement, now, self._device_powers())
            except OSError as exc:
                log.warning("telemetry buffer not writable: %s", exc)
        return decision

    def _device_powers(self) -> dict[str, float]:
        """The switched devices' power now, by device (summed over its relays). [W]"""
        out: dict[str, float] = {}
        for relay in self.relays:
            try:
                power = relay.power_w()
            except Exception as exc:  # a relay must never stop the battery loop
                log.error("%s: power: %s: %s", relay.name, type(exc).__name__, exc)
                continue
            if power is not None:
                out[relay.config.device] = out.get(relay.config.device, 0.0) + power
        return out

    def _overrides(self) -> list[overrides.Override]:
        """The overrides in the file (a broken file is logged once, then ignored); the battery
        kind in force goes to :func:`control.decide`, a device kind to its relays."""
        if not self.overrides_path:
            return []
        found, problem = overrides.read(self.overrides_path)
        if problem != self._overrides_problem:
            if problem:
                log.error("%s (following the plan)", problem)
            self._overrides_problem = problem
        return found

    def _send(self, decision: Decision) -> Decision:
        if isinstance(decision, Apply):
            try:
                self.driver.apply(decision.setpoint)
                return decision
            except ForeignControllerError:
                raise
            except DriverError as exc:
                decision = Release(f"apply failed ({exc})")
        try:
            self.driver.release()
        except DriverError as exc:
            decision = Release(f"{decision.reason}; release failed too ({exc})")
        return decision

    def _log(self, decision: Decision, m: Measurement | None) -> None:
        what = (f"apply: {decision.reason}" if isinstance(decision, Apply)
                else f"released: {decision.reason}")
        changed = (self.last_decision is None or type(self.last_decision) is not type(decision)
                   or (isinstance(decision, Release)
                       and decision.reason != self.last_decision.reason))
        level = logging.WARNING if changed and isinstance(decision, Release) else logging.INFO
        log.log(level, "%s → %s", format_measurement(m), what)

    # ---------------------------------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end after the current tick (signal-handler safe)."""
        self._stop_reason = reason
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def shutdown(self) -> None:
        """Release control, store the last telemetry, close the driver."""
        try:
            self.driver.release()
            log.warning("released: %s", self._stop_reason)
        except DriverError as exc:
            log.error("release on exit failed (%s): %s", self._stop_reason, exc)
        if self.ev_charger is not None:
            self.ev_charger.shutdown()
        for relay in self.relays:
            try:
                relay.shutdown()
            except Exception as exc:  # the other relays and the telemetry still close
                log.error("%s: shutdown failed: %s: %s", relay.name, type(exc).__name__, exc)
        if self.telemetry is not None:
            try:
                self.telemetry.close(self.clock())
            except OSError as exc:
                log.warning("telemetry: %s", exc)
        close = getattr(self.driver, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:  # closing must not hide the release above
                log.warning("closing the driver: %s", exc)

    def run(self, max_ticks: int | None = None,
            sleep: Callable[[float], None] | None = None) -> None:
        """Tick every ``interval_s`` until :meth:`stop` (or ``max_ticks``); then shut down.

        ``sleep(seconds)`` defaults to an interruptible wait on the stop event.
        """
        wait = sleep or self._stop.wait
        try:
            while not self._stop.is_set():
                started = self.clock()
                self.tick()
                if max_ticks is not None and self.ticks >= max_ticks:
                    self._stop_reason = f"--once/max ticks ({self.ticks})"
                    break
                if self._stop.is_set():
                    break
                spent = (self.clock() - started).total_seconds()
                wait(max(self.interval_s - spent, 0.0))
        except BaseException as exc:
            self._stop_reason = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.shutdown()
