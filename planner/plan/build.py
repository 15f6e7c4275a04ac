"""Solution → plan: per-slot frame, actions with a short "why", checks, and the schedule.

The plan frame (``plan_frame``) is the one table the CLI summary, the schedule file, the
report and the history store are made from. Its columns are the schedule's per-slot fields.

Each slot's ``action`` and ``reason`` come from the flows and from the *value of stored
energy* (the dual of the state-of-charge equation, EUR per kWh in the battery): the plan
charges when buying costs less than that value after losses, discharges when buying would
cost more, and holds when the energy is worth more later. The reason says so with numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from executor import schedule as sched
from planner.config import HeliosConfig
from planner.core.errors import OptimizationError
from planner.inputs.gather import Inputs
from planner.optimize.model import Solution
from planner.optimize.model import device_specs as cfg_devices
from planner.plan import overrides

#: flows below this are "nothing happens" when choosing an action [kW]
ACTION_TOL_KW = 1e-3
#: per-slot energy balance must hold to this [kW]
BALANCE_TOL_KW = 1e-6
#: bounds must hold to this [kW or kWh]
BOUND_TOL = 1e-6


@dataclass(frozen=True)
class Plan:
    """A checked plan: the per-slot frame plus plan-level results."""

    frame: pd.DataFrame
    solution: Solution
    inputs: Inputs
    violations: tuple[sched.Violation, ...]
    #: the flexible devices' planned power per slot [kW, + = drawn from the bus], one column
    #: per device (water heater, deferrable loads); no columns without devices
    devices: pd.DataFrame | None = None

    @property
    def co2_kg(self) -> float | None:
        """kg CO2 of the planned import (import × the carbon input), None without one."""
        co2 = getattr(self.inputs, "co2_g_per_kwh", None)
        if co2 is None:
            return None
        return float(np.sum(self.solution.grid_import_kw * co2) * self.inputs.dt_h / 1000.0)

    @property
    def batteries(self) -> tuple[str, ...]:
        """The further batteries among :attr:`devices` (their power may be negative)."""
        return tuple(name for name in self.solution.device_kw
                     if f"{name}_discharge_kw" in self.solution.outputs)

    @property
    def status(self) -> str:
        """``optimal`` or ``optimal_with_violations``."""
        return "optimal_with_violations" if self.violations else "optimal"


def _fmt(x: float) -> str:
    return f"{x:.3f}"




def _action(i: int, sol: Solution, inputs: Inputs, ctx: _Context) -> tuple[str, str]:
    """Classify slot ``i`` and explain it in one short sentence, with prices and times."""
    ch = sol.battery_charge_kw[i]
    dis = sol.battery_discharge_kw[i]
    imp = sol.grid_import_kw[i]
    exp = sol.grid_export_kw[i]
    curtailed = inputs.pv_kw[i] - sol.pv_used_kw[i]
    buy = inputs.buy_eur_per_kwh[i]
    sell = inputs.sell_eur_per_kwh[i]
    soc_before = sol.soc_start_kwh if i == 0 else sol.soc_kwh[i - 1]
    tail = f"; PV curtailed {curtailed:.2f} kW" if curtailed > ACTION_TOL_KW else ""
    if ch > ACTION_TOL_KW:
        use = ctx.use_text(i)
        if imp > ACTION_TOL_KW:
            why = (f"paid to import: buy {_fmt(buy)} EUR/kWh" if buy < 0
                   else f"charge at buy {_fmt(buy)} EUR/kWh")
            return "charge_grid", f"{why}, {use}{tail}"
        return "charge_pv", f"store PV surplus (sell only {_fmt(sell)} EUR/kWh), {use}{tail}"
    if dis > ACTION_TOL_KW:
        source = ctx.source_text(i)
        if exp > ACTION_TOL_KW:
            return "export", f"sell at {_fmt(sell)} EUR/kWh, energy {source}{tail}"
        return "discharge", f"cover load instead of buying at {_fmt(buy)} EUR/kWh, energy " \
                            f"{source}{tail}"
    if curtailed > ACTION_TOL_KW:
        if sell < 0:
            why = f"sell {_fmt(sell)} EUR/kWh < 0: curtail {curtailed:.2f} kW of PV"
        else:
            why = f"export limit or battery full: curtail {curtailed:.2f} kW of PV"
        return "curtail", why
    at_min = soc_before <= ctx.lo_kwh + 1e-6
    at_max = soc_before >= ctx.hi_kwh - 1e-6
    if imp > ACTION_TOL_KW and ctx.can_discharge and not at_min:
        return "hold", f"buy at {_fmt(buy)} EUR/kWh and keep the battery's energy: " \
                       f"{ctx.use_text(i)}"
    if at_min and imp > ACTION_TOL_KW:
        return "idle", f"battery at its minimum SoC; buy {_fmt(buy)} EUR/kWh"
    if at_max and exp > ACTION_TOL_KW:
        return "idle", f"battery full; PV surplus exported at {_fmt(sell)} EUR/kWh"
    return "idle", "nothing to gain from the battery after losses and wear"


@dataclass(frozen=True)
class _Context:
    """Where each slot's stored energy goes to and comes from, for the reasons."""

    inputs: Inputs
    sol: Solution
    tz: object
    lo_kwh: float
    hi_kwh: float
    can_discharge: bool
    next_out: np.ndarray  # index of the next slot that discharges (or -1)
    prev_in: np.ndarray  # index of the last slot at or before i that charged (or -1)

    @classmethod
    def build(cls, inputs: Inputs, sol: Solution, cfg: HeliosConfig) -> _Context:
        b = cfg.battery
        n = inputs.n
        out = sol.battery_discharge_kw > ACTION_TOL_KW
        into = sol.battery_charge_kw > ACTION_TOL_KW
        next_out = np.full(n, -1)
        nxt = -1
        for i in range(n - 1, -1, -1):
            next_out[i] = nxt
            if out[i]:
                nxt = i
        prev_in = np.full(n, -1)
        last = -1
        for i in range(n):
            if into[i]:
                last = i
            prev_in[i] = last
        cap = b.capacity_kwh
        return cls(inputs, sol, cfg.site.tz,
                   min(b.min_soc_pct / 100 * cap, sol.soc_start_kwh),
                   max(b.max_soc_pct / 100 * cap, sol.soc_start_kwh),
                   b.max_discharge_kw > 0, next_out, prev_in)

    def _when(self, j: int) -> str:
        ts = self.inputs.index[j].tz_convert(self.tz)
        same_day = ts.date() == self.inputs.index[0].tz_convert(self.tz).date()
        return f"{ts:%H:%M}" if same_day else f"{ts:%a %H:%M}"

    def use_text(self, i: int) -> str:
        j = int(self.next_out[i])
        if j < 0:
            return (f"kept past the horizon (worth {_fmt(self.sol.terminal_value_eur_per_kwh)} "
                    "EUR/kWh)")
        if self.sol.grid_export_kw[j] > ACTION_TOL_KW:
            return f"to sell at {self._when(j)} for {_fmt(self.inputs.sell_eur_per_kwh[j])}"
        return f"to use at {self._when(j)} instead of buying at " \
               f"{_fmt(self.inputs.buy_eur_per_kwh[j])}"

    def source_text(self, i: int) -> str:
        j = int(self.prev_in[i])
        if j < 0:
            return "already in the battery"
        if self.sol.grid_import_kw[j] > ACTION_TOL_KW:
            return f"bought at {self._when(j)} for {_fmt(self.inputs.buy_eur_per_kwh[j])}"
        return f"from PV at {self._when(j)}"


