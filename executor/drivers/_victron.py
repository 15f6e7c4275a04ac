"""What the two Victron drivers (D-Bus on the GX, Modbus-TCP remote) decide alike.

Only the transport differs between :mod:`executor.drivers.victron_dbus` and
:mod:`executor.drivers.victron_modbus`; who owns the ESS, what a Dynamic ESS window holds for
each intent, which DESS limits Helios keeps and how to tell whether DESS acts are decided here
once (``reference/victron.md`` §2.4, §5; ``reference/devices.md`` §1; Victron's
``dbus-systemcalc-py`` ``delegates/dynamicess.py``, run for real in ``../shared/venus``).

How Victron's Dynamic ESS delegate turns a window into hub4 overrides (v2.256, read and run):
every 5 s it takes the first schedule slot (0..47) whose ``[Start, Start + Duration)`` covers
now, uses ``TargetSoc`` when > 0 (else the integer ``Soc``) rounded to the battery's SoC
precision, and computes its battery rate as ``|target − SoC| × capacity / time left`` — capped
**only** by ``/Settings/DynamicEss/Battery{Charge,Discharge}Limit``. A discharge writes
``MaxDischargePower = rate`` with ``Setpoint = −(export limit)``; a charge writes
``ForceCharge = 1`` and passes the rate to DVCC as the charge limit. ``Strategy`` (0 target
SoC, 1 self-consume, 2 pro-battery, 3 pro-grid) and ``Restrictions`` (1 no battery→grid, 2 no
grid→battery) choose the state; with no window it runs plain ESS self-consumption.

Helios therefore (1) keeps the four DESS limits at the configured and live (CCL/DCL) limits,
(2) writes **short windows** that end ``window_s`` after the last tick and are renewed every
tick — a dead executor leaves the GX in self-consumption within ``window_s`` + 5 s — whose
computed rate is always capped by those limits, (3) writes every field of the window
(``Flags`` 0: a stale DISABLEPV would switch PV off) and (4) checks after every write that DESS
acts on it (``/DynamicEss/Active``, ``ErrorCode``, ``ReactiveStrategy``, ``TargetSoc``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from executor.drivers.base import Setpoint
from executor.errors import DriverError, ForeignControllerError

#: Settings/DynamicEss/Mode values: 0 off, 1 VRM (auto), 4 local. 2 and 3 are legacy
#: "buy"/"sell": systemcalc <= 3.7x treats them as off (and switching 2/3 -> 4 leaves the
#: delegate dead until systemcalc restarts); Venus 3.80 runs DESS in them. Only 0 is off.
DESS_OFF = 0
DESS_LEGACY_MODES = (2, 3)
DESS_LOCAL = 4

# Strategy / Restrictions / Flags (dynamicess.py: Strategy, Restrictions, Flags)
TARGETSOC, SELFCONSUME, PROBATTERY, PROGRID = 0, 1, 2, 3
BAT2GRID, GRID2BAT = 1, 2

#: DESS error codes (dynamicess.py ERRORS)
DESS_ERRORS = {0: "no error", 1: "no ESS", 2: "ESS mode (external control or keep charged)",
               3: "no matching schedule", 4: "SoC low / unknown", 5: "battery capacity unset"}
#: ReactiveStrategy values meaning "DESS is not following a window"
#: (92 DESS_DISABLED, 91/93-98 self-consume fall-backs, 99 NO_WINDOW)
DESS_NOT_ACTING = {91: "SELFCONSUME_INVALID_TARGETSOC", 92: "DESS_DISABLED",
                   93: "SELFCONSUME_UNEXPECTED_EXCEPTION", 94: "SELFCONSUME_FAULTY_CHARGERATE",
                   95: "UNKNOWN_OPERATING_MODE", 97: "SELFCONSUME_UNMAPPED_STATE",
                   98: "SELFCONSUME_UNPREDICTED", 99: "NO_WINDOW"}
#: BatteryLife state 9 = "keep batteries charged": DESS reports error 2 and does nothing
KEEP_CHARGED = 9

#: seconds DESS needs to pick up a window (its 5-s timer plus margin) before Helios judges it
DESS_GRACE_S = 12.0


def check_owner(hub4_mode: int, dess_mode: int, driver_mode: str, override: str,
                battery_life_state: int | None = None) -> str | None:
    """Refuse to run beside another controller; say which DESS mode writes Helios must make.

    ``override`` names the grid-setpoint override in the driver's own terms (for the message).

    Returns
    -------
    str or None
        None: nothing to change. ``"local"``: switch DESS to 4 (from 0). ``"restart"``: the
        mode is a legacy 2/3, write 0 then 4 (2/3 -> 4 directly leaves the systemcalc delegate
        dead). ``"off"``: setpoint mode with a legacy 2/3: write 0 (on Venus 3.80 2/3 run DESS).

    Raises
    ------
    ForeignControllerError
        ESS in external control (Hub4Mode 3); Dynamic ESS in VRM mode (1); Dynamic ESS local
        (4) while the driver mode is ``setpoint`` (DESS would rewrite the override every 5 s);
        ``dess`` mode with "keep batteries charged" (DESS error 2: it ignores every window).
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
    if driver_mode == "setpoint":
        if dess_mode == DESS_LOCAL or dess_mode not in (DESS_OFF, *DESS_LEGACY_MODES):
            raise ForeignControllerError(
                f"Dynamic ESS is on (mode {dess_mode}) and rewrites {override} every 5 s; "
                "turn it off or use driver mode: dess")
        return "off" if dess_mode in DESS_LEGACY_MODES else None
    if battery_life_state == KEEP_CHARGED:
        raise ForeignControllerError(
            "ESS is in 'Keep batteries charged' (BatteryLife state 9): Dynamic ESS ignores "
            "every window (error 2); switch ESS to 'Optimized' for driver mode: dess")
    if dess_mode in DESS_LEGACY_MODES:
        return "restart"
    return "local" if dess_mode == DESS_OFF else None


