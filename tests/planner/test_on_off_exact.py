"""On/off devices are exact: the planner's optimum equals the best of every on/off pattern.

Independent of the MILP formulation (binaries, start-ups, turn-on inequalities, rounding):
each case enumerates every pattern a fixed-power on/off load may take in its window (exactly
its run slots; runs at least its minimum block), adds the pattern to the fixed load of a
plan *without* the device and solves that LP (battery, grid, PV: checked against
tests/reference_lp.py elsewhere). The smallest of those objectives is the on/off optimum,
and the planner with the device must reach it to 1e-6 EUR. Random prices, PV and battery
start on 24 hourly slots; the window is 18:00-02:00 (8 slots). With a tank the heater's own part
of the objective (cold water penalised, the heat left valued) is the tank's recursion by hand,
and a pattern that overheats the tank is out.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.inputs import gather
from planner.optimize import model
from planner.optimize.components.deferrable import DeferrableLoad, LoadSpec

START = pd.Timestamp("2026-05-01T06:00Z")
N = 24
WINDOW = np.arange(12, 20)  # 18:00-02:00 after a 06:00 start


def _cfg(loads: list[dict], gap_eur: float = 0.0):
    return config.from_mapping({
        "site": {"timezone": "UTC"}, "planning": {"on_off_gap_eur": gap_eur},
        "battery": {"capacity_kwh": 5, "max_charge_kw": 2, "max_discharge_kw": 2,
                    "cycle_cost_eur_per_kwh": 0.02},
        "loads": loads})


def _inputs(cfg, buy, pv, load, soc_pct):
    return gather.from_arrays(START, 3600, buy, pv, load, soc_pct, cfg,
                              buy_eur_per_kwh=buy, sell_eur_per_kwh=0.6 * buy - 0.02)


def _runs_ok(on: np.ndarray, block: int) -> bool:
    edges = np.diff(np.concatenate(([0], on, [0])))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return bool(np.all(lengths >= block))


def _patterns(k: int, block: int):
    for chosen in itertools.combinations(WINDOW, k):
        on = np.zeros(N, dtype=int)
        on[list(chosen)] = 1
        if block <= 1 or _runs_ok(on, block):
            yield on


CASES = [(seed, k, block) for seed, (k, block) in enumerate(
    [(2, 0), (3, 0), (2, 2), (3, 3), (3, 0), (2, 2), (3, 3), (2, 0), (3, 2), (2, 2)])]


def _dishwasher_case(seed: int, k: int, block: int, gap_eur: float = 0.0):
    """Case ``seed``: the plan with a 2 kW on/off dishwasher (``k`` slots, blocks of
    ``block``) checked on/off, inside its window and in blocks; the plan's objective and the
    best pattern's (every pattern enumerated, each on a plan without the device)."""
    rng = np.random.default_rng(100 + seed)
    buy = np.round(rng.uniform(0.05, 0.45, N), 3)
    pv = np.clip(rng.normal(1.0, 1.2, N), 0, None) * (np.arange(N) < 12)
    load = np.round(rng.uniform(0.1, 0.8, N), 2)
    soc = float(rng.uniform(10, 90))
    dev = {"name": "dishwasher", "power_kw": 2.0, "run_h": k, "modulating": False,
           "min_run_h": block, "window": {"from": "18:00", "to": "02:00"}}
    cfg = _cfg([dev], gap_eur=gap_eur)
    assert cfg.planning.on_off_gap_eur == gap_eur
    sol = model.solve(_inputs(cfg, buy, pv, load, soc), cfg)
    power = sol.device_kw["dishwasher"]
    on = np.round(power / 2.0).astype(int)
    assert np.allclose(power, 2.0 * on, atol=1e-6)
    assert on.sum() == k and set(np.flatnonzero(on)) <= set(WINDOW)
    assert block <= 1 or _runs_ok(on, block)
    bare = _cfg([])
    best = min(model.solve(_inputs(bare, buy, pv, load + 2.0 * p, soc), bare).objective_eur
               for p in _patterns(k, block))
    return sol.objective_eur, best


@pytest.mark.parametrize(("seed", "k", "block"), CASES)
def test_on_off_optimum_is_the_best_pattern(seed, k, block):
    got, best = _dishwasher_case(seed, k, block)
    assert got == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize(("seed", "k", "block"), CASES[:6])
def test_the_default_gap_keeps_the_plan_within_a_cent_of_the_best_pattern(seed, k, block):
    """planning.on_off_gap_eur (default 0.01): a rounded relaxation or a MILP stopped within
    the gap is kept; still on/off, inside the window, in blocks, at most 1 cent dearer."""
    gap_eur = config.default().planning.on_off_gap_eur
    assert gap_eur == 0.01
    got, best = _dishwasher_case(seed, k, block, gap_eur)
    assert best - 1e-6 <= got <= best + 0.01 + 1e-6


