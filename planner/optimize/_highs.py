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

from planner.optimize._cvxpy import cp

#: HiGHS model statuses (``HighsModelStatus``) mapped to cvxpy's
_STATUS = {"kOptimal": cp.OPTIMAL, "kInfeasible": cp.INFEASIBLE, "kUnbounded": cp.UNBOUNDED,
           "kUnboundedOrInfeasible": cp.INFEASIBLE}
#: options of the persistent model: presolve would throw the hot-start basis away
#: (Devex pricing: ≈30 % fewer iterations from a hot start than dual steepest edge, whose
#: weights are reset when the model changes; ≈20 % less time per re-plan)
OPTIONS = {"output_flag": False, "log_to_console": False, "presolve": "off",
           "simplex_dual_edge_weight_strategy": 1}


def available() -> bool:
    """True when highspy can be imported (the direct backend needs it)."""
    try:
        import highspy  # noqa: F401  optional: without it the cvxpy path solves
    except ImportError:
        return False
    return True


class HighsLp:
    """One compiled LP (``problem``, a DPP ``cvxpy.Problem``) kept in one ``Highs`` model.

    After :meth:`solve`, the problem's Variables hold the solution and its constraints the
    duals (as after ``problem.solve``); :attr:`status`, :attr:`objective` as cvxpy names them.
    """

    def __init__(self, problem: Any):
        import highspy  # optional: the caller checked available()

        self.hp = highspy
        self.problem = problem
        data, _, _ = problem.get_problem_data(cp.HIGHS)
        prog = data[cp.settings.PARAM_PROB]
        self.prog = prog
        n = prog.x.size
        self.n_col = n
        # the parameter vector: (param id, column, size) in cvxpy's layout, plus the 1 at the end
        self._params = [(prog.id_to_param[pid], col, prog.param_id_to_size[pid])
                        for pid, col in prog.param_id_to_col.items()
                        if pid in prog.id_to_param]
        self._const_col = prog.param_id_to_col.get(-1, prog.total_param_size)
        self._pvec = np.zeros(prog.total_param_size + 1)
        self._pvec[self._const_col] = 1.0
        # objective c (n entries) and offset d (the last): q @ param_vec
        self._q = prog.q.tocsr()
        # A x + b ∈ cones: reduced_mat @ param_vec gives the CSC values of [A | b]
        red = prog.reduced_A
        red.cache(False)
        self._red = red.reduced_mat.tocsr()
        indices, indptr, shape = red.problem_data_index
        self.n_row = int(shape[0])
        self._a_end = int(indptr[n])
        self._a_index = np.asarray(indices[:self._a_end], dtype=np.int32)
        self._a_start = np.asarray(indptr[:n + 1], dtype=np.int32)
        self._b_index = np.asarray(indices[self._a_end:], dtype=np.int64)
        # rows: the zero cone first (equalities), then the nonnegative orthant (-Ax - b >= 0
        # in cvxpy's convention, i.e. A_h x <= b_h with A_h = -A)
        self.n_eq = int(prog.cone_dims.zero)
        self._lb_tensor, self._ub_tensor = prog.lb_tensor, prog.ub_tensor
        inf = highspy.kHighsInf
        self._c = self._cl = self._cu = self._b = np.zeros(0)
        lb, ub = prog.lower_bounds, prog.upper_bounds
        self._col_lower = np.full(n, -inf) if lb is None else np.asarray(lb, dtype=float)
        self._col_upper = np.full(n, inf) if ub is None else np.asarray(ub, dtype=float)
        self._col_lower = np.where(np.isfinite(self._col_lower), self._col_lower, -inf)
        self._col_upper = np.where(np.isfinite(self._col_upper), self._col_upper, inf)
        # where each Variable / constraint sits in the columns / rows
        self._vars = [(v, prog.var_id_to_col[v.id], v.size, v.shape) for v in prog.variables]
        offset, self._cons = 0, []
        for c in prog.constraints:
            self._cons.append((c.id, offset, c.size, c.shape))
            offset += c.size
        self._constraints = {c.id: c for c in problem.constraints}
        self.h = highspy.Highs()
        for key, value in OPTIONS.items():
            self.h.setOptionValue(key, value)
        self._a_value: np.ndarray | None = None
        self.status: str | None = None
        self.objective = float("nan")
        self.solves = 0

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
        """The current Parameters' c, d, the matrix values (HiGHS sign) and b."""
        p = self._pvec
        for param, col, size in self._params:
            value = param.value
            if value is None:
                raise ValueError(f"{param.name()}: no value")
            if size == 1:
                p[col] = value
            else:
                p[col:col + size] = np.ravel(value, order="F")
        q = self._q @ p
        flat = self._red @ p
        a_value = -flat[:self._a_end]
        b = np.zeros(self.n_row)
        b[self._b_index] = flat[self._a_end:]
        return q[:-1], float(q[-1]), a_value, b

    def solve(self, index: Any = None) -> str:
        """Solve with the current Parameter values; cvxpy's status name.

        Only what changed since the last solve is handed to HiGHS, which then starts from
        its last optimal basis. ``index``: unused (the slot starts, kept for a basis shift).
        """
        c, d, a_value, b = self._data()
        h = self.h
        row_lower = b.copy()
        row_lower[self.n_eq:] = -self.hp.kHighsInf
        col_lower, col_upper = self._col_lower, self._col_upper
        if self._lb_tensor is not None:
            col_lower = np.asarray(self._lb_tensor @ self._pvec).ravel()
        if self._ub_tensor is not None:
            col_upper = np.asarray(self._ub_tensor @ self._pvec).ravel()
        if self._a_value is None:
            h.passModel(self.n_col, self.n_row, self._a_end, 1, 1, 0.0, c, col_lower,
                        col_upper, row_lower, b, self._a_start[:-1], self._a_index, a_value,
                        np.zeros(self.n_col, dtype=np.int32))
        else:
            k = np.flatnonzero(c != self._c)
            if len(k):
                h.changeColsCost(len(k), k.astype(np.int32), c[k])
            k = np.flatnonzero((col_lower != self._cl) | (col_upper != self._cu))
            if len(k):
                h.changeColsBounds(len(k), k.astype(np.int32), col_lower[k], col_upper[k])
            k = np.flatnonzero(b != self._b)
            if len(k):
                h.changeRowsBounds(len(k), k.astype(np.int32), row_lower[k], b[k])
            changed = np.flatnonzero(a_value != self._a_value)
            if len(changed):
                cols = np.searchsorted(self._a_start, changed, side="right") - 1
                rows = self._a_index[changed]
                for r, j, v in zip(rows.tolist(), cols.tolist(), a_value[changed].tolist(),
                                   strict=True):
                    h.changeCoeff(r, j, v)
        self._c, self._cl, self._cu, self._b = c, col_lower, col_upper, b
        self._a_value = a_value
        h.run()
        self.solves += 1
        name = h.getModelStatus().name
        self.status = _STATUS.get(name, cp.SOLVER_ERROR)
        if self.status == cp.OPTIMAL:
            sol = h.getSolution()
            x = np.asarray(sol.col_value)
            y = -np.asarray(sol.row_dual)
            self.objective = h.getInfo().objective_function_value + d
            for var, col, size, shape in self._vars:
                var.save_value(x[col:col + size].reshape(shape, order="F"))
            for cid, off, size, shape in self._cons:
                con = self._constraints.get(cid)
                if con is not None:
                    con.save_dual_value(y[off:off + size].reshape(shape, order="F"))
        else:
            # no basis worth keeping: the next solve starts from scratch
            h.clearSolver()
        return self.status