def check_capacity(capacity_kwh: float | None) -> None:
    """DESS does nothing with ``BatteryCapacity`` 0 (the real default; error 5 after 60 s).

    Raises
    ------
    ForeignControllerError
        The capacity is unset.
    """
    if capacity_kwh is None or not capacity_kwh > 0:
        raise ForeignControllerError(
            "Dynamic ESS battery capacity is not set (Settings/DynamicEss/BatteryCapacity = "
            f"{capacity_kwh}): Dynamic ESS ignores every window with it (error 5); set it on "
            "the GX (Settings → ESS → Dynamic ESS → Battery capacity, kWh) or use mode: setpoint")


# --- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DessLimits:
    """``/Settings/DynamicEss/{BatteryChargeLimit, BatteryDischargeLimit, GridImportLimit,
    GridExportLimit}`` as DESS stores them: kW, 0.1 kW steps (−1 = unset). [kW]"""

    battery_charge_kw: float
    battery_discharge_kw: float
    grid_import_kw: float
    grid_export_kw: float

    def as_settings(self) -> dict:
        """Setting name → value."""
        return {"BatteryChargeLimit": self.battery_charge_kw,
                "BatteryDischargeLimit": self.battery_discharge_kw,
                "GridImportLimit": self.grid_import_kw, "GridExportLimit": self.grid_export_kw}


def _floor_kw(watts: float) -> float:
    """W → kW rounded *down* to DESS's 0.1 kW (a limit must never allow more). [kW]"""
    return max(math.floor(max(watts, 0.0) / 100.0 + 1e-9) / 10.0, 0.0)


def _nearest_kw(watts: float) -> float:
    """W → kW rounded to the nearest 0.1 kW (DESS's step). [kW]"""
    return max(math.floor(max(watts, 0.0) / 100.0 + 0.5) / 10.0, 0.0)


