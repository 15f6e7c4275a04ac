"""The compiled LP kept on disk (planner/optimize/_lpcache.py) and the fast quantile."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.core.site import quantile
from planner.inputs import gather as inputs
from planner.optimize import _highs, _lpcache, model

N = 96


def _cfg(backend: str = "highs"):
    return config.from_mapping({
        "planning": {"solver_backend": backend, "horizon_h": N / 4},
        "tariff": {"buy": "(price + 0.15) * 1.19", "sell": "price"},
        "battery": {"capacity_kwh": 10, "cycle_cost_eur_per_kwh": 0.02}})


def _inputs(cfg, k: int = 0, soc_pct: float = 40.0, n: int = N):
    rng = np.random.default_rng(3)
    t = np.arange(N + 10)
    spot = 0.1 + 0.08 * np.sin(2 * np.pi * t / 96) + rng.normal(0, 0.04, len(t))
    pv = np.clip(4 * np.sin(2 * np.pi * (t % 96 - 24) / 96), 0, None)
    load = rng.uniform(0.2, 1.5, len(t))
    start = pd.Timestamp("2026-05-01T00:00Z") + pd.Timedelta(minutes=15 * k)
    return inputs.from_arrays(start, 900, spot[k:k + n], pv[k:k + n], load[k:k + n], soc_pct,
                              cfg)


def _solve_fresh(cfg, k: int = 0):
    """A new Model (as a new process has) and its solve; the model too."""
    spec = model.ModelSpec.from_config(cfg, N, 900)
    m = model.Model(spec)
    return m, m.solve(_inputs(cfg, k), cfg)


def test_quantile_is_numpys_bit_for_bit():
    rng = np.random.default_rng(0)
    for t in range(3000):
        a = rng.normal(size=int(rng.integers(1, 300))) * 10.0 ** int(rng.integers(-3, 3))
        if t % 3 == 0:
            a = np.round(a, 2)  # ties
        q = float(rng.choice([0.0, 1.0, 0.5, 0.9, rng.random()]))
        assert quantile(a, q) == float(np.quantile(a, q)), (t, q)
    assert math.isnan(quantile(np.array([1.0, np.nan, 2.0]), 0.5))


def test_second_model_loads_the_compiled_data(tmp_path, monkeypatch):
    """The first model compiles and stores; a second one (another process in production)
    loads the file instead of compiling, and solves to the same plan as the compiled one and
    as cvxpy's path."""
    monkeypatch.setenv(_lpcache.ENV, str(tmp_path))
    cfg = _cfg()
    m1, a = _solve_fresh(cfg)
    assert not m1.problem._direct.from_cache
    files = list(tmp_path.glob("*.pickle"))
    assert len(files) == 1
    compiled = []
    monkeypatch.setattr(_highs, "compile_arrays",
                        lambda p, f=_highs.compile_arrays: compiled.append(1) or f(p))
    m2, b = _solve_fresh(cfg)
    assert m2.problem._direct.from_cache and not compiled
    assert b.solver == "HIGHS"
    assert abs(a.objective_eur - b.objective_eur) <= 1e-12
    np.testing.assert_array_equal(a.battery_charge_kw, b.battery_charge_kw)
    np.testing.assert_array_equal(a.energy_value_eur_per_kwh, b.energy_value_eur_per_kwh)
    ref_cfg = _cfg("cvxpy")
    _, ref = _solve_fresh(ref_cfg)
    assert abs(ref.objective_eur - b.objective_eur) <= 1e-9
    for k in range(1, 6):  # the hot-started re-plans of a loaded model
        x, y = (m.solve(_inputs(c, k, 30.0 + 9 * k), c) for m, c in ((m2, cfg), (m1, cfg)))
        assert abs(x.objective_eur - y.objective_eur) <= 1e-9


@pytest.mark.parametrize("damage", ["garbage", "other problem"])
def test_bad_file_is_compiled_again(tmp_path, monkeypatch, damage):
    monkeypatch.setenv(_lpcache.ENV, str(tmp_path))
    cfg = _cfg()
    _solve_fresh(cfg)
    (path,) = tmp_path.glob("*.pickle")
    if damage == "garbage":
        path.write_bytes(b"not a pickle")
    else:  # the arrays of a problem with other Parameters under this name
        other = model.Model(model.ModelSpec.from_config(cfg, N // 2, 900))
        other.set_inputs(_inputs(cfg, n=N // 2), cfg)
        _lpcache.save("x", _highs.compile_arrays(other.lp), other.lp)
        (other_path,) = [p for p in tmp_path.glob("*.pickle") if p != path]
        other_path.replace(path)
    m, sol = _solve_fresh(cfg)
    assert not m.problem._direct.from_cache
    assert sol.solver == "HIGHS"


def test_cache_off_and_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv(_lpcache.ENV, "off")
    assert _lpcache.directory() is None
    m, sol = _solve_fresh(_cfg())
    assert sol.solver == "HIGHS" and not m.problem._direct.from_cache
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(_lpcache.ENV, str(blocker / "lp"))  # under a file: cannot be made
    m, sol = _solve_fresh(_cfg())
    assert sol.solver == "HIGHS"


def test_extra_components_are_not_cached(tmp_path, monkeypatch):
    """A model with extra components has a structure its spec does not name: no file."""
    monkeypatch.setenv(_lpcache.ENV, str(tmp_path))
    spec = model.ModelSpec.from_config(_cfg(), N, 900)
    assert model.Model(spec).problem.cache_key is not None
    assert model.Model(spec, extra=[model.FixedLoad(name="second_load")]).problem.cache_key \
        is None
