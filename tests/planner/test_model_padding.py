"""A shorter solve padded into a longer model (``pad_to`` of ``planner.optimize.model.context``).

The real-forecast backtest re-plans to the last published price, so the horizon length changes
every slot; every re-plan runs in one model of the longest horizon with the slots past its own
end padded (no price, no PV, no load, every flow 0, no reserve). These tests check that a padded
solve *is* the short solve: the same optimum as a model of exactly that length (and as the
independent reference formulation), a plan of the solve's own length that passes the physics
checks, the reserve, the final target and the exact negative-price re-solve unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import reference_lp as ref
from test_model import GOLDEN, GOLDEN_CFG, _golden_inputs, verify

from planner import config
from planner.inputs import gather as inputs
from planner.optimize import model


def _cut(data, start: int, m: int, soc_pct: float | None = None):
    """Slots ``start .. start + m`` of ``data`` (a 48 h golden window) as inputs of ``m``."""
    w = slice(start, start + m)
    return replace(data, index=data.index[w], spot_eur_per_kwh=data.spot_eur_per_kwh[w],
                   buy_eur_per_kwh=data.buy_eur_per_kwh[w],
                   sell_eur_per_kwh=data.sell_eur_per_kwh[w], pv_kw=data.pv_kw[w],
                   load_kw=data.load_kw[w], now=data.index[start],
                   soc_start_pct=data.soc_start_pct if soc_pct is None else soc_pct)


def _cfg(battery: dict | None = None, planning: dict | None = None):
    doc = {**GOLDEN_CFG, "battery": {**GOLDEN_CFG["battery"], **(battery or {})},
           "planning": {**GOLDEN_CFG["planning"], **(planning or {})}}
    return config.from_mapping(doc)


def _short(cfg, data):
    """The reference: a model of exactly the solve's length."""
    return model.Model(model.ModelSpec.from_config(cfg, data.n, data.slot_s)).solve(data, cfg)


@pytest.mark.parametrize("name", ["dk1_minus440", "se3_spike707", "dk1_dst_spring"])
@pytest.mark.parametrize("planning", [{}, {"grid_hurdle_eur_per_kwh": 0.03}])
def test_padded_solve_is_the_short_solve(data_dir, name, planning):
    prices, pv, load, start, battery, _ = GOLDEN[name]
    # a reserve above the start: the shortfall costs in the solve's slots, not in the padding
    cfg = _cfg({**(battery or {}), "reserve_soc_pct": 40}, planning)
    data = _golden_inputs(data_dir, prices, pv, load, start, cfg)
    padded = model.Model(model.ModelSpec.from_config(cfg, 192, data.slot_s))
    assert padded.paddable
    for begin, m, soc in ((0, 1, 20.0), (5, 37, 20.0), (40, 100, 80.0), (0, 191, 20.0),
                          (0, 192, 20.0)):
        short_in = _cut(data, begin, m, soc)
        sol = padded.solve(short_in, cfg)
        want = _short(cfg, short_in)
        for field in ("grid_import_kw", "battery_charge_kw", "soc_kwh",
                      "reserve_shortfall_kwh", "energy_value_eur_per_kwh"):
            assert len(getattr(sol, field)) == m, field
        assert sol.objective_eur == pytest.approx(want.objective_eur, abs=1e-7)
        assert sol.terminal_value_eur_per_kwh == want.terminal_value_eur_per_kwh
        assert sol.energy_cost_eur + sol.wear_cost_eur == pytest.approx(
            want.energy_cost_eur + want.wear_cost_eur, abs=1e-3)
        # the physics of the m slots and the reference formulation's optimum of them
        verify(short_in, cfg, sol)
        # the reserve was short at the start and is charged in the solve's slots only
        if soc < 40:
            assert sol.reserve_shortfall_kwh[0] > 0
        assert float(sol.reserve_shortfall_kwh.sum()) == pytest.approx(
            float(want.reserve_shortfall_kwh.sum()), abs=1e-6)


