"""An in-process battery + home model, for the demo, tests and the emulated GX.

:class:`Plant` is the ``simulated`` driver's battery + inverter + home, in W and %: every step
(at most 10 s) runs :func:`executor.plant.step`, the home physics the backtest and the
planner's baselines run too. The inverter holds the grid at its setpoint by moving the battery
(``battery = load − pv − setpoint``, + = discharge), within its power limits, the live BMS
limits and the ESS minimum SoC; SoC integrates battery power with the charge and discharge
efficiencies; the grid takes the rest (no grid limit, no outage). Released (no setpoint) it
does what a Victron ESS does on its own: self-consumption, i.e. setpoint 0. A
Dynamic-ESS-style window instead steers the battery to a target SoC by the window's end. Time
only moves when :meth:`Plant.advance` is called with a later ``now`` (injected clock, faster
than real time).

Further batteries (``batteries:`` of the driver, the plan's ``batteries:`` by name) sit on
the same AC bus: each tick :meth:`SimulatedDriver.apply` shares the battery power the
setpoint implies among the home battery and them in the plan's proportions
(``Setpoint.battery_shares_w``, :mod:`executor.drivers._split`), each further battery then
runs at its share through :func:`executor.plant.step` (its limits, SoC bounds and
efficiencies) and the home battery holds the grid setpoint with the rest. The measurement
is the site's: battery power = all batteries, SoC = the home battery's; each further
battery's SoC is :attr:`SimulatedDriver.socs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from executor.config import opt
from executor.drivers import register
from executor.drivers._split import plan_weights, split_power
from executor.drivers.base import Measurement, Setpoint
from executor.plant import PlantLimits, step


def demo_profile(now: datetime) -> tuple:
    """A deterministic summer day: ``(pv_w, load_w)`` at ``now`` (UTC hours). [W]"""
    hour = now.hour + now.minute / 60.0 + now.second / 3600.0
    pv_w = max(0.0, 5000.0 * math.sin(math.pi * (hour - 5.0) / 14.0)) if 5 <= hour <= 19 else 0.0
    load_w = 350.0 + 900.0 * math.exp(-((hour - 7.5) ** 2) / 1.5) \
        + 1500.0 * math.exp(-((hour - 19.0) ** 2) / 3.0)
    return pv_w, load_w


@dataclass
class DessWindow:
    """A Dynamic-ESS-style window: reach ``target_soc_pct`` by ``end``. [UTC, %]"""

    start: datetime
    end: datetime
    target_soc_pct: float


class Plant:
    """Battery + inverter + home. Powers in W (+ = discharge / import), SoC in %.

    Parameters
    ----------
    soc_pct : float
        Initial SoC. [%]
    capacity_kwh : float
        Usable capacity. [kWh]
    profile : callable
        ``profile(now) -> (pv_w, load_w)``.
    now : datetime
        Start time. [UTC]
    """

    def __init__(self, soc_pct: float, capacity_kwh: float, now: datetime,
                 profile: Callable = demo_profile, max_charge_w: float = 5000.0,
                 max_discharge_w: float = 5000.0, charge_efficiency: float = 0.95,
                 discharge_efficiency: float = 0.95, min_soc_pct: float = 10.0,
                 max_soc_pct: float = 100.0, bms_max_charge_w: float | None = None,
                 bms_max_discharge_w: float | None = None):
        self.soc_pct = float(soc_pct)
        self.capacity_kwh = capacity_kwh
        self.profile = profile
        self.now = now
        self.max_charge_w = max_charge_w
        self.max_discharge_w = max_discharge_w
        self.charge_efficiency = charge_efficiency
        self.discharge_efficiency = discharge_efficiency
        self.min_soc_pct = min_soc_pct  # the ESS's own floor (settings MinimumSocLimit)
        self.max_soc_pct = max_soc_pct
        self.bms_max_charge_w = bms_max_charge_w
        self.bms_max_discharge_w = bms_max_discharge_w
        self.grid_setpoint_w: float | None = None  # None = released: self-consumption
        self.window: DessWindow | None = None
        self.battery_power_w = 0.0
        self.pv_power_w, self.load_power_w = profile(now)
        self.grid_power_w = self.load_power_w - self.pv_power_w
        self.energy_in_wh = 0.0   # AC energy into the battery, for checks
        self.energy_out_wh = 0.0  # AC energy out of the battery

    def _limits(self) -> tuple:
        charge, discharge = self.max_charge_w, self.max_discharge_w
        if self.bms_max_charge_w is not None:
            charge = min(charge, self.bms_max_charge_w)
        if self.bms_max_discharge_w is not None:
            discharge = min(discharge, self.bms_max_discharge_w)
        return charge, discharge

    def _window_request_w(self, now: datetime) -> float | None:
        """The battery power a Dynamic-ESS window asks for now, or None (no window). [W]"""
        window = self.window
        if window is None or not window.start <= now < window.end:
            return None
        left_h = max((window.end - now).total_seconds() / 3600.0, 1.0 / 60.0)
        gap_kwh = (window.target_soc_pct - self.soc_pct) / 100.0 * self.capacity_kwh
        if gap_kwh >= 0:
            return -1000.0 * gap_kwh / self.charge_efficiency / left_h
        return -1000.0 * gap_kwh * self.discharge_efficiency / left_h

    def limits(self) -> PlantLimits:
        """The plant's limits now (ESS floor, max SoC, inverter and BMS power; no grid
        limit) for :func:`executor.plant.step`."""
        charge_w, discharge_w = self._limits()
        cap = self.capacity_kwh
        return PlantLimits(min_kwh=self.min_soc_pct / 100.0 * cap,
                           max_kwh=self.max_soc_pct / 100.0 * cap,
                           max_charge_kw=charge_w / 1000.0, max_discharge_kw=discharge_w / 1000.0,
                           charge_efficiency=self.charge_efficiency,
                           discharge_efficiency=self.discharge_efficiency)

    def advance(self, now: datetime, max_step_s: float = 10.0) -> None:
        """Integrate from the last call to ``now`` in steps of at most ``max_step_s``."""
        while self.now < now:
            step_s = min((now - self.now).total_seconds(), max_step_s)
            self._step(step_s)
            self.now = min(now, self.now + timedelta(seconds=step_s))

    def _step(self, dt_s: float) -> None:
        pv_w, load_w = self.profile(self.now)
        request_w = self._window_request_w(self.now)
        dt_h = dt_s / 3600.0
        cap = self.capacity_kwh
        if request_w is None:  # the inverter holds the grid at the setpoint (released: 0)
            setpoint_w = 0.0 if self.grid_setpoint_w is None else self.grid_setpoint_w
            flows = step(self.limits(), self.soc_pct / 100.0 * cap, dt_h, pv_w / 1000.0,
                         load_w / 1000.0, grid_kw=setpoint_w / 1000.0)
        else:
            flows = step(self.limits(), self.soc_pct / 100.0 * cap, dt_h, pv_w / 1000.0,
                         load_w / 1000.0, battery_kw=request_w / 1000.0)
        self.soc_pct = min(max(flows.soc_kwh / cap * 100.0, 0.0), 100.0)
        self.energy_in_wh += flows.battery_charge_kw * 1000.0 * dt_h
        self.energy_out_wh += flows.battery_discharge_kw * 1000.0 * dt_h
        self.battery_power_w = (flows.battery_discharge_kw - flows.battery_charge_kw) * 1000.0
        self.pv_power_w, self.load_power_w = pv_w, load_w
        self.grid_power_w = (flows.grid_import_kw - flows.grid_export_kw) * 1000.0

    def measurement(self, now: datetime) -> Measurement:
        """The current state as a :class:`Measurement` (after ``advance(now)``)."""
        return Measurement(
            at=now, soc_pct=round(self.soc_pct, 3), battery_power_w=self.battery_power_w,
            grid_power_w=self.grid_power_w, pv_power_w=self.pv_power_w,
            load_power_w=self.load_power_w,
            max_charge_w=self.bms_max_charge_w, max_discharge_w=self.bms_max_discharge_w,
        )


@dataclass(frozen=True)
class SimBatteryConfig:
    """A further simulated battery (``driver: {type: simulated, batteries: [...]}``)."""

    name: str = opt(help="Its name in the plan (a batteries: name of the planner's config)")
    capacity_kwh: float = opt(5.0, "Usable capacity", "kWh", gt=0)
    soc_pct: float = opt(50.0, "Initial SoC", "%", ge=0, le=100)
    max_charge_w: float = opt(2500.0, "Charge limit", "W", ge=0)
    max_discharge_w: float = opt(2500.0, "Discharge limit", "W", ge=0)
    min_soc_pct: float = opt(10.0, "Lowest SoC", "%", ge=0, le=100)
    efficiency: float = opt(0.95, "Charge and discharge efficiency (each way)", gt=0, le=1)


class _SimBattery:
    """One further battery: runs at its share, within its limits and SoC bounds."""

    def __init__(self, cfg: SimBatteryConfig):
        self.cfg = cfg
        self.soc_pct = cfg.soc_pct
        self.command_w = 0.0  # + = discharge
        self.power_w = 0.0  # what it actually did in the last step

    def limits(self) -> PlantLimits:
        c = self.cfg
        return PlantLimits(min_kwh=c.min_soc_pct / 100.0 * c.capacity_kwh,
                           max_kwh=c.capacity_kwh, max_charge_kw=c.max_charge_w / 1000.0,
                           max_discharge_kw=c.max_discharge_w / 1000.0,
                           charge_efficiency=c.efficiency, discharge_efficiency=c.efficiency)

    def room_w(self, discharge: bool) -> float:
        """What it can take this tick in that direction. [W]"""
        c = self.cfg
        if discharge:
            return c.max_discharge_w if self.soc_pct > c.min_soc_pct + 1e-6 else 0.0
        return c.max_charge_w if self.soc_pct < 100.0 - 1e-6 else 0.0

    def step(self, dt_s: float) -> None:
        cap = self.cfg.capacity_kwh
        flows = step(self.limits(), self.soc_pct / 100.0 * cap, dt_s / 3600.0, 0.0, 0.0,
                     battery_kw=self.command_w / 1000.0)
        self.soc_pct = min(max(flows.soc_kwh / cap * 100.0, 0.0), 100.0)
        self.power_w = (flows.battery_discharge_kw - flows.battery_charge_kw) * 1000.0


@register("simulated")
class SimulatedDriver:
    """Drives an in-process :class:`Plant` (demo, tests, backtest). Never touches hardware."""

    simulated = True  # readings are a model's: not stored as measurements (executor/__main__)

    @dataclass(frozen=True)
    class Config:
        """Options of ``driver: {type: simulated}`` (defaults from ``executor.limits``)."""

        soc_pct: float = opt(50.0, "Initial SoC", "%", ge=0, le=100)
        capacity_kwh: float = opt(10.0, "Usable capacity", "kWh", gt=0)
        max_charge_w: float = opt(5000.0, "Inverter charge limit", "W", ge=0)
        max_discharge_w: float = opt(5000.0, "Inverter discharge limit", "W", ge=0)
        min_soc_pct: float = opt(10.0, "ESS minimum SoC", "%", ge=0, le=100)
        batteries: list[SimBatteryConfig] = opt([], "Further batteries on the same bus, "
                                                "sharing the battery power in the plan's "
                                                "proportions (default: none)")

    @staticmethod
    def config_defaults(limits) -> dict:
        """Option defaults taken from the validated limits."""
        return {"capacity_kwh": limits.capacity_kwh, "max_charge_w": limits.max_charge_w,
                "max_discharge_w": limits.max_discharge_w, "min_soc_pct": limits.min_soc_pct}

    def __init__(self, config: SimulatedDriver.Config | None = None, *,
                 clock: Callable[[], datetime], plant: Plant | None = None):
        self.config = config or SimulatedDriver.Config()
        self.clock = clock
        self.plant = plant or Plant(self.config.soc_pct, self.config.capacity_kwh, clock(),
                                    max_charge_w=self.config.max_charge_w,
                                    max_discharge_w=self.config.max_discharge_w,
                                    min_soc_pct=self.config.min_soc_pct)
        self.applied: Setpoint | None = None
        self.extra = [_SimBattery(b) for b in self.config.batteries]
        if self.extra:  # the further batteries' power is a negative load for the home plant
            own = self.plant.profile
            self.plant.profile = lambda now: (lambda pv_load: (
                pv_load[0], pv_load[1] - self._extra_w()))(own(now))

    def _extra_w(self) -> float:
        return sum(b.power_w for b in self.extra)

    @property
    def socs(self) -> dict:
        """Each further battery's SoC. [%]"""
        return {b.cfg.name: b.soc_pct for b in self.extra}

    def _advance(self, now: datetime) -> None:
        while self.plant.now < now:  # the further batteries in the plant's 10 s steps
            dt_s = min((now - self.plant.now).total_seconds(), 10.0)
            for b in self.extra:
                b.step(dt_s)
            self.plant.advance(self.plant.now + timedelta(seconds=dt_s))

    def read(self) -> Measurement:
        """Advance the model to now and measure it (all batteries)."""
        now = self.clock()
        self._advance(now)
        m = self.plant.measurement(now)
        if not self.extra:
            return m
        extra_w = self._extra_w()
        return Measurement(at=m.at, soc_pct=m.soc_pct,
                           battery_power_w=m.battery_power_w + extra_w,
                           grid_power_w=m.grid_power_w, pv_power_w=m.pv_power_w,
                           load_power_w=m.load_power_w + extra_w,
                           max_charge_w=m.max_charge_w, max_discharge_w=m.max_discharge_w)

    def shares(self, setpoint: Setpoint) -> dict:
        """Each battery's share of the setpoint's battery power (``battery`` = the home
        one; + = discharge), in the plan's proportions. [W]"""
        total = setpoint.battery_power_w
        discharge = total >= 0
        plant = self.plant
        home_room = (plant.max_discharge_w if plant.soc_pct > setpoint.min_soc_pct
                     else 0.0) if discharge else (plant.max_charge_w if plant.soc_pct < 100
                                                  else 0.0)
        names = ["battery"] + [b.cfg.name for b in self.extra]
        rooms = [home_room] + [b.room_w(discharge) for b in self.extra]
        caps = [plant.capacity_kwh] + [b.cfg.capacity_kwh for b in self.extra]
        weights = plan_weights(total, names, setpoint.battery_shares_w, caps)
        return dict(zip(names, split_power(total, rooms, weights)))  # noqa: B905 - 3.8

    def apply(self, setpoint: Setpoint) -> None:
        """Hold the grid at ``setpoint.grid_power_w`` until the next call (the further
        batteries at their shares, the home battery the rest)."""
        self._advance(self.clock())
        if self.extra:
            shares = self.shares(setpoint)
            for b in self.extra:
                b.command_w = shares[b.cfg.name]
        self.plant.grid_setpoint_w = float(setpoint.grid_power_w)
        self.plant.min_soc_pct = setpoint.min_soc_pct
        self.applied = setpoint

    def release(self) -> None:
        """Back to self-consumption (setpoint 0; the further batteries idle)."""
        self._advance(self.clock())
        for b in self.extra:
            b.command_w = 0.0
        self.plant.grid_setpoint_w = None
        self.applied = None