def build(inputs: Inputs, sol: Solution, cfg: HeliosConfig) -> Plan:
    """Turn a solution into a checked :class:`Plan`.

    Raises
    ------
    OptimizationError
        When a per-slot energy balance or a bound does not hold (a solver/modelling bug; the
        run stops before anything is written).
    """
    b = cfg.battery
    cap = b.capacity_kwh
    check(inputs, sol, cfg)
    ctx = _Context.build(inputs, sol, cfg)
    actions, reasons = [], []
    for i in range(inputs.n):
        a, r = _action(i, sol, inputs, ctx)
        if sol.unserved_kw[i] > ACTION_TOL_KW:
            r += f"; {sol.unserved_kw[i]:.2f} kW of load cannot be supplied"
        actions.append(a)
        reasons.append(r)
    net = sol.grid_import_kw - sol.grid_export_kw
    bands = [sched.intent_band(c, d, i, e, b.max_charge_kw, b.max_discharge_kw, ACTION_TOL_KW)
             for c, d, i, e in zip(sol.battery_charge_kw, sol.battery_discharge_kw,
                                   sol.grid_import_kw, sol.grid_export_kw, strict=True)]
    frame = pd.DataFrame(
        {
            "grid_import_kw": sol.grid_import_kw,
            "grid_export_kw": sol.grid_export_kw,
            "battery_charge_kw": sol.battery_charge_kw,
            "battery_discharge_kw": sol.battery_discharge_kw,
            "pv_kw": inputs.pv_kw,
            "pv_used_kw": sol.pv_used_kw,
            "load_kw": inputs.load_kw,
            "soc_kwh": sol.soc_kwh,
            "soc_pct": np.clip(sol.soc_kwh / cap * 100.0, 0.0, 100.0),
            "buy_eur_per_kwh": inputs.buy_eur_per_kwh,
            "sell_eur_per_kwh": inputs.sell_eur_per_kwh,
            "cost_eur": (inputs.buy_eur_per_kwh * sol.grid_import_kw
                         - inputs.sell_eur_per_kwh * sol.grid_export_kw) * inputs.dt_h,
            "energy_value_eur_per_kwh": sol.energy_value_eur_per_kwh,
            "grid_setpoint_w": np.rint(net * 1000.0).astype(int),
            "action": actions,
            "reason": reasons,
            "intent": [x[0] for x in bands],
            "battery_min_kw": [x[1] for x in bands],
            "battery_max_kw": [x[2] for x in bands],
        },
        index=inputs.index,
    )
    devices = pd.DataFrame({name: np.asarray(kw, dtype=float)
                            for name, kw in sol.device_kw.items()}, index=inputs.index)
    return Plan(frame, sol, inputs, tuple(violations(inputs, sol, cfg)), devices)


