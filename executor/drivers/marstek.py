"""``marstek``: several Marstek Venus (C/E/D/A, "ES") batteries over their local UDP JSON API,
with the grid read from a HomeWizard P1 or Shelly meter.

API facts from ``reference/devices.md`` §2.2 (Marstek Open API rev 1.0, Marstek's own
integration): UDP port 30000, ``ES.GetStatus`` (``bat_soc`` %, ``ongrid_power`` W, + =
discharging), ``Bat.GetStatus`` (``bat_capacity`` Wh left, ``rated_capacity`` Wh,
``charg_flag``/``dischrg_flag``), ``ES.SetMode`` with ``Auto`` (the unit's own
self-consumption against its CT), ``Passive`` (``power`` W, + = discharge, for ``cd_time`` s) or
``Manual``. The Open API must be enabled in the Marstek app.

Every tick :meth:`MarstekDriver.read` asks each unit for ``ES.GetStatus`` (and
``Bat.GetStatus`` every ``status_every_s``) and reads the meter; the executor's control law
turns the plan and that reading into one battery power — the grid target minus the meter
reading, tracked every tick — and :meth:`MarstekDriver.apply` splits it across the units that
answered: a discharge in proportion to the energy each holds above the SoC floor, a charge in
proportion to the room each has left, each clamped to its own limit (±2500 W by default), the
share a unit cannot take going to the others (:func:`split_power`). A unit at or below the
floor does not discharge. Each unit gets ``ES.SetMode Passive`` with its share and a
countdown ``cd_time_s`` (the units' own dead-man switch) when its share moved by more than
``deadband_w`` or ``refresh_s`` has passed.

A unit that does not answer (after ``retries``) or refuses a command is dropped from the split
— the others take its share — and asked once to go back to ``Auto`` (its passive countdown
ends anyway); it is polled again every tick and rejoins when it answers. With no unit or no
meter reading, :meth:`read` raises and the executor releases. Release = every unit back to
``release_mode`` (``Auto``), retried each tick for a unit that did not confirm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from executor.configspec import opt
from executor.drivers import register
from executor.drivers._http import number
from executor.drivers._meters import Meter, MeterConfig
from executor.drivers._split import plan_weights, split_power
from executor.drivers._udp_rpc import Peer, UdpRpc
from executor.drivers.base import Measurement, Setpoint
from executor.errors import ConfigError, ConfigProblem, DriverError, DriverUnavailable

log = logging.getLogger("helios.executor.marstek")

AUTO = {"mode": "Auto", "auto_cfg": {"enable": 1}}
AI = {"mode": "AI", "ai_cfg": {"enable": 1}}


@dataclass
class UnitStatus:
    """What one unit reported this tick (+ = discharge)."""

    soc_pct: float
    power_w: float
    pv_w: float = 0.0
    rated_wh: float | None = None
    remaining_wh: float | None = None
    can_charge: bool = True
    can_discharge: bool = True


@dataclass(eq=False)  # identity: used as a dict key
class _Unit:
    peer: Peer
    online: bool = True
    status: UnitStatus | None = None
    battery: dict | None = None  # last Bat.GetStatus result
    battery_at_s: float = -1e9
    mode: str | None = None  # what Helios last set: "Passive" or the release mode
    command_w: float | None = None
    written_at_s: float = -1e9


def parse_hostport(text: str, default_port: int, key: str) -> tuple:
    """``"HOST"`` or ``"HOST:PORT"`` → (host, port); ConfigError naming ``key`` otherwise."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host, port_text = text.strip(), str(default_port)
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(ConfigProblem(key, "HOST or HOST:PORT (port 1-65535)", repr(text)))
    return host, int(port_text)


