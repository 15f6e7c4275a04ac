"""The problem builder: components in, one compiled LP (and lazy exact MILPs) out.

:class:`Problem` builds every component for ``n`` slots, sums their contributions to the AC
power balance (one equality row per slot), their costs and terminal values, and compiles the
LP once (cvxpy DPP: later solves only refill the Parameters, ≈5 ms for 48 h × 15 min).

Exactness (docs/architecture.md, decisions 3, 5 and 18): after the LP, every
:class:`~planner.optimize.components.Exclusive` pair is netted where that is free; if a pair
is still split in some slot, the same problem is re-solved as a MILP with one binary per slot
for each pair that needs it (``a.x <= bound_a·δ``, ``b.x <= bound_b·(1 − δ)``, still
DPP), compiled lazily and cached per set of pairs, solved by HiGHS without a warm
start. :meth:`Problem.milp_at` makes a one-shot variant with binaries in given slots only
(the backtest's year-long perfect-foresight problem).

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
from planner.optimize._cvxpy import cp
from planner.optimize.components.base import Component, Context

#: the exact re-solve stops here and keeps its best exclusive plan (1.5 s seen at worst on
#: 48 h x 15 min with a fixed feed-in tariff and -500 EUR/MWh prices)
MILP_TIME_LIMIT_S = 20.0
#: HiGHS options of the exact re-solve: optimal to 1e-6 EUR (the golden tests compare with an
#: independent MILP to 1e-4)
MILP_OPTIONS = {"mip_rel_gap": 0.0, "mip_abs_gap": 1e-6, "time_limit": MILP_TIME_LIMIT_S}
#: ``scipy`` is HiGHS too, the build bundled with SciPy (1.12 with SciPy 1.17): on one-shot
#: year-long LPs it needs the same ≈110,000 dual simplex iterations as highspy 1.16 but ≈20×
#: less time (3.7 s against 74 s, DK1 2022), so the backtest's perfect-foresight LP uses it
SOLVERS = {"highs": cp.HIGHS, "clarabel": cp.CLARABEL, "ecos": cp.ECOS, "scipy": cp.SCIPY}
#: the solvers that also solve the exact MILP (both are HiGHS)
MILP_SOLVERS = ("highs", "scipy")
#: the LP solvers tried after the configured one
SOLVER_ORDER = ("highs", "clarabel", "ecos")


@dataclass(frozen=True)
class Outcome:
    """One solve: the objective, who solved it and every component's named outputs."""

    objective_eur: float
    solver: str
    exact_milp: bool  # True when the LP split a pair and the MILP re-solve was used
    outputs: dict[str, Any]  # component outputs and the LP's duals, by name
    solve_s: float


def solver_order(first: str) -> list[str]:
    """``first``, then the other LP solvers as fallbacks."""
    return [first] + [s for s in SOLVER_ORDER if s != first]


class Problem:
    """``components`` assembled into one problem of ``n`` slots of ``dt_h`` hours."""

    def __init__(self, components: Sequence[Component], n: int, dt_h: float):
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must be unique, got {names}")
        self.components = list(components)
        self.n, self.dt_h = n, dt_h
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

    def run(self, problem: cp.Problem, order: Sequence[str], mip: bool,
            options: dict | None = None, one_shot: bool = False) -> str:
        """Solve ``problem`` with the first solver of ``order`` that succeeds; its name.

        Raises
        ------
        InfeasibleError, UnboundedError, SolverFailedError
        """
        errors = []
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
                return name.upper()
            if mip and status == cp.USER_LIMIT and self.flows[0].x.value is not None:
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

    def solve(self, ctx: Context, order: Sequence[str], t0: float | None = None) -> Outcome:
        """Solve for ``ctx``; exact (MILP) re-solve when the LP splits a pair.

        ``t0``: when the caller's solve started (``time.perf_counter()``), for ``solve_s``.

        Raises
        ------
        InfeasibleError, UnboundedError, SolverFailedError
        """
        t0 = time.perf_counter() if t0 is None else t0
        self.set_inputs(ctx)
        solver = self.run(self.lp, order, mip=False)
        self.capture_duals()
        objective = float(self.lp.value)
        exact = False
        split = self.read().any()
        if split or (self.discrete and not all(c.relaxation_ok() for c in self.components)):
            # on/off devices: the LP was their relaxation (duals); now the MILP, with pair
            # binaries only where the LP split a pair, or where the MILP's own plan does
            pairs = self.needed_pairs() if split else frozenset()
            problem = self.milp(pairs)
            used = self.run(problem, ["highs"], mip=True)
            if self.read().any() and pairs != self.needed_pairs():
                problem = self.milp(self.needed_pairs())
                used = self.run(problem, ["highs"], mip=True)
            solver = "HIGHS (MILP)" if used == "HIGHS" else "HIGHS (MILP, stopped at time limit)"
            if self.read().any():  # cannot happen: binaries or netting cover every pair
                raise SolverFailedError("the exact re-solve still splits a flow pair")
            objective = float(problem.value)
            exact = True
        return Outcome(objective, solver, exact, self.outputs(), time.perf_counter() - t0)


def _options(name: str, mip: bool, options: dict | None) -> dict:
    """cvxpy's solver arguments: the MILP's HiGHS options (``options`` or
    :data:`MILP_OPTIONS`); SciPy's HiGHS with its ``highs`` method."""
    mip_opts = dict(MILP_OPTIONS if options is None else options) if mip else {}
    if name == "highs":
        return {"highs_options": mip_opts} if mip else {}
    if name == "scipy":
        return {"scipy_options": {"method": "highs", **mip_opts}}
    return {}
