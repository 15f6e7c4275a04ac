r"""The hot-water heater (``water_heater:``): its daily energy inside its window, planned in the
same problem as the battery.

It is a :class:`~planner.optimize.components.deferrable.DeferrableLoad` named ``water_heater``
whose day is Darkstar's: ``daily_kwh`` (or ``daily_run_h`` × ``power_kw``) per local day,
inside ``window`` plus ``defer_up_to_hours`` after it, for today and ``plan_days_ahead`` more
days (each once its whole period is inside the horizon); the energy already delivered today
(``Context.extra["water_heater"]``, from measurements where the caller has them) is subtracted
at a re-plan. It is a must-run load: missing energy costs the soft-target penalty and is
reported as a violation.

"Hold in cheap windows" and "PV surplus first" are not rules here: the heater takes the
slots where its energy is cheapest — surplus PV that would be exported at the sell price,
then the cheapest imports — and the battery discharges into it only where the energy it
gives up (its value later, after charge and discharge losses and wear) is worth less than the
import it replaces, because both are in one objective (tests/planner/test_water_heater.py).

With a tank (``water_heater.tank``) the day's energy is no longer a target: ``daily_kwh``
is the hot water *drawn* per day (``draw_t``, spread along ``draw_profile_pct`` by local
hour) and the tank's heat above ``min_temp_c`` is a state with hard bounds in every slot:

.. math::

    e_t = a\,e_{t-1} + p_t\,\Delta t - draw_t - loss + cold_t, \qquad
    0 \le e_t \le C, \qquad a = 1 - \lambda\Delta t,
    \qquad loss = \lambda\Delta t\,C\,\frac{T_{min} - T_{amb}}{T_{max} - T_{min}}

``C`` is the heat between ``min_temp_c`` and ``max_temp_c`` (the thermostat's bound), λ the
standing loss per hour of the heat above ambient, ``e_{-1}`` the heat now (the temperature
sensor, ``Context.extra["water_heater"]["temp_c"]``; below ``min_temp_c`` the deficit must be
made up). ``cold_t ≥ 0`` is hot water the tank could not give (a penalised slack, so the
problem is always feasible) and the heat left at the horizon's end is worth the median buy
price of the horizon per kWh (so the plan does not empty the tank at the end; the battery's
terminal value would be 0 under a final-SoC target, and an element has no efficiency). The
element may run in every window slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.config.devices import TankConfig, WaterHeaterConfig, parse_window
from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Context, put
from planner.optimize.components.deferrable import DeferrableLoad, LoadSpec, day_of_slots

__all__ = ["NAME", "TankSpec", "WaterHeater", "heater_spec", "tank_spec"]

#: the component's name, and its key in schedule.json's ``devices``
NAME = "water_heater"


@dataclass(frozen=True)
class TankSpec:
    """The tank (hashable: part of the model's spec); see the module docstring."""

    capacity_kwh: float
    min_temp_c: float = 45.0
    max_temp_c: float = 65.0
    ambient_temp_c: float = 20.0
    standing_loss_pct_per_h: float = 1.0
    #: share of the daily draw per local hour 0..23 (sums to 1)
    draw_share: tuple[float, ...] = (1 / 24,) * 24
    temp_c: float | None = None  # now, without a sensor (None: min_temp_c)

    def kwh_of(self, temp_c: float) -> float:
        """Heat above ``min_temp_c`` at ``temp_c``. [kWh]"""
        span = self.max_temp_c - self.min_temp_c
        return self.capacity_kwh * (temp_c - self.min_temp_c) / span

    def temp_of(self, kwh: Any) -> Any:
        """Temperature at ``kwh`` above ``min_temp_c``. [°C]"""
        span = self.max_temp_c - self.min_temp_c
        return self.min_temp_c + np.asarray(kwh, dtype=float) / self.capacity_kwh * span

    def loss_kwh(self, dt_h: float) -> tuple[float, float]:
        """``(a, loss)`` of one slot: the heat kept of ``e`` and the constant loss. [-, kWh]"""
        lam = self.standing_loss_pct_per_h / 100.0 * dt_h
        return 1.0 - lam, lam * max(0.0, -self.kwh_of(self.ambient_temp_c))


def tank_spec(cfg: TankConfig) -> TankSpec:
    """The spec of ``water_heater.tank``."""
    share = cfg.draw_profile_pct or [1.0] * 24
    total = float(sum(share))
    return TankSpec(cfg.capacity_kwh, cfg.min_temp_c, cfg.max_temp_c, cfg.ambient_temp_c,
                    cfg.standing_loss_pct_per_h, tuple(float(x) / total for x in share),
                    cfg.temp_c)


def heater_spec(cfg: WaterHeaterConfig, tz: str) -> LoadSpec:
    """The spec of the ``water_heater:`` section in timezone ``tz``."""
    start, end = parse_window(cfg.window)
    return LoadSpec(NAME, cfg.power_kw, cfg.energy_kwh, start, end, tz,
                    defer_min=int(round(cfg.defer_up_to_hours * 60)),
                    modulating=cfg.modulating, min_run_h=cfg.min_run_h,
                    value_eur_per_kwh=None, days_ahead=cfg.plan_days_ahead,
                    tank=None if cfg.tank is None else tank_spec(cfg.tank))


class WaterHeater(DeferrableLoad):
    """The heater: a must-run :class:`DeferrableLoad` called ``water_heater``."""

    def __init__(self, spec: LoadSpec):
        if spec.name != NAME:
            raise ValueError(f"the water heater's component is called {NAME!r}, "
                             f"got {spec.name!r}")
        super().__init__(spec)
        self.tank: TankSpec | None = spec.tank

    def build(self, n: int, dt_h: float) -> None:
        """The load's flow and rows, plus the tank's heat state when there is one."""
        super().build(n, dt_h)
        tank = self.tank
        if tank is None:
            return
        self.heat = cp.Variable(n, bounds=[0.0, tank.capacity_kwh], name=f"{NAME}_tank_kwh")
        self.cold = cp.Variable(n, bounds=[0.0, None], name=f"{NAME}_cold_kwh")
        self.heat0 = cp.Parameter(name=f"{NAME}_tank_now_kwh")
        self.draw = cp.Parameter(n, name=f"{NAME}_draw_kwh")
        self.cold_penalty = cp.Parameter(nonneg=True, name=f"{NAME}_cold_penalty")
        self.heat_value = cp.Parameter(nonneg=True, name=f"{NAME}_tank_value")
        keep, _loss = tank.loss_kwh(dt_h)
        previous = cp.hstack([cp.reshape(self.heat0, (1,), order="C"), self.heat[:-1]])
        self.constraints = [*self.constraints, self.heat == keep * previous
                            + dt_h * self.run.kw - self.draw + self.cold]
        self.cost = (self.cost + self.cold_penalty * cp.sum(self.cold)
                     - self.heat_value * self.heat[n - 1])

    def tank_now_kwh(self, ctx: Context) -> float:
        """Heat above ``min_temp_c`` now, from ``extra["water_heater"]["temp_c"]`` (the
        sensor) or the spec's ``temp_c``; capped at the thermostat's bound. [kWh]"""
        tank = self.tank
        temp = self._input(ctx).get("temp_c", tank.temp_c)
        temp = tank.min_temp_c if temp is None else float(temp)
        return min(tank.kwh_of(temp), tank.capacity_kwh)

    def draw_kwh(self, ctx: Context) -> np.ndarray:
        """Hot water drawn per slot (+ the constant part of the standing loss). [kWh]"""
        tank, dt = self.tank, self.dt_h
        hours = np.asarray(ctx.index.tz_convert(self.spec.tz).hour)
        _keep, loss = tank.loss_kwh(dt)
        return self.spec.need_kwh * np.asarray(tank.draw_share)[hours] * dt + loss

    def set_inputs(self, ctx: Context) -> None:
        """The load's inputs; with a tank: no daily target, every window slot open, the
        heat now, the draw, the cold-water penalty and the end value."""
        super().set_inputs(ctx)
        if self.tank is None:
            return
        s, n, dt = self.spec, self.n, self.dt_h
        day, _today, _planned = day_of_slots(ctx.index, int(round(dt * 3600)), s)
        open_ = day >= 0
        self.run.set_limit(np.where(open_, s.power_kw, 0.0))
        k = self.need.shape[0]
        put(self.need, np.zeros(k))
        put(self.hi, np.full(k, s.power_kw * n * dt))
        if not s.modulating:
            put(self.open, open_.astype(float))
        put(self.heat0, self.tank_now_kwh(ctx))
        put(self.draw, self.draw_kwh(ctx))
        put(self.cold_penalty, ctx.site.soft_penalty_eur_per_kwh)
        put(self.heat_value, max(0.0, float(np.median(ctx.buy_eur_per_kwh))))
        self._ctx_draw = np.asarray(self.draw.value, dtype=float)
        self._open_kw = np.asarray(self.run.limit_kw, dtype=float)

    def force_open(self, slots: np.ndarray, kw: np.ndarray) -> None:
        """The load's override hook; with a tank the open slots for the thermostat baseline
        follow it."""
        super().force_open(slots, kw)
        if self.tank is not None:
            self._open_kw = np.asarray(self.run.limit_kw, dtype=float)

    def round_relaxation(self, price: np.ndarray | None = None) -> bool:
        """Without a tank: the load's rounding. With one (on/off, no minimum block): the
        relaxation's heating rounded slot by slot along the tank — on where the energy the
        relaxation gave so far exceeds the rounded one by half a step, or where it heats at all
        and the tank would otherwise run cold, if a full step keeps the tank at or below its
        bound (the heat simulated with the least cold water) — and
        the LP solved again with exactly those slots open and their energy as the first
        energy row's target, so it can only run them at full power (or fall short, penalised:
        never infeasible). A minimum block with a tank: no rounding (the MILP decides)."""
        if self.tank is None:
            return super().round_relaxation(price)
        s, tank, dt, n = self.spec, self.tank, self.dt_h, self.n
        if s.modulating:
            return True
        if int(round(s.min_run_h / dt)) > 1:
            return False
        keep, _loss = tank.loss_kwh(dt)
        step = s.power_kw * dt
        x = np.asarray(self.run.value, dtype=float)
        open_ = np.asarray(self.run.limit_kw, dtype=float) >= s.power_kw - 1e-9
        on = np.zeros(n, dtype=bool)
        heat, ahead = float(self.heat0.value), 0.0
        for t in range(n):
            base = keep * heat - self._ctx_draw[t]
            if open_[t]:
                ahead += x[t] * dt
                # an override's slots: always on; else on where the relaxation is half a step
                # ahead, or heats at all where the tank would otherwise run cold
                short = base < -1e-9 and x[t] > 1e-9
                if self.forced[t] or ((ahead >= step / 2 or short)
                                      and base + step <= tank.capacity_kwh - 1e-6):
                    on[t], ahead = True, ahead - step
            heat = max(0.0, base + (step if on[t] else 0.0))
        self._unrounded = self.unrounded()
        k = self.need.shape[0]
        member = np.zeros((k, n))
        member[0] = on * dt
        target = np.zeros(k)
        target[0] = step * int(on.sum())
        self.run.set_limit(np.where(on, s.power_kw, 0.0))
        put(self.member, member)
        put(self.need, target)
        put(self.hi, target)
        return True

    def earliest_kw(self) -> np.ndarray:
        """Without a tank: the day's energy from each window's start. With one: the
        thermostat alone, heating at full power in every open slot whose heat would
        otherwise stay below the full tank. [kW]"""
        if self.tank is None:
            return super().earliest_kw()
        tank, dt = self.tank, self.dt_h
        keep, _loss = tank.loss_kwh(dt)
        limit = self._open_kw  # the window's open slots, not a rounding's
        heat, out = float(self.heat0.value), np.zeros(self.n)
        for t in range(self.n):
            after = keep * heat - self._ctx_draw[t]
            p = min(limit[t], max(0.0, (tank.capacity_kwh - after) / dt))
            if not self.spec.modulating and p > 0:
                p = limit[t] if after + limit[t] * dt <= tank.capacity_kwh else 0.0
            out[t], heat = p, min(tank.capacity_kwh, max(0.0, after + p * dt))
        return out

    def outputs(self) -> dict[str, Any]:
        """The load's outputs; with a tank also ``water_heater_tank_kwh`` and
        ``water_heater_temp_c`` per slot end and ``water_heater_cold_kwh`` (hot water the
        tank could not give, summed)."""
        out = super().outputs()
        if self.tank is not None:
            # no daily target with a tank (a rounding's row is not one)
            out[f"{NAME}_need_kwh"] = out[f"{NAME}_shortfall_kwh"] = 0.0
            heat = np.asarray(self.heat.value, dtype=float)
            out[f"{NAME}_tank_kwh"] = heat
            out[f"{NAME}_temp_c"] = self.tank.temp_of(heat)
            out[f"{NAME}_cold_kwh"] = float(np.sum(self.cold.value))
        return out