def check(inputs: Inputs, sol: Solution, cfg: HeliosConfig) -> None:
    """Assert the physics of a solution: balance per slot, bounds, SoC recursion, exclusivity.

    Raises
    ------
    OptimizationError
        Naming the first slot and quantity that fails.
    """
    b, g = cfg.battery, cfg.grid
    dt = inputs.dt_h
    supply = sol.pv_used_kw + sol.grid_import_kw + sol.battery_discharge_kw + sol.unserved_kw
    demand = inputs.load_kw + sol.battery_charge_kw + sol.grid_export_kw
    for name, kw in sol.device_kw.items():  # the water heater and deferrable loads draw too
        if not np.isfinite(kw).all():
            i = int(np.argmax(~np.isfinite(kw)))
            raise OptimizationError(f"the solver returned a non-finite devices.{name}.power_kw "
                                    f"in the slot starting {inputs.index[i].isoformat()}")
        demand = demand + kw
    bad = np.abs(supply - demand) > BALANCE_TOL_KW
    if bad.any():
        i = int(np.argmax(bad))
        raise OptimizationError(f"energy balance fails in slot {inputs.index[i].isoformat()}: "
                                f"supply {supply[i]:.6f} kW != demand {demand[i]:.6f} kW")
    prev = np.concatenate(([sol.soc_start_kwh], sol.soc_kwh[:-1]))
    expected = prev + (b.charge_efficiency * sol.battery_charge_kw
                       - sol.battery_discharge_kw / b.discharge_efficiency) * dt
    bad = np.abs(expected - sol.soc_kwh) > BOUND_TOL
    if bad.any():
        i = int(np.argmax(bad))
        raise OptimizationError(f"SoC recursion fails in slot {inputs.index[i].isoformat()}")
    cap = b.capacity_kwh
    limits = {
        "grid_import_kw": (sol.grid_import_kw, g.max_import_kw),
        "grid_export_kw": (sol.grid_export_kw, g.max_export_kw if g.export_enabled else 0.0),
        "battery_charge_kw": (sol.battery_charge_kw, b.max_charge_kw),
        "battery_discharge_kw": (sol.battery_discharge_kw, b.max_discharge_kw),
        "pv_used_kw": (sol.pv_used_kw, inputs.pv_kw),
        "soc_kwh": (sol.soc_kwh, max(b.max_soc_pct / 100 * cap, sol.soc_start_kwh)),
    }
    batteries = {b.name: b for b in cfg.batteries}
    for name, kw in sol.device_kw.items():
        if name in batteries:  # charge − discharge: each flow checked on its own
            b2 = batteries[name]
            limits[f"devices.{name}.charge_kw"] = (sol.outputs[f"{name}_charge_kw"],
                                                   b2.max_charge_kw)
            limits[f"devices.{name}.discharge_kw"] = (sol.outputs[f"{name}_discharge_kw"],
                                                      b2.max_discharge_kw)
            _check_battery(inputs, sol, b2)
        else:
            limits[f"devices.{name}.power_kw"] = (kw, np.inf)
    for name, (values, upper) in limits.items():
        over = (values > np.asarray(upper) + BOUND_TOL) | (values < -BOUND_TOL)
        if over.any():
            i = int(np.argmax(over))
            raise OptimizationError(f"{name} out of bounds in slot {inputs.index[i].isoformat()}")
    floor = min(b.min_soc_pct / 100 * cap, sol.soc_start_kwh)
    if (sol.soc_kwh < floor - BOUND_TOL).any():
        i = int(np.argmax(sol.soc_kwh < floor - BOUND_TOL))
        raise OptimizationError(f"SoC below minimum in slot {inputs.index[i].isoformat()}")
    for a, c, what in ((sol.battery_charge_kw, sol.battery_discharge_kw, "charge and discharge"),
                       (sol.grid_import_kw, sol.grid_export_kw, "import and export")):
        both = np.minimum(a, c) > 1e-6
        if both.any():
            i = int(np.argmax(both))
            raise OptimizationError(f"simultaneous {what} in slot {inputs.index[i].isoformat()}")


