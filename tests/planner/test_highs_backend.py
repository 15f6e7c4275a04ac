"""The direct HiGHS backend (planner/optimize/_highs.py) against cvxpy's path, the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.core.errors import ConfigError
from planner.inputs import gather as inputs
from planner.optimize import _highs, model, problem
from planner.optimize._cvxpy import cp
from planner.plan import build as plan

N = 96


def _cfg(backend: str, wear: float = 0.02, **planning):
    return config.from_mapping({
        "planning": {"solver_backend": backend, "horizon_h": N / 4, **planning},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": wear}})


def _series(seed: int = 5, length: int = N + 40):
    """Prices with a daily shape and noise, PV by day, a load: re-plan windows slide over it."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    spot = 0.12 + 0.08 * np.sin(2 * np.pi * t / 96) + rng.normal(0, 0.03, length)
    pv = np.clip(4 * np.sin(2 * np.pi * (t % 96 - 24) / 96), 0, None) * rng.uniform(0.5, 1, length)
    load = rng.uniform(0.2, 1.5, length)
    return spot, pv, load


def _window(cfg, k: int, series, soc_pct: float = 50.0):
    spot, pv, load = series
    start = pd.Timestamp("2026-05-01T00:00Z") + pd.Timedelta(minutes=15 * k)
    return inputs.from_arrays(start, 900, spot[k:k + N], pv[k:k + N], load[k:k + N], soc_pct,
                              cfg)


def test_rolling_replans_match_cvxpy():
    """Forty re-plans one slot apart (what the backtest does): each hot-started direct solve
    has cvxpy's optimum to 1e-9 EUR and passes the plan checks."""
    series = _series()
    cfgs = {b: _cfg(b) for b in ("cvxpy", "highs")}
    spec = model.ModelSpec.from_config(cfgs["cvxpy"], N, 900)
    models = {b: model.Model(spec) for b in cfgs}
    for k in range(40):
        soc = 20.0 + (k * 7) % 70
        sols = {b: models[b].solve(_window(cfgs[b], k, series, soc), cfgs[b]) for b in cfgs}
        a, b = sols["cvxpy"], sols["highs"]
        assert abs(a.objective_eur - b.objective_eur) <= 1e-9, k
        assert b.solver == "HIGHS"
        plan.check(_window(cfgs["highs"], k, series, soc), b, cfgs["highs"])
    direct = models["highs"].problem._direct
    assert direct is not None and direct.solves == 40
    assert models["cvxpy"].problem._direct is None


def test_outage_limits_and_negative_prices_match_cvxpy():
    """Per-slot limits (an outage: import/export 0) change matrix coefficients, negative
    prices make the LP split a pair (the exact MILP then runs through cvxpy on both)."""
    spot, pv, load = _series(seed=9)
    spot = spot.copy()
    spot[30:50] = -0.6  # buy < 0: without wear, burning energy in the losses pays
    series = (spot, pv, load)
    cfgs = {b: _cfg(b, wear=0.0) for b in ("cvxpy", "highs")}
    spec = model.ModelSpec.from_config(cfgs["cvxpy"], N, 900)
    models = {b: model.Model(spec) for b in cfgs}
    down = np.full(N, np.inf)
    down[10:20] = 0.0
    milp = 0
    for k, limits in ((0, None), (1, model.SlotLimits(import_kw=down, export_kw=down)),
                      (2, None), (3, model.SlotLimits(charge_kw=2.0))):
        sols = {b: models[b].solve(_window(cfgs[b], k, series), cfgs[b], limits)
                for b in cfgs}
        a, b = sols["cvxpy"], sols["highs"]
        assert abs(a.objective_eur - b.objective_eur) <= 1e-9, k
        assert a.exact_milp == b.exact_milp
        milp += b.exact_milp
    assert milp  # the exact re-solve was reached
    # the direct backend solved every MILP in its own HiGHS model, never through cvxpy
    assert models["highs"].problem._direct.milp_solves == milp
    assert not models["highs"].problem._milp and models["cvxpy"].problem._milp


