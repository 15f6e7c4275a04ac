r"""An independent reference formulation of the planner's optimisation (scipy + HiGHS).

Built from explicit sparse matrices, with the state of charge as a plain variable (no change
of variables, no cvxpy), straight from the model statement in DESIGN.md /
``planner/optimize/model.py`` docstring.
It exists only to check :mod:`planner.optimize.model`: the tests
compare optima, never reuse code from the planner.

Variables, per slot ``t`` (blocks of ``n``, in this order), then one scalar:

=========  ======================  ===========================================
block      bounds                  meaning
=========  ======================  ===========================================
imp        [0, Imax]               grid import [kW]
exp        [0, Emax or 0]          grid export [kW] (0 when export disabled)
ch         [0, Cmax]               battery charge, AC side [kW]
dis        [0, Dmax]               battery discharge, AC side [kW]
pv         [0, pv_t]               PV used (the rest is curtailed) [kW]
u          [0, inf)                unserved load [kW]
soc        [lo, hi]                state of charge at the end of slot t [kWh]
r          [0, inf)                reserve shortfall at the end of slot t [kWh]
o          [0, inf)                SoC above max_soc at the end of slot t [kWh]
f          [0, inf)                final-SoC shortfall (scalar) [kWh]
=========  ======================  ===========================================

with ``lo = min(min_soc, soc0)``, ``hi = max(max_soc, soc0)`` (a start outside [min, max]
widens the hard bounds just enough to stay feasible). Rows::

    pv + imp + dis + u - ch - exp             = load                      (balance)
    soc_t - soc_{t-1} - eta_c dt ch + dt/eta_d dis = 0, soc_{-1} = soc0   (dynamics)
    -soc_t - r_t                              <= -reserve                  (reserve)
    soc_t - o_t                               <= max_soc                   (soft max)
    -soc_{n-1} - f                            <= -final                    (final SoC)

Objective::

    sum dt (buy imp - sell exp) + dt wear sum (ch + dis) + dt P sum (r + o) + dt U sum u
        + w_f f - v soc_{n-1}

where ``v = max(0, eta_d * quantile(buy, q))`` and ``w_f = 0`` without a final SoC target,
``v = 0`` and ``w_f = P`` with one. The *exclusive* version adds binaries ``b_t`` (charging)
and ``g_t`` (importing): ``ch <= Cmax b``, ``dis <= Dmax (1 - b)``, ``imp <= Imax g``,
``exp <= Emax (1 - g)`` and is solved with :func:`scipy.optimize.milp`; its optimum is the
ground truth for the planner, whose plans never charge and discharge (or import and export)
in the same slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

#: block names of the per-slot variables, in column order
BLOCKS = ("imp", "exp", "ch", "dis", "pv", "u", "soc", "r", "o")


@dataclass(frozen=True)
class Params:
    """The numbers of one problem, derived from the config and the inputs (no planner code)."""

    n: int
    dt: float
    buy: np.ndarray
    sell: np.ndarray
    pv: np.ndarray
    load: np.ndarray
    soc0: float
    lo: float
    hi: float
    max_kwh: float
    reserve: float
    final: float
    final_weight: float
    end_value: float
    wear: float
    penalty: float
    unserved_penalty: float
    eta_c: float
    eta_d: float
    imax: float
    emax: float
    cmax: float
    dmax: float
    hurdle: np.ndarray  # per-slot extra cost of import, export and curtailment [EUR/kWh]


@dataclass(frozen=True)
class RefResult:
    """Optimum of the reference problem: objective and flows (arrays of length n)."""

    objective_eur: float
    imp: np.ndarray
    exp: np.ndarray
    ch: np.ndarray
    dis: np.ndarray
    pv_used: np.ndarray
    unserved: np.ndarray
    soc: np.ndarray
    reserve_shortfall: np.ndarray
    final_shortfall: float
    exclusive: bool
    overshoot: np.ndarray | None = None

    def splits(self, tol: float = 1e-6) -> bool:
        """Whether this solution charges and discharges, or imports and exports, at once."""
        return bool((np.minimum(self.ch, self.dis) > tol).any()
                    or (np.minimum(self.imp, self.exp) > tol).any())


def params(buy, sell, pv, load, soc_start_pct: float, cfg, slot_s: int) -> Params:
    """Derive the problem's numbers from arrays and a ``HeliosConfig``."""
    b, g, pl = cfg.battery, cfg.grid, cfg.planning
    buy = np.asarray(buy, dtype=float)
    cap = b.capacity_kwh
    min_kwh = b.min_soc_pct / 100.0 * cap
    max_kwh = b.max_soc_pct / 100.0 * cap
    soc0 = min(max(float(soc_start_pct), 0.0), 100.0) / 100.0 * cap
    reserve_pct = b.min_soc_pct if b.reserve_soc_pct is None else b.reserve_soc_pct
    if b.final_soc_pct is None:
        end_value = max(0.0, b.discharge_efficiency
                        * float(np.quantile(buy, pl.terminal_value_quantile)))
        final, final_weight = 0.0, 0.0
    else:
        end_value = 0.0
        final, final_weight = b.final_soc_pct / 100.0 * cap, pl.soft_penalty_eur_per_kwh
    if b.cycle_cost_eur_per_kwh is not None:
        wear = b.cycle_cost_eur_per_kwh
    elif b.cost_eur is not None and b.cycle_life:
        wear = b.cost_eur / (2.0 * b.cycle_life * cap)
    else:
        wear = 0.0
    return Params(
        n=len(buy), dt=slot_s / 3600.0, buy=buy, sell=np.asarray(sell, dtype=float),
        pv=np.asarray(pv, dtype=float), load=np.asarray(load, dtype=float), soc0=soc0,
        lo=min(min_kwh, soc0), hi=max(max_kwh, soc0), max_kwh=max_kwh,
        reserve=max(reserve_pct / 100.0 * cap, min_kwh), final=final,
        final_weight=final_weight, end_value=end_value, wear=wear,
        penalty=pl.soft_penalty_eur_per_kwh, unserved_penalty=pl.unserved_penalty_eur_per_kwh,
        eta_c=b.charge_efficiency, eta_d=b.discharge_efficiency,
        imax=g.max_import_kw, emax=g.max_export_kw if g.export_enabled else 0.0,
        cmax=b.max_charge_kw, dmax=b.max_discharge_kw,
        # planning.grid_hurdle_*: linear from the full value at lead 0 to 0 at grid_hurdle_h
        hurdle=np.array([pl.grid_hurdle_eur_per_kwh * max(0.0, 1.0 - t * slot_s / 3600.0
                                                          / pl.grid_hurdle_h)
                         for t in range(len(buy))]),
    )


