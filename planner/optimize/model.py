r"""The planner's optimisation: the house's components in one LP, compiled once, re-solved fast.

Per slot :math:`t` (length :math:`\Delta t` h) the decision variables are grid import/export,
battery charge/discharge (AC side), used PV (curtailment allowed) and the state of charge.

.. math::

    \min \sum_t \Delta t\,(b_t\,imp_t - s_t\,exp_t) + \Delta t\,w\,(ch_t + dis_t)
         + \Delta t\,P\,r_t + \Delta t\,U\,u_t + P_f\,f - v\,e_T

    pv^{used}_t + imp_t + dis_t + u_t = load_t + ch_t + exp_t          (balance)

    e_t = e_{t-1} + (\eta_c\,ch_t - dis_t/\eta_d)\,\Delta t              (state of charge)

    lo_t \le e_t \le hi_t,\quad e_t + r_t \ge reserve,\quad e_T + f \ge final

with per-slot power limits on every flow (grid limits 0 in an outage, live battery limits),
:math:`0 \le pv^{used}_t \le pv_t`. ``r`` (reserve shortfall), ``f`` (final-SoC shortfall)
and ``u`` (unserved load) are slacks with explicit penalties, so a plan always exists; the
plan reports them as violations. Without a final SoC target, energy left at the end is valued
at :math:`v = \eta_d \cdot q` (a quantile of the buy prices of the slots with grid), so the
plan neither dumps nor hoards it.

Each device is a component (:mod:`planner.optimize.components`: :class:`Grid`, :class:`Pv`,
:class:`FixedLoad`, :class:`Battery`) and :class:`planner.optimize.problem.Problem` sums them;
this module is the planner's façade: :class:`ModelSpec` (what fixes the structure),
:class:`Model` (the compiled problem for one spec, plus any extra components),
:class:`Solution` and :func:`solve`.

Speed: the problem is built once per :class:`ModelSpec` with ``cp.Parameter`` data (DPP), so
cvxpy compiles it once and later solves only refill the numbers. Every limit is a column
bound through an affine change of variables (``flow = scale ⊙ x``, ``soc = lo + width ⊙ z``
with ``x, z`` bounded by constants), which keeps the problem DPP while keeping rows out of
the LP — that is what brings a 48 h × 15 min re-solve to ≈5 ms.

Simultaneous charge and discharge (or import and export) is physically meaningless but can be
optimal for the LP when prices are negative (it burns energy in losses or buys and sells at
once). :func:`solve` detects it and re-solves that case exactly as a MILP with one binary per
slot and flow pair (HiGHS), so no returned plan ever does it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.config import HeliosConfig
from planner.core.site import SiteSpec
from planner.inputs.types import Inputs
from planner.optimize.components import (
    EXCLUSIVE_TOL_KW,
    Battery,
    Component,
    Context,
    FixedLoad,
    Grid,
    Pv,
    SlotLimits,
)
from planner.optimize.components.battery import BatterySpec, SpecBattery
from planner.optimize.components.deferrable import DeferrableLoad, LoadSpec, load_spec
from planner.optimize.components.ev import Ev, EvSpec
from planner.optimize.components.override import NAME as OVERRIDES
from planner.optimize.components.override import Overrides
from planner.optimize.components.water_heater import NAME as WATER_HEATER
from planner.optimize.components.water_heater import WaterHeater, heater_spec
from planner.optimize.problem import MILP_TIME_LIMIT_S, Outcome, Problem, solver_order

__all__ = ["EXCLUSIVE_TOL_KW", "MILP_TIME_LIMIT_S", "Model", "ModelSpec", "SlotLimits",
           "Solution", "at_plugin_kw", "battery_specs", "context", "default_components",
           "device_specs", "ev_spec", "get_model", "solve"]


def device_specs(cfg: HeliosConfig) -> tuple[LoadSpec, ...]:
    """The flexible devices of ``cfg`` (``water_heater:``, then ``loads:`` in file order)."""
    tz = cfg.site.timezone
    heater = () if cfg.water_heater is None else (heater_spec(cfg.water_heater, tz),)
    return heater + tuple(load_spec(x, tz) for x in cfg.loads)


def battery_specs(cfg: HeliosConfig) -> tuple[BatterySpec, ...]:
    """The further batteries of ``cfg.batteries`` (the home battery is ``battery:``)."""
    return tuple(BatterySpec(name=b.name, capacity_kwh=b.capacity_kwh,
                             max_charge_kw=b.max_charge_kw, max_discharge_kw=b.max_discharge_kw,
                             charge_efficiency=b.charge_efficiency,
                             discharge_efficiency=b.discharge_efficiency,
                             min_soc_pct=b.min_soc_pct, max_soc_pct=b.max_soc_pct,
                             reserve_soc_pct=b.reserve_soc_pct,
                             wear_eur_per_kwh=b.cycle_cost_eur_per_kwh, soc_pct=b.soc_pct)
                 for b in cfg.batteries)


def ev_spec(cfg: HeliosConfig) -> EvSpec | None:
    """The car of ``cfg.ev`` (None without one), its times read in ``site.timezone``."""
    ev = cfg.ev
    if ev is None:
        return None
    soc = ev.vehicle.get("soc_pct", 50.0) if isinstance(ev.vehicle, dict) else 50.0
    return EvSpec(capacity_kwh=ev.capacity_kwh, max_charge_kw=ev.max_charge_kw,
                  phases=ev.phases, min_charge_kw=ev.min_charge_kw,
                  charge_efficiency=ev.charge_efficiency, soc_pct=float(soc),
                  max_soc_pct=ev.max_soc_pct, target_soc_pct=ev.target_soc_pct,
                  departure=ev.departure, arrival=ev.arrival, trip_kwh=ev.trip_kwh,
                  shortfall_penalty_eur_per_kwh=ev.shortfall_penalty_eur_per_kwh,
                  tz=cfg.site.timezone)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes the problem's structure; one compiled problem per spec.

    The capacity and the power maxima are column bounds; per-slot limits below them
    (:class:`SlotLimits`: outages, live battery limits) and the SoC bounds are Parameters."""

    n: int
    dt_h: float
    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float
    discharge_efficiency: float
    max_import_kw: float
    max_export_kw: float  # 0 when export is disabled
    #: the battery starts above max_soc_pct: a variant with a soft upper bound (n extra rows),
    #: compiled only in that rare case so the usual problem stays row-free and fast
    start_above_max: bool = False
    #: the flexible devices (water heater, deferrable loads), each one more component
    devices: tuple[LoadSpec, ...] = ()
    #: the electric car (``ev:``), one more component; None without one
    ev: EvSpec | None = None
    #: further batteries (``batteries:``), one :class:`SpecBattery` each
    batteries: tuple[BatterySpec, ...] = ()
    #: manual overrides in this solve (``extra["overrides"]``): one more component, compiled
    #: only then, so a plan without overrides is the problem it always was
    overrides: bool = False

    @property
    def paddable(self) -> bool:
        """True when a shorter solve may run in this spec's model, padded (``pad_to`` of
        :func:`context`): only the house's own four components, whose padding slots are idle
        (devices read local-time windows, a start above max_soc_pct prices every slot's SoC)."""
        return (not self.start_above_max and not self.devices and self.ev is None
                and not self.batteries and not self.overrides)

    @classmethod
    def from_config(cls, cfg: HeliosConfig, n: int, slot_s: int,
                    soc_start_pct: float = 0.0) -> ModelSpec:
        """The spec for ``n`` slots of ``slot_s`` seconds at the configured site."""
        site = SiteSpec.from_config(cfg)
        return cls(
            start_above_max=soc_start_pct > site.max_kwh / site.capacity_kwh * 100 + 1e-9,
            n=n,
            dt_h=slot_s / 3600.0,
            capacity_kwh=site.capacity_kwh,
            max_charge_kw=site.max_charge_kw,
            max_discharge_kw=site.max_discharge_kw,
            charge_efficiency=site.charge_efficiency,
            discharge_efficiency=site.discharge_efficiency,
            max_import_kw=site.max_import_kw,
            max_export_kw=site.max_export_kw,
            devices=device_specs(cfg),
            ev=ev_spec(cfg),
            batteries=battery_specs(cfg),
        )