def parse_status(es: dict, bat: dict | None) -> UnitStatus:
    """A :class:`UnitStatus` from ``ES.GetStatus`` and the last ``Bat.GetStatus`` results.

    Raises
    ------
    DriverError
        ``bat_soc`` or ``ongrid_power`` missing or not a number (SoC outside 0-100 too).
    """
    soc = number(es.get("bat_soc"), "ES.GetStatus bat_soc")
    if not 0.0 <= soc <= 100.0:
        raise DriverError(f"ES.GetStatus bat_soc: {soc!r} is not a SoC in %")
    power = number(es.get("ongrid_power"), "ES.GetStatus ongrid_power")
    pv = es.get("pv_power")
    status = UnitStatus(soc_pct=soc, power_w=power,
                        pv_w=number(pv, "pv_power") if isinstance(pv, (int, float)) else 0.0)
    if bat:
        try:
            status.rated_wh = number(bat.get("rated_capacity"), "Bat.GetStatus rated_capacity")
            status.remaining_wh = number(bat.get("bat_capacity"), "Bat.GetStatus bat_capacity")
        except DriverError as exc:
            log.warning("ignoring Bat.GetStatus: %s", exc)
            status.rated_wh = status.remaining_wh = None
        if status.rated_wh is not None and status.rated_wh <= 0:
            status.rated_wh = status.remaining_wh = None
        status.can_charge = bat.get("charg_flag") is not False
        status.can_discharge = bat.get("dischrg_flag") is not False
    return status


