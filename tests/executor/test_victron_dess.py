"""The Victron drivers' shared DESS decisions (executor/drivers/_victron.py), pure functions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from gx_emulator.plans import T0

from executor.drivers._victron import (
    BAT2GRID,
    GRID2BAT,
    PROBATTERY,
    SELFCONSUME,
    TARGETSOC,
    DessWindow,
    check_owner,
    dess_limits,
    dess_status_problem,
    dess_window,
    limits_to_write,
)
from executor.drivers.base import Setpoint
from executor.errors import ForeignControllerError


def _sp(intent, target, battery_w=0.0):  # battery_w: what control.decide chose this tick
    return Setpoint(grid_power_w=0, min_soc_pct=10, battery_power_w=battery_w,
                    target_soc_pct=target, window_start=T0,
                    window_end=T0 + timedelta(minutes=15), intent=intent)


def test_limits_from_configured_live_and_decided_power():
    wanted, hard = dess_limits(5000, 5000, 17000, 10000, True, live_charge_w=2649.0)
    assert hard.battery_charge_kw == 2.6 and hard.battery_discharge_kw == 5.0  # rounded down
    assert wanted == hard
    wanted, hard = dess_limits(5000, 5000, 17000, 10000, True, intent="discharge_grid",
                               battery_w=1230.0)
    assert wanted.battery_discharge_kw == 1.2 and wanted.battery_charge_kw == 5.0
    wanted, _ = dess_limits(5000, 5000, 17000, 10000, False, intent="charge_grid",
                            battery_w=-7000.0)
    assert wanted.battery_charge_kw == 5.0 and wanted.grid_export_kw == 0.0  # never above


def test_limits_written_when_unset_above_hard_or_a_step_away():
    wanted, hard = dess_limits(5000, 5000, 17000, 10000, True)
    current = {"BatteryChargeLimit": -1.0, "BatteryDischargeLimit": 5.0,
               "GridImportLimit": 17.0, "GridExportLimit": 10.1}
    assert limits_to_write(current, wanted, hard) == {"BatteryChargeLimit": 5.0,
                                                       "GridExportLimit": 10.0}
    low, _ = dess_limits(5000, 5000, 17000, 10000, True, intent="discharge_grid",
                         battery_w=4900.0)
    assert limits_to_write(dict(current, BatteryChargeLimit=5.0, GridExportLimit=10.0), low,
                           hard) == {}  # 0.1 kW off: not worth a flash write


def test_window_outlives_the_slot_end_and_the_tick():
    now = T0 + timedelta(minutes=14, seconds=50)  # 10 s before the slot ends
    w = dess_window(_sp("charge_grid", 60.0), now, 55.0, 1, 45.0)
    assert w.start == int(T0.timestamp())
    assert w.end == int(now.timestamp()) + 45  # past the slot end: no gap at the boundary


@pytest.mark.parametrize("intent,plan,soc,precision,target,strategy,restrictions", [
    ("charge_grid", 61.78, 55.0, 1, 61.7, PROBATTERY, BAT2GRID),  # rounded down
    ("charge_grid", 61.78, 55.0, 0, 61.0, PROBATTERY, BAT2GRID),
    ("discharge_grid", 40.12, 55.0, 0, 41.0, TARGETSOC, GRID2BAT),  # rounded up
    ("hold", 55.0, 55.34, 1, 55.3, PROBATTERY, 3),  # no discharge: the SoC now
    ("self_consume", 50.0, 47.26, 1, 47.3, SELFCONSUME, 0),
])
def test_window_per_intent(intent, plan, soc, precision, target, strategy, restrictions):
    w = dess_window(_sp(intent, plan), T0, soc, precision, 45.0)
    assert (w.target_soc, w.strategy, w.restrictions, w.allow_feed_in, w.flags) == (
        target, strategy, restrictions, 1, 0)


def test_hold_discharges_for_the_loads_only_when_the_law_does():
    w = dess_window(_sp("hold", 52.0, battery_w=300.0), T0, 55.0, 0, 45.0)
    assert w.target_soc == 52.0  # the band allows 300 W for the loads: down to the plan


def test_hold_target_follows_the_soc_up_only():
    w = dess_window(_sp("hold", 55.0), T0, 56.2, 1, 45.0, held_target=55.8)
    assert w.target_soc == 56.2
    w = dess_window(_sp("hold", 55.0), T0, 55.1, 1, 45.0, held_target=56.2)
    assert w.target_soc == 56.2  # never back down within the slot


def test_owner_modes():
    assert check_owner(1, 0, "dess", "x") == "local"
    assert check_owner(1, 2, "dess", "x") == "restart"  # via 0
    assert check_owner(1, 3, "setpoint", "x") == "off"
    assert check_owner(1, 4, "dess", "x") is None
    with pytest.raises(ForeignControllerError, match="Keep batteries charged"):
        check_owner(1, 0, "dess", "x", battery_life_state=9)


def test_status_problems_say_why():
    w = DessWindow(1, 60, 61.0, PROBATTERY, BAT2GRID, 1)
    assert dess_status_problem(1, 0, 2, 61.0, w, 0) is None
    assert "ReactiveStrategy 92 DESS_DISABLED" in dess_status_problem(0, 0, 92, 0, w)
    assert "NO_WINDOW" in dess_status_problem(0, 0, 99, 0, w)
    assert "error 5 (battery capacity unset)" in dess_status_problem(1, 5, None, 61, w)
    assert "Active 0, ErrorCode 0" in dess_status_problem(0, 0, None, 0, w)
    assert "slot 3" in dess_status_problem(1, 0, 2, 61.0, w, 3)
    assert "target SoC 80" in dess_status_problem(1, 0, None, 80, w)
    assert dess_status_problem(1, 0, None, 61, DessWindow(1, 60, 61.4, PROBATTERY, 1, 1)) \
        is None  # integer read-back (Modbus 5407) of a decimal target
