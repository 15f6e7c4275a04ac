"""Closed-loop runs of the real executor against an emulated GX, and what to judge them by.

:func:`run_day` ticks an :class:`executor.runner.Executor` (default control: intent) over a
plan on a fake clock while the plan is re-issued hourly; :class:`Tally` integrates the plant's
trace per slot: battery energy into the grid and grid energy into the battery, against what
the plan had, the SoC at slot ends, and the largest battery power any DESS override allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from executor.control import Limits
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor
from gx_emulator.plans import Replanner


def scaled_profile(profile, pv_factor: float = 1.0, load_factor: float = 1.0):
    """``profile`` with PV and load scaled (the forecast error the plan did not know)."""
    def scaled(now):
        pv, load = profile(now)
        return pv * pv_factor, load * load_factor
    return scaled


@dataclass
class Tally:
    """Per-run totals. [kWh, %-points, W]"""

    bat_to_grid_beyond_kwh: float = 0.0
    grid_to_bat_beyond_kwh: float = 0.0
    #: the same per slot energy: Σ max(0, slot's battery→grid energy − the plan's)
    slot_bat_to_grid_beyond_kwh: float = 0.0
    slot_grid_to_bat_beyond_kwh: float = 0.0
    soc_errors: list = field(default_factory=list)
    feasible_errors: list = field(default_factory=list)
    max_allowed_discharge_w: float = 0.0
    max_allowed_charge_w: float = 0.0


def judge(plant, day, limits: Limits, first: int, last: int) -> Tally:
    """Battery energy into the grid and grid energy into the battery beyond the plan, over
    slots ``first..last`` of the plant's trace.

    At every step, the battery power *above* the slot's planned discharge that leaves through
    the meter (``min(b − b_plan, export)``) is battery energy into the grid beyond the plan;
    the charge power above the planned charge that comes through the meter
    (``min(c − c_plan, import)``) is grid energy into the battery beyond the plan. A planned
    discharge that exports more because the load was lower than forecast is not counted: the
    battery did what the plan asked.
    """
    tally = Tally()
    start = day.slots[first].start
    end = day.slots[last].start + timedelta(seconds=day.slot_s)
    trace = plant.trace
    per_slot: dict = {}
    for k in range(len(trace) - 1):
        t, b, g = trace[k]
        if not start <= t < end:
            continue
        slot = day.slot_at(t)
        dt_h = (trace[k + 1][0] - t).total_seconds() / 3600.0
        acc = per_slot.setdefault(slot.start, [slot, 0.0, 0.0])
        if b > 0 and g < 0:
            acc[1] += min(b, -g) * dt_h / 1000.0
        elif b < 0 and g > 0:
            acc[2] += min(-b, g) * dt_h / 1000.0
        over_discharge = b - 1000.0 * slot.battery_discharge_kw
        over_charge = -b - 1000.0 * slot.battery_charge_kw
        if over_discharge > 0 and g < 0:
            tally.bat_to_grid_beyond_kwh += min(over_discharge, -g) * dt_h / 1000.0
        if over_charge > 0 and g > 0:
            tally.grid_to_bat_beyond_kwh += min(over_charge, g) * dt_h / 1000.0
    for slot, b2g, g2b in per_slot.values():
        dt_h = day.slot_s / 3600.0
        tally.slot_bat_to_grid_beyond_kwh += max(
            b2g - min(slot.battery_discharge_kw, slot.grid_export_kw) * dt_h, 0.0)
        tally.slot_grid_to_bat_beyond_kwh += max(
            g2b - min(slot.battery_charge_kw, slot.grid_import_kw) * dt_h, 0.0)
    return tally


def run_day(gx, driver, clock, tmp_path, day, step_s: float, limits: Limits | None = None,
            slots: int | None = None, on_tick=None):
    """Run the executor over ``day`` (or its first ``slots``); returns (tally, decisions).

    SoC errors are |measured − planned| at each slot end after the first; ``feasible_errors``
    only where the plant could have reached the target (not clipped by its own SoC floor).
    """
    limits = replace(limits or Limits(), interval_s=step_s)
    path = str(tmp_path / "schedule.json")
    ex = Executor(driver, PlanTracker(FileSource(path)), limits, str(tmp_path / "p.json"),
                  clock=clock, interval_s=step_s)
    replanner = Replanner(path, day)
    n = len(day.slots) if slots is None else slots
    end = day.slots[0].start + timedelta(seconds=n * day.slot_s)
    soc_errors = []
    decisions = []
    next_end = 1
    while clock() < end - timedelta(seconds=step_s / 2):
        replanner.maybe_write(clock())
        decisions.append(ex.tick())
        if on_tick is not None:
            on_tick(clock())
        clock.advance(step_s)
        gx.plant.advance(clock())
        boundary = day.slots[0].start + timedelta(seconds=next_end * day.slot_s)
        if clock() >= boundary - timedelta(seconds=1e-6) and next_end < n:
            soc_errors.append(gx.plant.soc_pct - day.slots[next_end - 1].soc_pct)
            next_end += 1
    ex.shutdown()
    tally = judge(gx.plant, day, limits, 0, n - 1)
    tally.soc_errors = soc_errors
    return tally, decisions
