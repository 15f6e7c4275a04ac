"""victron_modbus against the emulated GX (a real pymodbus server on 127.0.0.1)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from gx_emulator.modbus_gx import ModbusGx
from gx_emulator.plans import T0, FakeClock, Replanner, build_plan
from gx_emulator.victron_ess import EssPlant

from executor import drivers
from executor.control import Apply, Limits, Release
from executor.drivers.base import Setpoint
from executor.drivers.victron_modbus import int32_words, words_int32
from executor.errors import DriverError, ForeignControllerError
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def gx(clock):
    plant = EssPlant(50.0, 10.0, clock(), bms_max_charge_w=2600.0, bms_max_discharge_w=3900.0)
    with ModbusGx(plant, clock) as server:
        yield server


def make_driver(gx, clock, **options):
    opts = {"host": "127.0.0.1", "port": gx.port, "battery_unit_id": 225, "timeout_s": 1.0,
            "mode": "setpoint"}
    opts.update(options)
    return drivers.create("victron_modbus", opts, clock=clock)


def test_int32_word_order():
    assert int32_words(-2000) == [0xFFFF, 0xF830]
    assert words_int32([0xFFFF, 0xF830]) == -2000
    assert words_int32(int32_words(70000)) == 70000


def test_read_converts_signs_and_scales(gx, clock):
    drv = make_driver(gx, clock)
    gx.plant.grid_setpoint_w = -1000.0  # export 1 kW: the battery discharges
    clock.advance(10)
    m = drv.read()
    assert m.soc_pct == pytest.approx(gx.plant.soc_pct, abs=0.05)  # 0.1 % from the BMS unit
    assert m.battery_power_w == pytest.approx(gx.plant.battery_power_w, abs=1)
    assert m.battery_power_w > 0  # + = discharging in Helios (Victron reports it negative)
    assert m.grid_power_w == pytest.approx(-1000, abs=1)
    assert m.load_power_w == pytest.approx(gx.plant.load_power_w, abs=1)
    assert m.max_charge_w == pytest.approx(2600, rel=0.01)
    assert m.max_discharge_w == pytest.approx(3900, rel=0.01)
    drv.close()


def test_zero_means_unknown_and_missing_bms(gx, clock):
    drv = make_driver(gx, clock)
    gx.soc_unknown = True
    assert drv.read().soc_pct is None
    gx.soc_unknown = False
    gx.battery_missing = True  # 0x0A from the BMS unit: fall back to the system SoC (1 %)
    m = drv.read()
    assert m.soc_pct == round(gx.plant.soc_pct) and m.max_charge_w is None
    drv.close()


def test_override_written_every_tick_and_really_released(gx, clock):
    drv = make_driver(gx, clock)
    gx.settings["/Settings/CGwacs/AcPowerSetPoint"][0] = 40.0  # the user's own setpoint
    drv.apply(Setpoint(grid_power_w=-2500, min_soc_pct=10))
    assert gx.plant.grid_setpoint_w == -2500 and gx.override_w == -2500
    drv.apply(Setpoint(grid_power_w=-2500, min_soc_pct=10))
    assert gx.override_writes == 2  # refreshed every tick (volatile, no flash)
    drv.apply(Setpoint(grid_power_w=0, min_soc_pct=10))
    assert gx.override_w == 0.0  # 2716 = 0 is a real 0 W on D-Bus, not "no override"
    drv.release()
    drv.release()  # idempotent
    assert gx.override_w == 40.0  # at once: the user's AcPowerSetPoint, not 0 W
    clock.advance(6)  # ... and the DESS 4 -> 0 pulse makes systemcalc invalidate it
    drv.read()
    assert gx.override_w is None and gx.dess.status["ReactiveStrategy"] == 92
    assert gx.dess_mode == 0 and gx.override_writes == 4
    assert gx.writes_by_path == {"/Settings/DynamicEss/Mode": 2}  # never AcPowerSetPoint
    drv.close()


def test_refuses_when_another_controller_owns_the_ess(gx, clock):
    drv = make_driver(gx, clock)
    gx.dess_mode = 1
    with pytest.raises(ForeignControllerError, match="VRM owns the battery"):
        drv.check_ownership()
    gx.dess_mode = 4
    with pytest.raises(ForeignControllerError, match="Dynamic ESS is on"):
        drv.check_ownership()
    gx.dess_mode, gx.hub4_mode = 0, 3
    with pytest.raises(ForeignControllerError, match="External control"):
        drv.check_ownership()
    gx.hub4_mode = 1
    drv.check_ownership()
    gx.dess_mode = 3  # legacy "sell": off on systemcalc <= 3.7x, DESS on on 3.80
    drv.check_ownership()
    assert gx.dess_mode == 0
    dess = make_driver(gx, clock, mode="dess")
    gx.settings["/Settings/CGwacs/BatteryLife/State"][0] = 9
    with pytest.raises(ForeignControllerError, match="Keep batteries charged"):
        dess.check_ownership()
    gx.settings["/Settings/CGwacs/BatteryLife/State"][0] = 1
    gx.settings["/Settings/DynamicEss/BatteryCapacity"][0] = 0.0  # the real default
    with pytest.raises(ForeignControllerError, match="battery capacity is not set"):
        dess.check_ownership()
    gx.settings["/Settings/DynamicEss/BatteryCapacity"][0] = 10.0
    gx.dess_mode = 2
    dess.check_ownership()  # 2 -> 0 -> 4: straight to 4 would leave systemcalc's DESS dead
    assert gx.dess_mode == 4 and gx.dess.timer_on
    dess.close()
    assert gx.dess_mode == 0  # put back on exit: --once leaves no mode 4 behind
    drv.close()


def _dess_driver(gx, clock, **options):
    for name in ("BatteryChargeLimit", "BatteryDischargeLimit"):  # set on the GX by the user
        gx.settings["/Settings/DynamicEss/" + name][0] = 5.0
    drv = make_driver(gx, clock, mode="dess", dess_window_s=45, **options)
    drv.check_ownership()
    drv.read()
    return drv


def _sp(intent, target, start=T0, battery_w=0.0, grid_w=0):
    return Setpoint(grid_power_w=grid_w, min_soc_pct=10, battery_power_w=battery_w,
                    target_soc_pct=target, window_start=start,
                    window_end=start + timedelta(minutes=15), intent=intent)


def test_dess_window_slot0_strategy_and_readback(gx, clock):
    drv = _dess_driver(gx, clock)
    drv.apply(_sp("charge_grid", 61.7, battery_w=-2000, grid_w=2500))
    s0 = gx.slot0()
    assert s0["Start"] == int(T0.timestamp()) and s0["Duration"] == 45
    assert (s0["Soc"], s0["Strategy"], s0["Restrictions"], s0["AllowGridFeedIn"]) == (61, 2, 1, 1)
    for _ in range(3):  # renewed every tick: only the duration moves
        clock.advance(10)
        drv.read()
        drv.apply(_sp("charge_grid", 61.7, battery_w=-2000, grid_w=2500))
    assert gx.slot0()["Duration"] == 75 and gx.writes_by_path[
        "/Settings/DynamicEss/Schedule/0/Start"] == 1
    assert gx.dess.status["Active"] == 1 and gx.dess.status["ReactiveStrategy"] == 2
    # a stale decimal TargetSoc (left by VRM / a D-Bus run) wins over Soc: read back, refuse
    gx.settings["/Settings/DynamicEss/Schedule/0/TargetSoc"][0] = 80.0
    clock.advance(10)
    drv.read()
    with pytest.raises(DriverError, match="target SoC 80"):
        drv.apply(_sp("charge_grid", 61.7, battery_w=-2000, grid_w=2500))
    drv.close()


def test_dess_refuses_a_rate_beyond_the_limits(gx, clock):
    drv = _dess_driver(gx, clock)
    gx.settings["/Settings/DynamicEss/BatteryDischargeLimit"][0] = -1.0  # unset on the GX
    drv.apply(_sp("discharge_grid", 40.0, battery_w=3000, grid_w=-2500))
    clock.advance(15)
    drv.read()
    with pytest.raises(DriverError, match="battery rate of -.*beyond the limits"):
        drv.apply(_sp("discharge_grid", 40.0, battery_w=3000, grid_w=-2500))
    drv.close()


def test_dess_on_old_firmware_without_register_5430(clock):
    plant = EssPlant(50.0, 10.0, clock())
    with ModbusGx(plant, clock, old_firmware=True) as gx:
        drv = _dess_driver(gx, clock)
        drv.apply(_sp("discharge_grid", 40.0, battery_w=3000, grid_w=-2500))
        assert gx.slot0()["Strategy"] == 0 and gx.slot0()["Soc"] == 40
        drv.apply(_sp("self_consume", 50.0))  # no strategy register: no window at all
        assert gx.slot0()["Start"] == 0
        drv.close()


def _closed_loop(gx, clock, tmp_path, mode, step_s):
    day = build_plan(T0, 96, 50.0)
    for name in ("BatteryChargeLimit", "BatteryDischargeLimit"):  # set on the GX by the user
        gx.settings["/Settings/DynamicEss/" + name][0] = 5.0
    drv = make_driver(gx, clock, mode=mode, dess_window_s=step_s + 30)
    drv.check_ownership()
    path = str(tmp_path / "schedule.json")
    limits = replace(Limits(), interval_s=step_s)
    ex = Executor(drv, PlanTracker(FileSource(path)), limits, str(tmp_path / "p.json"),
                  clock=clock, interval_s=step_s)
    replanner = Replanner(path, day)
    errors = []
    while clock() < day.end - timedelta(seconds=step_s):
        replanner.maybe_write(clock())
        assert isinstance(ex.tick(), Apply)
        slot = day.slot_at(clock())
        i = day.slots.index(slot)
        if i > 0 and (clock() - slot.start).total_seconds() < step_s:
            errors.append(abs(gx.plant.soc_pct - day.slots[i - 1].soc_pct))
        clock.advance(step_s)
    ex.shutdown()
    return errors


def test_closed_loop_day_setpoint_mode(gx, clock, tmp_path):
    errors = _closed_loop(gx, clock, tmp_path, "setpoint", 30)
    assert len(errors) == 95
    assert max(errors) < 1.5, f"max SoC tracking error {max(errors):.2f} %"
    gx.plant.advance(clock.advance(10))
    assert gx.plant.grid_setpoint_w is None  # really released at the end
    assert gx.writes_by_path == {"/Settings/DynamicEss/Mode": 2}  # the release pulse only


def test_closed_loop_day_dess_mode(gx, clock, tmp_path):
    errors = _closed_loop(gx, clock, tmp_path, "dess", 60)
    # integer Soc over Modbus, and DESS at its own limit within the slot: within 2 %-points
    assert max(errors) < 2.0, f"max SoC tracking error {max(errors):.2f} %"
    # flash: the start about once per slot, the duration once per tick (the fail-safe)
    starts = gx.writes_by_path["/Settings/DynamicEss/Schedule/0/Start"]
    assert 96 <= starts <= 2 * 96 + 2
    assert gx.writes_by_path["/Settings/DynamicEss/Schedule/0/Duration"] <= 1440 + starts
    gx.plant.advance(clock.advance(10))
    assert gx.slot0()["Start"] == 0 and gx.dess.status["Active"] == 0  # released
    assert gx.dess_mode == 0  # mode put back


def test_gx_disconnects_and_comes_back(gx, clock, tmp_path, caplog):
    plan_path = str(tmp_path / "schedule.json")
    from executor import schedule as sched

    sched.write(plan_path, build_plan(T0, 16, 50.0, valid_s=4 * 3600))
    drv = make_driver(gx, clock, backoff_max_s=8)
    ex = Executor(drv, PlanTracker(FileSource(plan_path)), Limits(), str(tmp_path / "p.json"),
                  clock=clock)
    assert isinstance(ex.tick(), Apply)
    gx.stop()
    reasons = []
    for _ in range(12):
        clock.advance(1)
        d = ex.tick()
        assert isinstance(d, Release)
        reasons.append(d.reason)
    assert reasons[0].startswith("device unavailable (GX 127.0.0.1")
    # back-off: most ticks do not even try to connect
    assert sum("next attempt in" in r for r in reasons) >= 6
    assert caplog.text.count("retrying with back-off") == 1  # logged once
    gx.start()  # same port
    clock.advance(10)  # past the (capped) back-off
    d = ex.tick()
    assert isinstance(d, Apply), d
    assert gx.plant.grid_setpoint_w == d.setpoint.grid_power_w
    assert "reachable again" in caplog.text
    ex.shutdown()


def test_dry_run_cli_reads_the_gx_and_writes_nothing(gx, clock, tmp_path, caplog):
    import json
    import logging
    from datetime import datetime, timezone

    from executor import __main__ as cli
    from executor import schedule as sched

    caplog.set_level(logging.INFO)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    sched.write(tmp_path / "schedule.json",
                build_plan(now - timedelta(minutes=now.minute % 15), 8, 50.0, generated_at=now))
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"executor": {
        "driver": {"type": "victron_modbus", "host": "127.0.0.1", "port": gx.port,
                   "mode": "dess"},
        "telemetry": {"enabled": False}}}))
    assert cli.main(["--config", str(cfg), "--dry-run", "--once"]) == 0
    assert "dry run: would send grid setpoint" in caplog.text
    assert gx.flash_writes == 0 and gx.override_writes == 0 and gx.dess_mode == 0
