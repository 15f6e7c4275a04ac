"""One read-only reading through a driver: the planner's ``state: {type: gx}`` uses this.

The planner may import the executor (never the reverse), so ``helios plan`` reads the live SoC
through exactly the code the executor uses — same paths, registers, signs and "0 means
unknown" handling — without writing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from executor import drivers
from executor.drivers.base import Measurement


def read_measurement(driver_type: str, options: dict,
                     clock: Callable[[], datetime] | None = None) -> Measurement:
    """Create the driver, take one reading, close it. Never calls ``apply``/``release``.

    Parameters
    ----------
    driver_type : str
        ``victron_dbus``, ``victron_modbus``, ``simulated`` or ``dry_run``.
    options : dict
        The driver's options (as under ``executor.driver``).
    clock : callable, optional
        ``clock() -> datetime`` (aware UTC); default the wall clock.

    Raises
    ------
    executor.errors.ConfigError
        Bad options.
    executor.errors.DriverError
        The device could not be read (``DriverUnavailable`` when unreachable).
    """
    clock = clock or (lambda: datetime.now(timezone.utc))
    driver = drivers.create(driver_type, options, clock=clock)
    try:
        return driver.read()
    finally:
        close = getattr(driver, "close", None)
        if close is not None:
            close()
