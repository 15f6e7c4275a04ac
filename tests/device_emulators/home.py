"""One home on a fake clock: a load, PV, and the devices that feed or take power (+ = into the
home bus). Each battery runs :func:`executor.plant.step`; the grid takes the rest, which the
emulated meters report. Thread-safe: the device servers read it while the test advances it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from executor.plant import PlantLimits, step


class Battery:
    """A battery + inverter seen from the AC bus: it tries to deliver ``command_w`` (+ =
    discharge), moving at most ``ramp_w_per_s``, within its limits and SoC bounds."""

    def __init__(self, soc_pct: float, capacity_wh: float, max_charge_w: float = 2500.0,
                 max_discharge_w: float = 2500.0, min_soc_pct: float = 11.0,
                 max_soc_pct: float = 100.0, ramp_w_per_s: float = 1000.0,
                 efficiency: float = 0.95):
        self.soc_pct = soc_pct
        self.capacity_wh = capacity_wh
        self.limits = PlantLimits(min_kwh=min_soc_pct / 100 * capacity_wh / 1000,
                                  max_kwh=max_soc_pct / 100 * capacity_wh / 1000,
                                  max_charge_kw=max_charge_w / 1000,
                                  max_discharge_kw=max_discharge_w / 1000,
                                  charge_efficiency=efficiency, discharge_efficiency=efficiency)
        self.ramp_w_per_s = ramp_w_per_s
        self.command_w = 0.0
        self.power_w = 0.0

    def step(self, dt_s: float) -> None:
        """Move towards the command for ``dt_s`` seconds."""
        delta = self.command_w - self.power_w
        limit = self.ramp_w_per_s * dt_s
        wanted = self.power_w + max(-limit, min(limit, delta))
        cap_kwh = self.capacity_wh / 1000
        flows = step(self.limits, self.soc_pct / 100 * cap_kwh, dt_s / 3600, 0.0, 0.0,
                     battery_kw=wanted / 1000)
        self.power_w = (flows.battery_discharge_kw - flows.battery_charge_kw) * 1000
        self.soc_pct = flows.soc_kwh / cap_kwh * 100


class Home:
    """Load, PV and devices; ``grid_w = load − pv − Σ device power`` (+ = import)."""

    def __init__(self, now: datetime, load_w: float = 500.0, pv_w: float = 0.0):
        self.lock = threading.RLock()
        self.now = now
        self.load_w = load_w
        self.pv_w = pv_w
        self.devices: list = []  # objects with power_w and step(dt_s, home)
        self.trace: list = []  # (time, grid_w, device powers)

    def grid_w(self) -> float:
        """Grid power at the meter now, + = import. [W]"""
        with self.lock:
            return self.load_w - self.pv_w - sum(d.power_w for d in self.devices)

    def advance(self, now: datetime, max_step_s: float = 0.5,
                before_step: Callable | None = None) -> None:
        """Integrate every device to ``now`` in steps of at most ``max_step_s``."""
        with self.lock:
            while self.now < now:
                dt_s = min((now - self.now).total_seconds(), max_step_s)
                if before_step is not None:
                    before_step(self)
                for device in self.devices:
                    device.step(dt_s, self)
                self.now += timedelta(seconds=dt_s)
            self.trace.append((self.now, self.grid_w(), [d.power_w for d in self.devices]))