def _negative_case(wear: float = 0.0):
    """A window with buy < 0 for 5 h: without wear the LP burns energy in the battery's
    losses (charge and discharge at once), so the exact MILP re-solve runs."""
    spot, pv, load = _series(seed=9)
    spot = spot.copy()
    spot[30:50] = -0.6
    return spot, pv, load


def _exclusive(problem) -> bool:
    """No pair of the solved problem has both flows positive in one slot."""
    problem.read()
    return not any(p.split().any() for p in problem.pairs)


def test_direct_milp_is_taken_and_matches_cvxpy():
    """Negative prices, rolling re-plans: the direct backend's MILP (binaries added to a copy
    of the persistent LP model) reaches cvxpy's MILP optimum to 1e-9 EUR with exclusive
    flows, and the next LP still hot-starts from the LP's basis."""
    series = _negative_case()
    cfgs = {b: _cfg(b, wear=0.0) for b in ("cvxpy", "highs")}
    spec = model.ModelSpec.from_config(cfgs["cvxpy"], N, 900)
    models = {b: model.Model(spec) for b in cfgs}
    for k in range(0, 12, 3):
        sols = {b: models[b].solve(_window(cfgs[b], k, series), cfgs[b]) for b in cfgs}
        a, b = sols["cvxpy"], sols["highs"]
        assert a.exact_milp and b.exact_milp
        assert b.solver == a.solver == "HIGHS (MILP)"
        assert abs(a.objective_eur - b.objective_eur) <= 1e-9, k
        for m in models.values():
            assert _exclusive(m.problem)
        plan.check(_window(cfgs["highs"], k, series), b, cfgs["highs"])
    direct = models["highs"].problem._direct
    assert direct.milp_solves == 4 and direct.solves == 4
    assert not models["highs"].problem._milp  # cvxpy's MILP never compiled


@pytest.mark.parametrize("status", [cp.USER_LIMIT, cp.SOLVER_ERROR])
def test_direct_milp_not_optimal_falls_back_to_cvxpy_milp(monkeypatch, status):
    """When the direct MILP does not end optimal (a time limit, HiGHS trouble) the full
    MILP runs through cvxpy as before: the same optimum, exclusive flows."""
    series = _negative_case()
    cfgs = {b: _cfg(b, wear=0.0) for b in ("cvxpy", "highs")}
    spec = model.ModelSpec.from_config(cfgs["cvxpy"], N, 900)
    reference = model.Model(spec).solve(_window(cfgs["cvxpy"], 0, series), cfgs["cvxpy"])
    calls = []

    def stopped(self, binaries, options):
        calls.append(sum(len(slots) for *_, slots in binaries))
        return status

    monkeypatch.setattr(_highs.HighsLp, "solve_milp", stopped)
    m = model.Model(spec)
    sol = m.solve(_window(cfgs["highs"], 0, series), cfgs["highs"])
    # the battery's binaries where splitting can pay (the 20 slots at buy < 0 and the LP's
    # split ones), then in every slot (the grid pair nets freely)
    assert len(calls) == 2 and 20 <= calls[0] < N and calls[1] == N
    assert sol.exact_milp and sol.solver == "HIGHS (MILP)"
    assert sol.objective_eur == pytest.approx(reference.objective_eur, abs=1e-9)
    assert m.problem._milp and _exclusive(m.problem)


