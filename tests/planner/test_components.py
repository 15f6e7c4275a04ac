"""The component model: a device defined here joins the real model; per-slot limits.

:class:`Heater` is a new component written only in this file (nothing under ``planner/``
knows it): it is added to the planner's own :class:`planner.optimize.model.Model`, solved,
and checked against the energy balance and optima computed by hand. The per-slot limits
(:class:`planner.optimize.model.SlotLimits`: outages, live battery limits) are Parameters of
the same compiled problem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.core.errors import DataError
from planner.inputs import gather as inputs
from planner.optimize import model
from planner.optimize._cvxpy import cp
from planner.optimize.components import Component, Context, put, values
from planner.plan import build as plan

START = pd.Timestamp("2026-05-01T00:00Z")
CHEAP_DEAR = [0.10, 0.30, 0.10, 0.30]


class Heater(Component):
    """A heater that runs at ``power_kw`` for a share ``on`` of each slot and must take
    ``need_kwh`` over the horizon (``Context.extra["heater"]`` overrides it per solve)."""

    def __init__(self, power_kw: float, need_kwh: float):
        super().__init__("heater")
        self.power_kw, self.need_kwh = power_kw, need_kwh

    def build(self, n: int, dt_h: float) -> None:
        super().build(n, dt_h)
        self.on = cp.Variable(n, bounds=[0, 1], name="heater_on")
        self.need = cp.Parameter(nonneg=True, name="heater_need_kwh")
        self.bus_kw = -self.power_kw * self.on  # draws from the house bus
        self.constraints = [self.power_kw * dt_h * cp.sum(self.on) == self.need]

    def set_inputs(self, ctx: Context) -> None:
        put(self.need, ctx.extra.get(self.name, self.need_kwh))

    def outputs(self) -> dict:
        return {"heater_kw": self.power_kw * values(self.on, 0.0, 1.0)}


def _cfg(battery: dict | None = None, grid: dict | None = None):
    """A lossless battery without wear, empty, no SoC limits, no terminal value."""
    b = {"capacity_kwh": 2, "max_charge_kw": 2, "max_discharge_kw": 2, "charge_efficiency": 1,
         "discharge_efficiency": 1, "min_soc_pct": 0, "max_soc_pct": 100, "final_soc_pct": 0}
    return config.from_mapping({"battery": {**b, **(battery or {})}, "grid": grid or {},
                                "planning": {"grid_hurdle_eur_per_kwh": 0.0}})


def _inputs(cfg, buy, sell=None, load=None, soc_pct=0.0):
    n = len(buy)
    sell = np.zeros(n) if sell is None else sell
    load = np.ones(n) if load is None else load
    return inputs.from_arrays(START, 3600, buy, np.zeros(n), load, soc_pct, cfg,
                              buy_eur_per_kwh=buy, sell_eur_per_kwh=sell)


def _residual_kw(data, sol, extra_kw=0.0) -> float:
    supply = sol.pv_used_kw + sol.grid_import_kw + sol.battery_discharge_kw + sol.unserved_kw
    demand = data.load_kw + sol.battery_charge_kw + sol.grid_export_kw + extra_kw
    return float(np.abs(supply - demand).max())


# --------------------------------------------------------------------------------------------
# a component defined in this file


def test_toy_component_joins_the_real_model():
    # 1 kWh / 1 kW battery: it carries 1 kWh from each cheap slot to the next dear one. The
    # heater (1 kW, 2 kWh) must run in both cheap slots: in a dear slot it would buy at 0.30
    # (the battery is full of the dear slot's load). All 6 kWh at 0.10: 0.60 EUR.
    cfg = _cfg(battery={"capacity_kwh": 1, "max_charge_kw": 1, "max_discharge_kw": 1})
    data = _inputs(cfg, CHEAP_DEAR)
    spec = model.ModelSpec.from_config(cfg, data.n, data.slot_s)
    m = model.Model(spec, extra=[Heater(power_kw=1.0, need_kwh=2.0)])
    assert m.lp.is_dpp()
    sol = m.solve(data, cfg)
    heater = sol.outputs["heater_kw"]
    np.testing.assert_allclose(heater, [1, 0, 1, 0], atol=1e-6)
    assert _residual_kw(data, sol, heater) <= 1e-6
    assert sol.objective_eur == pytest.approx(0.60, abs=1e-6)
    assert sol.energy_cost_eur == pytest.approx(0.60, abs=1e-6)
    assert model.solve(data, cfg).objective_eur == pytest.approx(0.40, abs=1e-6)  # no heater


def test_toy_component_refills_its_parameter_per_solve():
    # the same compiled model; the need comes per solve: 1 kWh more at 0.10 costs 0.10 more
    cfg = _cfg(battery={"capacity_kwh": 1, "max_charge_kw": 1, "max_discharge_kw": 1})
    data = _inputs(cfg, CHEAP_DEAR)
    m = model.Model(model.ModelSpec.from_config(cfg, data.n, data.slot_s),
                    extra=[Heater(power_kw=1.0, need_kwh=2.0)])
    for need, cost in ((0.0, 0.40), (1.0, 0.50), (2.0, 0.60), (0.5, 0.45)):
        sol = m.solve(data, cfg, extra={"heater": need})
        assert sol.outputs["heater_kw"].sum() * data.dt_h == pytest.approx(need, abs=1e-6)
        assert _residual_kw(data, sol, sol.outputs["heater_kw"]) <= 1e-6
        assert sol.objective_eur == pytest.approx(cost, abs=1e-6)


def test_component_names_must_be_unique():
    cfg = _cfg()
    spec = model.ModelSpec.from_config(cfg, 4, 3600)
    with pytest.raises(ValueError, match="unique"):
        model.Model(spec, extra=[Heater(1.0, 1.0), Heater(1.0, 1.0)])


# --------------------------------------------------------------------------------------------
# per-slot limits


def test_outage_is_a_grid_limit_of_zero():
    # dear first, cheap later, but the grid is down in the cheap slots 2 and 3: the battery
    # (2 kWh) must be filled at 0.30 beforehand: 4 kWh * 0.30 = 1.20 EUR instead of 0.80
    cfg = _cfg()
    data = _inputs(cfg, [0.30, 0.30, 0.10, 0.10], sell=[0.05] * 4)
    spec = model.ModelSpec.from_config(cfg, data.n, data.slot_s)
    m = model.get_model(spec)
    assert m.solve(data, cfg).objective_eur == pytest.approx(0.80, abs=1e-6)
    up = np.array([np.inf, np.inf, 0.0, 0.0])  # inf: the configured limit
    limits = model.SlotLimits(import_kw=up, export_kw=up)
    sol = m.solve(data, cfg, limits)
    assert sol.objective_eur == pytest.approx(1.20, abs=1e-6)
    np.testing.assert_allclose(sol.grid_import_kw[2:], 0.0, atol=1e-9)
    np.testing.assert_allclose(sol.grid_export_kw, 0.0, atol=1e-9)
    assert sol.unserved_kw.max() <= 1e-9
    assert _residual_kw(data, sol) <= 1e-6
    plan.check(data, sol, cfg)
    # the same compiled model serves both, and without limits the plan is the old one again
    assert model.get_model(spec) is m
    assert m.solve(data, cfg).objective_eur == pytest.approx(0.80, abs=1e-6)


def test_outage_longer_than_the_battery_leaves_load_unserved():
    # grid down in slots 1..3 (3 kWh of load), the battery holds 2: 1 kWh unserved at the
    # unserved-load penalty; slot 0 imports 1 + 2 kWh at 0.30
    cfg = _cfg()
    data = _inputs(cfg, [0.30] * 4)
    up = np.array([np.inf, 0.0, 0.0, 0.0])
    sol = model.solve(data, cfg, model.SlotLimits(import_kw=up, export_kw=up))
    penalty = cfg.planning.unserved_penalty_eur_per_kwh
    assert sol.unserved_kw.sum() * data.dt_h == pytest.approx(1.0, abs=1e-6)
    assert sol.objective_eur == pytest.approx(0.90 + penalty, abs=1e-6)
    assert _residual_kw(data, sol) <= 1e-6


def test_terminal_value_from_the_slots_with_grid():
    # no final target: energy left is worth eta_d x the median buy price of the slots with
    # grid (an outage slot has no price to value it at): 0.10 instead of 0.30
    cfg = _cfg(battery={"final_soc_pct": None})
    data = _inputs(cfg, [0.10, 0.10, 0.50, 0.50])
    assert model.solve(data, cfg).terminal_value_eur_per_kwh == pytest.approx(0.30)
    up = np.array([np.inf, np.inf, 0.0, 0.0])
    sol = model.solve(data, cfg, model.SlotLimits(import_kw=up, export_kw=up))
    assert sol.terminal_value_eur_per_kwh == pytest.approx(0.10)


def test_live_battery_limits_per_slot():
    # CHEAP_DEAR (optimum 0.40): the BMS allows 0.5 kW of charge in slot 0, so slot 1 buys
    # 0.5 kWh at 0.30: 0.15 + 0.15 + 0.20 = 0.50; no discharge in slot 1: 0.10 + 0.30 + 0.20
    cfg = _cfg()
    data = _inputs(cfg, CHEAP_DEAR)
    m = model.get_model(model.ModelSpec.from_config(cfg, data.n, data.slot_s))
    sol = m.solve(data, cfg, model.SlotLimits(charge_kw=[0.5, 2, 2, 2]))
    assert sol.battery_charge_kw[0] <= 0.5 + 1e-9
    assert sol.objective_eur == pytest.approx(0.50, abs=1e-6)
    plan.check(data, sol, cfg)
    sol = m.solve(data, cfg, model.SlotLimits(discharge_kw=[2, 0, 2, 2]))
    assert sol.battery_discharge_kw[1] <= 1e-9
    assert sol.objective_eur == pytest.approx(0.60, abs=1e-6)
    # a live limit above the configured one changes nothing
    sol = m.solve(data, cfg, model.SlotLimits(charge_kw=10.0, discharge_kw=10.0))
    assert sol.objective_eur == pytest.approx(0.40, abs=1e-6)
    assert sol.battery_charge_kw.max() <= 2 + 1e-9


def test_limits_are_checked_naming_the_field():
    cfg = _cfg()
    data = _inputs(cfg, CHEAP_DEAR)
    with pytest.raises(DataError, match="limits.import_kw"):
        model.solve(data, cfg, model.SlotLimits(import_kw=[1.0, 2.0]))
    with pytest.raises(DataError, match="limits.charge_kw"):
        model.solve(data, cfg, model.SlotLimits(charge_kw=-1.0))