def _check_battery(inputs: Inputs, sol: Solution, b: object) -> None:
    """A further battery's SoC recursion and exclusivity (``batteries:``)."""
    o, name = sol.outputs, b.name
    ch, dis, soc = o[f"{name}_charge_kw"], o[f"{name}_discharge_kw"], o[f"{name}_soc_kwh"]
    prev = np.concatenate(([o[f"{name}_soc_start_kwh"]], soc[:-1]))
    expected = prev + (b.charge_efficiency * ch - dis / b.discharge_efficiency) * inputs.dt_h
    for bad, what in ((np.abs(expected - soc) > BOUND_TOL, "SoC recursion fails"),
                      (np.minimum(ch, dis) > 1e-6, "simultaneous charge and discharge")):
        if bad.any():
            i = int(np.argmax(bad))
            raise OptimizationError(f"devices.{name}: {what} in slot "
                                    f"{inputs.index[i].isoformat()}")


def violations(inputs: Inputs, sol: Solution, cfg: HeliosConfig) -> list[sched.Violation]:
    """The soft constraints the plan misses, each with its size and first slot."""
    b = cfg.battery
    cap = b.capacity_kwh
    out: list[sched.Violation] = []
    min_kwh = b.min_soc_pct / 100 * cap
    if sol.soc_start_kwh < min_kwh - 1e-6:
        out.append(sched.Violation(
            "min_soc_at_start", round(min_kwh - sol.soc_start_kwh, 4), "kWh",
            f"the battery starts at {sol.soc_start_kwh / cap * 100:.1f} %, below min_soc_pct "
            f"{b.min_soc_pct:g} %; the plan never drains further and recharges first",
            inputs.index[0].to_pydatetime()))
    short = sol.reserve_shortfall_kwh
    if short.max(initial=0.0) > 1e-4:
        i = int(np.argmax(short > 1e-4))
        out.append(sched.Violation(
            "reserve_soc", round(float(short.max()), 4), "kWh",
            f"SoC below the reserve ({b.reserve_soc_pct or b.min_soc_pct:g} %) by up to "
            f"{short.max():.2f} kWh in {int((short > 1e-4).sum())} slot(s)",
            inputs.index[i].to_pydatetime()))
    over = sol.overshoot_kwh
    if over.max(initial=0.0) > 1e-4:
        i = int(np.argmax(over > 1e-4))
        out.append(sched.Violation(
            "max_soc", round(float(over.max()), 4), "kWh",
            f"the battery starts at {sol.soc_start_kwh / cap * 100:.1f} %, above max_soc_pct "
            f"{b.max_soc_pct:g} %; the SoC stays above it by up to {over.max():.2f} kWh in "
            f"{int((over > 1e-4).sum())} slot(s)", inputs.index[i].to_pydatetime()))
    if sol.final_shortfall_kwh > 1e-4:
        out.append(sched.Violation(
            "final_soc", round(sol.final_shortfall_kwh, 4), "kWh",
            f"the final SoC target {b.final_soc_pct:g} % is missed by "
            f"{sol.final_shortfall_kwh:.2f} kWh", inputs.index[-1].to_pydatetime()))
    for name in sol.device_kw:
        short = float(sol.outputs.get(f"{name}_shortfall_kwh", 0.0))
        spec = next((d for d in cfg_devices(cfg) if d.name == name), None)
        if short > 1e-4 and spec is not None and spec.value_eur_per_kwh is None:
            out.append(sched.Violation(
                "device_energy", round(short, 4), "kWh",
                f"{name}: {short:.2f} kWh of its {sol.outputs[f'{name}_need_kwh']:.2f} kWh "
                "cannot be delivered inside its window (power, window or grid too small)",
                inputs.index[0].to_pydatetime()))
    cold = float(sol.outputs.get("water_heater_cold_kwh", 0.0))
    if cold > 1e-4:  # the tank model: hot water below min_temp_c (components/water_heater.py)
        out.append(sched.Violation(
            "device_energy", round(cold, 4), "kWh",
            f"water_heater: the tank falls {cold:.2f} kWh short of min_temp_c (element power, "
            "window or tank too small for the draw)", inputs.index[0].to_pydatetime()))
    out.extend(ev_violations(inputs, sol, cfg))
    out.extend(overrides.violations(sol.outputs, inputs.index))
    if sol.milp_stopped:
        how = ("the LP with each split slot fixed to one direction" if sol.milp_fallback
               else "its best exclusive plan")
        out.append(sched.Violation(
            "milp_stopped", round(sol.milp_gap_eur, 4), "EUR",
            f"the exact re-solve stopped at planning.milp_time_limit_s = "
            f"{cfg.planning.milp_time_limit_s:g} s; the plan is {how}, exclusive but up to "
            f"{sol.milp_gap_eur:.4f} EUR dearer than the optimum", inputs.index[0].to_pydatetime()))
    unserved = sol.unserved_kw
    if unserved.max(initial=0.0) > 1e-4:
        i = int(np.argmax(unserved > 1e-4))
        out.append(sched.Violation(
            "unserved_load", round(float(unserved.sum() * inputs.dt_h), 4), "kWh",
            "the load exceeds what grid import, battery and PV can supply; raise "
            "grid.max_import_kw or check the load forecast", inputs.index[i].to_pydatetime()))
    return out


