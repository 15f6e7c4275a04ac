"""Pure control decisions: slot lookup, release reasons, every clamp, drift correction."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from gx_emulator.plans import T0, build_plan

from executor import control
from executor.control import Apply, Limits, Release, decide, slot_at
from executor.drivers.base import Measurement

LIM = Limits(min_soc_pct=10, max_soc_pct=95, max_charge_w=3000, max_discharge_w=4000,
             max_import_w=8000, max_export_w=5000, soc_gain_w_per_pct=100,
             soc_deadband_pct=1, interval_s=10, control="grid")  # the grid-hold law


def meas(soc=50.0, battery=0.0, grid=500.0, pv=0.0, at=T0, **kw) -> Measurement:
    return Measurement(at=at, soc_pct=soc, battery_power_w=battery, grid_power_w=grid,
                       pv_power_w=pv, **kw)


def planned(setpoint=1000, soc_start=50.0, soc_end=50.0, **kw) -> control.Planned:
    values = dict(slot_start=T0, slot_end=T0 + timedelta(minutes=15), grid_setpoint_w=setpoint,
                  battery_power_w=0.0, soc_start_pct=soc_start, soc_end_pct=soc_end,
                  action="idle", generated_at=T0, valid_until=T0 + timedelta(hours=1))
    values.update(kw)
    return control.Planned(**values)


def test_slot_at_interpolates_soc_and_uses_previous_slot_end():
    plan = build_plan(T0, 4, 50.0, battery_w=lambda s: -2000.0)
    p0 = slot_at(plan, T0 + timedelta(minutes=5), LIM)
    assert p0.slot_start == T0 and p0.soc_end_pct == plan.slots[0].soc_pct
    assert p0.soc_start_pct == pytest.approx(50.0, abs=1e-3)  # back-computed for slot 0
    p1 = slot_at(plan, T0 + timedelta(minutes=20), LIM)
    assert p1.soc_start_pct == plan.slots[0].soc_pct
    mid = p1.soc_at(T0 + timedelta(minutes=22, seconds=30))
    assert mid == pytest.approx((plan.slots[0].soc_pct + plan.slots[1].soc_pct) / 2)
    assert slot_at(plan, T0 - timedelta(seconds=1), LIM) is None
    assert slot_at(None, T0, LIM) is None


def test_follows_plan_unchanged_when_nothing_binds():
    d = decide(planned(1000), meas(grid=500, battery=0), LIM, T0 + timedelta(seconds=5))
    assert isinstance(d, Apply)
    assert d.setpoint.grid_power_w == 1000
    assert d.setpoint.battery_power_w == pytest.approx(-500)  # 500 W net load, 1000 W import
    assert d.setpoint.min_soc_pct == 10
    assert "plan +1000 W" in d.reason


@pytest.mark.parametrize(("kwargs", "now_s", "reason"), [
    (dict(valid_until=T0 + timedelta(seconds=30)), 30, "plan stale: valid_until"),
    (dict(generated_at=T0 - timedelta(hours=2)), 5, "plan stale: generated 7205 s ago"),
])
def test_stale_plan_releases(kwargs, now_s, reason):
    d = decide(planned(**kwargs), meas(at=T0 + timedelta(seconds=now_s)), LIM,
               T0 + timedelta(seconds=now_s))
    assert isinstance(d, Release) and d.reason.startswith(reason)


def test_release_reasons():
    now = T0 + timedelta(seconds=5)
    assert decide(None, meas(), LIM, now, no_plan_reason="plan file x missing") == \
        Release("plan file x missing")
    assert decide(planned(), None, LIM, now).reason == "no measurement"
    assert decide(planned(), meas(soc=None), LIM, now).reason == "SoC unknown"
    assert "measurement stale" in decide(planned(), meas(at=T0 - timedelta(minutes=5)), LIM,
                                         now).reason
    d = decide(planned(), meas(), LIM, now, paused_until=now + timedelta(hours=1))
    assert isinstance(d, Release) and d.reason.startswith("paused until")
    # a pause that has ended no longer counts
    assert isinstance(decide(planned(), meas(), LIM, now, paused_until=now), Apply)


def test_clamps_to_configured_and_live_battery_limits():
    # plan wants 6 kW of charge (setpoint 6500 at 500 W net load); limit 3000 W
    d = decide(planned(6500), meas(), LIM, T0)
    assert d.setpoint.grid_power_w == 3500 and "charge clamped to 3000 W" in d.reason
    # live CCL lower still
    d = decide(planned(6500), meas(max_charge_w=1200.0), LIM, T0)
    assert d.setpoint.grid_power_w == 1700
    # discharge: live DCL
    d = decide(planned(-3000), meas(max_discharge_w=2000.0), LIM, T0)
    assert d.setpoint.battery_power_w == pytest.approx(2000)


def test_min_and_max_soc():
    d = decide(planned(-2000, soc_start=10, soc_end=10), meas(soc=10.0), LIM, T0)
    assert d.setpoint.battery_power_w <= 0  # no discharge at min SoC
    d = decide(planned(5000, soc_start=95, soc_end=95), meas(soc=95.0), LIM, T0)
    assert d.setpoint.battery_power_w >= 0  # no charge at max SoC
    # just above min: at most what is left before the floor in one tick
    d = decide(planned(-4000, soc_start=10.01, soc_end=10.01), meas(soc=10.01), LIM, T0)
    assert 0 < d.setpoint.battery_power_w <= 0.01 * 100 * 0.95 * 360 + 1


def test_grid_limits_and_export_switch():
    d = decide(planned(20000), meas(grid=7000), LIM, T0)
    assert d.setpoint.grid_power_w <= 8000
    d = decide(planned(-9000), meas(grid=-3000, pv=3000), LIM, T0)
    assert d.setpoint.grid_power_w >= -5000
    no_export = replace(LIM, export_enabled=False)
    d = decide(planned(-2000), meas(grid=0), no_export, T0)
    assert d.setpoint.grid_power_w == 0 and "export disabled" in d.reason


def test_soc_drift_correction_is_proportional_with_deadband():
    now = T0 + timedelta(minutes=7, seconds=30)  # half-way: plan SoC = 55
    p = planned(1000, soc_start=50, soc_end=60)
    within = decide(p, meas(soc=54.5, at=now), LIM, now)
    assert within.setpoint.grid_power_w == 1000  # 0.5 % error: inside the dead band
    below = decide(p, meas(soc=52.0, at=now), LIM, now)
    assert below.setpoint.grid_power_w == 1000 + 200  # (3 - 1) % x 100 W/%
    assert "correction" in below.reason
    above = decide(p, meas(soc=59.0, at=now), LIM, now)
    assert above.setpoint.grid_power_w == 1000 - 300
    # the correction never breaks a clamp
    big = decide(p, meas(soc=20.0, at=now), replace(LIM, soc_gain_w_per_pct=1000), now)
    assert big.setpoint.battery_power_w >= -3000 - 1


def test_no_slot_reason():
    plan = build_plan(T0, 4, 50.0)
    assert control.no_slot_reason(None, T0, LIM, "gone") == "gone"
    assert control.no_slot_reason(plan, T0 + timedelta(hours=2), LIM).startswith("plan stale")
    assert control.no_slot_reason(plan, T0 - timedelta(hours=1), LIM) == \
        "no slot of the plan covers now"


GUARD = replace(LIM, guard_forecast_error=True, soc_gain_w_per_pct=0)


def test_guard_keeps_battery_out_of_the_grid_when_pv_falls_short():
    # planned: PV 5 kW, load 1 kW, charge 2 kW and export 2 kW; real PV only 2 kW (net −1 kW)
    p = planned(-2000, battery_power_w=-2000.0, action="charge_pv")
    m = meas(grid=-1000, battery=0, pv=2000)  # net load −1000 W
    plain = decide(p, m, LIM, T0 + timedelta(seconds=5))
    assert plain.setpoint.grid_power_w == -2000  # holding G: the battery discharges 1 kW
    assert plain.setpoint.battery_power_w == pytest.approx(1000)  # ... into the grid
    guarded = decide(p, m, GUARD, T0 + timedelta(seconds=5))
    assert guarded.setpoint.battery_power_w == pytest.approx(-1000)  # charges the real surplus
    assert guarded.setpoint.grid_power_w == 0
    assert "forecast error" in guarded.reason


def test_guard_never_charges_from_the_grid_beyond_the_plan():
    # planned: charge 2 kW from the grid with 500 W load (G = 2500); the load is 0 W now
    p = planned(2500, battery_power_w=-2000.0, action="charge_grid")
    d = decide(p, meas(grid=0, battery=0), GUARD, T0 + timedelta(seconds=5))
    assert d.setpoint.battery_power_w == pytest.approx(-2000)  # not −2500
    assert d.setpoint.grid_power_w == 2000


@pytest.mark.parametrize(("setpoint", "battery"), [(-2000, -2000.0), (2500, -2000.0),
                                                   (0, 500.0), (-3000, 3500.0)])
def test_guard_changes_nothing_when_the_forecast_was_right(setpoint, battery):
    net = setpoint + battery  # measured net load equals the plan's
    p = planned(setpoint, battery_power_w=battery)
    m = meas(grid=net, battery=0)
    assert decide(p, m, GUARD, T0 + timedelta(seconds=5)) == decide(p, m, LIM, T0 +
                                                                     timedelta(seconds=5))
