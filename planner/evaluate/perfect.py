r"""The perfect-foresight limit: one LP over the whole period with every actual value known.

Costs are compared as **net cost** = grid bill + battery wear − value of the energy added to
the battery over the period (valued at ``end_value_eur_per_kwh``, the planner's own terminal
value for the period's last horizon), so that emptying the battery at the end is no saving.
The perfect-foresight LP minimises exactly the same quantity plus the planner's penalties
(unserved load, reserve and final-SoC shortfall);
:func:`planner.evaluate.metrics.objective_eur` evaluates it for any trace, so "no strategy
beats the limit" is a plain comparison. The optimum is replayed through the same physics.

The problem is the planner's own: the components of :mod:`planner.optimize.model` assembled
by :class:`planner.optimize.problem.Problem`, over the whole period, with the period's terms
(no grid hurdle: every value is known). A year at 15 min (35,000 slots) is one LP solved
once, so it is compiled one-shot (Parameters as constants, ≈0.3 s); shorter problems that
recur (the minute-level windows of :mod:`planner.evaluate.minute`, 2,160 slots each) keep
their compiled DPP form from their second solve on and only refill the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.config import HeliosConfig
from planner.core.site import SiteSpec
from planner.evaluate.physics import TOL, Home, Series, Trace, simulate
from planner.evaluate.strategies import Replay
from planner.optimize.components import Context
from planner.optimize.model import ModelSpec, default_components
from planner.optimize.problem import Problem

#: a problem size met a second time is kept compiled (DPP) for re-use, up to this many slots:
#: compiling the DPP form grows ≈ n² (0.28 s at 2,160 slots, 2 s at 5,000, 50 s at 35,000)
#: while a one-shot compile stays ≈ 0.04 s, so only sizes that recur pay for it
REUSE_MAX_SLOTS = 5000
#: ... and this many of them are kept
REUSE_KEEP = 4
_COMPILED: dict[ModelSpec, Problem] = {}
_SEEN: set[ModelSpec] = set()
#: HiGHS as bundled with SciPy: ≈20× faster than highspy 1.16 on year-long LPs
#: (:data:`planner.optimize.problem.SOLVERS`)
PF_SOLVER = "scipy"


@dataclass(frozen=True)
class Terms:
    """The numbers that define cost comparisons for one period (same for every strategy)."""

    end_value_eur_per_kwh: float  # each kWh added to the battery over the period is worth this
    final_kwh: float  # soft final SoC target (0 and weight 0 when none)
    final_weight_eur_per_kwh: float
    reserve_kwh: float
    penalty_eur_per_kwh: float  # per kWh below the reserve per hour (slot-hour weighted)
    unserved_penalty_eur_per_kwh: float

    @classmethod
    def for_period(cls, cfg: HeliosConfig, series: Series, start: int, stop: int) -> Terms:
        """The planner's own terms for the period ``[start, stop)``.

        The terminal value is the planner's (η_d × the configured quantile of the buy
        prices) over the period's last planning horizon; 0 with a final SoC target.
        """
        site = SiteSpec.from_config(cfg)
        horizon = max(1, int(round(cfg.planning.horizon_h * 3600 / series.slot_s)))
        if site.final_kwh is not None:
            value, final, weight = 0.0, site.final_kwh, site.soft_penalty_eur_per_kwh
        else:
            tail = series.buy_eur_per_kwh[max(start, stop - horizon):stop]
            value, final, weight = site.stored_energy_value(tail), 0.0, 0.0
        return cls(value, final, weight, site.reserve_kwh, site.soft_penalty_eur_per_kwh,
                   site.unserved_penalty_eur_per_kwh)

    def site(self, home: Home) -> SiteSpec:
        """The :class:`SiteSpec` the optimum is computed for: ``home``'s physics, these terms.

        Raises
        ------
        ValueError
            A final-SoC weight other than the reserve penalty (the model prices both alike).
        """
        final = self.final_kwh if self.final_weight_eur_per_kwh > 0 else None
        if final is not None and self.final_weight_eur_per_kwh != self.penalty_eur_per_kwh:
            raise ValueError("terms: final_weight_eur_per_kwh must equal penalty_eur_per_kwh")
        return SiteSpec(
            slot_s=home.slot_s, capacity_kwh=home.capacity_kwh, min_kwh=home.min_kwh,
            max_kwh=home.max_kwh, reserve_kwh=self.reserve_kwh, final_kwh=final,
            max_charge_kw=home.max_charge_kw, max_discharge_kw=home.max_discharge_kw,
            charge_efficiency=home.charge_efficiency,
            discharge_efficiency=home.discharge_efficiency,
            wear_eur_per_kwh=home.wear_eur_per_kwh, max_import_kw=home.max_import_kw,
            max_export_kw=home.max_export_kw,
            terminal_value_quantile=0.5,  # unused: the terminal value is given
            soft_penalty_eur_per_kwh=self.penalty_eur_per_kwh,
            unserved_penalty_eur_per_kwh=self.unserved_penalty_eur_per_kwh)


def perfect_foresight(home: Home, series: Series, start: int, stop: int, soc_start_kwh: float,
                      terms: Terms) -> tuple[Trace, float]:
    """The optimum over the whole period with every actual value known: one LP.

    The planner's component model (balance, SoC recursion, power and SoC bounds, soft
    reserve/final targets, unserved load) over ``[start, stop)``, with per-slot grid limits:
    0 in outages, no export where selling costs (the physics never exports at a negative sell
    price). Where the LP would charge and discharge (or import and export) in the same slot —
    only ever worth it where buying pays (buy < 0) or selling beats buying — those slots get
    binaries (a MILP), so the optimum is physical.

    Returns the optimum replayed through :func:`step` (a :class:`Trace` named
    ``perfect_foresight``) and its objective value (see :func:`objective_eur`). [EUR]

    Raises
    ------
    InfeasibleError, SolverFailedError
    """
    n, dt = stop - start, home.dt_h
    w = slice(start, stop)
    buy, sell = series.buy_eur_per_kwh[w], series.sell_eur_per_kwh[w]
    pv, load, ok = series.pv_kw[w], series.load_kw[w], series.grid_ok[w]
    site = terms.site(home)
    spec = ModelSpec(n=n, dt_h=dt, capacity_kwh=home.capacity_kwh,
                     max_charge_kw=home.max_charge_kw, max_discharge_kw=home.max_discharge_kw,
                     charge_efficiency=home.charge_efficiency,
                     discharge_efficiency=home.discharge_efficiency,
                     max_import_kw=home.max_import_kw, max_export_kw=home.max_export_kw)
    problem = _COMPILED.get(spec)
    one_shot = problem is None and (n > REUSE_MAX_SLOTS or spec not in _SEEN)
    if problem is None:
        problem = Problem(default_components(spec), n, dt)
        if one_shot:
            _SEEN.add(spec)
        else:
            if len(_COMPILED) >= REUSE_KEEP:
                _COMPILED.clear()
            _COMPILED[spec] = problem
    ctx = Context(dt_h=dt, buy_eur_per_kwh=buy, sell_eur_per_kwh=sell, pv_kw=pv, load_kw=load,
                  soc_start_kwh=soc_start_kwh, site=site,
                  import_kw=np.where(ok, home.max_import_kw, 0.0),
                  export_kw=np.where(ok & (sell >= 0), home.max_export_kw, 0.0),
                  charge_kw=np.full(n, home.max_charge_kw),
                  discharge_kw=np.full(n, home.max_discharge_kw),
                  hurdle_eur_per_kwh=np.zeros(n),
                  terminal_value_eur_per_kwh=terms.end_value_eur_per_kwh)
    problem.set_inputs(ctx)
    problem.run(problem.lp, [PF_SOLVER], mip=False, one_shot=one_shot)
    optimum = float(problem.lp.value)
    exact = "LP"
    split = problem.read()  # import/export netted where sell <= buy
    if split.any():
        milp = problem.milp_at(split | (buy < 0) | (sell > buy))
        problem.run(milp, [PF_SOLVER], mip=True, options={"mip_rel_gap": 1e-9}, one_shot=True)
        optimum = float(milp.value)
        problem.read()
        exact = "MILP"
    battery, pv_used = problem["battery"], problem["pv"].used.value
    cap = np.where(pv_used < pv - TOL, pv_used, np.inf)
    replay = Replay("perfect_foresight", start, battery.ch.value, battery.dis.value, cap)
    trace = simulate(home, series, start, stop, soc_start_kwh, replay)
    trace.info.update({"problem": exact, "lp_objective_eur": round(optimum, 6)})
    return trace, optimum