def ev_violations(inputs: Inputs, sol: Solution, cfg: HeliosConfig) -> list[sched.Violation]:
    """``ev_target`` per departure whose target is missed (with its time), ``ev_min_now``
    when "minimum SoC now" cannot be reached (not plugged in, too little power)."""
    out: list[sched.Violation] = []
    o = sol.outputs
    if "ev_power_kw" not in o or cfg.ev is None:
        return out
    tz = cfg.site.tz
    for s in o.get("ev_sessions") or []:
        if s["shortfall_kwh"] > 1e-3:
            at = pd.Timestamp(s["departure"])
            out.append(sched.Violation(
                "ev_target", round(float(s["shortfall_kwh"]), 4), "kWh",
                f"ev: {s['shortfall_kwh']:.2f} kWh short of {s['target_soc_pct']:.0f} % at the "
                f"departure {at.tz_convert(tz):%a %H:%M} (reaches {s['soc_pct']:.1f} %; "
                "plugged-in time or charging power too small: charges at full power)",
                at.to_pydatetime()))
    short = float(o.get("ev_min_now_shortfall_kwh", 0.0))
    if short > 1e-3:
        out.append(sched.Violation(
            "ev_min_now", round(short, 4), "kWh",
            f"ev: the minimum SoC now is missed by {short:.2f} kWh (not plugged in, or not "
            "enough charging power inside the horizon)", inputs.index[0].to_pydatetime()))
    return out


def ev_solar(sol, i: int, ev_kw: float) -> bool:
    """Slot ``i`` charges the car from PV: it charges, nothing is imported and the home
    battery does not discharge (so the car's power is the planned PV surplus)."""
    return (ev_kw > 1e-3 and float(sol.grid_import_kw[i]) <= 1e-3
            and float(sol.battery_discharge_kw[i]) <= 1e-3 and float(sol.pv_used_kw[i]) > ev_kw)


