"""``dry_run``: logs what it would send, writes nothing.

Standalone (``driver: {type: dry_run}``) it reads an idle simulated plant so the whole loop
runs without hardware (those readings are :attr:`DryRunDriver.simulated`: never stored as
measurements unless asked for, and then tagged); ``helios-executor --dry-run`` wraps the
configured driver instead, so real measurements are read and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from executor.config import opt
from executor.drivers import register
from executor.drivers.base import Driver, Measurement, Setpoint
from executor.drivers.simulated import Plant

log = logging.getLogger("helios.executor.dry_run")


@register("dry_run")
class DryRunDriver:
    """Reads through ``inner`` (or an idle simulated plant); logs instead of writing."""

    @dataclass(frozen=True)
    class Config:
        """Options of ``driver: {type: dry_run}``."""

        soc_pct: float = opt(50.0, "SoC of the idle simulated plant", "%", ge=0, le=100)

    def __init__(self, config: DryRunDriver.Config | None = None, *,
                 clock: Callable[[], datetime], inner: Driver | None = None):
        self.config = config or DryRunDriver.Config()
        self.clock = clock
        self.inner = inner
        self._plant = None if inner is not None else Plant(self.config.soc_pct, 10.0, clock())
        self.sent: list = []  # what would have been sent, for tests and --once output

    @property
    def simulated(self) -> bool:
        """True when the readings come from a simulated plant (no real driver wrapped): the
        executor then stores no measurements unless ``--store-simulated`` (tagged)."""
        return self.inner is None or bool(getattr(self.inner, "simulated", False))

    def read(self) -> Measurement:
        """Measure through the wrapped driver, or the idle plant."""
        if self.inner is not None:
            return self.inner.read()
        now = self.clock()
        self._plant.advance(now)
        return self._plant.measurement(now)

    def check_ownership(self) -> None:
        """Read-only check through the wrapped driver, when it has one."""
        check = getattr(self.inner, "check_ownership", None)
        if check is not None:
            check(take_over=False)

    def apply(self, setpoint: Setpoint) -> None:
        """Log the setpoint that would be sent."""
        log.info("dry run: would send grid setpoint %+d W (min SoC %.0f%%)",
                 setpoint.grid_power_w, setpoint.min_soc_pct)
        self.sent.append(setpoint)

    def release(self) -> None:
        """Log the release that would be sent."""
        if not self.sent or self.sent[-1] is not None:
            log.info("dry run: would release control")
        self.sent.append(None)

    def close(self) -> None:
        """Close the wrapped driver."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
