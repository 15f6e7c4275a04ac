"""``vehicle: {type: manual}``: the car's state typed into the config (no car API)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from executor.configspec import opt
from planner.providers import register
from planner.providers.base import ProviderContext
from planner.providers.vehicle.base import VehicleState


@register("vehicle", "manual")
class ManualVehicle:
    """A fixed state from the config: the SoC when plugged in, whether it is plugged in."""

    @dataclass(frozen=True)
    class Config:
        soc_pct: float = opt(50.0, "The car's state of charge", "%", ge=0, le=100)
        plugged_in: bool = opt(True, "The car is plugged in at home")
        charging: bool = opt(False, "The car is charging now")

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config

    def read(self, now: pd.Timestamp) -> VehicleState:
        c = self.config
        return VehicleState(c.soc_pct, c.plugged_in, c.charging and c.plugged_in,
                            at_home=True if c.plugged_in else None,
                            measured_at=pd.Timestamp(now).tz_convert("UTC"),
                            source=f"manual: vehicle.soc_pct = {c.soc_pct:g} %")
