"""What the two Victron drivers (D-Bus on the GX, Modbus-TCP remote) decide alike.

Only the transport differs between :mod:`executor.drivers.victron_dbus` and
:mod:`executor.drivers.victron_modbus`; who owns the ESS and what a Dynamic ESS window holds
are decided here once (``reference/victron.md`` §2.4, §5).
"""

from __future__ import annotations

from executor.drivers.base import Setpoint
from executor.errors import DriverError, ForeignControllerError

# Settings/DynamicEss/Mode: 0 off, 1 VRM, 4 local; 2 and 3 are legacy values that mean off
DESS_OFF_MODES = (0, 2, 3)


def check_owner(hub4_mode: int, dess_mode: int, driver_mode: str, override: str) -> bool:
    """Refuse to run beside another controller; True when Helios must switch DESS to local.

    ``override`` names the grid-setpoint override in the driver's own terms (for the message).

    Raises
    ------
    ForeignControllerError
        ESS in external control (Hub4Mode 3); Dynamic ESS in VRM mode (1); DESS on while the
        driver mode is ``setpoint`` (DESS would rewrite the override every 5 s).
    """
    if hub4_mode == 3:
        raise ForeignControllerError(
            "ESS mode is 'External control' (Hub4Mode 3): another controller drives the "
            "Multi; switch ESS to 'Optimized' before starting helios-executor")
    if dess_mode == 1:
        raise ForeignControllerError(
            "Dynamic ESS is in VRM mode (Settings/DynamicEss/Mode = 1): VRM owns the "
            "battery; turn Dynamic ESS off (setpoint mode) or set it to local (mode 4, "
            "driver mode: dess) — two controllers must never fight")
    if driver_mode == "setpoint" and dess_mode not in DESS_OFF_MODES:
        raise ForeignControllerError(
            f"Dynamic ESS is on (mode {dess_mode}) and rewrites {override} every 5 s; "
            "turn it off or use driver mode: dess")
    return driver_mode == "dess" and dess_mode in DESS_OFF_MODES


def dess_window(setpoint: Setpoint) -> tuple[int, int, float, int]:
    """The DESS schedule window for ``setpoint``: (start [Unix s], duration [s], target SoC
    [%], allow grid feed-in 0/1). Feed-in is allowed when the plan exports or discharges."""
    if setpoint.window_start is None or setpoint.window_end is None:
        raise DriverError("dess mode needs a setpoint with a window")
    start = int(setpoint.window_start.timestamp())
    duration = int((setpoint.window_end - setpoint.window_start).total_seconds())
    soc = (setpoint.target_soc_pct if setpoint.target_soc_pct is not None
           else setpoint.min_soc_pct)
    feed_in = 1 if setpoint.grid_power_w < 0 or setpoint.battery_power_w > 0 else 0
    return start, duration, float(soc), feed_in