@dataclass(frozen=True)
class Solution:
    """Optimal flows per slot (arrays of length n, kW and kWh) and solve metadata."""

    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    pv_used_kw: np.ndarray
    unserved_kw: np.ndarray
    soc_kwh: np.ndarray  # at the end of each slot
    soc_start_kwh: float
    reserve_shortfall_kwh: np.ndarray
    overshoot_kwh: np.ndarray  # SoC above max_soc_pct (only after a start above it)
    final_shortfall_kwh: float
    energy_value_eur_per_kwh: np.ndarray  # marginal value of 1 kWh stored at slot end
    terminal_value_eur_per_kwh: float
    objective_eur: float
    energy_cost_eur: float  # grid bill: sum(buy*import - sell*export)*dt
    wear_cost_eur: float
    solver: str
    solve_s: float
    exact_milp: bool  # True when the LP split flows and the MILP re-solve was used
    #: the exact re-solve stopped at planning.milp_time_limit_s: exclusive, perhaps not optimal
    milp_stopped: bool = False
    #: the returned plan's objective minus the best known lower bound when stopped [EUR]
    milp_gap_eur: float = 0.0
    #: stopped without an incumbent: the LP re-solved with split slots fixed to one direction
    milp_fallback: bool = False
    #: every component's named outputs (``grid_import_kw``, ``heater_kw``, ...)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    #: the flexible devices' power per slot (+ = drawn from the bus), by device name [kW]
    device_kw: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_outcome(cls, o: Outcome, devices: Sequence[str] = ()) -> Solution:
        """The planner's fields from the standard components' outputs; ``devices``: the names
        of the flexible devices (their ``<name>_power_kw`` outputs)."""
        out = o.outputs
        return cls(
            grid_import_kw=out["grid_import_kw"],
            grid_export_kw=out["grid_export_kw"],
            battery_charge_kw=out["battery_charge_kw"],
            battery_discharge_kw=out["battery_discharge_kw"],
            pv_used_kw=out["pv_used_kw"],
            unserved_kw=out["load_unserved_kw"],
            soc_kwh=out["battery_soc_kwh"],
            soc_start_kwh=out["battery_soc_start_kwh"],
            reserve_shortfall_kwh=out["battery_reserve_shortfall_kwh"],
            overshoot_kwh=out["battery_overshoot_kwh"],
            final_shortfall_kwh=out["battery_final_shortfall_kwh"],
            energy_value_eur_per_kwh=out["battery_energy_value_eur_per_kwh"],
            terminal_value_eur_per_kwh=out["battery_terminal_value_eur_per_kwh"],
            objective_eur=o.objective_eur,
            energy_cost_eur=out["grid_energy_cost_eur"],
            wear_cost_eur=out["battery_wear_cost_eur"],
            solver=o.solver,
            solve_s=o.solve_s,
            exact_milp=o.exact_milp,
            milp_stopped=o.milp_stopped,
            milp_gap_eur=o.milp_gap_eur,
            milp_fallback=o.milp_fallback,
            outputs=out,
            device_kw={name: out[f"{name}_power_kw"] for name in devices},
        )