def test_rounding_closes_the_energy_rows_of_the_slots_it_closes():
    """A slot the rounding closes leaves its day's energy row: the row counts ``x``, not the
    bus power, so a closed slot left in it would give the rounded LP energy for free. An
    override's slot stays open, and the baselines' earliest-start profile is unchanged."""
    spec = LoadSpec("dishwasher", 2.0, 4.0, 18 * 60, 2 * 60, "UTC", modulating=False)
    c = DeferrableLoad(spec)
    c.build(N, 1.0)
    cfg = _cfg([])
    c.set_inputs(model.context(_inputs(cfg, np.full(N, 0.2), np.zeros(N), np.zeros(N), 50.0),
                               cfg))
    forced = np.zeros(N, dtype=bool)
    forced[3] = True  # an override runs it at 09:00, outside its window
    c.force_open(forced, np.full(N, 2.0))
    earliest = c.earliest_kw()
    x = np.zeros(N)
    x[WINDOW] = 0.5  # a fractional relaxation over the whole window
    x[3] = 2.0
    c.run.x.value = x
    c.run.read()
    assert c.round_relaxation()
    open_ = np.asarray(c.run.limit_kw) > 0
    member = np.asarray(c.member.value)
    assert open_[3] and open_[WINDOW].sum() == 1  # 4 kWh: the override's 2 + one slot
    assert np.all(member[:, ~open_] == 0) and np.all(member[:, 3] == 0)
    assert np.allclose(member[:, WINDOW[open_[WINDOW]]].sum(axis=0), 1.0)
    # the baselines' heater ("a timer without a plan") still sees the whole window
    assert np.array_equal(c.earliest_kw(), earliest)


# --- an on/off heater with a tank ----------------------------------------------------------

TANK = {"capacity_kwh": 5.0, "min_temp_c": 45.0, "max_temp_c": 65.0, "ambient_temp_c": 20.0,
        "standing_loss_pct_per_h": 2.0}


def _tank_cost(on, power_kw, draw, keep, cap, heat0, penalty, value):
    """The tank's part of the objective for one pattern: the least cold water (penalised) and
    the heat left valued; None when the pattern overheats the tank."""
    heat, cold = heat0, 0.0
    for t in range(N):
        heat = keep * heat + power_kw * on[t] - draw[t]
        if heat > cap + 1e-9:
            return None
        if heat < 0:
            cold, heat = cold - heat, 0.0
    return penalty * cold - value * heat


@pytest.mark.parametrize("seed", range(4))
def test_on_off_tank_optimum_is_the_best_pattern_and_the_bounds_hold(seed):
    rng = np.random.default_rng(200 + seed)
    buy = np.round(rng.uniform(0.05, 0.45, N), 3)
    pv = np.clip(rng.normal(1.0, 1.2, N), 0, None) * (np.arange(N) < 12)
    load = np.round(rng.uniform(0.1, 0.8, N), 2)
    soc, temp_c = float(rng.uniform(10, 90)), float(rng.uniform(46, 60))
    share = rng.uniform(0, 1, 24)
    heater = {"power_kw": 1.5, "daily_kwh": 4.0, "modulating": False,
              "window": {"from": "18:00", "to": "02:00"},
              "tank": {**TANK, "temp_c": temp_c, "draw_profile_pct": list(100 * share)}}
    cfg = _tank_cfg(heater)
    data = _inputs(cfg, buy, pv, load, soc)
    sol = model.solve(data, cfg)
    power = sol.device_kw["water_heater"]
    on = np.round(power / 1.5).astype(int)
    assert np.allclose(power, 1.5 * on, atol=1e-6) and set(np.flatnonzero(on)) <= set(WINDOW)
    # independent: the tank's recursion by hand, every pattern in the window enumerated
    cap, lam = TANK["capacity_kwh"], TANK["standing_loss_pct_per_h"] / 100
    span = TANK["max_temp_c"] - TANK["min_temp_c"]
    loss = lam * cap * (TANK["min_temp_c"] - TANK["ambient_temp_c"]) / span
    hours = np.asarray(pd.date_range(START, periods=N, freq="1h").hour)
    draw = 4.0 * (share / share.sum())[hours] + loss
    heat0 = cap * (temp_c - TANK["min_temp_c"]) / span
    penalty = model.context(data, cfg).site.soft_penalty_eur_per_kwh
    value = max(0.0, float(np.median(buy)))
    tank = np.asarray(sol.outputs["water_heater_tank_kwh"])
    assert tank.min() >= -1e-9 and tank.max() <= cap + 1e-9  # the energy bounds hold
    bare = _cfg([])
    best = np.inf
    for m in range(2 ** len(WINDOW)):
        on_p = np.zeros(N, dtype=int)
        on_p[WINDOW] = [(m >> i) & 1 for i in range(len(WINDOW))]
        part = _tank_cost(on_p, 1.5, draw, 1 - lam, cap, heat0, penalty, value)
        if part is None:
            continue
        rest = model.solve(_inputs(bare, buy, pv, load + 1.5 * on_p, soc), bare).objective_eur
        best = min(best, rest + part)
    assert sol.objective_eur == pytest.approx(best, abs=1e-6)


def _tank_cfg(heater: dict):
    return config.from_mapping({
        "site": {"timezone": "UTC"}, "planning": {"on_off_gap_eur": 0},
        "battery": {"capacity_kwh": 5, "max_charge_kw": 2, "max_discharge_kw": 2,
                    "cycle_cost_eur_per_kwh": 0.02},
        "water_heater": heater})
