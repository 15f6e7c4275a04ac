"""Closed loops of the real executor over emulated LAN devices, on a fake clock.

:func:`flat_plan` writes a plan whose every slot has one intent and grid setpoint;
:func:`run_ticks` ticks the executor, moves the fake clock and the home's physics, and returns
the grid power the meter shows after each tick; :func:`ticks_to_settle` counts how many ticks
after a step the grid needs to come within a tolerance of its target.
"""

from __future__ import annotations

from datetime import timedelta

from executor import schedule as sched


def flat_plan(path: str, start, hours: float = 2.0, grid_w: int = 0, soc_pct: float = 50.0,
              intent: str = "self_consume", battery_min_kw: float = -10.0,
              battery_max_kw: float = 10.0, valid_s: float = 7200.0,
              generated_at=None) -> sched.Schedule:
    """Write (and return) a plan of 15-min slots with one intent, flat SoC and grid setpoint."""
    slots = []
    for i in range(int(hours * 4)):
        slots.append(sched.Slot(
            start=start + timedelta(minutes=15 * i), grid_import_kw=max(grid_w, 0) / 1000,
            grid_export_kw=max(-grid_w, 0) / 1000, battery_charge_kw=0.0,
            battery_discharge_kw=0.0, pv_kw=0.0, pv_used_kw=0.0, load_kw=0.5, soc_pct=soc_pct,
            buy_eur_per_kwh=0.3, sell_eur_per_kwh=0.08, grid_setpoint_w=grid_w,
            action="idle", reason="test plan", intent=intent,
            battery_min_kw=battery_min_kw, battery_max_kw=battery_max_kw))
    gen = generated_at or start
    plan = sched.Schedule(generated_at=gen, valid_until=gen + timedelta(seconds=valid_s),
                          slot_s=900, status="optimal", objective_eur=0.0,
                          expected_cost_eur=0.0, solve_s=0.001, solver="TEST",
                          slots=tuple(slots))
    sched.write(path, plan)
    return plan


def run_ticks(ex, home, clock, n: int, step_s: float = 10.0, events: dict | None = None,
              decisions: list | None = None) -> list:
    """``n`` ticks; ``events[k]()`` runs before tick ``k``. Returns the grid power after each
    tick's physics step (what the meter shows at the next tick). [W]"""
    grid = []
    for k in range(n):
        if events and k in events:
            events[k]()
        decision = ex.tick()
        if decisions is not None:
            decisions.append(decision)
        clock.advance(step_s)
        home.advance(clock())
        grid.append(home.grid_w())
    return grid


def ticks_to_settle(grid: list, start: int, target_w: float, tol_w: float = 50.0) -> int | None:
    """Ticks from ``start`` (the first tick that saw the step) until the grid stays within
    ``tol_w`` of ``target_w`` to the end of ``grid`` (1 = right after the first tick)."""
    for k in range(start, len(grid)):
        if all(abs(g - target_w) <= tol_w for g in grid[k:]):
            return k - start + 1
    return None
