"""The LP straight to HiGHS: cvxpy compiles once, HiGHS keeps its model and basis.

cvxpy's own re-solve (``Problem.solve`` on a compiled DPP problem) rebuilds the solver's
data from the Parameters, makes a new ``highspy.Highs`` object with presolve on, hands it the
previous primal solution (not a basis) and inverts its reduction chain afterwards: ≈5.5 ms per
48 h × 15 min re-plan, of which HiGHS is ≈3 ms. :class:`HighsLp` takes the same compiled
problem data once (``cvxpy.Problem.get_problem_data``: the map from the Parameter vector to
``c``, ``A``, ``b`` and the column bounds) and then, per solve,

1. forms the Parameter vector and the data with three sparse products (the same
   arithmetic as cvxpy's ``apply_parameters``, without building scipy matrices),
2. updates one persistent ``Highs`` model — costs, row and column bounds, the matrix
   values that changed — so HiGHS keeps its factorised basis: a hot-started dual simplex
   from the previous optimum (presolve off, which would discard it), and
3. writes the primal values into the cvxpy Variables and the row duals into the
   constraints (``save_value`` / ``save_dual_value``, what cvxpy's inversion does for an LP
   whose variables map 1:1 onto HiGHS columns).

:meth:`HighsLp.solve_milp` solves the exact re-solve's MILP (the LP plus one binary per slot
of a flow pair, :meth:`Problem.milp`'s rows) in a second ``Highs`` model made from this one,
without cvxpy's compile and re-solve, so the LP's model and basis stay as they were.

The LP is exactly cvxpy's (same matrix, same bounds, same costs), so its optimum is the same;
where the LP has several optima, the hot start may pick another vertex of the same cost.
:meth:`HighsLp.supports` refuses problems this shortcut does not cover (integer variables,
cones other than equalities and inequalities, variables cvxpy rewrites), and the caller then
keeps cvxpy's path. ``planning.solver_backend`` chooses (``auto``: this one when highspy is
installed; ``cvxpy``: always cvxpy's path).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from planner.optimize import _lpcache
from planner.optimize._cvxpy import cp, hp

#: HiGHS model statuses (``HighsModelStatus``) mapped to cvxpy's
_STATUS = {"kOptimal": cp.OPTIMAL, "kInfeasible": cp.INFEASIBLE, "kUnbounded": cp.UNBOUNDED,
           "kUnboundedOrInfeasible": cp.INFEASIBLE}
#: HiGHS options of the first (cold) solve: cvxpy's, so that a single solve (``helios plan``)
#: takes the same path as cvxpy's and, where the LP has several optima, the same vertex
#: (without presolve the cold 48 h solve takes ≈4.8 ms instead of ≈7.7, but ends on another
#: vertex on ties, e.g. one battery charging from the other at no cost: not taken)
COLD_OPTIONS = {"output_flag": False, "log_to_console": False, "threads": 1}
#: options of the hot-started re-solves: presolve would throw the basis away; Devex pricing
#: (the dual steepest-edge weights are reset when the model changes) takes fewer iterations;
#: a dual feasibility tolerance of 1e-9 (default 1e-7) stops HiGHS from ending a hot start
#: on a vertex up to ≈1e-6 EUR above the optimum (cost coefficients of that size: the grid
#: hurdle's tail), so the direct backend matches cvxpy's optimum to 1e-9 EUR
HOT_OPTIONS = {"presolve": "off", "simplex_dual_edge_weight_strategy": 1,
               "dual_feasibility_tolerance": 1e-9}
#: options of the exact re-solve's MILP (:meth:`HighsLp.solve_milp`, a model of its own
#: beside the LP's); the caller adds the gaps and the time limit
MILP_BASE_OPTIONS = {"output_flag": False, "log_to_console": False}
#: HiGHS's sub-MIP heuristics RINS and RENS off: on the 48 h flow-pair MILPs of NL 2023
#: (-500 EUR/MWh) they found the optimum early and then took ≈55 % of the solve in 14
#: sub-MIPs; without them branch-and-bound finds and proves the same optimum (|Δ| <= 4e-11
#: EUR on 56 re-plans) with ≈45 % less CPU. Heuristics only: the optimality proof and the
#: gaps are HiGHS's as before
MILP_HEURISTICS = {"mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False}


#: model statuses after which :meth:`HighsLp.solve` runs again (refactorised, then cold)
#: before it gives up: no verdict, not a property of the LP
_RETRY = frozenset({"kUnknown", "kNotset", "kSolveError"})


def available() -> bool:
    """True when highspy is installed (the direct backend needs it)."""
    return hp is not None


class HighsLp:
    """One compiled LP (``problem``, a DPP ``cvxpy.Problem``) kept in one ``Highs`` model.

    After :meth:`solve`, the problem's Variables hold the solution and its constraints the
    duals (as after ``problem.solve``); :attr:`status`, :attr:`objective` as cvxpy names them.
    """

    def __init__(self, problem: Any, n_slots: int = 0, cache_key: str | None = None):
        highspy = self.hp = hp  # the caller checked available()
        self.problem = problem
        arrays = _lpcache.load(cache_key, problem) if cache_key else None
        if arrays is None:
            arrays = compile_arrays(problem)
            if cache_key:
                _lpcache.save(cache_key, arrays, problem)
        self.from_cache = arrays.get("cached", False)
        n = self.n_col = int(arrays["n_col"])
        self.n_row = int(arrays["n_row"])
        # the parameter vector: (Parameter, column, size) in cvxpy's layout, then the 1
        params = problem.parameters()
        self._params = [(params[i], int(col), int(size)) for i, col, size
                        in zip(arrays["param_index"], arrays["param_col"], arrays["param_size"],
                               strict=True)]
        self._pvec = np.zeros(int(arrays["total_param"]) + 1)
        self._pvec[int(arrays["const_col"])] = 1.0
        # [c, d, values of A, values of b] = tensor @ param_vec (cvxpy's q and reduced_mat)
        self._tensor = _csr(arrays, "tensor")
        self._a_index = arrays["a_index"].astype(np.int32)
        self._a_start = arrays["a_start"].astype(np.int32)
        self._a_end = int(self._a_start[n])
        self._b_index = arrays["b_index"].astype(np.int64)
        # the cvxpy column of every matrix entry
        self._a_col = np.repeat(np.arange(n, dtype=np.int64), np.diff(self._a_start))
        # rows: the zero cone first (equalities), then the nonnegative orthant (-Ax - b >= 0
        # in cvxpy's convention, i.e. A_h x <= b_h with A_h = -A)
        self.n_eq = int(arrays["n_eq"])
        self._is_eq = np.arange(self.n_row) < self.n_eq
        self._b = np.zeros(self.n_row)
        # the value HiGHS holds for every entry of cvxpy's structure (0: none), plus a 0 for
        # "no entry" (:meth:`_rotate`'s maps)
        self._a_held = np.zeros(self._a_end + 1)
        self._lb_tensor = _csr(arrays, "lb_tensor") if "lb_tensor_data" in arrays else None
        self._ub_tensor = _csr(arrays, "ub_tensor") if "ub_tensor_data" in arrays else None
        self._c = self._cl = self._cu = self._ru = self._rl = np.zeros(0)
        self._col_lower, self._col_upper = arrays["col_lower"], arrays["col_upper"]
        # where each Variable / constraint sits in the columns / rows
        variables = problem.variables()
        columns = [(int(i), int(col), int(size), _shape(shape)) for i, col, size, shape
                   in zip(arrays["var_index"], arrays["var_col"], arrays["var_size"],
                          arrays["var_shape"], strict=True)]
        #: (Variable, first column, size, shape) of the problem's own Variables (the
        #: auxiliary ones cvxpy adds have columns but nothing reads them)
        self._vars = [(variables[i], col, size, shape) for i, col, size, shape in columns
                      if i >= 0]
        cons = list(zip(arrays["con_index"].tolist(), arrays["con_off"].tolist(),
                        arrays["con_size"].tolist(), map(_shape, arrays["con_shape"]),
                        strict=True))
        #: (constraint, first row, size, shape) of the problem's own constraints
        self._cons = [(problem.constraints[i], off, size, shape)
                      for i, off, size, shape in cons if i >= 0]
        # HiGHS's column / row of each cvxpy column / row: per-slot blocks (a Variable or a
        # constraint of n_slots entries) rotate when "now" moves, so that a HiGHS column keeps
        # meaning the same time slot and its basis status stays a good start
        self.col_of = np.arange(n, dtype=np.int64)
        self.row_of = np.arange(self.n_row, dtype=np.int64)
        self._col_blocks = [(col, size) for _, col, size, shape in columns
                            if n_slots > 1 and shape == (n_slots,)]
        self._row_blocks = [(off, size) for _, off, size, shape in cons
                            if n_slots > 1 and shape == (n_slots,)]
        self._max_block = max([size for _, size in self._col_blocks + self._row_blocks],
                              default=0)
        self._t_ns: int | None = None  # the first slot's start of the last solve
        self._perms: dict[int, tuple] = {}  # slots moved -> :meth:`_shift_maps`
        self.h = highspy.Highs()
        for key, value in COLD_OPTIONS.items():
            self.h.setOptionValue(key, value)
        self._milp_h: Any = None  # :meth:`solve_milp`'s model (made on its first call)
        self._d = 0.0  # the objective's constant of the last solve
        self._var_col = {id(var): col for var, col, _, _ in self._vars}
        #: MILPs solved by :meth:`solve_milp`, the objective of the last optimal one [EUR]
        self.milp_solves = 0
        self.milp_objective = float("nan")
        self.status: str | None = None
        self.objective = float("nan")
        self.solves = 0
        #: solves that ended without a verdict and ran again (:data:`_RETRY`)
        self.retries = 0

    @staticmethod
    def supports(problem: Any) -> bool:
        """True when every Variable maps 1:1 onto HiGHS columns (continuous, no attributes
        other than bounds) and every constraint is an equality or inequality."""
        for v in problem.variables():
            attrs = {k for k, x in v.attributes.items() if x and k != "bounds"}
            if attrs:
                return False
        return all(isinstance(c, (cp.constraints.Equality, cp.constraints.Inequality,
                                  cp.constraints.Zero, cp.constraints.NonNeg))
                   for c in problem.constraints)

    def _data(self) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """The current Parameters' c, d, the matrix values (HiGHS sign, every entry of
        cvxpy's structure, zeros included) and b."""
        p = self._pvec
        for param, col, size in self._params:
            value = param._value  # what Parameter.value returns (dense Parameters)
            if value is None:
                raise ValueError(f"{param.name()}: no value")
            if size == 1:
                p[col] = value
            elif value.ndim == 1:
                p[col:col + size] = value
            else:
                p[col:col + size] = value.ravel(order="F")
        out = self._tensor @ p  # [c, d, values of A, values of b]
        n, a_end = self.n_col, self._a_end
        a_value = -out[n + 1:n + 1 + a_end]
        b = self._b
        b[self._b_index] = out[n + 1 + a_end:]
        return out[:n], float(out[n]), a_value, b

    def _rotate(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        """Rotate the per-slot blocks by the slots "now" moved since the last solve
        (``index``: the slot starts, a ``pandas.DatetimeIndex``); the map of cvxpy's matrix
        entries onto the entries they replace in HiGHS (entry ``e`` now sits where entry
        ``sigma[e]`` sat, :data:`nnz` = none) and the entries nothing replaces (``gone``)."""
        k = 0
        try:
            stamps = index.asi8
            t_ns, step_ns = int(stamps[0]), int(stamps[1] - stamps[0])
        except (AttributeError, IndexError, TypeError):
            t_ns = step_ns = None
        if t_ns is not None:
            last, self._t_ns = self._t_ns, t_ns
            if last is not None and step_ns > 0 and not (t_ns - last) % step_ns:
                k = (t_ns - last) // step_ns
        if not 0 < k < self._max_block:
            k = 0  # no block rotates: the identity (one cache entry for every such k)
        if k not in self._perms:
            self._perms[k] = self._shift_maps(k)
        cols, rows, sigma, gone = self._perms[k]
        if cols is not None:
            self.col_of, self.row_of = self.col_of[cols], self.row_of[rows]
        return sigma, gone

    def _shift_maps(self, k: int) -> tuple:
        """For a shift by ``k`` slots: the column and row permutations (None: identity) and
        the entry maps of :meth:`_rotate` (structural: computed once per ``k``)."""
        perms = []
        for size, blocks in ((self.n_col, self._col_blocks), (self.n_row, self._row_blocks)):
            perm = np.arange(size)
            for start, length in blocks:
                if 0 < k < length:
                    perm[start:start + length] = start + (np.arange(length) + k) % length
            perms.append(perm)
        cols, rows = perms
        nnz = self._a_end
        if not nnz or all((perm == np.arange(len(perm))).all() for perm in perms):
            return None, None, np.arange(nnz), np.zeros(0, dtype=np.int64)
        m = self.n_row
        key = self._a_col * m + self._a_index  # cvxpy's (column, row) of every entry
        order = np.argsort(key, kind="stable")
        target = cols[self._a_col] * m + rows[self._a_index]
        pos = np.minimum(np.searchsorted(key[order], target), nnz - 1)
        hit = key[order][pos] == target
        sigma = np.where(hit, order[pos], nnz)
        taken = np.zeros(nnz + 1, dtype=bool)
        taken[sigma] = True
        return cols, rows, sigma, np.flatnonzero(~taken[:nnz])

    def solve(self, index: Any = None) -> str:
        """Solve with the current Parameter values; cvxpy's status name.

        Only what changed since the last solve is handed to HiGHS, which then starts from
        its last optimal basis. ``index``: the slot starts; when "now" moved by k slots, the
        per-slot blocks rotate by k (:meth:`_rotate`), so the basis is the last one shifted.
        """
        c, d, a_value, b = self._data()
        self._d = d
        h, inf = self.h, self.hp.kHighsInf
        first = self.solves == 0 and self.status is None
        col_was, row_was = self.col_of, self.row_of
        sigma, gone = self._rotate(index)
        col_of, row_of, n, m = self.col_of, self.row_of, self.n_col, self.n_row
        ch, ruh, rlh = np.empty(n), np.empty(m), np.empty(m)
        ch[col_of], ruh[row_of] = c, b
        rlh[row_of] = np.where(self._is_eq, b, -inf)
        bounds = first or col_was is not col_of or self._lb_tensor is not None or (
            self._ub_tensor is not None)
        if bounds:
            col_lower, col_upper = self._col_lower, self._col_upper
            if self._lb_tensor is not None:
                col_lower = np.asarray(self._lb_tensor @ self._pvec).ravel()
            if self._ub_tensor is not None:
                col_upper = np.asarray(self._ub_tensor @ self._pvec).ravel()
            clh, cuh = np.empty(n), np.empty(n)
            clh[col_of], cuh[col_of] = col_lower, col_upper
        if first:
            nz = a_value != 0.0
            keys = col_of[self._a_col[nz]] * m + row_of[self._a_index[nz]]  # column-major
            order = np.argsort(keys, kind="stable")
            keys, vals = keys[order], a_value[nz][order]
            starts = np.searchsorted(keys // m, np.arange(n)).astype(np.int32)
            h.passModel(n, m, len(keys), 1, 1, 0.0, ch, clh, cuh, rlh, ruh, starts,
                        (keys % m).astype(np.int32), vals, np.zeros(n, dtype=np.int32))
        else:
            k = np.flatnonzero(ch != self._c).astype(np.int32)
            if len(k):
                h.changeColsCost(len(k), k, ch[k])
            if bounds:
                k = np.flatnonzero((clh != self._cl) | (cuh != self._cu)).astype(np.int32)
                if len(k):
                    h.changeColsBounds(len(k), k, clh[k], cuh[k])
            k = np.flatnonzero((ruh != self._ru) | (rlh != self._rl)).astype(np.int32)
            if len(k):
                h.changeRowsBounds(len(k), k, rlh[k], ruh[k])
            # the value HiGHS holds where each entry now sits (0: none), against the new one
            held = self._a_held
            moved = np.flatnonzero(a_value != held[sigma])
            if len(moved):
                cols, rows = col_of[self._a_col[moved]], row_of[self._a_index[moved]]
                for row, col, v in zip(rows.tolist(), cols.tolist(), a_value[moved].tolist(),
                                       strict=True):
                    h.changeCoeff(row, col, v)
            if len(gone):
                gone = gone[held[gone] != 0.0]
                for e in gone.tolist():  # an entry no new one replaces: remove it
                    h.changeCoeff(int(row_was[self._a_index[e]]), int(col_was[self._a_col[e]]),
                                  0.0)
        self._c, self._ru, self._rl = ch, ruh, rlh
        if bounds:
            self._cl, self._cu = clh, cuh
        self._a_held[:-1] = a_value
        _run(h)
        name = h.getModelStatus().name
        if name in _RETRY:
            # a hot start that ended without a verdict (kUnknown: primal feasible, a dual
            # infeasibility it did not remove; seen ≈0.6 % of the padded real-forecast
            # re-plans): the same basis refactorised almost always finishes it in a few
            # iterations, a cold start otherwise; cvxpy's path (≈35 ms) only after both
            self.retries += 1
            h.setBasis(h.getBasis())
            _run(h)
            name = h.getModelStatus().name
            if name in _RETRY:
                h.clearSolver()
                _run(h)
                name = h.getModelStatus().name
        if self.solves == 0:
            for key, value in HOT_OPTIONS.items():
                h.setOptionValue(key, value)
        self.solves += 1
        self.status = _STATUS.get(name, cp.SOLVER_ERROR)
        if self.status == cp.OPTIMAL:
            sol = h.getSolution()
            x = np.asarray(sol.col_value)[col_of]
            y = np.asarray(sol.row_dual)[row_of]
            np.negative(y, out=y)
            self.objective = h.getObjectiveValue() + d
            self._save(x)
            for con, off, size, shape in self._cons:
                con.save_dual_value(y[off:off + size].reshape(shape, order="F"))
        else:
            # no basis worth keeping: the next solve starts from scratch
            h.clearSolver()
        return self.status


    def _save(self, x: np.ndarray) -> None:
        """The values of cvxpy's columns ``x`` into the problem's Variables."""
        for var, col, size, shape in self._vars:
            var._value = x[col:col + size].reshape(shape, order="F")  # Leaf.save_value

    def solve_milp(self, binaries: list[tuple[Any, float, Any, float, np.ndarray]],
                   options: dict[str, Any]) -> str:
        """The last LP with exclusive pairs in some slots, as a MILP in a second model; the
        status (cvxpy's name). ``binaries``: ``(a, bound_a, b, bound_b, slots)`` for each
        pair, its two flows' Variables (columns in ``[0, bound]``) and the slots that get a
        binary ``δ`` (``a <= bound_a·δ``, ``b <= bound_b·(1 − δ)``, the rows of
        :meth:`Problem.milp`); ``options``: HiGHS's (gaps, time limit). When optimal, the
        Variables hold the solution and :attr:`milp_objective` its objective; the LP's
        model and basis are left as they were (the next :meth:`solve` hot-starts as usual).
        Only after an optimal :meth:`solve` of the current Parameters.
        """
        if self.status != cp.OPTIMAL:
            return cp.SOLVER_ERROR
        highspy = self.hp
        # a new model each time: HiGHS's time limit counts every run() of a model
        self._milp_h = highspy.Highs()
        for key, value in {**MILP_BASE_OPTIONS, **MILP_HEURISTICS, "threads": 1}.items():
            self._milp_h.setOptionValue(key, value)
        m, n, inf = self._milp_h, self.n_col, highspy.kHighsInf
        for key, value in options.items():
            m.setOptionValue(key, value)
        m.passModel(self.h.getLp())
        # per slot with a binary δ: a - bound_a·δ <= 0 and b + bound_b·δ <= bound_b, two
        # entries per row
        index, value, upper = [], [], []
        k = 0
        for a, bound_a, b, bound_b, slots in binaries:
            slots = np.asarray(slots, dtype=np.int64)
            ones, delta = np.ones(len(slots)), n + k + np.arange(len(slots))
            k += len(slots)
            for flow, coeff, ub in ((a, -float(bound_a), 0.0),
                                    (b, float(bound_b), float(bound_b))):
                col = self.col_of[self._var_col[id(flow)] + slots]
                index.append(np.column_stack([col, delta]).ravel())
                value.append(np.column_stack([ones, coeff * ones]).ravel())
                upper.append(np.full(len(slots), ub))
        if not k:
            return cp.SOLVER_ERROR
        m.addCols(k, np.zeros(k), np.zeros(k), np.ones(k), 0, np.zeros(k, dtype=np.int32),
                  np.zeros(0, dtype=np.int32), np.zeros(0))
        rows = 2 * k
        m.addRows(rows, np.full(rows, -inf), np.concatenate(upper), 2 * rows,
                  np.arange(0, 2 * rows, 2, dtype=np.int32),
                  np.concatenate(index).astype(np.int32), np.concatenate(value))
        m.changeColsIntegrality(k, np.arange(n, n + k, dtype=np.int32),
                                np.full(k, highspy.HighsVarType.kInteger))
        _run(m)
        self.milp_solves += 1
        name = m.getModelStatus().name
        status = _STATUS.get(name, cp.SOLVER_ERROR)
        if status == cp.OPTIMAL:
            x = np.asarray(m.getSolution().col_value)[:n][self.col_of]
            self.milp_objective = m.getObjectiveValue() + self._d
            self._save(x)
        return status


def _run(h: Any) -> None:
    """``h.run()`` with one thread (``threads`` 1 in its options): HiGHS's default starts a
    second worker whose spinning costs CPU and, in the MILP, ≈25 % more CPU for the same
    nodes. HiGHS's scheduler is global: when an earlier run() in this process started it with
    more threads (cvxpy's HiGHS calls use the default), it refuses 1 (status kNotset); the
    model then runs again with the scheduler's own count."""
    if h.run() == hp.HighsStatus.kError and h.getModelStatus().name == "kNotset":
        h.setOptionValue("threads", 0)
        h.run()


def compile_arrays(problem: Any) -> dict[str, Any]:
    """cvxpy's compiled data of ``problem`` (``get_problem_data``) as the plain arrays
    :class:`HighsLp` needs, every cvxpy object named by its position (in
    ``problem.parameters()``, ``problem.variables()``, ``problem.constraints``), so that
    they can be stored and reused by another process (:mod:`._lpcache`)."""
    data, _, _ = problem.get_problem_data(cp.HIGHS)
    prog = data[cp.settings.PARAM_PROB]
    n = prog.x.size
    params = {p.id: i for i, p in enumerate(problem.parameters())}
    cols = [(params[pid], col, prog.param_id_to_size[pid])
            for pid, col in prog.param_id_to_col.items() if pid in prog.id_to_param]
    red = prog.reduced_A
    red.cache(False)
    tensor = sp.vstack([sp.csr_array(prog.q), sp.csr_array(red.reduced_mat)], format="csr")
    indices, indptr, shape = red.problem_data_index
    inf = hp.kHighsInf
    lb, ub = prog.lower_bounds, prog.upper_bounds
    col_lower = np.full(n, -inf) if lb is None else np.asarray(lb, dtype=float)
    col_upper = np.full(n, inf) if ub is None else np.asarray(ub, dtype=float)
    variables = {v.id: i for i, v in enumerate(problem.variables())}
    own = {c.id: i for i, c in enumerate(problem.constraints)}
    offset, con = 0, []
    for c in prog.constraints:
        con.append((own.get(c.id, -1), offset, c.size, c.shape))
        offset += c.size
    out = {
        "n_col": n, "n_row": int(shape[0]), "n_eq": int(prog.cone_dims.zero),
        "total_param": prog.total_param_size,
        "const_col": prog.param_id_to_col.get(-1, prog.total_param_size),
        "param_index": [c[0] for c in cols], "param_col": [c[1] for c in cols],
        "param_size": [c[2] for c in cols],
        "a_index": indices[:int(indptr[n])], "a_start": indptr[:n + 1],
        "b_index": indices[int(indptr[n]):],
        "col_lower": np.where(np.isfinite(col_lower), col_lower, -inf),
        "col_upper": np.where(np.isfinite(col_upper), col_upper, inf),
        "var_index": [variables.get(v.id, -1) for v in prog.variables],  # -1: cvxpy's own
        "var_col": [prog.var_id_to_col[v.id] for v in prog.variables],
        "var_size": [v.size for v in prog.variables],
        "var_shape": [_pad(v.shape) for v in prog.variables],
        "con_index": [c[0] for c in con], "con_off": [c[1] for c in con],
        "con_size": [c[2] for c in con], "con_shape": [_pad(c[3]) for c in con],
        **_csr_arrays("tensor", tensor),
    }
    for name, t in (("lb_tensor", prog.lb_tensor), ("ub_tensor", prog.ub_tensor)):
        if t is not None:
            out.update(_csr_arrays(name, sp.csr_array(t)))
    out = {k: np.asarray(v) for k, v in out.items()}
    for key in ("param_index", "param_col", "param_size", "var_index", "var_col", "var_size",
                "con_index", "con_off", "con_size"):
        out[key] = out[key].astype(np.int64).reshape(-1)
    for key in ("var_shape", "con_shape"):
        out[key] = out[key].astype(np.int64).reshape(-1, 3)
    return out


def _pad(shape: tuple) -> list[int]:
    """A shape of up to 2 dimensions as [ndim, d0, d1] (stored as integers)."""
    return [len(shape), *shape, *[0] * (2 - len(shape))]


def _shape(padded: np.ndarray) -> tuple:
    """:func:`_pad`'s inverse."""
    ndim = int(padded[0])
    return tuple(int(x) for x in padded[1:1 + ndim])


def _csr_arrays(name: str, m: Any) -> dict[str, np.ndarray]:
    m = sp.csr_array(m)
    return {f"{name}_data": m.data, f"{name}_indices": m.indices, f"{name}_indptr": m.indptr,
            f"{name}_shape": np.asarray(m.shape)}


def _csr(arrays: dict, name: str) -> Any:
    return sp.csr_array((arrays[f"{name}_data"], arrays[f"{name}_indices"],
                         arrays[f"{name}_indptr"]),
                        shape=tuple(int(x) for x in arrays[f"{name}_shape"]))
