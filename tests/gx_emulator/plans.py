"""Plans and a fake clock for closed-loop tests (reusable by the backtest)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from executor import schedule as sched
from executor.drivers.simulated import demo_profile

if TYPE_CHECKING:
    from executor.runner import Executor

T0 = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """An injectable clock: ``clock()`` returns the current fake time; ``advance(s)``."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move time forward. [s]"""
        self.now += timedelta(seconds=seconds)
        return self.now

    def sleep(self, seconds: float) -> None:
        """A ``sleep`` for :meth:`executor.runner.Executor.run` that only moves fake time."""
        self.advance(seconds)


def slot_average(profile: Callable, start: datetime, slot_s: int, samples: int = 30) -> tuple:
    """Average ``(pv_w, load_w)`` of ``profile`` over one slot."""
    pv = load = 0.0
    for k in range(samples):
        p, ld = profile(start + timedelta(seconds=(k + 0.5) * slot_s / samples))
        pv += p
        load += ld
    return pv / samples, load / samples


def default_battery_w(start: datetime) -> float:
    """A day of intent (+ = discharge): charge at night, hold, absorb PV, discharge evening."""
    h = start.hour + start.minute / 60
    if 1 <= h < 4:
        return -2500.0  # cheap night: charge from the grid
    if 4 <= h < 6:
        return 0.0  # hold
    if 10 <= h < 14:
        return -1500.0  # absorb PV
    if 17 <= h < 22:
        return 1200.0  # evening peak
    return 300.0


def build_plan(start: datetime, n_slots: int, soc_start_pct: float, *,
               generated_at: datetime | None = None, valid_s: float = 3600,
               slot_s: int = 900, capacity_kwh: float = 10.0, eta_c: float = 0.95,
               eta_d: float = 0.95, min_soc_pct: float = 10.0, max_soc_pct: float = 100.0,
               max_w: float = 5000.0, profile: Callable = demo_profile,
               battery_w: Callable = default_battery_w) -> sched.Schedule:
    """A feasible plan: the intended battery power per slot, clipped to SoC bounds, with the
    grid setpoint from the slot-average load and PV, and SoC from the planner's equation."""
    slots = []
    soc = soc_start_pct
    dt_h = slot_s / 3600
    for i in range(n_slots):
        s = start + timedelta(seconds=i * slot_s)
        pv, load = slot_average(profile, s, slot_s)
        b = min(max(battery_w(s), -max_w), max_w)
        if b > 0:
            b = min(b, (soc - min_soc_pct) / 100 * capacity_kwh * 1000 * eta_d / dt_h)
        else:
            b = max(b, -(max_soc_pct - soc) / 100 * capacity_kwh * 1000 / eta_c / dt_h)
        b = max(b, 0.0) if soc <= min_soc_pct and b > 0 else b
        charge_kw, discharge_kw = max(-b, 0.0) / 1000, max(b, 0.0) / 1000
        soc += (charge_kw * eta_c - discharge_kw / eta_d) * dt_h / capacity_kwh * 100
        soc = min(max(soc, 0.0), 100.0)
        grid = load - pv - b
        slots.append(sched.Slot(
            start=s, grid_import_kw=max(grid, 0) / 1000, grid_export_kw=max(-grid, 0) / 1000,
            battery_charge_kw=charge_kw, battery_discharge_kw=discharge_kw,
            pv_kw=pv / 1000, pv_used_kw=pv / 1000, load_kw=load / 1000, soc_pct=round(soc, 4),
            buy_eur_per_kwh=0.3, sell_eur_per_kwh=0.08, grid_setpoint_w=int(round(grid)),
            action="charge_grid" if b < 0 else ("discharge" if b > 0 else "idle"),
            reason="test plan"))
    gen = generated_at or start
    return sched.Schedule(generated_at=gen, valid_until=gen + timedelta(seconds=valid_s),
                          slot_s=slot_s, status="optimal", objective_eur=0.0,
                          expected_cost_eur=0.0, solve_s=0.001, solver="TEST",
                          slots=tuple(slots))


class Replanner:
    """Re-issues the day's plan every ``every_s`` like ``helios plan`` would: same intent,
    trajectory re-anchored at the plan's own start SoC (open loop), fresh ``generated_at``."""

    def __init__(self, path: str, day_plan: sched.Schedule, every_s: float = 3600,
                 valid_s: float = 3600):
        self.path = path
        self.day_plan = day_plan
        self.every_s = every_s
        self.valid_s = valid_s
        self.last: datetime | None = None

    def maybe_write(self, now: datetime) -> bool:
        """Write a fresh plan file when due; returns whether it wrote."""
        if self.last is not None and (now - self.last).total_seconds() < self.every_s:
            return False
        day = self.day_plan
        first = day.slot_at(now)
        if first is None:
            return False
        idx = day.slots.index(first)
        plan = sched.Schedule(generated_at=now, valid_until=now + timedelta(seconds=self.valid_s),
                              slot_s=day.slot_s, status="optimal", objective_eur=0.0,
                              expected_cost_eur=0.0, solve_s=0.001, solver="TEST",
                              slots=day.slots[idx:])
        sched.write(self.path, plan)
        self.last = now
        return True


def run_for(ex: Executor, clock: FakeClock, seconds: float, step_s: float = 10.0) -> list:
    """Tick every ``step_s`` of fake time for ``seconds``; returns the decisions."""
    out = []
    end = clock() + timedelta(seconds=seconds)
    while clock() < end:
        out.append(ex.tick())
        clock.advance(step_s)
    return out