def dess_limits(max_charge_w: float, max_discharge_w: float, max_import_w: float,
                max_export_w: float, export_enabled: bool, live_charge_w: float | None = None,
                live_discharge_w: float | None = None, intent: str | None = None,
                battery_w: float | None = None) -> tuple:
    """The DESS limits to keep: ``(wanted, hard)``, both :class:`DessLimits`. [W in]

    ``hard`` are the configured and live (BMS CCL/DCL × V) limits, rounded down: DESS must
    never be allowed more. ``wanted`` is lower for a slot that charges from or discharges into
    the grid (``charge_grid``, ``limit_charge``, ``discharge_grid``): the battery power Helios'
    control law decided this tick (``battery_w``, + = discharge), rounded up to 0.1 kW, so
    DESS — whose own rate over a short window is "as fast as allowed" — moves the battery as
    the plan does instead of at full power for part of the slot.
    """
    charge = max_charge_w if live_charge_w is None else min(max_charge_w, live_charge_w)
    discharge = max_discharge_w if live_discharge_w is None else min(max_discharge_w,
                                                                     live_discharge_w)
    hard = DessLimits(_floor_kw(charge), _floor_kw(discharge), _floor_kw(max_import_w),
                      _floor_kw(max_export_w) if export_enabled else 0.0)
    want_c, want_d = hard.battery_charge_kw, hard.battery_discharge_kw
    if battery_w is not None and intent in ("charge_grid", "limit_charge") and battery_w < 0:
        want_c = min(want_c, max(_nearest_kw(-battery_w), 0.1))
    if battery_w is not None and intent == "discharge_grid" and battery_w > 0:
        want_d = min(want_d, max(_nearest_kw(battery_w), 0.1))
    wanted = DessLimits(want_c, want_d, hard.grid_import_kw, hard.grid_export_kw)
    return wanted, hard


def limits_to_write(current: dict, wanted: DessLimits, hard: DessLimits | None = None,
                    step_kw: float = 0.2) -> dict:
    """The limit settings to (re)write: any unset or above its hard limit at once (safety),
    any other once it is ``step_kw`` away from the wanted value (the wanted rate follows the
    load tick by tick; this keeps flash writes rare). ``current``: name → value (kW)."""
    hard = hard or wanted
    hard_values = hard.as_settings()
    out = {}
    for name, want in wanted.as_settings().items():
        have = current.get(name)
        if not isinstance(have, (int, float)) or isinstance(have, bool) or have < 0 \
                or have > hard_values[name] + 1e-6 or abs(want - have) >= step_kw - 1e-6:
            out[name] = want
    return out


# --- windows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DessWindow:
    """One DESS schedule window, in the setting's own units.

    ``start``/``duration`` [Unix s, s], ``target_soc`` [%, at the battery's precision],
    ``strategy``, ``restrictions``, ``allow_feed_in`` (0/1), ``flags`` (always 0).
    """

    start: int
    duration: int
    target_soc: float
    strategy: int
    restrictions: int
    allow_feed_in: int
    flags: int = 0

    @property
    def end(self) -> int:
        """Unix time the window ends. [s]"""
        return self.start + self.duration

    def fields(self) -> tuple:
        """Everything but the duration (a change means: rewrite the window)."""
        return (self.start, self.target_soc, self.strategy, self.restrictions,
                self.allow_feed_in, self.flags)


def _floor_p(value: float, precision: int) -> float:
    f = 10 ** precision
    return math.floor(value * f + 1e-6) / f


def _ceil_p(value: float, precision: int) -> float:
    f = 10 ** precision
    return math.ceil(value * f - 1e-6) / f


def _round_p(value: float, precision: int) -> float:
    return round(value, precision) if precision else float(round(value))


#: intent → (strategy, restrictions). Chosen from what the real delegate does in each state
#: (docs/executor.md "Victron"): see :func:`dess_window`.
INTENT_WINDOW = {
    "self_consume": (SELFCONSUME, 0),
    "charge_grid": (PROBATTERY, BAT2GRID),
    "hold": (PROBATTERY, BAT2GRID | GRID2BAT),
    "limit_charge": (PROGRID, BAT2GRID | GRID2BAT),
    "discharge_grid": (TARGETSOC, GRID2BAT),
    "idle": (TARGETSOC, BAT2GRID | GRID2BAT),
}