def slot_devices(plan: Plan, i: int) -> dict[str, dict[str, object]] | None:
    """Slot ``i``'s ``devices`` block of schedule.json (None without devices)."""
    if plan.devices is None or not len(plan.devices.columns):
        return None
    out: dict[str, dict[str, object]] = {
        name: {"power_kw": round(float(plan.devices[name].iat[i]), 4) + 0.0}
        for name in plan.devices.columns}
    soc = plan.solution.outputs.get("ev_soc_pct")
    if "ev" in out and soc is not None:  # the car's SoC at the slot's end
        out["ev"]["soc_pct"] = round(float(soc[i]), 3) + 0.0
        if ev_solar(plan.solution, i, out["ev"]["power_kw"]):
            out["ev"]["mode"] = "solar"  # the executor follows the PV surplus in the slot
    for name in plan.batteries:  # a further battery's SoC at the slot's end
        out[name]["soc_pct"] = round(float(plan.solution.outputs[f"{name}_soc_pct"][i]), 3) + 0.0
    return out


def device_energy_kwh(plan: Plan, tz: object) -> dict[str, dict[str, float]]:
    """Each device's planned energy per local day (``YYYY-MM-DD`` in ``tz``). [kWh]"""
    if plan.devices is None or not len(plan.devices.columns):
        return {}
    days = plan.devices.index.tz_convert(tz).strftime("%Y-%m-%d")
    energy = plan.devices * plan.inputs.dt_h
    return {name: {d: round(float(v), 4) for d, v in energy[name].groupby(days).sum().items()
                   if v > 1e-6}
            for name in plan.devices.columns}


def device_lines(plan: Plan, tz: object) -> list[str]:
    """One summary line per device: planned energy over the horizon and per local day."""
    lines = []
    o, dt = plan.solution.outputs, plan.inputs.dt_h
    for name in plan.batteries:
        lines.append(f"{name}: charge {float(np.sum(o[f'{name}_charge_kw']) * dt):.1f} kWh, "
                     f"discharge {float(np.sum(o[f'{name}_discharge_kw']) * dt):.1f} kWh, "
                     f"SoC at the end {float(o[f'{name}_soc_pct'][-1]):.0f} %")
    for name, days in device_energy_kwh(plan, tz).items():
        if name in plan.batteries:
            continue
        total = float(plan.devices[name].sum() * plan.inputs.dt_h)
        per_day = ", ".join(f"{d} {kwh:.1f}" for d, kwh in days.items()) or "none"
        lines.append(f"{name}: {total:.1f} kWh planned (per local day: {per_day} kWh)")
    return lines


def to_schedule(plan: Plan, cfg: HeliosConfig, generated_at: pd.Timestamp) -> sched.Schedule:
    """The executor's view of the plan (validated by :mod:`executor.schedule`)."""
    f = plan.frame
    slot_s = plan.inputs.slot_s
    end = plan.inputs.end
    valid_until = min(generated_at + pd.Timedelta(seconds=cfg.planning.plan_valid_s), end)
    slots = []
    for i, (ts, row) in enumerate(zip(f.index, f.itertuples(index=False), strict=True)):
        slots.append(sched.Slot(
            start=ts.to_pydatetime(),
            grid_import_kw=round(float(row.grid_import_kw), 4),
            grid_export_kw=round(float(row.grid_export_kw), 4),
            battery_charge_kw=round(float(row.battery_charge_kw), 4),
            battery_discharge_kw=round(float(row.battery_discharge_kw), 4),
            pv_kw=round(float(row.pv_kw), 4),
            pv_used_kw=round(float(row.pv_used_kw), 4),
            load_kw=round(float(row.load_kw), 4),
            soc_pct=round(float(row.soc_pct), 3),
            buy_eur_per_kwh=round(float(row.buy_eur_per_kwh), 6),
            sell_eur_per_kwh=round(float(row.sell_eur_per_kwh), 6),
            grid_setpoint_w=int(row.grid_setpoint_w),
            action=str(row.action),
            reason=str(row.reason),
            intent=str(row.intent),
            battery_min_kw=round(float(row.battery_min_kw), 4),
            battery_max_kw=round(float(row.battery_max_kw), 4),
            devices=slot_devices(plan, i),
        ))
    sol = plan.solution
    return sched.Schedule(
        generated_at=generated_at.to_pydatetime(),
        valid_until=valid_until.to_pydatetime(),
        slot_s=slot_s,
        status=plan.status,
        objective_eur=round(sol.objective_eur, 6),
        expected_cost_eur=round(sol.energy_cost_eur, 6),
        solve_s=round(sol.solve_s, 6),
        solver=sol.solver,
        slots=tuple(slots),
        violations=plan.violations,
        overrides=tuple(overrides.entries(sol.outputs)),
    )
