"""The problem builder: components in, one compiled LP (and lazy exact MILPs) out.

:class:`Problem` builds every component for ``n`` slots, sums their contributions to the AC
power balance (one equality row per slot), their costs and terminal values, and compiles the
LP once (cvxpy DPP: later solves only refill the Parameters, ≈5 ms for 48 h × 15 min).

Exactness (docs/architecture.md, decisions 3, 5 and 18): after the LP, every
:class:`~planner.optimize.components.Exclusive` pair is netted where that is free; if a pair
is still split in some slot, the same problem is re-solved as a MILP with one binary per slot
for each pair that needs it (``a.x <= bound_a·δ``, ``b.x <= bound_b·(1 − δ)``, still
DPP), compiled lazily and cached per set of pairs, solved by HiGHS without a warm
start. With the direct backend the same MILP is built from the LP's persistent HiGHS model
instead (:meth:`Problem._exact_direct`; cvxpy's stays the fallback and the reference),
first with binaries only where splitting can pay (:meth:`Problem.burn_slots`), then, if that
plan still splits, in every slot.
:meth:`Problem.milp_at` makes a one-shot variant with binaries in given slots only (the
backtest's year-long perfect-foresight problem).

On/off devices (a water heater or deferrable load with ``modulating: false``) declare their
integer constraints as :attr:`Component.discrete`: the LP is then their relaxation (its duals
give the reasons) and, unless its solution is already on/off
(:meth:`Component.relaxation_ok`), the problem is finished as a MILP with those constraints
(plus pair binaries where needed). Without such components nothing changes.

A one-shot problem (a year's LP) is solved with ``one_shot=True``: cvxpy then treats the
Parameters as constants (``ignore_dpp``), which compiles a 35,000-slot LP in ≈0.3 s instead
of ≈50 s for the reusable DPP form.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.core.errors import InfeasibleError, SolverFailedError, UnboundedError
from planner.optimize import _highs
from planner.optimize._cvxpy import cp
from planner.optimize.components.base import EXCLUSIVE_TOL_KW, Component, Context

#: the default time limit of the exact re-solve (``planning.milp_time_limit_s``): it then
#: keeps its best exclusive plan, or falls back to the LP with the split slots fixed to one
#: direction, and the plan says so (``milp_stopped``). 2.7 s seen at worst on 48 h x 15 min
#: with a fixed feed-in tariff and -500 EUR/MWh prices; 10 s leaves room on a loaded Pi and
#: stays small against the 5-min timer
MILP_TIME_LIMIT_S = 10.0
#: HiGHS options of the exact re-solve: optimal to 1e-6 EUR (the golden tests compare with an
#: independent MILP to 1e-4)
MILP_OPTIONS = {"mip_rel_gap": 0.0, "mip_abs_gap": 1e-6, "time_limit": MILP_TIME_LIMIT_S}
#: HiGHS's ``primal_solution_status`` of a feasible incumbent (kSolutionStatusFeasible)
_FEASIBLE = 2
#: rounds of the fallback LP (each fixes the direction of the slots still split)
_FALLBACK_ROUNDS = 5
#: ``scipy`` is HiGHS too, the build bundled with SciPy (1.12 with SciPy 1.17): on one-shot
#: year-long LPs it needs the same ≈110,000 dual simplex iterations as highspy 1.16 but ≈20×
#: less time (3.7 s against 74 s, DK1 2022), so the backtest's perfect-foresight LP uses it
SOLVERS = {"highs": cp.HIGHS, "clarabel": cp.CLARABEL, "ecos": cp.ECOS, "scipy": cp.SCIPY}
#: the solvers that also solve the exact MILP (both are HiGHS)
MILP_SOLVERS = ("highs", "scipy")
#: the LP solvers tried after the configured one
SOLVER_ORDER = ("highs", "clarabel", "ecos")
#: how the LP reaches HiGHS (``planning.solver_backend``): ``highs`` = the compiled data kept in
#: one persistent HiGHS model, hot-started from the previous basis (:mod:`._highs`);
#: ``cvxpy`` = ``cvxpy.Problem.solve`` every time (the reference); ``auto`` = ``highs`` when
#: highspy is installed. With ``highs`` the flow-pair MILP re-solve is built from the same
#: HiGHS model (:meth:`Problem._exact_direct`); on/off devices' MILPs, the fallback solvers and
#: one-shot problems always go through cvxpy
BACKENDS = ("auto", "highs", "cvxpy")


@dataclass(frozen=True)
class Outcome:
    """One solve: the objective, who solved it and every component's named outputs."""

    objective_eur: float
    solver: str
    exact_milp: bool  # True when the LP split a pair and the MILP re-solve was used
    outputs: dict[str, Any]  # component outputs and the LP's duals, by name
    solve_s: float
    #: the exact re-solve hit its time limit: the plan is exclusive but perhaps not optimal
    milp_stopped: bool = False
    #: how much more the returned plan may cost than the optimum (its objective minus the
    #: best lower bound known: HiGHS's dual bound or the LP relaxation) [EUR]; 0 unless stopped
    #: or an on/off rounding kept within planning.on_off_gap_eur
    milp_gap_eur: float = 0.0
    #: the MILP stopped without an exclusive incumbent and the plan is the LP re-solved with
    #: each split slot fixed to one direction of its pair
    milp_fallback: bool = False