def intent_of(setpoint: Setpoint) -> str:
    """The setpoint's intent; for a setpoint without one, from the sign of its powers."""
    if setpoint.intent in INTENT_WINDOW:
        return setpoint.intent
    if setpoint.battery_power_w < -1 and setpoint.grid_power_w > 0:
        return "charge_grid"
    if setpoint.battery_power_w > 1 and setpoint.grid_power_w < 0:
        return "discharge_grid"
    return "self_consume"


def dess_window(setpoint: Setpoint, now: datetime, soc_pct: float | None, precision: int,
                window_s: float, export_enabled: bool = True,
                held_target: float | None = None) -> DessWindow:
    """The DESS window that carries ``setpoint``'s intent until ``now + window_s``.

    Parameters
    ----------
    setpoint : Setpoint
        From :func:`executor.control.decide` (``intent``, ``target_soc_pct``, slot window).
    now : datetime
        The tick's time. [UTC]
    soc_pct : float or None
        The measured SoC. [%]
    precision : int
        The battery's SoC precision as DESS works with it (``/DynamicEss/WorkingSocPrecision``;
        0 over Modbus, whose ``Soc`` register is an integer). DESS rounds the target to it, so
        Helios does first — towards the safe side: a grid charge stops at or below the planned
        target, a grid discharge at or above it.
    window_s : float
        How long the window lasts after ``now`` (the fail-safe: renewed every tick). [s]
    export_enabled : bool
        False: ``AllowGridFeedIn`` 0 in every window (DESS restricts feed-in).
    held_target : float, optional
        ``hold``/``idle``: the target already written in this slot (it only ratchets up for
        ``hold``, so PV that charges the battery is never discharged again in the slot).

    Returns
    -------
    DessWindow
        Starts at the slot start and ends ``window_s`` after ``now`` (past the slot end if
        need be, so there is no gap before the next tick writes the next slot's window).

    Notes
    -----
    What the delegate does with each mapping (``dynamicess.py`` ``_determine_reactive_
    strategy``): ``self_consume`` → SCHEDULED_SELFCONSUME (plain ESS); ``charge_grid``
    pro-battery, no battery→grid: below target SCHEDULED_CHARGE_ALLOW_GRID (ENHANCED with more
    PV), at target it keeps PV charging and idles otherwise; ``hold`` pro-battery, both
    restrictions, target = the plan's while Helios' law discharges for the loads, else
    max(plan, SoC now), following the SoC up: PV may charge (ENHANCED /
    SELFCONSUME_NO_GRID), never the grid, and at the target it idles (IDLE_MAINTAIN_TARGETSOC /
    SELFCONSUME_ACCEPT_CHARGE), so no discharge; ``limit_charge`` pro-grid, both restrictions:
    charges from PV at the capped rate and feeds the rest in (SCHEDULED_CHARGE_FEEDIN), idles
    at the target with surplus exported; ``discharge_grid`` target SoC, no grid→battery: above
    target SCHEDULED_DISCHARGE (capped rate, feed-in), below it never charges from the grid;
    ``idle`` target SoC = SoC now, both restrictions: IDLE_* states.
    """
    if setpoint.window_start is None or setpoint.window_end is None:
        raise DriverError("dess mode needs a setpoint with a window")
    intent = intent_of(setpoint)
    strategy, restrictions = INTENT_WINDOW[intent]
    start = int(setpoint.window_start.timestamp())
    end = int(math.ceil(now.timestamp() + window_s))
    duration = max(end - start, 1)
    plan = setpoint.target_soc_pct if setpoint.target_soc_pct is not None \
        else setpoint.min_soc_pct
    soc = plan if soc_pct is None else soc_pct
    if intent == "charge_grid":
        target = _floor_p(plan, precision)
    elif intent == "discharge_grid":
        target = _ceil_p(plan, precision)
    elif intent == "hold":
        # Helios' law lets the battery discharge now (the slot's band allows some discharge
        # for the loads): down to the planned target, no further. Otherwise no discharge at
        # all: the target follows the SoC up, so PV that charged the battery stays in it.
        target = _ceil_p(plan, precision)
        if setpoint.battery_power_w <= 1.0:
            target = max(target, _round_p(soc, precision), held_target or 0.0)
    elif intent == "idle":
        target = held_target if held_target is not None else _round_p(soc, precision)
    elif intent == "limit_charge":
        target = _floor_p(plan, precision)
    else:  # self_consume: not used, but > 0 (0 = "use Soc"); kept for the slot (no rewrites)
        target = held_target if held_target is not None else _round_p(soc, precision)
    target = min(max(target, 1.0), 100.0)
    return DessWindow(start, duration, float(target), strategy, restrictions,
                      1 if export_enabled else 0)