def default_components(spec: ModelSpec) -> list[Component]:
    """The house of a :class:`ModelSpec`: the fixed load, PV, one battery and the grid.

    The order fixes the column order HiGHS sees; the LP optimum does not depend on it, the
    exact MILP's branch-and-bound does: this order took the fewest nodes on the golden
    negative-price cases (DE-LU 15 min fixed feed-in 7 nodes, NL 137; grid first: 19, 166).
    """
    devices = [WaterHeater(d) if d.name == WATER_HEATER else DeferrableLoad(d)
               for d in spec.devices]
    if spec.ev is not None:
        devices.append(Ev(spec.ev))
    devices.extend(SpecBattery(b) for b in spec.batteries)
    battery = Battery(spec.capacity_kwh, spec.charge_efficiency, spec.discharge_efficiency,
                      spec.max_charge_kw, spec.max_discharge_kw, spec.start_above_max)
    out = [FixedLoad(), Pv(), battery, Grid(spec.max_import_kw, spec.max_export_kw), *devices]
    if spec.overrides:  # last: its set_inputs opens the devices' slots after theirs
        out.append(Overrides(battery, [d for d in devices if hasattr(d, "force_open")]))
    return out


@functools.lru_cache(maxsize=64)
def _hurdle(n: int, m: int, dt_h: float, hurdle_eur_per_kwh: float,
            hurdle_h: float) -> np.ndarray:
    """The grid hurdle per slot (``planning.grid_hurdle_eur_per_kwh``, falling linearly to 0
    over ``grid_hurdle_h`` of lead time), 0 from slot ``m`` on (padding); read-only (the same
    array serves every re-plan of one shape). [EUR/kWh]"""
    lead_h = np.arange(n) * dt_h
    out = hurdle_eur_per_kwh * np.clip(1.0 - lead_h / hurdle_h, 0.0, 1.0)
    out[m:] = 0.0
    out.flags.writeable = False
    return out