@register("marstek")
class MarstekDriver:
    """Marstek Venus units over UDP + a LAN grid meter (see the module docstring)."""

    @dataclass(frozen=True)
    class Config:
        """Options of ``driver: {type: marstek, batteries: [...], meter: {...}}``."""

        batteries: list[str] = opt(help="The units, \"HOST\" or \"HOST:PORT\" each "
                                   "(Open API enabled in the Marstek app)")
        meter: MeterConfig = opt(help="The grid meter: {type: homewizard | shelly, url: ...}")
        port: int = opt(30000, "UDP port of a unit given without one", ge=1, le=65535)
        max_charge_w: float = opt(2500.0, "Charge limit of each unit", "W", ge=0, le=10000)
        max_discharge_w: float = opt(2500.0, "Discharge limit of each unit (800 on a "
                                     "plug-in socket)", "W", ge=0, le=10000)
        capacity_wh: float = opt(5120.0, "Capacity of a unit until Bat.GetStatus reports "
                                 "rated_capacity", "Wh", gt=0)
        timeout_s: float = opt(2.5, "How long one request waits for its answer", "s",
                               gt=0, le=30)
        retries: int = opt(2, "Extra attempts after a timeout (a unit already offline gets "
                           "one attempt per tick)", ge=0, le=8)
        request_gap_s: float = opt(0.5, "Least time between two requests to the same unit "
                                   "(the units dislike bursts)", "s", ge=0, le=30)
        cd_time_s: int = opt(180, "Passive countdown sent with each setpoint: the unit drops "
                             "it this long after the last write (its own fail-safe)", "s",
                             ge=10, le=86400)
        refresh_s: float = opt(60.0, "Rewrite an unchanged setpoint at least this often "
                               "(must be < cd_time_s)", "s", gt=0)
        deadband_w: float = opt(20.0, "A share that moved less than this is not rewritten",
                                "W", ge=0)
        status_every_s: float = opt(60.0, "How often Bat.GetStatus (capacity, charge "
                                    "flags) is read", "s", ge=0)
        release_mode: str = opt("Auto", "The mode every unit gets back on release",
                                choices=("Auto", "AI"))
        plan_names: list[str] = opt([], "The plan's battery of each unit in batteries "
                                    "(battery = the home battery, or a batteries: name): the "
                                    "split then follows the plan's powers per battery "
                                    "(default: by energy above the floor / room left)")

    def __init__(self, config: MarstekDriver.Config, *, clock: Callable[[], datetime],
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, meter: Meter | None = None):
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        if not config.batteries:
            raise ConfigError(ConfigProblem("executor.driver.batteries",
                                            "at least one \"HOST[:PORT]\"", "an empty list"))
        if config.refresh_s >= config.cd_time_s:
            raise ConfigError(ConfigProblem("executor.driver.refresh_s",
                                            f"a number < cd_time_s ({config.cd_time_s}) [s]",
                                            repr(config.refresh_s)))
        if config.plan_names and len(config.plan_names) != len(config.batteries):
            raise ConfigError(ConfigProblem("executor.driver.plan_names",
                                            f"one name per unit ({len(config.batteries)})",
                                            f"{len(config.plan_names)} names"))
        self.units: list[_Unit] = []
        for i, text in enumerate(config.batteries):
            host, port = parse_hostport(text, config.port, f"executor.driver.batteries[{i}]")
            self.units.append(_Unit(Peer(f"marstek {host}:{port}", host, port)))
        self.rpc = UdpRpc(config.timeout_s, config.request_gap_s, monotonic, sleep)
        self.meter = meter or Meter(config.meter)
        self.last: Measurement | None = None

    # --- reading ------------------------------------------------------------------------------

    def _retries(self, units: list) -> dict:
        return {u.peer: (self.config.retries if u.online else 0) for u in units}

    def _went_offline(self, unit: _Unit, why: object) -> None:
        if unit.online:
            log.warning("%s offline (%s): its share goes to the others; asking it back to %s "
                        "(its passive countdown ends within %d s anyway)", unit.peer.name, why,
                        self.config.release_mode, self.config.cd_time_s)
            unit.online = False
            unit.mode = None
            unit.command_w = None
            self.rpc.call_all({unit.peer: self._release_call()}, retries=0)
        unit.status = None

    def _release_call(self) -> tuple:
        return "ES.SetMode", {"id": 0, "config": AUTO if self.config.release_mode == "Auto"
                              else AI}

    def read(self) -> Measurement:
        """Poll every unit and the meter.

        Raises
        ------
        DriverUnavailable
            No unit answered, or the meter gave no reading.
        """
        now_s = self.clock().timestamp()  # device time (the countdown), injected
        answers = self.rpc.call_all({u.peer: ("ES.GetStatus", {"id": 0}) for u in self.units},
                                    self._retries(self.units))
        by_peer = {u.peer: u for u in self.units}
        due = [u for u in self.units if not isinstance(answers.get(u.peer), Exception)
               and now_s - u.battery_at_s >= self.config.status_every_s]
        bat_answers = self.rpc.call_all({u.peer: ("Bat.GetStatus", {"id": 0}) for u in due},
                                        self._retries(due)) if due else {}
        for peer, answer in bat_answers.items():
            unit = by_peer[peer]
            if isinstance(answer, Exception):
                log.warning("%s: Bat.GetStatus failed (%s); keeping the last one", peer.name,
                            answer)
            else:
                unit.battery, unit.battery_at_s = answer, now_s
        for unit in self.units:
            answer = answers.get(unit.peer)
            if isinstance(answer, Exception):
                self._went_offline(unit, answer)
                continue
            try:
                unit.status = parse_status(answer, unit.battery)
            except DriverError as exc:
                self._went_offline(unit, f"bad ES.GetStatus: {exc}")
                continue
            if not unit.online:
                log.warning("%s back online (SoC %.0f%%)", unit.peer.name, unit.status.soc_pct)
                unit.online = True
        grid_w = self.meter.read()
        live = [u for u in self.units if u.status is not None]
        if not live:
            raise DriverUnavailable(f"no Marstek unit answered ({len(self.units)} configured)")
        if grid_w is None:
            raise DriverUnavailable(f"meter {self.meter.name}: {self.meter.last_error}")
        self.last = self._measurement(live, grid_w)
        return self.last

    def _capacity_wh(self, unit: _Unit) -> float:
        s = unit.status
        return s.rated_wh if s is not None and s.rated_wh else self.config.capacity_wh

    def _measurement(self, live: list, grid_w: float) -> Measurement:
        rated = [self._capacity_wh(u) for u in live]
        weighted = sum(u.status.soc_pct * r for u, r in zip(live, rated))  # noqa: B905 - 3.8
        soc = weighted / sum(rated)
        c = self.config
        return Measurement(
            at=self.clock(), soc_pct=round(soc, 2),
            battery_power_w=sum(u.status.power_w for u in live), grid_power_w=grid_w,
            pv_power_w=0.0,  # a Venus D's DC PV is inside its ongrid_power (AC side)
            max_charge_w=sum(c.max_charge_w for u in live if u.status.can_charge),
            max_discharge_w=sum(c.max_discharge_w for u in live if u.status.can_discharge),
        )

    # --- writing ------------------------------------------------------------------------------

    def shares(self, battery_w: float, min_soc_pct: float, max_soc_pct: float = 100.0,
               planned_w: dict | None = None) -> dict:
        """Unit → its share of ``battery_w`` (+ = discharge) among the units that answered:
        in the plan's proportions when ``plan_names`` says which unit is which plan battery
        and ``planned_w`` (``Setpoint.battery_shares_w``) has them, else by energy / room."""
        live = [u for u in self.units if u.status is not None]
        limits, weights = [], []
        for u in live:
            s, cap = u.status, self._capacity_wh(u)
            if battery_w >= 0:
                # bat_soc is a whole %: keep half a point off the floor
                ok = s.can_discharge and s.soc_pct - 0.5 > min_soc_pct
                limits.append(self.config.max_discharge_w if ok else 0.0)
                weights.append(max(s.soc_pct - 0.5 - min_soc_pct, 0.0) * cap)
            else:
                ok = s.can_charge and s.soc_pct < max_soc_pct
                limits.append(self.config.max_charge_w if ok else 0.0)
                weights.append(max(max_soc_pct - s.soc_pct, 0.0) * cap)
        if self.config.plan_names and planned_w:
            names = [self.config.plan_names[self.units.index(u)] for u in live]
            weights = plan_weights(battery_w, names, planned_w, weights)
        return dict(zip(live, split_power(battery_w, limits, weights)))  # noqa: B905 - 3.8

    def apply(self, setpoint: Setpoint) -> None:
        """Split the battery power the setpoint implies across the units and send it.

        Raises
        ------
        DriverUnavailable
            No unit took its setpoint (the executor then releases).
        """
        shares = self.shares(setpoint.battery_power_w, setpoint.min_soc_pct,
                             planned_w=setpoint.battery_shares_w)
        if not shares:
            raise DriverUnavailable("no Marstek unit to command")
        now_s = self.clock().timestamp()  # device time (the countdown), injected
        calls, wanted = {}, {}
        for unit, share_w in shares.items():
            power_w = int(round(share_w))
            if (unit.mode == "Passive" and unit.command_w is not None
                    and abs(power_w - unit.command_w) < self.config.deadband_w
                    and now_s - unit.written_at_s < self.config.refresh_s):
                continue
            calls[unit.peer] = ("ES.SetMode", {"id": 0, "config": {
                "mode": "Passive",
                "passive_cfg": {"power": power_w, "cd_time": self.config.cd_time_s}}})
            wanted[unit.peer] = (unit, power_w)
        if not calls:
            return
        answers = self.rpc.call_all(calls, self._retries([u for u, _ in wanted.values()]))
        ok = 0
        for peer, (unit, power_w) in wanted.items():
            answer = answers.get(peer)
            if isinstance(answer, dict) and answer.get("set_result") is True:
                unit.mode, unit.command_w, unit.written_at_s = "Passive", power_w, now_s
                ok += 1
            else:
                why = answer if isinstance(answer, Exception) else f"set_result {answer!r}"
                self._went_offline(unit, f"ES.SetMode Passive {power_w:+d} W: {why}")
        if ok == 0 and len(wanted) == len(shares):
            raise DriverUnavailable("no Marstek unit took its setpoint")

    def release(self) -> None:
        """Every unit back to ``release_mode`` (only those not yet confirmed there).

        Raises
        ------
        DriverUnavailable
            No unit confirmed (each one's passive countdown still ends it).
        """
        mode = self.config.release_mode
        todo = [u for u in self.units if u.mode != mode]
        if not todo:
            return
        answers = self.rpc.call_all({u.peer: self._release_call() for u in todo},
                                    self._retries(todo))
        failed = []
        for unit in todo:
            answer = answers.get(unit.peer)
            if isinstance(answer, dict) and answer.get("set_result") is True:
                unit.mode, unit.command_w = mode, None
            else:
                failed.append(f"{unit.peer.name}: {answer}")
        if failed:
            log.error("release to %s not confirmed by %s", mode, "; ".join(failed))
            if len(failed) == len(todo):
                raise DriverUnavailable(f"no Marstek unit confirmed {mode} ({failed[0]})")

    def close(self) -> None:
        """Close the UDP socket."""
        self.rpc.close()