def _col(block: str, n: int) -> int:
    return BLOCKS.index(block) * n


def _matrices(p: Params):
    """Cost vector, bounds and constraint rows of the LP (columns: 8 blocks of n, then f)."""
    n, dt = p.n, p.dt
    nv = len(BLOCKS) * n + 1
    f_col = nv - 1
    eye = sp.identity(n, format="csr")
    zero = sp.csr_matrix((n, n))

    def row(**blocks):
        return sp.hstack([blocks.get(name, zero) for name in BLOCKS]
                         + [sp.csr_matrix((n, 1))], format="csr")

    # balance: pv + imp + dis + u - ch - exp = load
    a_bal = row(imp=eye, exp=-eye, ch=-eye, dis=eye, pv=eye, u=eye)
    # dynamics: soc_t - soc_{t-1} - eta_c dt ch_t + dt/eta_d dis_t = (soc0 if t == 0 else 0)
    shift = sp.eye(n, k=-1, format="csr")
    a_dyn = row(soc=eye - shift, ch=-p.eta_c * dt * eye, dis=(dt / p.eta_d) * eye)
    b_dyn = np.zeros(n)
    b_dyn[0] = p.soc0
    # reserve: -soc_t - r_t <= -reserve
    a_res = row(soc=-eye, r=-eye)
    # soft max (binds only after a start above max_soc): soc_t - o_t <= max_kwh
    a_max = row(soc=eye, o=-eye)
    # final: -soc_{n-1} - f <= -final
    a_fin = sp.lil_matrix((1, nv))
    a_fin[0, _col("soc", n) + n - 1] = -1.0
    a_fin[0, f_col] = -1.0

    c = np.zeros(nv)
    # curtailment (pv_t - pv_used_t) costs the hurdle: + hurdle·pv (a constant) − hurdle·pv_used
    c[_col("imp", n):_col("imp", n) + n] = dt * (p.buy + p.hurdle)
    c[_col("exp", n):_col("exp", n) + n] = -dt * (p.sell - p.hurdle)
    c[_col("pv", n):_col("pv", n) + n] = -dt * p.hurdle
    c[_col("ch", n):_col("ch", n) + n] = dt * p.wear
    c[_col("dis", n):_col("dis", n) + n] = dt * p.wear
    c[_col("u", n):_col("u", n) + n] = dt * p.unserved_penalty
    c[_col("r", n):_col("r", n) + n] = dt * p.penalty
    c[_col("o", n):_col("o", n) + n] = dt * p.penalty
    c[_col("soc", n) + n - 1] = -p.end_value
    c[f_col] = p.final_weight

    inf = np.inf
    lower = np.concatenate([np.zeros(6 * n), np.full(n, p.lo), np.zeros(2 * n), [0.0]])
    upper = np.concatenate([np.full(n, p.imax), np.full(n, p.emax), np.full(n, p.cmax),
                            np.full(n, p.dmax), p.pv, np.full(n, inf), np.full(n, p.hi),
                            np.full(n, inf), np.full(n, inf), [inf]])
    a_eq = sp.vstack([a_bal, a_dyn], format="csr")
    b_eq = np.concatenate([p.load, b_dyn])
    a_ub = sp.vstack([a_res, a_max, a_fin.tocsr()], format="csr")
    b_ub = np.concatenate([np.full(n, -p.reserve), np.full(n, p.max_kwh), [-p.final]])
    return c, lower, upper, a_eq, b_eq, a_ub, b_ub