def held_target(old: DessWindow | None, setpoint: Setpoint) -> float | None:
    """The target a ``hold``/``idle``/``self_consume`` window of the same slot already has
    (or None)."""
    intent = intent_of(setpoint)
    if old is None or intent not in ("hold", "idle", "self_consume") \
            or setpoint.window_start is None:
        return None
    if old.start != int(setpoint.window_start.timestamp()) \
            or (old.strategy, old.restrictions) != INTENT_WINDOW[intent]:
        return None
    return old.target_soc


def limit_defaults(limits) -> dict:
    """``config_defaults`` of both Victron drivers: the DESS limits from executor.limits."""
    return {"max_charge_w": limits.max_charge_w, "max_discharge_w": limits.max_discharge_w,
            "max_import_w": limits.max_import_w,
            "max_export_w": limits.max_export_w if limits.export_enabled else 0.0}


def dess_status_problem(active, error_code, reactive, target_soc, window: DessWindow,
                        window_slot=None) -> str | None:
    """Why DESS is not doing what Helios asked, or None when it is.

    Arguments are what ``/DynamicEss/{Active, ErrorCode, ReactiveStrategy, TargetSoc,
    WindowSlot}`` read (None = not published, e.g. ReactiveStrategy over Modbus).
    """
    def num(v):
        return None if isinstance(v, bool) or not isinstance(v, (int, float)) else v

    active, error_code = num(active), num(error_code)
    reactive, target_soc, window_slot = num(reactive), num(target_soc), num(window_slot)
    if reactive is not None and int(reactive) in DESS_NOT_ACTING:
        name = DESS_NOT_ACTING[int(reactive)]
        hint = (" — Mode 2/3 was set while systemcalc ran: the delegate stays off until "
                "Mode goes through 0" if int(reactive) == 92 else "")
        return (f"Dynamic ESS is not following Helios' window (ReactiveStrategy {int(reactive)}"
                f" {name}, ErrorCode {error_code}){hint}")
    if active is not None and int(active) != 1:
        code = int(error_code or 0)
        return (f"Dynamic ESS is not active (Active {int(active)}, ErrorCode {code} "
                f"{DESS_ERRORS.get(code, 'unknown')})")
    if error_code:
        code = int(error_code)
        return f"Dynamic ESS reports error {code} ({DESS_ERRORS.get(code, 'unknown')})"
    if window_slot is not None and int(window_slot) not in (0, 1):
        return (f"Dynamic ESS follows schedule slot {int(window_slot)}, not Helios' slots 0/1 "
                "(a window left by VRM?)")
    if (target_soc is not None and window.strategy != SELFCONSUME
            and abs(float(target_soc) - round(window.target_soc)) > 0.51
            and abs(float(target_soc) - window.target_soc) > 0.051):
        return (f"Dynamic ESS works to target SoC {target_soc} %, Helios wrote "
                f"{window.target_soc} % (a stale Schedule/0/TargetSoc wins over Soc; clear it "
                "on the GX or use victron_dbus)")
    return None