def test_reduced_milp_matches_the_full_milp_on_rolling_replans(monkeypatch):
    """Rolling re-plans over 5 h at buy < 0 (with and without wear): the first direct MILP,
    binaries only in Problem.burn_slots, is the answer (no second MILP) and has the full
    MILP's objective (one binary per slot, solved on the same LP) to 1e-9 EUR."""
    series = _negative_case()
    solve_milp = _highs.HighsLp.solve_milp
    calls = []

    def spy(self, binaries, options):
        calls.append(sum(len(slots) for *_, slots in binaries))
        return solve_milp(self, binaries, options)

    monkeypatch.setattr(_highs.HighsLp, "solve_milp", spy)
    for wear in (0.0, 0.002):
        cfg = _cfg("highs", wear=wear)
        m = model.Model(model.ModelSpec.from_config(cfg, N, 900))
        for k in range(0, 16, 5):
            calls.clear()
            sol = m.solve(_window(cfg, k, series), cfg)
            assert sol.exact_milp and sol.solver == "HIGHS (MILP)" and _exclusive(m.problem)
            assert len(calls) == 1 and calls[0] < N, (wear, k, calls)
            pr = m.problem
            pr.set_inputs(model.context(_window(cfg, k, series), cfg))
            pr.run(pr.lp, ["highs"], mip=False, backend="highs")
            full = [(p.a.x, p.a.bound, p.b.x, p.b.bound, np.arange(N))
                    for p in pr.pairs if p.needs_binaries()]
            assert solve_milp(pr._direct, full, dict(problem.MILP_OPTIONS)) == cp.OPTIMAL
            assert abs(pr._direct.milp_objective - sol.objective_eur) <= 1e-9, (wear, k)


def test_reduced_milp_that_splits_elsewhere_falls_back_to_the_full_milp(monkeypatch):
    """When the first MILP's plan splits a pair in a slot without a binary (here: binaries
    kept in one slot only, so the plan burns energy in the other slots at buy < 0), it is
    only a relaxation: the full MILP runs next, and its optimum is the answer."""
    series = _negative_case()
    cfgs = {b: _cfg(b, wear=0.0) for b in ("cvxpy", "highs")}
    spec = model.ModelSpec.from_config(cfgs["cvxpy"], N, 900)
    reference = model.Model(spec).solve(_window(cfgs["cvxpy"], 0, series), cfgs["cvxpy"])
    solve_milp = _highs.HighsLp.solve_milp
    calls, splits = [], []

    def spy(self, binaries, options):
        calls.append(sum(len(slots) for *_, slots in binaries))
        status = solve_milp(self, binaries, options)
        splits.append(any(np.minimum(a.value, b.value).max() > 1e-6
                          for a, _, b, _, _ in binaries))
        return status

    def one_slot(self, ctx):
        only = np.zeros(self.n, dtype=bool)
        only[40] = True
        return {p.name: only for p in self.pairs if p.needs_binaries()}

    monkeypatch.setattr(_highs.HighsLp, "solve_milp", spy)
    monkeypatch.setattr(problem.Problem, "burn_slots", one_slot)
    m = model.Model(spec)
    sol = m.solve(_window(cfgs["highs"], 0, series), cfgs["highs"])
    assert calls == [1, N] and splits == [True, False]
    assert sol.exact_milp and sol.solver == "HIGHS (MILP)" and _exclusive(m.problem)
    assert abs(sol.objective_eur - reference.objective_eur) <= 1e-9


def test_direct_milp_gets_the_time_limit_left(monkeypatch):
    """The direct MILP gets planning.milp_time_limit_s minus what the LP took, on a fresh
    HiGHS model each time (HiGHS's clock counts every run() of a model: a reused one would
    stop the later MILPs early)."""
    series = _negative_case()
    cfg = _cfg("highs", wear=0.0, milp_time_limit_s=3.0)
    m = model.Model(model.ModelSpec.from_config(cfg, N, 900))
    limits, models = [], []
    solve_milp = _highs.HighsLp.solve_milp

    def spy(self, binaries, options):
        limits.append(options["time_limit"])
        status = solve_milp(self, binaries, options)
        models.append(self._milp_h)
        return status

    monkeypatch.setattr(_highs.HighsLp, "solve_milp", spy)
    for k in range(2):
        sol = m.solve(_window(cfg, k, series), cfg)
        assert sol.exact_milp and not sol.milp_stopped and _exclusive(m.problem)
    assert len(limits) == 2 and all(0.0 < t <= 3.0 for t in limits)
    assert models[0] is not models[1]