def _result(p: Params, x: np.ndarray, objective: float, exclusive: bool) -> RefResult:
    n = p.n

    def block(name: str) -> np.ndarray:
        return np.asarray(x[_col(name, n):_col(name, n) + n], dtype=float)

    return RefResult(objective_eur=float(objective), imp=block("imp"), exp=block("exp"),
                     ch=block("ch"), dis=block("dis"), pv_used=block("pv"),
                     unserved=block("u"), soc=block("soc"), reserve_shortfall=block("r"),
                     overshoot=block("o"),
                     final_shortfall=float(x[len(BLOCKS) * n]), exclusive=exclusive)


def solve_params(p: Params, exclusive: bool = True) -> RefResult:
    """Solve the LP (``exclusive=False``) or the exclusive MILP (default)."""
    c, lower, upper, a_eq, b_eq, a_ub, b_ub = _matrices(p)
    n = p.n
    if not exclusive:
        const = dt_const(p)
        res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
                      bounds=np.column_stack([lower, upper]), method="highs",
                      options={"primal_feasibility_tolerance": 1e-9,
                               "dual_feasibility_tolerance": 1e-9})
        if res.status != 0:
            raise RuntimeError(f"reference LP failed: {res.message}")
        return _result(p, res.x, res.fun + const, False)
    nv = len(c)
    # extra columns: b (charging) then g (importing), binary
    c_all = np.concatenate([c, np.zeros(2 * n)])
    eye = sp.identity(n, format="csr")

    def pick(block: str) -> sp.csr_matrix:
        m = sp.lil_matrix((n, nv))
        start = _col(block, n)
        for t in range(n):
            m[t, start + t] = 1.0
        return m.tocsr()

    zeros = sp.csr_matrix((n, n))
    a_excl = sp.vstack([
        sp.hstack([pick("ch"), -p.cmax * eye, zeros]),       # ch - Cmax b <= 0
        sp.hstack([pick("dis"), p.dmax * eye, zeros]),       # dis + Dmax b <= Dmax
        sp.hstack([pick("imp"), zeros, -p.imax * eye]),      # imp - Imax g <= 0
        sp.hstack([pick("exp"), zeros, p.emax * eye]),       # exp + Emax g <= Emax
    ], format="csr")
    ub_excl = np.concatenate([np.zeros(n), np.full(n, p.dmax), np.zeros(n), np.full(n, p.emax)])
    pad = sp.csr_matrix((a_eq.shape[0], 2 * n))
    pad_ub = sp.csr_matrix((a_ub.shape[0], 2 * n))
    constraints = [
        LinearConstraint(sp.hstack([a_eq, pad], format="csr"), b_eq, b_eq),
        LinearConstraint(sp.hstack([a_ub, pad_ub], format="csr"), -np.inf, b_ub),
        LinearConstraint(a_excl, -np.inf, ub_excl),
    ]
    integrality = np.concatenate([np.zeros(nv), np.ones(2 * n)])
    bounds = Bounds(np.concatenate([lower, np.zeros(2 * n)]),
                    np.concatenate([upper, np.ones(2 * n)]))
    res = milp(c_all, constraints=constraints, integrality=integrality, bounds=bounds,
               options={"mip_rel_gap": 1e-9, "time_limit": 120})
    if res.status != 0:
        raise RuntimeError(f"reference MILP failed: {res.message}")
    return _result(p, res.x[:nv], res.fun + dt_const(p), True)