def context(inputs: Inputs, cfg: HeliosConfig, limits: SlotLimits | None = None,
            extra: Mapping[str, Any] | None = None, pad_to: int | None = None) -> Context:
    """What one solve knows: ``inputs``, the site of ``cfg`` and the per-slot ``limits``.

    The terminal value is taken from the buy prices of the slots with grid: a slot whose
    import limit is cut to 0 (an outage) has no price to value energy at.

    ``pad_to``: a longer model's slot count (a shorter solve in it, :attr:`Model.paddable`).
    The padding slots have no price, no PV, no load, no hurdle, no carbon and every flow
    limit 0, so the SoC holds its last value through them and they add nothing to the cost:
    the padded LP is the short one (same optimum; the terminal value is taken from the real
    slots) with idle slots appended; the battery lifts its reserve there
    (:attr:`Context.active_n`). ``index`` stays the solve's own slot starts (no component of
    a paddable model reads it; the direct backend takes "now" and the slot length from it).
    """
    site = SiteSpec.from_config(cfg)
    m, dt = inputs.n, inputs.dt_h
    n = m if pad_to is None else pad_to
    if n < m:
        raise ValueError(f"a solve of {m} slots does not fit a model of {n}")
    lim = (limits or SlotLimits()).resolve(m, site)
    pl = cfg.planning
    hurdle = _hurdle(n, m, dt, pl.grid_hurdle_eur_per_kwh, pl.grid_hurdle_h)
    buy = inputs.buy_eur_per_kwh
    if site.max_import_kw > 0 and (lim["import_kw"] == 0).any():
        value = site.terminal_value(buy[lim["import_kw"] > 0])
    else:
        value = site.terminal_value(buy)
    soc0 = min(max(float(inputs.soc_start_pct), 0.0), 100.0) / 100 * site.capacity_kwh
    co2 = getattr(inputs, "co2_g_per_kwh", None)
    sell, pv, load = inputs.sell_eur_per_kwh, inputs.pv_kw, inputs.load_kw
    if n > m:  # one block of rows, each the solve's values then zeros (one allocation)
        block = np.zeros((8, n))
        rows = (buy, sell, pv, load, *lim.values())
        for row, a in zip(block, rows, strict=True):
            row[:m] = a
        buy, sell, pv, load = block[:4]
        lim = dict(zip(lim, block[4:], strict=True))
        if co2 is not None:
            co2 = np.concatenate([np.asarray(co2, dtype=float), np.zeros(n - m)])
    if co2 is not None:  # the grid's carbon term (components/grid.py)
        extra = {**(extra or {}), "grid": {"co2_g_per_kwh": co2,
                                           "co2_eur_per_kg": pl.co2_eur_per_kg}}
    return Context(dt_h=dt, buy_eur_per_kwh=buy, sell_eur_per_kwh=sell, pv_kw=pv,
                   load_kw=load, soc_start_kwh=soc0, site=site, hurdle_eur_per_kwh=hurdle,
                   terminal_value_eur_per_kwh=value, extra=extra or {}, index=inputs.index,
                   active_n=None if n == m else m, **lim)


