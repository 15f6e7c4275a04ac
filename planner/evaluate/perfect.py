r"""The perfect-foresight limit: one LP over the whole period with every actual value known.

Costs are compared as **net cost** = grid bill + battery wear − value of the energy added to
the battery over the period (valued at ``end_value_eur_per_kwh``, the planner's own terminal
value for the period's last horizon), so that emptying the battery at the end is no saving.
The perfect-foresight LP minimises exactly the same quantity plus the planner's penalties
(unserved load, reserve and final-SoC shortfall);
:func:`planner.evaluate.metrics.objective_eur` evaluates it for any trace, so "no strategy
beats the limit" is a plain comparison. The optimum is replayed through the same physics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.config import HeliosConfig
from planner.core.errors import InfeasibleError, SolverFailedError
from planner.evaluate.physics import TOL, Home, Series, Trace, simulate
from planner.evaluate.strategies import Replay


@dataclass(frozen=True)
class Terms:
    """The numbers that define cost comparisons for one period (same for every strategy)."""

    end_value_eur_per_kwh: float  # each kWh added to the battery over the period is worth this
    final_kwh: float  # soft final SoC target (0 and weight 0 when none)
    final_weight_eur_per_kwh: float
    reserve_kwh: float
    penalty_eur_per_kwh: float  # per kWh and slot below the reserve
    unserved_penalty_eur_per_kwh: float

    @classmethod
    def for_period(cls, cfg: HeliosConfig, series: Series, start: int, stop: int) -> Terms:
        """The planner's own terms for the period ``[start, stop)``.

        The terminal value is the planner's (η_d × the configured quantile of the buy
        prices) over the period's last planning horizon; 0 with a final SoC target.
        """
        b, pl = cfg.battery, cfg.planning
        cap = b.capacity_kwh
        horizon = max(1, int(round(pl.horizon_h * 3600 / series.slot_s)))
        reserve_pct = b.reserve_soc_pct if b.reserve_soc_pct is not None else b.min_soc_pct
        if b.final_soc_pct is not None:
            value, final, weight = 0.0, b.final_soc_pct / 100 * cap, pl.soft_penalty_eur_per_kwh
        else:
            tail = series.buy_eur_per_kwh[max(start, stop - horizon):stop]
            q = float(np.quantile(tail, pl.terminal_value_quantile))
            value, final, weight = max(0.0, b.discharge_efficiency * q), 0.0, 0.0
        return cls(value, final, weight, max(reserve_pct / 100 * cap, b.min_soc_pct / 100 * cap),
                   pl.soft_penalty_eur_per_kwh, pl.unserved_penalty_eur_per_kwh)


def perfect_foresight(home: Home, series: Series, start: int, stop: int, soc_start_kwh: float,
                      terms: Terms) -> tuple[Trace, float]:
    """The optimum over the whole period with every actual value known: one LP.

    Same formulation as the planner (balance, SoC recursion, power and SoC bounds, soft
    reserve/final targets, unserved load) with per-slot grid limits (0 in outages), built
    with sparse matrices and solved by HiGHS. Where the LP would charge and discharge (or
    import and export) in the same slot — only ever worth it where buying pays (buy < 0) or
    selling beats buying — those slots get binaries (a MILP), so the optimum is physical.

    Returns the optimum replayed through :func:`step` (a :class:`Trace` named
    ``perfect_foresight``) and its objective value (see :func:`objective_eur`). [EUR]
    """
    import scipy.sparse as sp  # late: only the backtest needs scipy.optimize
    from scipy.optimize import Bounds, LinearConstraint, milp

    n, dt = stop - start, home.dt_h
    w = slice(start, stop)
    buy, sell = series.buy_eur_per_kwh[w], series.sell_eur_per_kwh[w]
    pv, load, ok = series.pv_kw[w], series.load_kw[w], series.grid_ok[w]
    eta_c, eta_d = home.charge_efficiency, home.discharge_efficiency
    lo = min(home.min_kwh, soc_start_kwh)
    hi = max(home.max_kwh, soc_start_kwh)
    # columns: imp exp ch dis pv u soc r (n each), then f
    nv = 8 * n + 1
    col = {name: k * n for k, name in enumerate(("imp", "exp", "ch", "dis", "pv", "u", "soc",
                                                  "r"))}
    rows, cols, vals = [], [], []

    def put(r0: int, block: str, coef, offset: int = 0, length: int = n) -> None:
        idx = np.arange(length)
        rows.append(r0 + idx + offset)
        cols.append(col[block] + idx)
        vals.append(np.broadcast_to(np.asarray(coef, dtype=float), (length,)))

    # balance rows 0..n-1: pv + imp + dis + u - ch - exp = load
    for block, coef in (("pv", 1), ("imp", 1), ("dis", 1), ("u", 1), ("ch", -1), ("exp", -1)):
        put(0, block, coef)
    # dynamics rows n..2n-1: soc_t - soc_{t-1} - eta_c dt ch + dt/eta_d dis = [soc0, 0, ...]
    put(n, "soc", 1.0)
    if n > 1:
        rows.append(n + 1 + np.arange(n - 1))
        cols.append(col["soc"] + np.arange(n - 1))
        vals.append(np.full(n - 1, -1.0))
    put(n, "ch", -eta_c * dt)
    put(n, "dis", dt / eta_d)
    # reserve rows 2n..3n-1: soc + r >= reserve; final row 3n: soc_{n-1} + f >= final
    put(2 * n, "soc", 1.0)
    put(2 * n, "r", 1.0)
    rows += [np.array([3 * n, 3 * n])]
    cols += [np.array([col["soc"] + n - 1, nv - 1])]
    vals += [np.array([1.0, 1.0])]
    a = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(3 * n + 1, nv))
    lower = np.concatenate([load, np.r_[soc_start_kwh, np.zeros(n - 1)],
                            np.full(n, terms.reserve_kwh), [terms.final_kwh]])
    upper = np.concatenate([load, np.r_[soc_start_kwh, np.zeros(n - 1)],
                            np.full(n + 1, np.inf)])
    cost = np.zeros(nv)
    cost[col["imp"]:col["imp"] + n] = dt * buy
    cost[col["exp"]:col["exp"] + n] = -dt * sell
    cost[col["ch"]:col["dis"] + n] = dt * home.wear_eur_per_kwh
    cost[col["u"]:col["u"] + n] = dt * terms.unserved_penalty_eur_per_kwh
    cost[col["r"]:col["r"] + n] = dt * terms.penalty_eur_per_kwh
    cost[nv - 1] = terms.final_weight_eur_per_kwh
    cost[col["soc"] + n - 1] -= terms.end_value_eur_per_kwh
    exp_max = np.where(ok & (sell >= 0), home.max_export_kw, 0.0)
    imp_max = np.where(ok, home.max_import_kw, 0.0)
    lb = np.zeros(nv)
    ub = np.full(nv, np.inf)
    ub[col["imp"]:col["imp"] + n] = imp_max
    ub[col["exp"]:col["exp"] + n] = exp_max
    ub[col["ch"]:col["ch"] + n] = home.max_charge_kw
    ub[col["dis"]:col["dis"] + n] = home.max_discharge_kw
    ub[col["pv"]:col["pv"] + n] = pv
    lb[col["soc"]:col["soc"] + n] = lo
    ub[col["soc"]:col["soc"] + n] = hi

    def run(binaries: np.ndarray | None) -> np.ndarray:
        if binaries is None or not binaries.any():
            res = milp(cost, constraints=LinearConstraint(a, lower, upper),
                       bounds=Bounds(lb, ub))
        else:
            # exclusive pairs in the flagged slots: ch <= C b, dis <= D (1 - b),
            # imp <= I g, exp <= E (1 - g); binaries appended after the continuous columns
            k = np.flatnonzero(binaries)
            m = len(k)
            ext = sp.hstack([a, sp.csr_matrix((a.shape[0], 2 * m))]).tocsr()
            r_idx = np.arange(m)
            pairs = [("ch", home.max_charge_kw, 0, -1.0), ("dis", home.max_discharge_kw, 0, 1.0),
                     ("imp", imp_max[k], m, -1.0), ("exp", exp_max[k], m, 1.0)]
            blocks, up = [], []
            for block, big, boff, sign in pairs:
                big = np.broadcast_to(np.asarray(big, dtype=float), (m,))
                rr = np.concatenate([r_idx, r_idx])
                cc = np.concatenate([col[block] + k, nv + boff + r_idx])
                vv = np.concatenate([np.ones(m), sign * big])
                blocks.append(sp.csr_matrix((vv, (rr, cc)), shape=(m, nv + 2 * m)))
                up.append(np.zeros(m) if sign < 0 else big.copy())
            big_a = sp.vstack([ext] + blocks).tocsr()
            cons = LinearConstraint(big_a, np.concatenate([lower, np.full(4 * m, -np.inf)]),
                                    np.concatenate([upper] + up))
            integrality = np.concatenate([np.zeros(nv), np.ones(2 * m)])
            res = milp(np.concatenate([cost, np.zeros(2 * m)]), constraints=cons,
                       bounds=Bounds(np.concatenate([lb, np.zeros(2 * m)]),
                                     np.concatenate([ub, np.ones(2 * m)])),
                       integrality=integrality,
                       options={"mip_rel_gap": 1e-9})
        if res.status != 0 or res.x is None:
            if res.status == 2:
                raise InfeasibleError(f"perfect-foresight problem infeasible: {res.message}")
            raise SolverFailedError(f"perfect-foresight problem: {res.message}")
        return res.x[:nv]

    x = run(None)
    ch, dis = x[col["ch"]:col["ch"] + n], x[col["dis"]:col["dis"] + n]
    imp, exp = x[col["imp"]:col["imp"] + n], x[col["exp"]:col["exp"] + n]
    split = (np.minimum(ch, dis) > TOL) | ((np.minimum(imp, exp) > TOL) & (sell > buy))
    exact = "LP"
    if split.any():
        x = run(split | (buy < 0) | (sell > buy))
        exact = "MILP"
    ch, dis = x[col["ch"]:col["ch"] + n], x[col["dis"]:col["dis"] + n]
    pv_used = x[col["pv"]:col["pv"] + n]
    cap = np.where(pv_used < pv - TOL, pv_used, np.inf)
    replay = Replay("perfect_foresight", start, np.clip(ch, 0, None), np.clip(dis, 0, None), cap)
    trace = simulate(home, series, start, stop, soc_start_kwh, replay)
    optimum = float(cost @ x)
    trace.info.update({"problem": exact, "lp_objective_eur": round(optimum, 6)})
    return trace, optimum
