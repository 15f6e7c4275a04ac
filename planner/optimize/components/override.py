r"""Manual overrides (``helios override``) as soft constraints on the other components.

One :class:`Overrides` component joins the problem when the configuration may have overrides
(:attr:`planner.optimize.model.ModelSpec.overrides`); the overrides themselves are per-solve
inputs (``Context.extra["overrides"]``: a list of :class:`executor.overrides.Override`), so
adding or clearing one recompiles nothing. Per slot :math:`t`, with masks :math:`m` that are
1 inside an override's window:

.. math::

    m^{nd}_t\,dis_t \le a_t, \quad m^{nc}_t\,ch_t \le b_t, \quad
    e_t + c_t \ge floor_t, \quad e_t - d_t \le ceil_t, \quad
    m^{d}_t\,p^{d}_t + g^{d}_t \ge want^{d}_t

* ``hold``: no discharge (:math:`m^{nd}`);
* ``charge``: no discharge, and the SoC at least ``floor`` — from the SoC now towards
  ``soc_pct`` (default ``max_soc_pct``) at ``kw`` (default the charge limit) when the window
  has begun, else ``soc_pct`` by the window's end;
* ``export``: no charge (:math:`m^{nc}`), and the SoC at most ``ceil`` — from the SoC now down
  towards ``max(soc_pct, min_soc_pct)`` at ``kw`` (default the discharge limit) when the window
  has begun, else that floor by the window's end; the energy goes to the grid wherever the
  home does not take it;
* ``water`` / ``load``: the device runs at ``kw`` (default its power) in the window, opened
  for it on top of its own window (its hook ``force_open``), the energy counted towards its day.

Every slack (:math:`a, b, c, d, g \ge 0`) costs ``soft_penalty_eur_per_kwh`` per kWh (per
kWh·h for the SoC bounds, like the reserve), so physics (an outage, a full battery, a grid
limit) can override an override; :meth:`Overrides.report` gives each one's shortfall, which
the plan reports as an ``override`` violation. Inactive rows have a zero mask or a bound that
always holds (floor 0, ceiling above the capacity), so the shape never changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Component, Context, put

__all__ = ["NAME", "Overrides", "slot_masks"]

#: the component's name, and its key in ``Context.extra``
NAME = "overrides"
#: shortfalls below this are not reported [kWh]
REPORT_TOL_KWH = 1e-3


def slot_masks(index: Any, dt_h: float, overrides: Sequence[Any]) -> list[np.ndarray]:
    """Per override, the share of each slot inside its window (0..1)."""
    starts = np.array([t.timestamp() for t in index.to_pydatetime()])
    ends = starts + dt_h * 3600.0
    out = []
    for o in overrides:
        lo, hi = o.start.timestamp(), o.end.timestamp()
        overlap = np.clip(np.minimum(ends, hi) - np.maximum(starts, lo), 0.0, None)
        out.append(overlap / (dt_h * 3600.0))
    return out


class Overrides(Component):
    """Soft constraints for the manual overrides on the home ``battery`` and the devices
    named in ``devices`` (their components, which must run their ``set_inputs`` first)."""

    def __init__(self, battery: Component, devices: Sequence[Component] = ()):
        super().__init__(NAME)
        self.battery = battery
        self.devices = {d.name: d for d in devices}
        self._active: list[Any] = []
        self._index = None

    def build(self, n: int, dt_h: float) -> None:
        """Masks, bounds and slacks; costs at the per-solve penalty."""
        super().build(n, dt_h)
        bat = self.battery
        p = self.params = {
            "nd": cp.Parameter(n, nonneg=True, name="ovr_no_discharge"),
            "nc": cp.Parameter(n, nonneg=True, name="ovr_no_charge"),
            "floor": cp.Parameter(n, name="ovr_soc_floor_kwh"),
            "ceil": cp.Parameter(n, name="ovr_soc_ceiling_kwh"),
            "penalty": cp.Parameter(nonneg=True, name="ovr_penalty"),
        }
        self.dis_over = cp.Variable(n, bounds=[0, None], name="ovr_discharge_kw")
        self.ch_over = cp.Variable(n, bounds=[0, None], name="ovr_charge_kw")
        self.below = cp.Variable(n, bounds=[0, None], name="ovr_soc_below_kwh")
        self.above = cp.Variable(n, bounds=[0, None], name="ovr_soc_above_kwh")
        self.constraints = [
            cp.multiply(p["nd"], bat.dis.x) <= self.dis_over,
            cp.multiply(p["nc"], bat.ch.x) <= self.ch_over,
            bat.soc + self.below >= p["floor"],
            bat.soc - self.above <= p["ceil"],
        ]
        slack = cp.sum(self.dis_over) + cp.sum(self.ch_over) + cp.sum(self.below) \
            + cp.sum(self.above)
        self.dev_params: dict[str, dict[str, Any]] = {}
        for name, dev in self.devices.items():
            q = self.dev_params[name] = {
                "a": cp.Parameter(n, nonneg=True, name=f"ovr_{name}_on"),
                "want": cp.Parameter(n, nonneg=True, name=f"ovr_{name}_want_kw"),
                "short": cp.Variable(n, bounds=[0, None], name=f"ovr_{name}_short_kw"),
            }
            self.constraints.append(cp.multiply(q["a"], dev.run.x) + q["short"] >= q["want"])
            slack = slack + cp.sum(q["short"])
        self.cost = dt_h * p["penalty"] * slack

    def set_inputs(self, ctx: Context) -> None:
        """Masks and bounds from ``ctx.extra["overrides"]`` (inactive when none)."""
        n, dt, s, p = self.n, self.dt_h, ctx.site, self.params
        bat = self.battery
        given = list(ctx.extra.get(NAME) or ())
        self._index = ctx.index
        masks = slot_masks(ctx.index, dt, given) if given else []
        live = [(o, m) for o, m in zip(given, masks, strict=True) if m.any()]
        self._active = live
        nd, nc = np.zeros(n), np.zeros(n)
        floor = np.zeros(n)
        ceil = np.full(n, s.capacity_kwh * 2.0 + ctx.soc_start_kwh)
        soc0 = ctx.soc_start_kwh
        eta_c, eta_d = s.charge_efficiency, s.discharge_efficiency
        wants = {name: np.zeros(n) for name in self.devices}
        goals: list[tuple[Any, str, int, float]] = []  # (override, side, last slot, SoC)
        for o, m in live:
            on = m > 0
            first, last = int(np.argmax(on)), int(n - 1 - np.argmax(on[::-1]))
            if o.kind in ("hold", "charge"):
                nd = np.maximum(nd, on.astype(float))
            if o.kind == "charge":
                target = min(o.soc_pct / 100 * s.capacity_kwh if o.soc_pct is not None
                             else s.max_kwh, s.max_kwh)
                rate = min(o.kw, s.max_charge_kw) if o.kw is not None else s.max_charge_kw
                if first == 0:  # begun: towards the target at the rate, from the SoC now
                    ramp = np.minimum(target, soc0 + eta_c * rate * dt * np.cumsum(m))
                    floor = np.where(on, np.maximum(floor, ramp), floor)
                else:
                    floor[last] = max(floor[last], target)
                goals.append((o, "floor", last, target))
            elif o.kind == "export":
                target = max(o.soc_pct / 100 * s.capacity_kwh if o.soc_pct is not None
                             else s.min_kwh, s.min_kwh)
                rate = (min(o.kw, s.max_discharge_kw) if o.kw is not None
                        else s.max_discharge_kw)
                nc = np.maximum(nc, on.astype(float))
                if first == 0 and soc0 > target:  # begun: down at the rate, not faster
                    ramp = np.maximum(target, soc0 - rate * dt * np.cumsum(m) / eta_d)
                    ceil = np.where(on, np.minimum(ceil, ramp), ceil)
                    floor = np.where(on, np.maximum(floor, ramp), floor)
                elif first == 0:  # already at or below the target: nothing to export
                    ceil = np.where(on, np.minimum(ceil, soc0), ceil)
                else:
                    ceil[last] = min(ceil[last], target)
                goals.append((o, "ceil", last, target))
            elif o.kind in ("water", "load"):
                name = "water_heater" if o.kind == "water" else o.target
                dev = self.devices.get(name)
                if dev is None:
                    continue  # not in this plan's model (reported by report())
                power = dev.spec.power_kw
                kw = min(o.kw, power) if o.kw is not None else power
                wants[name] = np.maximum(wants[name], np.where(on, kw * m, 0.0))
        put(p["nd"], nd * bat.dis.scale.value)
        put(p["nc"], nc * bat.ch.scale.value)
        put(p["floor"], floor)
        put(p["ceil"], ceil)
        put(p["penalty"], s.soft_penalty_eur_per_kwh)
        self._floor, self._ceil, self._nd, self._nc = floor, ceil, nd, nc
        self._goals = {id(o): (side, last, target) for o, side, last, target in goals}
        for name, dev in self.devices.items():
            want = wants[name]
            forced = want > 0
            if forced.any():
                dev.force_open(forced, want)
            q = self.dev_params[name]
            put(q["a"], forced * dev.run.scale.value)
            put(q["want"], want)

    def report(self) -> list[dict[str, Any]]:
        """Per override in this solve: what it asked, what the plan misses (kWh) and the
        first slot it misses it in (index), after the final solve."""
        bat = self.battery
        dis, ch = bat.dis.value, bat.ch.value
        soc = np.asarray(bat.soc.value, dtype=float).reshape(-1)
        dt = self.dt_h
        out = []
        for o, m in self._active:
            on = m > 0
            if o.kind in ("hold", "charge"):
                miss = np.where(on, dis * dt, 0.0)
            else:
                miss = np.zeros(self.n)
            if o.kind in ("charge", "export"):  # the SoC asked for at the window's end
                side, last, target = self._goals[id(o)]
                gap = target - soc[last] if side == "floor" else soc[last] - target
                if o.kind == "export":
                    miss = np.where(on, ch * dt, 0.0)
                if gap > REPORT_TOL_KWH:
                    miss[last] += gap
            elif o.kind in ("water", "load"):
                name = "water_heater" if o.kind == "water" else o.target
                dev = self.devices.get(name)
                if dev is None:
                    out.append({"override": o, "shortfall_kwh": None, "first": 0})
                    continue
                power = dev.spec.power_kw
                kw = min(o.kw, power) if o.kw is not None else power
                miss = np.where(on, np.clip(kw * m - dev.run.value, 0.0, None) * dt, 0.0)
            bad = miss > REPORT_TOL_KWH
            out.append({"override": o, "shortfall_kwh": float(miss.sum()) if bad.any() else 0.0,
                        "first": int(np.argmax(bad)) if bad.any() else None})
        return out

    def outputs(self) -> dict[str, Any]:
        """``overrides_report``: :meth:`report`."""
        return {"overrides_report": self.report()}