class Model:
    """The compiled problem for one :class:`ModelSpec`; call :meth:`solve` repeatedly.

    ``extra`` components join the standard house (their outputs land in
    :attr:`Solution.outputs`). ``problem`` is the :class:`Problem`; ``vars``, ``lp``,
    ``objective``, ``constraints`` and ``dynamics`` are views of it for callers that tie
    several models together (:mod:`planner.optimize.scenarios`).
    """

    def __init__(self, spec: ModelSpec, extra: Sequence[Component] = ()):
        self.spec = spec
        # the structure is the spec's alone without extra components: its compiled LP can be
        # kept on disk for the next process (planner.optimize._lpcache)
        self.problem = Problem(default_components(spec) + list(extra), spec.n, spec.dt_h,
                               cache_key=None if extra else f"Model:{spec!r}")
        grid, pv, load, battery = (self.problem[k] for k in ("grid", "pv", "load", "battery"))
        self.vars = {"imp": grid.imp.kw, "exp": grid.exp.kw, "ch": battery.ch.kw,
                     "dis": battery.dis.kw, "x": pv.used.x, "z": battery.z,
                     "short": battery.short, "unserved": load.unserved, "end": battery.end,
                     "final_short": battery.final_short}
        self.dynamics = battery.dynamics
        self.balance = self.problem.balance
        self.objective = self.problem.objective
        self.constraints = self.problem.constraints
        self.lp = self.problem.lp
        #: the flexible devices' names (their power per slot: :attr:`Solution.device_kw`)
        self.devices = tuple(c.name for c in self.problem.components
                             if getattr(c, "device", False))
        #: a shorter solve may run here, padded (:attr:`ModelSpec.paddable`; no extra
        #: component)
        self.paddable = not extra and spec.paddable

    def milp(self, grid_binaries: bool) -> Any:
        """The problem with the flow pairs made exclusive by binaries (compiled lazily).

        Charge/discharge always gets one binary per slot; import/export only when some slot
        sells dearer than it buys (``grid_binaries``) — otherwise import/export ties are
        netted exactly, and the MILP with half the binaries solves ≈ 30 % faster.
        """
        pairs = {p.name for p in self.problem.pairs if p.nettable is None}
        if grid_binaries:
            pairs |= {p.name for p in self.problem.pairs}
        return self.problem.milp(frozenset(pairs))

    def set_inputs(self, inputs: Inputs, cfg: HeliosConfig, limits: SlotLimits | None = None,
                   extra: Mapping[str, Any] | None = None) -> None:
        """Fill every component's Parameters from the inputs, the site and the limits."""
        self.problem.set_inputs(context(inputs, cfg, limits, extra))

    def solve(self, inputs: Inputs, cfg: HeliosConfig, limits: SlotLimits | None = None,
              extra: Mapping[str, Any] | None = None) -> Solution:
        """Solve for these inputs; exact (MILP) re-solve when the LP splits a flow pair.

        ``limits``: per-slot grid and battery limits; ``extra``: per-solve inputs of extra
        components, by component name (:attr:`Context.extra`).

        Raises
        ------
        InfeasibleError, UnboundedError, SolverFailedError
        """
        t0 = time.perf_counter()
        m, n = inputs.n, self.spec.n
        if m != n and (m > n or not self.paddable):
            raise ValueError(f"inputs of {m} slots for a model of {n}"
                             + ("" if m > n else " that cannot be padded"))
        ctx = context(inputs, cfg, limits, extra, None if m == n else n)
        outcome = self.problem.solve(ctx, solver_order(cfg.planning.solver), t0,
                                     cfg.planning.milp_time_limit_s,
                                     cfg.planning.solver_backend,
                                     cfg.planning.on_off_gap_eur)
        if m != n:  # the solve's own slots
            outcome.outputs.update({k: v[:m] for k, v in outcome.outputs.items()
                                    if isinstance(v, np.ndarray) and v.shape == (n,)})
        ev = next((c for c in self.problem.components if isinstance(c, Ev)), None)
        if ev is not None:  # the baselines charge the car at plug-in (plan/baselines.py)
            outcome.outputs[f"{ev.name}_earliest_kw"] = at_plugin_kw(ev)
            outcome.outputs[f"{ev.name}_sessions"] = [
                {**x, "ended": ended} for x, (_, ended)
                in zip(ev.sessions(), ev.availability.departures, strict=True)]
        return Solution.from_outcome(outcome, self.devices)


