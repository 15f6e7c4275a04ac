"""Solver choice, fallbacks and status → typed errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.core.errors import InfeasibleError, SolverFailedError, UnboundedError
from planner.inputs import gather as inputs
from planner.optimize import model
from planner.optimize._cvxpy import cp
from planner.plan import build as plan


def _case(solver: str = "highs", backend: str = "cvxpy"):
    """A 24 h case; ``backend``: cvxpy's path (what the monkeypatches below reach)."""
    cfg = config.from_mapping({"planning": {"solver": solver, "solver_backend": backend},
                               "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
                               "battery": {"cycle_cost_eur_per_kwh": 0.01}})
    rng = np.random.default_rng(3)
    n = 96
    data = inputs.from_arrays(pd.Timestamp("2026-05-01T00:00Z"), 900, rng.uniform(-0.1, 0.4, n),
                              rng.uniform(0, 5, n), rng.uniform(0.2, 2, n), 50, cfg)
    return cfg, data


def test_all_solvers_agree_and_pass_checks():
    objectives = {}
    for solver in ("highs", "clarabel", "ecos"):
        cfg, data = _case(solver)
        sol = model.solve(data, cfg)
        plan.check(data, sol, cfg)
        assert sol.solver == solver.upper()
        objectives[solver] = sol.objective_eur
    assert objectives["clarabel"] == pytest.approx(objectives["highs"], abs=1e-4)
    assert objectives["ecos"] == pytest.approx(objectives["highs"], abs=1e-4)


@pytest.mark.parametrize("exc", [
    cp.error.SolverError("simulated HiGHS crash"),
    # what cvxpy raises when HiGHS ends with status UNKNOWN and no solution to unpack
    ValueError("cannot reshape array of size 0"),
])
def test_fallback_when_first_solver_raises(monkeypatch, exc):
    cfg, data = _case("highs")
    m = model.get_model(model.ModelSpec.from_config(cfg, data.n, data.slot_s))
    original = cp.Problem.solve
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(kwargs.get("solver"))
        if kwargs.get("solver") == cp.HIGHS:
            raise exc
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cp.Problem, "solve", flaky)
    sol = m.solve(data, cfg)
    assert calls[:2] == [cp.HIGHS, cp.CLARABEL]
    assert sol.solver == "CLARABEL"
    plan.check(data, sol, cfg)


@pytest.mark.parametrize(("status", "error"), [
    (cp.INFEASIBLE, InfeasibleError), (cp.UNBOUNDED, UnboundedError),
])
def test_status_mapped_to_typed_errors(monkeypatch, status, error):
    cfg, data = _case()
    m = model.Model(model.ModelSpec.from_config(cfg, data.n, data.slot_s))

    def fake(self, *args, **kwargs):
        self._status = status  # what cvxpy's status property reads
        return None

    monkeypatch.setattr(cp.Problem, "solve", fake)
    monkeypatch.setattr(cp.Problem, "status", property(lambda self: status))
    with pytest.raises(error):
        m.solve(data, cfg)


def test_every_solver_failing_is_solver_failed_error(monkeypatch):
    cfg, data = _case()
    m = model.Model(model.ModelSpec.from_config(cfg, data.n, data.slot_s))

    def broken(self, *args, **kwargs):
        raise cp.error.SolverError("numerical trouble")

    monkeypatch.setattr(cp.Problem, "solve", broken)
    with pytest.raises(SolverFailedError, match="highs: numerical trouble; clarabel"):
        m.solve(data, cfg)
    assert SolverFailedError("x").exit_code == 4


def test_compiled_once_and_is_dpp():
    cfg, data = _case()
    spec = model.ModelSpec.from_config(cfg, data.n, data.slot_s)
    m = model.get_model(spec)
    assert m.lp.is_dpp()
    assert model.get_model(spec) is m
    first = m.solve(data, cfg).objective_eur
    # dearer buying only: the cost must rise, so the new numbers were used, not a cache
    dearer = inputs.from_arrays(data.index[0], 900, data.spot_eur_per_kwh, data.pv_kw,
                                data.load_kw, 50, cfg, buy_eur_per_kwh=data.buy_eur_per_kwh + 0.1,
                                sell_eur_per_kwh=data.sell_eur_per_kwh)
    second = m.solve(dearer, cfg)
    imported_kwh = second.grid_import_kw.sum() * data.dt_h
    assert imported_kwh > 1
    assert second.objective_eur > first + 0.05 * imported_kwh
