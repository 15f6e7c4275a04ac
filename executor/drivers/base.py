"""Driver interface: what every driver reads and writes, in Helios units and signs.

Signs at this edge follow STYLE.md §3.3, "+ = into the home bus": grid import is +, battery
*discharge* is +. Vendor signs and scales (Victron battery power + = charging, SoC ×10 on
Modbus, int32 word order, "0 means unknown") are converted inside each driver, nowhere else.
Standard library only: this module runs on a Venus OS GX (Python 3.8+).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

try:  # Python 3.8 has Protocol; keep the import in one place
    from typing import Protocol, runtime_checkable
except ImportError:  # pragma: no cover - Python < 3.8 is not supported
    raise


@dataclass(frozen=True)
class Measurement:
    """What the site is doing right now.

    Attributes
    ----------
    at : datetime
        When it was measured. [UTC, aware]
    soc_pct : float or None
        Battery state of charge; None when the device reports it as unknown. [%]
    battery_power_w : float
        Battery power at the battery, + = discharging into the home bus. [W]
    grid_power_w : float
        Grid power at the meter, + = import. [W]
    pv_power_w : float
        PV production (AC- plus DC-coupled), ≥ 0. [W]
    load_power_w : float or None
        Home consumption, ≥ 0; None when the device does not report it. [W]
    max_charge_w : float or None
        Live charge limit from the battery (CCL × voltage); None = unknown. [W]
    max_discharge_w : float or None
        Live discharge limit from the battery (DCL × voltage); None = unknown. [W]
    """

    at: datetime
    soc_pct: float | None
    battery_power_w: float
    grid_power_w: float
    pv_power_w: float
    load_power_w: float | None = None
    max_charge_w: float | None = None
    max_discharge_w: float | None = None

    @property
    def net_load_w(self) -> float:
        """Load minus PV, from the energy balance ``load = grid + battery + pv``. [W]

        Computed from grid and battery power (both always measured) rather than from the load
        reading, which not every site has.
        """
        return self.grid_power_w + self.battery_power_w

    def to_dict(self) -> dict:
        """A JSON-ready dict (``at`` as UTC ISO 8601 with ``Z``)."""
        return {
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "soc_pct": self.soc_pct,
            "battery_power_w": self.battery_power_w,
            "grid_power_w": self.grid_power_w,
            "pv_power_w": self.pv_power_w,
            "load_power_w": self.load_power_w,
            "max_charge_w": self.max_charge_w,
            "max_discharge_w": self.max_discharge_w,
        }


@dataclass(frozen=True)
class Setpoint:
    """What the executor asks the inverter to do until the next tick.

    Attributes
    ----------
    grid_power_w : int
        ESS grid setpoint, + = import. [W]
    min_soc_pct : float
        The inverter must not discharge below this. [%]
    battery_power_w : float
        The battery power this setpoint is expected to produce at the measured load and PV,
        + = discharging (informational; DESS mode uses it for the strategy). [W]
    target_soc_pct : float or None
        Planned SoC at the end of the current slot (Dynamic ESS windows). [%]
    window_start, window_end : datetime or None
        The slot this setpoint belongs to. [UTC]
    intent : str or None
        What the slot is for (``executor.schedule.INTENTS``), for drivers that hand the
        inverter a strategy rather than a setpoint (Dynamic ESS windows).
    battery_shares_w : dict or None
        The slot's planned power per battery, + = discharge: ``battery`` (the home battery)
        and each ``devices.<name>`` of the slot (a further battery's; other devices are
        there too and ignored by drivers that do not know the name), for drivers that
        share ``battery_power_w`` among several batteries (``executor/drivers/_split.py``).
        None without a plan slot. [W]
    """

    grid_power_w: int
    min_soc_pct: float
    battery_power_w: float = 0.0
    target_soc_pct: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    intent: str | None = None
    battery_shares_w: dict | None = None


@runtime_checkable
class Driver(Protocol):
    """A device the executor controls. Methods raise :class:`executor.errors.DriverError`."""

    def read(self) -> Measurement:
        """Measure the site now."""
        ...

    def apply(self, setpoint: Setpoint) -> None:
        """Ask the inverter to follow ``setpoint`` (refreshed every tick)."""
        ...

    def release(self) -> None:
        """Hand control back to the inverter's own self-consumption. Idempotent."""
        ...


@runtime_checkable
class SupportsClose(Protocol):
    """Optional capability: the driver holds a connection to close on exit."""

    def close(self) -> None:
        """Close connections (after ``release()``)."""
        ...


@runtime_checkable
class SupportsStartupCheck(Protocol):
    """Optional capability: the driver verifies it may control the device before the loop.

    Raises :class:`executor.errors.ForeignControllerError` when another controller owns it.
    """

    def check_ownership(self, take_over: bool = True) -> None:
        """Verify Helios may control the inverter (``take_over=False``: never write)."""
        ...
