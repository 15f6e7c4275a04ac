"""The intent control law (``control.intent_battery`` via ``decide``): self-consumption inside
the slot's band, targets for charge_grid / discharge_grid, and the properties that make it safe
under forecast error (never more energy between battery and grid than the plan moves)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from gx_emulator.plans import T0, build_plan
from hypothesis import given, settings
from hypothesis import strategies as st

from executor import control
from executor import schedule as sched
from executor.control import Apply, Limits, decide, intent_battery, power_to_target, slot_at
from executor.drivers.base import Measurement

LIM = Limits(min_soc_pct=10, max_soc_pct=95, max_charge_w=3000, max_discharge_w=4000,
             max_import_w=8000, max_export_w=5000, soc_gain_w_per_pct=100,
             soc_deadband_pct=1, interval_s=10)
NOW = T0 + timedelta(seconds=5)


def meas(net_load_w: float, soc: float = 50.0) -> Measurement:
    # battery idle, the grid carries the net load: decide() works from grid + battery only
    return Measurement(at=T0, soc_pct=soc, battery_power_w=0.0, grid_power_w=net_load_w,
                       pv_power_w=0.0)


def planned(intent: str, low_w: float, high_w: float, soc_start=50.0, soc_end=50.0,
            **kw) -> control.Planned:
    values = dict(slot_start=T0, slot_end=T0 + timedelta(minutes=15), grid_setpoint_w=0,
                  battery_power_w=0.0, soc_start_pct=soc_start, soc_end_pct=soc_end,
                  action="idle", generated_at=T0, valid_until=T0 + timedelta(hours=1),
                  intent=intent, battery_min_w=low_w, battery_max_w=high_w)
    values.update(kw)
    return control.Planned(**values)


def battery_w(p: control.Planned, net_load_w: float, soc: float = 50.0) -> float:
    d = decide(p, meas(net_load_w, soc), LIM, NOW)
    assert isinstance(d, Apply)
    assert d.setpoint.intent == p.intent
    return d.setpoint.battery_power_w


@pytest.mark.parametrize("net", [-2500.0, -300.0, 0.0, 700.0, 3500.0])
def test_self_consume_follows_the_net_load(net):
    assert battery_w(planned("self_consume", -3000, 4000), net) == pytest.approx(net, abs=1)


def test_self_consume_is_clamped_to_the_battery_limits():
    assert battery_w(planned("self_consume", -3000, 4000), 6000) == pytest.approx(4000, abs=1)
    assert battery_w(planned("self_consume", -3000, 4000), -6000) == pytest.approx(-3000, abs=1)
    # at min SoC nothing more is discharged, whatever the load
    assert battery_w(planned("self_consume", -3000, 4000), 2000, soc=10.0) <= 0.0


def test_hold_never_discharges_but_stores_surplus():
    p = planned("hold", -3000, 0)
    assert battery_w(p, 1500) == pytest.approx(0, abs=1)  # the grid covers the load
    assert battery_w(p, -1200) == pytest.approx(-1200, abs=1)  # surplus PV still charges


def test_charge_grid_charges_the_plan_never_more_from_the_grid_and_stops_at_the_target():
    # planned: 2 kW charge at 800 W load, 2800 W import
    p = planned("charge_grid", -3000, -2000, soc_start=50, soc_end=60, grid_setpoint_w=2800)
    assert battery_w(p, 800) == pytest.approx(-2000, abs=1)  # as planned
    assert battery_w(p, 1500) == pytest.approx(-2000, abs=1)  # more load: imported, not taken
    assert battery_w(p, -2600) == pytest.approx(-2600, abs=1)  # PV surplus: stores it all
    # PV that the plan counted on and the load it freed: no extra charge from the grid
    p_pv = planned("charge_grid", -3000, -2000, soc_start=50, soc_end=60, grid_setpoint_w=1000)
    assert battery_w(p_pv, -1000) == pytest.approx(-2000, abs=1)  # forecast right
    assert battery_w(p_pv, 0) == pytest.approx(-1000, abs=1)  # no PV: only the planned 1 kW
    # at the target: no more charging from the grid, the slot turns into hold
    assert battery_w(p, 800, soc=60.0) == pytest.approx(0, abs=1)
    assert battery_w(p, -500, soc=60.0) == pytest.approx(-500, abs=1)


def test_discharge_grid_exports_the_plan_never_more_and_stops_at_the_target():
    # planned: 2.5 kW discharge at 300 W load, 2200 W export
    p = planned("discharge_grid", 2500, 4000, soc_start=60, soc_end=50, grid_setpoint_w=-2200)
    assert battery_w(p, 300, soc=60.0) == pytest.approx(2500, abs=1)  # as planned
    assert battery_w(p, 3200, soc=60.0) == pytest.approx(3200, abs=1)  # covers a bigger load
    assert battery_w(p, 0, soc=60.0) == pytest.approx(2200, abs=1)  # less load: planned export
    assert battery_w(p, -1000, soc=60.0) == pytest.approx(2200, abs=1)  # PV: export unchanged
    assert battery_w(p, 300, soc=50.0) == pytest.approx(300, abs=1)  # at target: no export


def test_limit_charge_exports_the_unplanned_surplus():
    p = planned("limit_charge", -1000, 4000)
    assert battery_w(p, -3000) == pytest.approx(-1000, abs=1)  # 2 kW exported as planned
    assert battery_w(p, 600) == pytest.approx(600, abs=1)  # a cloud: self-consumption


def test_drift_correction_only_for_forced_intents():
    behind = dict(soc_start=50, soc_end=60)
    # charge_grid, SoC 4 % behind the trajectory: 3 % over the dead band x 100 W/% more
    # charge, from the unplanned PV surplus (never more from the grid than the plan)
    p = planned("charge_grid", -3000, -2000, grid_setpoint_w=2000, **behind)
    assert battery_w(p, -1000, soc=46.0) == pytest.approx(-2000 - 100 * 3, abs=15)
    assert battery_w(p, 0, soc=46.0) == pytest.approx(-2000, abs=1)
    # self_consume is never corrected: the next plan starts from the measured SoC
    assert battery_w(planned("self_consume", -3000, 4000, **behind), 500, soc=40.0) == \
        pytest.approx(500, abs=1)


def test_power_to_target():
    assert power_to_target(5.0, 4.0, 0.5, 0.9, 0.8) == pytest.approx(1.6)
    assert power_to_target(4.0, 5.0, 0.5, 0.8, 0.9) == pytest.approx(-2.5)
    assert power_to_target(4.0, 5.0, 0.0, 0.8, 0.9) == 0.0


def test_plans_without_intent_get_the_planners_rule():
    """A 1.0 plan (no intent fields) is followed with the band the planner would write."""
    plan = build_plan(T0, 4, 50.0, battery_w=lambda s: -2000.0)
    p = slot_at(plan, NOW, LIM)
    slot = plan.slots[0]
    expect = sched.intent_band(slot.battery_charge_kw, slot.battery_discharge_kw,
                               slot.grid_import_kw, slot.grid_export_kw, 3.0, 4.0)
    assert p.intent == expect[0]
    assert p.battery_min_w / 1000 == pytest.approx(expect[1])
    assert p.battery_max_w / 1000 == pytest.approx(expect[2])


flows = st.floats(0.0, 5.0, allow_nan=False)


@settings(max_examples=3000, deadline=None, database=None)
@given(ch=flows, dis=flows, load=st.floats(0.0, 8.0), pv=st.floats(0.0, 8.0),
       err_load=st.floats(-3.0, 3.0), err_pv=st.floats(-4.0, 4.0),
       soc=st.floats(0.0, 10.0), target=st.floats(0.0, 10.0))
def test_intent_properties(ch, dis, load, pv, err_load, err_pv, soc, target):
    """For any planned slot (flows consistent with the forecast) and any forecast error:
    (1) with no error the law gives the planned battery power; (2) the battery never sends
    more into the grid than the plan's battery export, nor takes more from the grid than the
    plan's battery import (the part of the grid flow the battery causes)."""
    if ch > 0 and dis > 0:
        dis = 0.0
    power = dis - ch
    net_f = load - pv
    grid = net_f - power
    imp, exp = max(grid, 0.0), max(-grid, 0.0)
    intent, low, high = sched.intent_band(ch, dis, imp, exp, 5.0, 5.0)
    far = -1e9 if intent == "charge_grid" else 1e9
    # (1) the forecast was right and the target is far: the plan, to the band tolerance
    assert intent_battery(intent, low, high, net_f, far, 0.0, grid) == \
        pytest.approx(power, abs=1.1e-3)
    # (2) any actual net load
    net = max(load + err_load, 0.0) - max(pv + err_pv, 0.0)
    to_target = power_to_target(soc, target, 0.25, 0.95, 0.95)
    b = intent_battery(intent, low, high, net, to_target, 0.0, grid)
    battery_to_grid = max(b - max(net, 0.0), 0.0)
    planned_to_grid = max(power - max(net_f, 0.0), 0.0)
    assert battery_to_grid <= planned_to_grid + 1.1e-3
    grid_to_battery = max(-b - max(-net, 0.0), 0.0)
    planned_from_grid = max(-power - max(-net_f, 0.0), 0.0)
    assert grid_to_battery <= planned_from_grid + 1.1e-3