def test_direct_failure_falls_back_to_cvxpy(monkeypatch):
    """A direct solve that does not end optimal (or raises) is repeated through cvxpy, which
    names the status; the plan is the same."""
    series = _series()
    cfg = _cfg("highs")
    data = _window(cfg, 0, series)
    reference = model.Model(model.ModelSpec.from_config(cfg, N, 900)).solve(
        data, _cfg("cvxpy"))
    m = model.Model(model.ModelSpec.from_config(cfg, N, 900))
    calls = []

    def broken(self, index=None):
        calls.append(index)
        raise RuntimeError("simulated HiGHS trouble")

    monkeypatch.setattr(_highs.HighsLp, "solve", broken)
    sol = m.solve(data, cfg)
    assert len(calls) == 1
    assert sol.solver == "HIGHS"
    assert sol.objective_eur == pytest.approx(reference.objective_eur, abs=1e-9)
    monkeypatch.setattr(_highs.HighsLp, "solve", lambda self, index=None: cp.SOLVER_ERROR)
    assert m.solve(data, cfg).objective_eur == pytest.approx(reference.objective_eur, abs=1e-9)


def test_backend_is_a_checked_config_key():
    with pytest.raises(ConfigError, match="planning.solver_backend"):
        _cfg("gurobi")
    assert config.from_mapping({}).planning.solver_backend == "auto"


def test_auto_uses_the_direct_backend_and_other_solvers_do_not():
    series = _series()
    m = model.Model(model.ModelSpec.from_config(_cfg("auto"), N, 900))
    m.solve(_window(_cfg("auto"), 0, series), _cfg("auto"))
    assert m.problem._direct is not None and m.problem._direct.solves == 1
    # another first solver (Clarabel) goes through cvxpy whatever the backend
    clarabel = _cfg("highs", solver="clarabel")
    m2 = model.Model(model.ModelSpec.from_config(clarabel, N, 900))
    assert m2.solve(_window(clarabel, 0, series), clarabel).solver == "CLARABEL"
    assert m2.problem._direct is None


def test_unsupported_problem_keeps_cvxpy():
    x = cp.Variable(3, integer=True)
    assert not _highs.HighsLp.supports(cp.Problem(cp.Minimize(cp.sum(x)), [x >= 0]))
    y = cp.Variable(3, bounds=[0, 1])
    assert _highs.HighsLp.supports(cp.Problem(cp.Minimize(cp.sum(y)), [cp.sum(y) == 1]))


@pytest.mark.parametrize("unknown_runs, retries_to", [(1, "refactorised"), (2, "cold"),
                                                      (3, "cvxpy")])
def test_hot_start_without_a_verdict_runs_again(monkeypatch, unknown_runs, retries_to):
    """A hot start that ends kUnknown (primal feasible, a dual infeasibility left: seen on
    ≈0.6 % of the padded real-forecast re-plans) runs again from the same basis refactorised,
    then cold, and only then goes through cvxpy; the optimum is the reference's each time."""
    series = _series()
    cfg = _cfg("highs")
    m = model.Model(model.ModelSpec.from_config(cfg, N, 900))
    m.solve(_window(cfg, 0, series), cfg)  # the hot start's basis
    data = _window(cfg, 1, series, 35.0)
    reference = model.Model(model.ModelSpec.from_config(cfg, N, 900)).solve(
        data, _cfg("cvxpy"))
    real_status = _highs.hp.Highs.getModelStatus
    runs = {"n": 0}

    class Unknown:
        name = "kUnknown"

    real_run = _highs._run

    def counting_run(h):
        runs["n"] += 1
        real_run(h)

    def status(h):
        return Unknown() if runs["n"] <= unknown_runs else real_status(h)

    monkeypatch.setattr(_highs, "_run", counting_run)
    monkeypatch.setattr(_highs.hp.Highs, "getModelStatus", status)
    direct = m.problem._direct
    sol = m.solve(data, cfg)
    assert sol.objective_eur == pytest.approx(reference.objective_eur, abs=1e-9)
    plan.check(data, sol, cfg)
    assert direct.retries == 1
    assert runs["n"] == min(unknown_runs + 1, 3)
    assert m.problem._direct_done == (retries_to != "cvxpy")