def at_plugin_kw(ev: Ev) -> np.ndarray:
    """The car charged the plain way, for the baselines and the session's comparison: at
    full power from each plug-in until the next departure's target (or "minimum SoC now")
    is reached, nothing after. [kW per slot]"""
    s, dt = ev.spec, ev.dt_h
    plugged = ev.availability.plugged
    eta_dt = s.charge_efficiency * dt
    departures = [ended for _, ended in ev.availability.departures]
    targets = list(ev._targets[1:1 + len(departures)])
    fallback = min(s.target_soc_pct, s.max_soc_pct) / 100 * s.capacity_kwh
    floor = float(ev._targets[0]) if float(ev.need.value[0]) > 0 else 0.0
    energy, out, k = ev._soc0, np.zeros(len(plugged)), 0
    for t in range(len(plugged)):
        while k < len(departures) and departures[k] <= t:
            energy -= s.trip_kwh  # the trip of departure k
            k += 1
        goal = max(targets[k] if k < len(targets) else fallback, floor)
        if plugged[t] > 0 and energy < goal - 1e-9:
            out[t] = min(s.max_charge_kw, (goal - energy) / eta_dt)
            energy += out[t] * eta_dt
    return out


_CACHE: dict[ModelSpec, Model] = {}


def get_model(spec: ModelSpec) -> Model:
    """The compiled model for ``spec`` (built on first use, then reused in this process)."""
    model = _CACHE.get(spec)
    if model is None:
        if len(_CACHE) > 16:
            _CACHE.clear()
        model = _CACHE[spec] = Model(spec)
    return model


def solve(inputs: Inputs, cfg: HeliosConfig, limits: SlotLimits | None = None,
          extra: Mapping[str, Any] | None = None) -> Solution:
    """Optimise the plan for ``inputs`` under ``cfg`` (compiled model reused across calls).

    ``limits``: per-slot grid and battery power limits (outages, live BMS limits); ``extra``:
    per-solve inputs of the devices by name (e.g. ``{"water_heater": 1.5}``, the kWh already
    delivered today)."""
    spec = ModelSpec.from_config(cfg, inputs.n, inputs.slot_s, inputs.soc_start_pct)
    if extra and extra.get(OVERRIDES):
        spec = dataclasses.replace(spec, overrides=True)
    return get_model(spec).solve(inputs, cfg, limits, extra)