#: a rounded relaxation within this of the LP bound is taken as the MILP's optimum [EUR]
ROUND_TOL_EUR = 1e-6


def solver_order(first: str) -> list[str]:
    """``first``, then the other LP solvers as fallbacks."""
    return [first] + [s for s in SOLVER_ORDER if s != first]


class Problem:
    """``components`` assembled into one problem of ``n`` slots of ``dt_h`` hours."""

    def __init__(self, components: Sequence[Component], n: int, dt_h: float,
                 cache_key: str | None = None):
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must be unique, got {names}")
        self.components = list(components)
        self.n, self.dt_h = n, dt_h
        #: what fixes this problem's structure (with the code): the direct backend keeps its
        #: compiled data on disk under it (:mod:`._lpcache`); None: compiled every time
        self.cache_key = cache_key
        for c in self.components:
            c.build(n, dt_h)
        bus = [c.bus_kw for c in self.components if c.bus_kw is not None]
        if not bus:
            raise ValueError("no component is on the AC bus")
        self.balance = sum(bus[1:], bus[0]) == 0
        self.constraints = [self.balance] + [k for c in self.components for k in c.constraints]
        cost = sum(c.cost for c in self.components) - sum(c.terminal_value
                                                          for c in self.components)
        self.objective = cp.Minimize(cost)
        self.lp = cp.Problem(self.objective, self.constraints)
        self.flows = [f for c in self.components for f in c.flows]
        self.pairs = [p for c in self.components for p in c.exclusive]
        #: integer constraints of on/off devices: the problem is finished as a MILP unless the
        #: LP relaxation's solution already meets them
        self.discrete = [k for c in self.components for k in c.discrete]
        self.duals: dict[str, np.ndarray] = {}
        self._milp: dict[frozenset[str], cp.Problem] = {}
        #: set by :meth:`run` after a MILP stopped at its time limit: None (not stopped) or
        #: (has a feasible incumbent, HiGHS's dual bound [EUR] or nan)
        self.stopped: tuple[bool, float] | None = None
        #: the LP in a persistent HiGHS model (built on the first solve with that backend)
        self._direct: _highs.HighsLp | None = None
        #: the last :meth:`run` of the LP ended optimal in :attr:`_direct`
        self._direct_done = False
        #: the objective of the last :meth:`run` [EUR]
        self.value = float("nan")

    def __getitem__(self, name: str) -> Component:
        """The component called ``name``."""
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    # ----------------------------------------------------------------------------------------
    def milp(self, pairs: frozenset[str]) -> cp.Problem:
        """The problem with the named exclusive pairs made exclusive by one binary per slot
        (compiled lazily, then cached)."""
        if pairs not in self._milp:
            extra = []
            for pair in self.pairs:
                if pair.name in pairs:
                    on = cp.Variable(self.n, boolean=True, name=f"{pair.a.name}_on")
                    extra += [pair.a.x <= pair.a.bound * on,
                              pair.b.x <= pair.b.bound * (1 - on)]
            self._milp[pairs] = cp.Problem(self.objective,
                                           self.constraints + extra + self.discrete)
        return self._milp[pairs]

    def milp_at(self, slots: np.ndarray) -> cp.Problem:
        """A one-shot variant with binaries for every pair in ``slots`` only (not cached)."""
        k = np.flatnonzero(slots)
        extra = []
        for pair in self.pairs:
            on = cp.Variable(len(k), boolean=True, name=f"{pair.a.name}_on")
            extra += [pair.a.x[k] <= pair.a.bound * on, pair.b.x[k] <= pair.b.bound * (1 - on)]
        return cp.Problem(self.objective, self.constraints + extra + self.discrete)

    def needed_pairs(self) -> frozenset[str]:
        """The pairs the exact re-solve needs binaries for (netting covers the others):
        half the binaries when nothing sells dearer than it buys, ≈30 % faster (decision 5)."""
        return frozenset(p.name for p in self.pairs if p.needs_binaries())

    # ----------------------------------------------------------------------------------------
    def set_inputs(self, ctx: Context) -> None:
        """Every component writes its Parameters."""
        for c in self.components:
            c.set_inputs(ctx)

    def direct(self, backend: str) -> _highs.HighsLp | None:
        """The persistent HiGHS model of the LP for ``backend`` (None: cvxpy's path).

        Raises
        ------
        ValueError
            An unknown backend (names ``planning.solver_backend``).
        """
        if backend not in BACKENDS:
            raise ValueError(f"planning.solver_backend: expected one of {', '.join(BACKENDS)}"
                             f", got {backend!r}")
        if backend == "cvxpy":
            return None
        if self._direct is None:
            if not _highs.available() or not _highs.HighsLp.supports(self.lp):
                if backend == "highs" and not _highs.available():
                    raise ValueError("planning.solver_backend: highs needs highspy installed")
                return None
            self._direct = _highs.HighsLp(self.lp, self.n, self.cache_key)
        return self._direct

    def run(self, problem: cp.Problem, order: Sequence[str], mip: bool,
            options: dict | None = None, one_shot: bool = False,
            backend: str = "cvxpy", index: Any = None) -> str:
        """Solve ``problem`` with the first solver of ``order`` that succeeds; its name.

        ``backend``: how the LP (:attr:`lp`) reaches HiGHS (:data:`BACKENDS`); a direct solve
        that does not end optimal is repeated through cvxpy, which names the status.
        ``index``: the slot starts of this solve (the direct backend shifts its basis by the
        slots "now" moved since the last solve).

        Raises
        ------
        InfeasibleError, UnboundedError, SolverFailedError
        """
        errors = []
        self.stopped = None
        self._direct_done = False
        if (not mip and not one_shot and problem is self.lp and order and order[0] == "highs"):
            direct = self.direct(backend)
            try:
                status = direct.solve(index) if direct is not None else None
            except (ValueError, RuntimeError) as exc:  # cvxpy's path below tells what is wrong
                errors.append(f"highs (direct): {exc}")
                status = None
            if status == cp.OPTIMAL:
                self.value = direct.objective
                self._direct_done = True
                return "HIGHS"
        for name in order:
            if mip and name not in MILP_SOLVERS:
                continue  # only HiGHS solves the MILP here
            opts = _options(name, mip, options)
            if one_shot:
                opts["ignore_dpp"] = True
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # no MILP warm start: HiGHS (1.16) takes the previous re-solve's
                    # solution as an incumbent and can stop short of the optimum
                    problem.solve(solver=SOLVERS[name], warm_start=not mip, **opts)
            except (cp.error.SolverError, ValueError) as exc:
                # ValueError: cvxpy cannot unpack a solution a solver reported as UNKNOWN
                errors.append(f"{name}: {exc}")
                continue
            status = problem.status
            if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                self.value = float(problem.value)
                return name.upper()
            if mip and status == cp.USER_LIMIT:
                # time limit: HiGHS returns its incumbent if it has one, else whatever it was
                # looking at (not a plan); the caller decides (solve: incumbent or fallback)
                info = (problem.solver_stats.extra_stats
                        if problem.solver_stats is not None else None)
                feasible = (getattr(info, "primal_solution_status", None) == _FEASIBLE
                            and self.flows[0].x.value is not None)
                self.stopped = (feasible, float(getattr(info, "mip_dual_bound", np.nan)))
                self.value = (float(problem.value) if feasible and problem.value is not None
                              else float("nan"))
                return name.upper()
            if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
                raise InfeasibleError(
                    "the plan's hard limits cannot all be met (power limits, SoC bounds); "
                    "check battery and grid limits against the load")
            if status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE):
                raise UnboundedError("the optimisation is unbounded; this is a modelling bug")
            errors.append(f"{name}: status {status}")
        raise SolverFailedError("every solver failed: " + "; ".join(errors))

    def capture_duals(self, scale: float = 1.0) -> None:
        """Keep the LP's duals (divided by ``scale``) for :meth:`outputs`."""
        self.duals = {k: v / scale for c in self.components for k, v in c.duals().items()}

    def read(self) -> np.ndarray:
        """Take the solved flows, net what is free to net; the slots still split."""
        for f in self.flows:
            f.read()
        split = np.zeros(self.n, dtype=bool)
        for pair in self.pairs:
            pair.net()
            split |= pair.split()
        return split

    def outputs(self) -> dict[str, Any]:
        """Every component's outputs and the captured duals, by name.

        Raises
        ------
        ValueError
            Two components give the same output name.
        """
        out: dict[str, Any] = {}
        for c in self.components:
            for key, value in c.outputs().items():
                if key in out:
                    raise ValueError(f"output {key!r} of component {c.name!r} is taken")
                out[key] = value
        out.update(self.duals)
        return out

    def solve(self, ctx: Context, order: Sequence[str], t0: float | None = None,
              milp_time_limit_s: float = MILP_TIME_LIMIT_S, backend: str = "auto",
              on_off_gap_eur: float = 0.0) -> Outcome:
        """Solve for ``ctx``; exact (MILP) re-solve when the LP splits a pair.

        ``t0``: when the caller's solve started (``time.perf_counter()``), for ``solve_s``.
        ``milp_time_limit_s``: the exact re-solve stops there; it keeps its best exclusive
        plan, or, without one, falls back to :meth:`_fallback` (the outcome says so).
        ``backend``: how the LP reaches HiGHS (:data:`BACKENDS`).
        ``on_off_gap_eur``: how much dearer than the optimum an on/off devices' plan may be
        (a rounded relaxation within it of the LP bound is kept; their MILP's absolute gap);
        flow-pair re-solves stay exact.

        Raises
        ------
        InfeasibleError, UnboundedError, SolverFailedError
        """
        t0 = time.perf_counter() if t0 is None else t0
        self.set_inputs(ctx)
        solver = self.run(self.lp, order, mip=False, backend=backend, index=ctx.index)
        self.capture_duals()
        objective = self.value
        lp_bound = objective
        exact = stopped = fallback = False
        gap = 0.0
        split = self.read().any()
        milp = split or (self.discrete and not all(c.relaxation_ok() for c in self.components))
        tol = max(float(on_off_gap_eur), ROUND_TOL_EUR)
        if milp and not split and self._rounded(ctx, order, lp_bound, tol):
            milp = False  # the relaxation rounded to whole on-slots: optimal within tol
            objective = float(self.lp.value)
            gap = max(objective - lp_bound, 0.0)
            solver = (f"{solver} (on/off rounded, optimal)" if gap <= ROUND_TOL_EUR else
                      f"{solver} (on/off rounded, within {gap:.4f} EUR of the optimum)")
        if milp:
            # on/off devices: the LP was their relaxation (duals); now the MILP, with pair
            # binaries only where the LP split a pair, or where the MILP's own plan does
            lp_flows = {p.name: (p.a.value.copy(), p.b.value.copy()) for p in self.pairs}
            options = {**MILP_OPTIONS, "time_limit": float(milp_time_limit_s)}
            if not split:  # on/off devices only: stop within on_off_gap_eur of the optimum
                options["mip_abs_gap"] = tol
            deadline = time.perf_counter() + milp_time_limit_s
            pairs = self.needed_pairs() if split else frozenset()
            direct_eur = (self._exact_direct(ctx, options, deadline)
                          if split and not self.discrete and self._direct_done else None)
            if direct_eur is not None:
                problem = None
                self.value = direct_eur
            else:
                problem = self.milp(pairs)
                if self._direct_done and split and not self.discrete:
                    # the direct MILP stopped: cvxpy's gets the time left (it then keeps its
                    # incumbent or falls back, and names the status)
                    left_s = max(deadline - time.perf_counter(), 0.1)
                    options = {**options, "time_limit": left_s}
                self.run(problem, ["highs"], mip=True, options=options)
            if (problem is not None and self.stopped is None and self.read().any()
                    and pairs != self.needed_pairs()):
                problem = self.milp(self.needed_pairs())
                left_s = max(deadline - time.perf_counter(), 0.1)
                self.run(problem, ["highs"], mip=True,
                         options={**options, "time_limit": left_s})
            exact = True
            if self.stopped is None:
                solver = "HIGHS (MILP)"
                objective = self.value
            else:
                stopped = True
                has_incumbent, dual_bound = self.stopped
                if has_incumbent and not self.read().any():
                    solver = "HIGHS (MILP stopped at its time limit)"
                    objective = float(problem.value)
                else:
                    fallback = True
                    objective = self._fallback(lp_flows, order)
                    solver = "HIGHS (MILP stopped at its time limit; LP with fixed directions)"
                    dual_bound = np.nan
                bound = max(lp_bound, dual_bound) if np.isfinite(dual_bound) else lp_bound
                gap = max(objective - bound, 0.0)
            if self.read().any():  # cannot happen: binaries or netting cover every pair
                raise SolverFailedError("the exact re-solve still splits a flow pair")
        return Outcome(objective, solver, exact, self.outputs(), time.perf_counter() - t0,
                       milp_stopped=stopped, milp_gap_eur=gap, milp_fallback=fallback)

    def _exact_direct(self, ctx: Context, options: dict, deadline: float) -> float | None:
        """The exact re-solve in the direct backend: :meth:`milp`'s MILP (the same rows, one
        binary per slot for each pair that needs one), built from the LP's persistent HiGHS
        model without cvxpy (:meth:`_highs.HighsLp.solve_milp`) and solved with
        :data:`_highs.MILP_HEURISTICS`, first with binaries only in :meth:`burn_slots`
        (issue 17: ≈35 % less CPU on NL 2023's -500 EUR/MWh re-plans), then, if that plan
        still splits a pair, in every slot. Its objective; None when it did not end optimal
        or its plan still splits a pair: the caller then solves the MILP through cvxpy,
        which handles time limits and names statuses.

        Why the first MILP is exact when its plan splits nothing: it is :meth:`milp`'s with
        fewer binary rows, a relaxation, so its optimum is a lower bound of the exact one;
        its plan, netted by :meth:`read` (netting never raises the cost), is exclusive in
        every slot, i.e. feasible for the exact MILP with that bound as its cost, hence
        optimal. Which slots get a binary only decides how often the second MILP runs."""
        slots = self.burn_slots(ctx)
        full = {name: np.ones(self.n, dtype=bool) for name in slots}
        rounds = [slots, full] if any(not s.all() for s in slots.values()) else [full]
        for chosen in rounds:
            left_s = deadline - time.perf_counter()
            binaries = [(p.a.x, p.a.bound, p.b.x, p.b.bound, np.flatnonzero(chosen[p.name]))
                        for p in self.pairs if p.name in chosen and chosen[p.name].any()]
            if left_s <= 0:
                return None
            if not binaries:
                continue
            status = self._direct.solve_milp(binaries, {**options, "time_limit": left_s})
            if status == cp.OPTIMAL and not self.read().any():
                return self._direct.milp_objective
        return None

    def burn_slots(self, ctx: Context) -> dict[str, np.ndarray]:
        """For each pair that needs binaries, the slots where splitting it can pay (by name):
        where the LP split it, and where a kWh on the AC bus can cost money, ``buy < 0`` or
        ``sell < 0``. Elsewhere a split can be undone without a loss: lowering the smaller
        flow to 0 and the other by as much stored energy keeps the SoC path and leaves the
        energy the split burnt in the losses on the bus, absorbed by importing less or
        exporting more at a price >= 0 (up to the grid hurdle near "now"), and lowers the
        wear; it is not free only where import is 0 and export at its limit with nothing
        to curtail — such a slot splits in the LP too, or in the first MILP, which then
        falls back to binaries in every slot (:meth:`_exact_direct`). Slots where the pair
        is nettable never need one (:meth:`read` nets them)."""
        paid = (np.asarray(ctx.buy_eur_per_kwh) < 0) | (np.asarray(ctx.sell_eur_per_kwh) < 0)
        out = {}
        for pair in self.pairs:
            if not pair.needs_binaries():
                continue
            slots = paid | pair.split()
            if pair.nettable is not None:
                slots &= ~np.asarray(pair.nettable(), dtype=bool)
            out[pair.name] = slots
        return out

    def _rounded(self, ctx: Context, order: Sequence[str], lp_bound: float,
                 tol: float = ROUND_TOL_EUR) -> bool:
        """The on/off devices' relaxation rounded to whole on-slots and the LP solved again
        with them fixed (:meth:`Component.round_relaxation`): kept when it is on/off,
        exclusive and within ``tol`` of the relaxation's objective — a lower bound of the
        MILP's, so the rounded plan is then at most ``tol`` dearer than the optimum without
        the MILP; otherwise the inputs are set again and the MILP runs."""
        price = self.balance.dual_value  # the marginal cost of a kW in each slot
        if price is not None:
            price = np.asarray(price, dtype=float).reshape(-1)
            if np.corrcoef(price, ctx.buy_eur_per_kwh)[0, 1] < 0:  # cvxpy's sign convention
                price = -price
        if all(c.round_relaxation(price) for c in self.components):
            self.run(self.lp, order, mip=False)
            split = self.read().any()
            if (not split and all(c.relaxation_ok() for c in self.components)
                    and float(self.lp.value) - lp_bound <= tol):
                return True
        self.set_inputs(ctx)
        return False

    def _fallback(self, lp_flows: dict[str, tuple[np.ndarray, np.ndarray]],
                  order: Sequence[str]) -> float:
        """The plan when the MILP stopped without an exclusive incumbent: the LP again, with
        each slot the LP split fixed to the pair's larger flow (the other one held at 0);
        netting (decision 3a) takes the free ties, and slots a round still splits are fixed
        the same way in the next. An LP restricted this way is exclusive and physical (the
        SoC recursion holds), only perhaps dearer than the optimum; its objective.

        Raises
        ------
        SolverFailedError
            On/off devices need the MILP (an LP cannot make them on/off), or the rounds
            did not resolve every split.
        """
        if self.discrete:
            raise SolverFailedError(
                "the exact re-solve of the on/off devices stopped at its time limit without "
                "a plan; raise planning.milp_time_limit_s")
        a_zero = {p.name: np.zeros(self.n, dtype=bool) for p in self.pairs}
        b_zero = {p.name: np.zeros(self.n, dtype=bool) for p in self.pairs}
        flows = lp_flows
        for _ in range(_FALLBACK_ROUNDS):
            for pair in self.pairs:
                a, b = flows[pair.name]
                both = np.minimum(a, b) > EXCLUSIVE_TOL_KW
                if pair.nettable is not None:
                    both &= ~np.asarray(pair.nettable(), dtype=bool)
                keep_a = both & (a >= b) & ~a_zero[pair.name]
                b_zero[pair.name] |= keep_a
                a_zero[pair.name] |= both & ~keep_a & ~b_zero[pair.name]
            extra = []
            for pair in self.pairs:
                for flow, zero in ((pair.a, a_zero[pair.name]), (pair.b, b_zero[pair.name])):
                    k = np.flatnonzero(zero)
                    if len(k):
                        extra.append(flow.x[k] == 0)
            problem = cp.Problem(self.objective, self.constraints + extra)
            self.run(problem, order, mip=False, one_shot=True)
            if not self.read().any():
                return float(problem.value)
            flows = {p.name: (p.a.value.copy(), p.b.value.copy()) for p in self.pairs}
        raise SolverFailedError("the LP fallback after the stopped MILP still splits a flow "
                                "pair; raise planning.milp_time_limit_s")


def _options(name: str, mip: bool, options: dict | None) -> dict:
    """cvxpy's solver arguments: the MILP's HiGHS options (``options`` or
    :data:`MILP_OPTIONS`); SciPy's HiGHS with its ``highs`` method."""
    mip_opts = dict(MILP_OPTIONS if options is None else options) if mip else {}
    if name == "highs":
        return {"highs_options": mip_opts} if mip else {}
    if name == "scipy":
        return {"scipy_options": {"method": "highs", **mip_opts}}
    return {}
