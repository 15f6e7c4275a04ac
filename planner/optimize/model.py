r"""The optimisation: a linear program over the horizon, compiled once, re-solved fast.

Per slot :math:`t` (length :math:`\Delta t` h) the decision variables are grid import/export,
battery charge/discharge (AC side), used PV (curtailment allowed) and the state of charge.

.. math::

    \min \sum_t \Delta t\,(b_t\,imp_t - s_t\,exp_t) + \Delta t\,w\,(ch_t + dis_t)
         + \Delta t\,P\,r_t + \Delta t\,U\,u_t + P_f\,f - v\,e_T

    pv^{used}_t + imp_t + dis_t + u_t = load_t + ch_t + exp_t          (balance)

    e_t = e_{t-1} + (\eta_c\,ch_t - dis_t/\eta_d)\,\Delta t              (state of charge)

    lo_t \le e_t \le hi_t,\quad e_t + r_t \ge reserve,\quad e_T + f \ge final

with power bounds on every flow, :math:`0 \le pv^{used}_t \le pv_t`. ``r`` (reserve
shortfall), ``f`` (final-SoC shortfall) and ``u`` (unserved load) are slacks with explicit
penalties, so a plan always exists; the plan reports them as violations. Without a final SoC
target, energy left at the end is valued at :math:`v = \eta_d \cdot q` (a quantile of the
horizon's buy prices), so the plan neither dumps nor hoards it.

Speed: the problem is built once per :class:`ModelSpec` (shape, battery, grid) with
``cp.Parameter`` data (DPP), so cvxpy compiles it once and later solves only refill the
numbers. Constant power limits are variable *bounds* (column bounds for HiGHS, not rows);
the data-dependent bounds use an affine change of variables (``pv_used = pv * x``,
``soc = lo + (hi - lo) * z`` with ``x, z`` in [0, 1]) which keeps the problem DPP while
keeping rows out of the LP — that is what brings a 48 h × 15 min re-solve under 10 ms.

Simultaneous charge and discharge (or import and export) is physically meaningless but can be
optimal for the LP when prices are negative (it burns energy in losses or buys and sells at
once). :func:`solve` detects it and re-solves that case exactly as a MILP with one binary per
slot and flow pair (HiGHS), so no returned plan ever does it.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from planner.config import HeliosConfig
from planner.core.errors import InfeasibleError, SolverFailedError, UnboundedError
from planner.inputs.gather import Inputs
from planner.optimize._cvxpy import cp

#: flows below this are treated as zero when checking exclusivity [kW]
EXCLUSIVE_TOL_KW = 1e-6
#: the exact re-solve stops here and keeps its best exclusive plan (1.5 s seen at worst on
#: 48 h x 15 min with a fixed feed-in tariff and -500 EUR/MWh prices)
MILP_TIME_LIMIT_S = 20.0
_SOLVERS = {"highs": cp.HIGHS, "clarabel": cp.CLARABEL, "ecos": cp.ECOS}


@dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes the problem's structure; one compiled problem per spec."""

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

    @classmethod
    def from_config(cls, cfg: HeliosConfig, n: int, slot_s: int,
                    soc_start_pct: float = 0.0) -> ModelSpec:
        """The spec for ``n`` slots of ``slot_s`` seconds at the configured site."""
        b, g = cfg.battery, cfg.grid
        return cls(
            start_above_max=soc_start_pct > b.max_soc_pct + 1e-9,
            n=n,
            dt_h=slot_s / 3600.0,
            capacity_kwh=b.capacity_kwh,
            max_charge_kw=b.max_charge_kw,
            max_discharge_kw=b.max_discharge_kw,
            charge_efficiency=b.charge_efficiency,
            discharge_efficiency=b.discharge_efficiency,
            max_import_kw=g.max_import_kw,
            max_export_kw=g.max_export_kw if g.export_enabled else 0.0,
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


class Model:
    """The compiled problem for one :class:`ModelSpec`; call :meth:`solve` repeatedly."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        n, dt = spec.n, spec.dt_h
        eta_c, eta_d = spec.charge_efficiency, spec.discharge_efficiency
        p = self.params = {
            "buy": cp.Parameter(n, name="buy"),
            "sell": cp.Parameter(n, name="sell"),
            "pv": cp.Parameter(n, nonneg=True, name="pv"),
            "load": cp.Parameter(n, name="load"),
            "soc0": cp.Parameter(name="soc0"),
            "lo": cp.Parameter(n, name="soc_lo"),
            "width": cp.Parameter(n, nonneg=True, name="soc_width"),
            "reserve": cp.Parameter(n, name="reserve"),
            "wear": cp.Parameter(nonneg=True, name="wear"),
            "penalty": cp.Parameter(nonneg=True, name="penalty"),
            "unserved_penalty": cp.Parameter(nonneg=True, name="unserved_penalty"),
            "end_value": cp.Parameter(nonneg=True, name="end_value"),
            "final": cp.Parameter(name="final"),
            "final_weight": cp.Parameter(nonneg=True, name="final_weight"),
            "max_kwh": cp.Parameter(name="max_kwh"),
            "hurdle": cp.Parameter(n, nonneg=True, name="grid_hurdle"),
            # hurdle x pv forecast: curtailment pv - pv_used = pv (1 - x) costs the hurdle too
            # (one Parameter, since hurdle * pv * x would not be DPP)
            "hurdle_pv": cp.Parameter(n, nonneg=True, name="grid_hurdle_pv"),
        }
        v = self.vars = {
            "imp": cp.Variable(n, bounds=[0, spec.max_import_kw], name="grid_import_kw"),
            "exp": cp.Variable(n, bounds=[0, spec.max_export_kw], name="grid_export_kw"),
            "ch": cp.Variable(n, bounds=[0, spec.max_charge_kw], name="battery_charge_kw"),
            "dis": cp.Variable(n, bounds=[0, spec.max_discharge_kw], name="battery_discharge_kw"),
            "x": cp.Variable(n, bounds=[0, 1], name="pv_fraction"),
            "z": cp.Variable(n, bounds=[0, 1], name="soc_position"),
            "short": cp.Variable(n, bounds=[0, None], name="reserve_shortfall_kwh"),
            "unserved": cp.Variable(n, bounds=[0, None], name="unserved_kw"),
            "end": cp.Variable(name="soc_end_kwh"),
            "final_short": cp.Variable(bounds=[0, None], name="final_shortfall_kwh"),
        }
        self.pv_used = cp.multiply(p["pv"], v["x"])
        self.soc = p["lo"] + cp.multiply(p["width"], v["z"])
        previous = cp.hstack([cp.reshape(p["soc0"], (1,), order="C"), self.soc[:-1]])
        self.balance = (self.pv_used + v["imp"] + v["dis"] + v["unserved"] - v["ch"] - v["exp"]
                        == p["load"])
        self.dynamics = self.soc - previous == (eta_c * v["ch"] - v["dis"] / eta_d) * dt
        constraints = [
            self.balance,
            self.dynamics,
            self.soc + v["short"] >= p["reserve"],
            v["end"] == self.soc[n - 1],
            v["end"] + v["final_short"] >= p["final"],
        ]
        self.overshoot = None
        if spec.start_above_max:
            # after a start above max_soc_pct the hard bound is the start SoC; coming back
            # down is wanted, so staying or going above max_soc_pct costs like the reserve
            self.overshoot = cp.Variable(n, bounds=[0, None], name="overshoot_kwh")
            constraints.append(self.soc - self.overshoot <= p["max_kwh"])
        self.energy_cost = dt * (p["buy"] @ v["imp"] - p["sell"] @ v["exp"])
        objective = (self.energy_cost
                     + dt * p["wear"] * cp.sum(v["ch"] + v["dis"])
                     + dt * p["penalty"] * cp.sum(v["short"])
                     + dt * p["unserved_penalty"] * cp.sum(v["unserved"])
                     + p["final_weight"] * v["final_short"]
                     - p["end_value"] * v["end"]
                     + dt * (p["hurdle"] @ (v["imp"] + v["exp"]) + cp.sum(p["hurdle_pv"])
                             - p["hurdle_pv"] @ v["x"]))
        if self.overshoot is not None:
            objective = objective + dt * p["penalty"] * cp.sum(self.overshoot)
        self.objective = cp.Minimize(objective)
        self.constraints = constraints
        self.lp = cp.Problem(self.objective, constraints)
        self._milp: dict[bool, cp.Problem] = {}

    # ----------------------------------------------------------------------------------------
    def milp(self, grid_binaries: bool) -> cp.Problem:
        """The same problem with the flow pairs made exclusive by binaries (compiled lazily).

        Charge/discharge always gets one binary per slot; import/export only when some slot
        sells dearer than it buys (``grid_binaries``) — otherwise import/export ties are
        netted exactly afterwards (see :meth:`_net_grid_ties`), and the MILP with half the
        binaries solves ≈ 30 % faster.
        """
        if grid_binaries not in self._milp:
            s, v, n = self.spec, self.vars, self.spec.n
            charging = cp.Variable(n, boolean=True, name="charging")
            extra = [v["ch"] <= s.max_charge_kw * charging,
                     v["dis"] <= s.max_discharge_kw * (1 - charging)]
            if grid_binaries:
                importing = cp.Variable(n, boolean=True, name="importing")
                extra += [v["imp"] <= s.max_import_kw * importing,
                          v["exp"] <= s.max_export_kw * (1 - importing)]
            self._milp[grid_binaries] = cp.Problem(self.objective, self.constraints + extra)
        return self._milp[grid_binaries]

    def set_inputs(self, inputs: Inputs, cfg: HeliosConfig) -> None:
        """Fill the Parameters from the inputs and the battery/planning settings."""
        s, b, pl = self.spec, cfg.battery, cfg.planning
        cap = s.capacity_kwh
        min_kwh = b.min_soc_pct / 100 * cap
        max_kwh = b.max_soc_pct / 100 * cap
        soc0 = float(np.clip(inputs.soc_start_pct, 0.0, 100.0)) / 100 * cap
        # Hard bounds; a start outside [min, max] widens them just enough to stay feasible
        # ("never drain further"); the reserve slack then pulls the SoC back above min.
        lo = min(min_kwh, soc0)
        hi = max(max_kwh, soc0)
        reserve_pct = b.reserve_soc_pct if b.reserve_soc_pct is not None else b.min_soc_pct
        p = self.params
        p["buy"].value = inputs.buy_eur_per_kwh
        p["sell"].value = inputs.sell_eur_per_kwh
        p["pv"].value = inputs.pv_kw
        p["load"].value = inputs.load_kw
        p["soc0"].value = soc0
        p["lo"].value = np.full(s.n, lo)
        p["width"].value = np.full(s.n, hi - lo)
        p["reserve"].value = np.full(s.n, max(reserve_pct / 100 * cap, min_kwh))
        p["max_kwh"].value = max_kwh
        p["wear"].value = b.wear_cost_eur_per_kwh
        p["penalty"].value = pl.soft_penalty_eur_per_kwh
        lead_h = np.arange(s.n) * s.dt_h
        p["hurdle"].value = pl.grid_hurdle_eur_per_kwh * np.clip(1.0 - lead_h / pl.grid_hurdle_h,
                                                                  0.0, 1.0)
        p["hurdle_pv"].value = p["hurdle"].value * inputs.pv_kw
        p["unserved_penalty"].value = pl.unserved_penalty_eur_per_kwh
        if b.final_soc_pct is not None:
            p["end_value"].value = 0.0
            p["final"].value = b.final_soc_pct / 100 * cap
            p["final_weight"].value = pl.soft_penalty_eur_per_kwh
        else:
            q = float(np.quantile(inputs.buy_eur_per_kwh, pl.terminal_value_quantile))
            p["end_value"].value = max(0.0, s.discharge_efficiency * q)
            p["final"].value = 0.0
            p["final_weight"].value = 0.0

    # ----------------------------------------------------------------------------------------
    def _run(self, problem: cp.Problem, solver_order: list[str], mip: bool) -> str:
        errors = []
        for name in solver_order:
            if mip and name != "highs":
                continue  # only HiGHS solves the MILP here
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # no MILP warm start: HiGHS (1.16) takes the previous re-solve's
                    # solution as an incumbent and can stop short of the optimum
                    problem.solve(solver=_SOLVERS[name], warm_start=not mip,
                                  **_solver_options(name, mip))
            except (cp.error.SolverError, ValueError) as exc:
                # ValueError: cvxpy cannot unpack a solution a solver reported as UNKNOWN
                errors.append(f"{name}: {exc}")
                continue
            status = problem.status
            if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                return name.upper()
            if mip and status == cp.USER_LIMIT and self.vars["ch"].value is not None:
                # time limit hit with a feasible, exclusive incumbent: better than no plan
                return f"{name.upper()} (time limit {MILP_TIME_LIMIT_S:g} s)"
            if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
                raise InfeasibleError(
                    "the plan's hard limits cannot all be met (power limits, SoC bounds); "
                    "check battery and grid limits against the load")
            if status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
                raise UnboundedError("the optimisation is unbounded; this is a modelling bug")
            errors.append(f"{name}: status {status}")
        raise SolverFailedError("every solver failed: " + "; ".join(errors))

    def solve(self, inputs: Inputs, cfg: HeliosConfig) -> Solution:
        """Solve for these inputs; exact (MILP) re-solve when the LP splits a flow pair.

        Raises
        ------
        InfeasibleError, UnboundedError, SolverFailedError
        """
        t0 = time.perf_counter()
        self.set_inputs(inputs, cfg)
        first = cfg.planning.solver
        order = [first] + [s for s in ("highs", "clarabel", "ecos") if s != first]
        solver = self._run(self.lp, order, mip=False)
        duals = self.dynamics.dual_value
        value = (np.asarray(duals, dtype=float) if duals is not None
                 else np.full(self.spec.n, np.nan))
        objective = float(self.lp.value)
        exact = False
        self._net_grid_ties()
        if self._splits():
            grid_binaries = bool(np.any(self.params["sell"].value > self.params["buy"].value))
            problem = self.milp(grid_binaries)
            used = self._run(problem, ["highs"], mip=True)
            solver = "HIGHS (MILP)" if used == "HIGHS" else "HIGHS (MILP, stopped at time limit)"
            self._net_grid_ties()
            if self._splits():  # cannot happen: binaries or netting cover every pair
                raise SolverFailedError("the exact re-solve still splits a flow pair")
            objective = float(problem.value)
            exact = True
        return self._solution(solver, time.perf_counter() - t0, value, exact, objective)

    def _net_grid_ties(self) -> None:
        """Net simultaneous import and export where that costs nothing extra.

        Where ``sell <= buy`` replacing (imp, exp) by their net keeps the balance and cannot
        raise the cost, so an optimal LP solution stays optimal: this resolves ties (e.g. a
        flat tariff with buy == sell) exactly without the MILP. Where ``sell > buy`` the LP
        is exploiting an arbitrage that no meter allows; the MILP handles that.
        """
        imp, exp = self.vars["imp"], self.vars["exp"]
        both = np.minimum(imp.value, exp.value)
        fixable = (both > 0) & (self.params["sell"].value <= self.params["buy"].value)
        if fixable.any():
            net = np.where(fixable, both, 0.0)
            imp.value = imp.value - net
            exp.value = exp.value - net

    def _splits(self) -> bool:
        v = self.vars
        both_battery = np.minimum(v["ch"].value, v["dis"].value) > EXCLUSIVE_TOL_KW
        both_grid = np.minimum(v["imp"].value, v["exp"].value) > EXCLUSIVE_TOL_KW
        return bool(both_battery.any() or both_grid.any())

    def _solution(self, solver: str, solve_s: float, value: np.ndarray,
                  exact: bool, objective: float) -> Solution:
        v, p, s = self.vars, self.params, self.spec

        def arr(expr, lo: float | None = 0.0, hi: float | None = None) -> np.ndarray:
            a = np.asarray(expr.value, dtype=float).reshape(-1).copy()
            return np.clip(a, lo, hi)

        imp = arr(v["imp"], 0, s.max_import_kw)
        exp = arr(v["exp"], 0, s.max_export_kw)
        ch = arr(v["ch"], 0, s.max_charge_kw)
        dis = arr(v["dis"], 0, s.max_discharge_kw)
        pv_used = np.minimum(arr(self.pv_used), p["pv"].value)
        soc = arr(self.soc, p["lo"].value[0], p["lo"].value[0] + p["width"].value[0])
        dt = s.dt_h
        energy_cost = float(dt * (p["buy"].value @ imp - p["sell"].value @ exp))
        wear = float(dt * p["wear"].value * np.sum(ch + dis))
        return Solution(
            grid_import_kw=imp,
            grid_export_kw=exp,
            battery_charge_kw=ch,
            battery_discharge_kw=dis,
            pv_used_kw=pv_used,
            unserved_kw=arr(v["unserved"]),
            soc_kwh=soc,
            soc_start_kwh=float(p["soc0"].value),
            reserve_shortfall_kwh=arr(v["short"]),
            overshoot_kwh=(arr(self.overshoot) if self.overshoot is not None
                           else np.zeros(s.n)),
            final_shortfall_kwh=float(max(0.0, v["final_short"].value)),
            energy_value_eur_per_kwh=value,
            terminal_value_eur_per_kwh=float(p["end_value"].value),
            objective_eur=objective,
            energy_cost_eur=energy_cost,
            wear_cost_eur=wear,
            solver=solver,
            solve_s=solve_s,
            exact_milp=exact,
        )


def _solver_options(name: str, mip: bool) -> dict:
    if name == "highs":
        # optimal to 1e-6 EUR: the golden tests compare with an independent MILP to 1e-4
        return ({"highs_options": {"mip_rel_gap": 0.0, "mip_abs_gap": 1e-6,
                                   "time_limit": MILP_TIME_LIMIT_S}} if mip else {})
    return {}


_CACHE: dict[ModelSpec, Model] = {}


def get_model(spec: ModelSpec) -> Model:
    """The compiled model for ``spec`` (built on first use, then reused in this process)."""
    model = _CACHE.get(spec)
    if model is None:
        if len(_CACHE) > 16:
            _CACHE.clear()
        model = _CACHE[spec] = Model(spec)
    return model


def solve(inputs: Inputs, cfg: HeliosConfig) -> Solution:
    """Optimise the plan for ``inputs`` under ``cfg`` (compiled model reused across calls)."""
    spec = ModelSpec.from_config(cfg, inputs.n, inputs.slot_s, inputs.soc_start_pct)
    return get_model(spec).solve(inputs, cfg)