def test_padded_solve_keeps_the_final_target_and_the_exact_resolve(data_dir):
    # without wear the LP burns energy in the battery at -440 EUR/MWh: the padded model takes
    # the exact (MILP) re-solve as the short one does; a final SoC target applies at the end
    # of the solve's own slots
    prices, pv, load, start, battery, _ = GOLDEN["dk1_minus440_no_wear"]
    for extra in ({}, {"final_soc_pct": 90}):
        cfg = _cfg({**battery, **extra})
        data = _golden_inputs(data_dir, prices, pv, load, start, cfg)
        padded = model.Model(model.ModelSpec.from_config(cfg, 192, data.slot_s))
        short_in = _cut(data, 24, 120)
        sol, want = padded.solve(short_in, cfg), _short(cfg, short_in)
        assert sol.exact_milp and want.exact_milp
        assert sol.objective_eur == pytest.approx(want.objective_eur, abs=1e-6)
        c = verify(short_in, cfg, sol)
        assert c.lp_splits
        if extra:
            assert sol.soc_kwh[-1] == pytest.approx(9.0, abs=1e-6)
            assert sol.final_shortfall_kwh == pytest.approx(0.0, abs=1e-9)


def test_rolling_padded_replans_match_fresh_models(data_dir):
    # what the real-forecast loop does: "now" moves one slot per re-plan, the horizon shrinks
    # by one until the next day's prices are published, then jumps; one padded model,
    # hot-started from the re-plan before, against a fresh model of each length
    prices, pv, load, start, battery, _ = GOLDEN["se3_spike707"]
    cfg = _cfg(planning={"grid_hurdle_eur_per_kwh": 0.03})
    data = _golden_inputs(data_dir, prices, pv, load, start, cfg)
    padded = model.Model(model.ModelSpec.from_config(cfg, 144, data.slot_s))
    soc = 35.0
    lengths = [60 - t for t in range(12)] + [140 - t for t in range(12)]
    for t, m in enumerate(lengths):
        short_in = _cut(data, t, min(m, data.n - t), soc)
        sol = padded.solve(short_in, cfg)
        want = _short(cfg, short_in)
        assert sol.objective_eur == pytest.approx(want.objective_eur, abs=1e-7), (t, m)
        assert ref.compare(short_in, cfg, sol).max_balance_kw <= 1e-6
        soc = float(np.clip(sol.soc_kwh[0] / 10 * 100, 0, 100))  # follow the plan
    assert padded.problem._direct is not None and padded.problem._direct.solves == len(lengths)


def test_a_model_with_devices_is_not_padded():
    cfg = config.from_mapping({**GOLDEN_CFG, "water_heater": {
        "power_kw": 2.0, "daily_kwh": 4.0, "window": {"from": "02:00", "to": "06:00"}}})
    m = model.Model(model.ModelSpec.from_config(cfg, 8, 3600))
    assert not m.paddable
    plain = model.Model(model.ModelSpec.from_config(_cfg(), 8, 3600))
    assert plain.paddable
    data = inputs.from_arrays(pd.Timestamp("2026-05-01T00:00Z"), 3600, np.full(4, 0.1),
                              np.zeros(4), np.ones(4), 50.0, cfg)
    with pytest.raises(ValueError, match="4 slots for a model of 8 that cannot be padded"):
        m.solve(data, cfg)
    with pytest.raises(ValueError, match="9 slots for a model of 8"):
        plain.solve(inputs.from_arrays(pd.Timestamp("2026-05-01T00:00Z"), 3600,
                                       np.full(9, 0.1), np.zeros(9), np.ones(9), 50.0, _cfg()),
                    _cfg())


def test_padded_solve_with_the_grid_carbon_term(data_dir):
    # the carbon intensity is per slot too: padded with the rest, the same optimum
    prices, pv, load, start, battery, _ = GOLDEN["se3_spike707"]
    cfg = _cfg(planning={"co2_eur_per_kg": 0.5})
    data = _golden_inputs(data_dir, prices, pv, load, start, cfg)
    co2 = 150.0 + 250.0 * np.sin(np.arange(data.n) / 9.0) ** 2  # g CO2/kWh
    data = replace(data, co2_g_per_kwh=co2)
    padded = model.Model(model.ModelSpec.from_config(cfg, 192, data.slot_s))
    short_in = replace(_cut(data, 10, 90), co2_g_per_kwh=co2[10:100])
    sol, want = padded.solve(short_in, cfg), _short(cfg, short_in)
    assert sol.objective_eur == pytest.approx(want.objective_eur, abs=1e-7)
    assert sol.outputs["grid_co2_kg"] == pytest.approx(want.outputs["grid_co2_kg"], abs=1e-6)
    plain = _short(_cfg(), short_in)  # the carbon term changes the plan
    assert abs(plain.objective_eur - sol.objective_eur) > 1e-3