def dt_const(p: Params) -> float:
    """The objective's constant: the hurdle on all available PV (curtailment = pv − used)."""
    return float(p.dt * p.hurdle @ p.pv)


def solve_reference(buy, sell, pv, load, soc_start_pct: float, cfg, slot_s: int,
                    exclusive: bool = True) -> RefResult:
    """Optimum for these arrays under ``cfg`` (a ``HeliosConfig``)."""
    return solve_params(params(buy, sell, pv, load, soc_start_pct, cfg, slot_s), exclusive)


def solve_inputs(inputs, cfg, exclusive: bool = True) -> RefResult:
    """Optimum for a planner ``Inputs`` object (only its arrays are read)."""
    return solve_reference(inputs.buy_eur_per_kwh, inputs.sell_eur_per_kwh, inputs.pv_kw,
                           inputs.load_kw, inputs.soc_start_pct, cfg, inputs.slot_s, exclusive)


def objective_of(p: Params, imp, exp, ch, dis, unserved, soc, reserve_shortfall,
                 final_shortfall: float, overshoot=None, pv_used=None) -> float:
    """The objective of given flows (to check that a reported objective matches its plan)."""
    dt = p.dt
    pv_used = p.pv if pv_used is None else pv_used
    return float(dt * (p.buy @ imp - p.sell @ exp) + dt * p.wear * np.sum(ch + dis)
                 + dt * p.penalty * np.sum(reserve_shortfall)
                 + dt * p.penalty * (0.0 if overshoot is None else np.sum(overshoot))
                 + dt * p.unserved_penalty * np.sum(unserved)
                 + p.final_weight * final_shortfall - p.end_value * soc[-1]
                 + dt * p.hurdle @ (imp + exp + p.pv - pv_used))


# --------------------------------------------------------------------------------------------
# checking a planner solution against the reference (shared by the tests and bench/golden.py)


@dataclass(frozen=True)
class Comparison:
    """How a planner solution compares with the reference optima."""

    helios_eur: float
    milp_eur: float  # exclusive optimum: the ground truth
    lp_eur: float  # plain LP optimum (<= milp_eur; lower only when every LP optimum splits)
    own_flows_eur: float  # objective recomputed from the planner's returned flows
    max_balance_kw: float  # largest per-slot energy-balance residual of the planner's flows
    max_split_kw: float  # largest min(ch, dis) or min(imp, exp) in the planner's flows
    exact_milp: bool

    @property
    def delta_eur(self) -> float:
        """Planner minus reference (exclusive) optimum. [EUR]"""
        return self.helios_eur - self.milp_eur

    @property
    def lp_splits(self) -> bool:
        """The plain LP cannot reach the exclusive optimum without splitting a flow pair."""
        return self.lp_eur < self.milp_eur - 1e-6


def tolerance(objective_eur: float) -> float:
    """Allowed |planner - reference| for an optimum of this size. [EUR]"""
    return max(1e-4, 1e-7 * abs(objective_eur))


def compare(inputs, cfg, sol) -> Comparison:
    """Solve the reference LP and MILP for ``inputs`` and measure ``sol`` (a planner Solution)."""
    p = params(inputs.buy_eur_per_kwh, inputs.sell_eur_per_kwh, inputs.pv_kw, inputs.load_kw,
               inputs.soc_start_pct, cfg, inputs.slot_s)
    exact = solve_params(p, exclusive=True)
    relaxed = solve_params(p, exclusive=False)
    supply = sol.pv_used_kw + sol.grid_import_kw + sol.battery_discharge_kw + sol.unserved_kw
    demand = p.load + sol.battery_charge_kw + sol.grid_export_kw
    split = np.maximum(np.minimum(sol.battery_charge_kw, sol.battery_discharge_kw),
                       np.minimum(sol.grid_import_kw, sol.grid_export_kw))
    own = objective_of(p, sol.grid_import_kw, sol.grid_export_kw, sol.battery_charge_kw,
                       sol.battery_discharge_kw, sol.unserved_kw, sol.soc_kwh,
                       sol.reserve_shortfall_kwh, sol.final_shortfall_kwh, sol.overshoot_kwh,
                       sol.pv_used_kw)
    return Comparison(helios_eur=float(sol.objective_eur), milp_eur=exact.objective_eur,
                      lp_eur=relaxed.objective_eur, own_flows_eur=own,
                      max_balance_kw=float(np.max(np.abs(supply - demand))),
                      max_split_kw=float(np.max(split)), exact_milp=bool(sol.exact_milp))
