"""The fail-safe: when helios-executor dies (kill -9, power cut, network), the GX is back in its
own self-consumption within about a minute, with no command from Helios after the death.

``mode: dess`` writes short DESS windows (``dess_window_s``, default 45 s) renewed every tick;
when they stop coming, the last one runs out and DESS falls back to plain ESS (Setpoint
invalid, ForceCharge 0, MaxDischargePower -1) at its next 5-s tick. ``mode: setpoint`` has no
such expiry — the override stays — which is why it is not the default for remote hosts.
The same against Victron's real systemcalc is in ``test_venus_harness.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from gx_emulator.modbus_gx import ModbusGx
from gx_emulator.plans import T0, FakeClock, build_plan
from gx_emulator.victron_ess import EssPlant

from executor import drivers
from executor import schedule as sched
from executor.control import Apply, Limits
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _self_consuming(gx) -> bool:
    p = gx.plant
    return (gx.dess.status["Active"] == 0 and gx.dess.status["ReactiveStrategy"] == 99
            and p.setpoint is None and p.force_charge == 0 and p.max_discharge_power in (-1,
                                                                                        -1.0))


def _dbus_gx(plant, clock):
    if shutil.which("dbus-daemon") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dbus-daemon missing (apt-get install dbus)")
        pytest.skip("dbus-daemon not installed")
    from gx_emulator.dbus_gx import DbusDaemon, DbusGx

    daemon = DbusDaemon().start()
    return daemon, DbusGx(plant, clock, daemon.address).start()


@pytest.mark.parametrize("transport", ["dbus", "modbus"])
def test_executor_dies_gx_self_consumes_within_a_minute(transport, tmp_path):
    clock = FakeClock(T0 + timedelta(hours=1))  # a charge_grid slot of the demo plan
    plant = EssPlant(50.0, 10.0, clock())
    for name in ("BatteryChargeLimit", "BatteryDischargeLimit"):
        plant.settings["/Settings/DynamicEss/" + name][0] = 5.0
    daemon = None
    if transport == "dbus":
        daemon, gx = _dbus_gx(plant, clock)
        drv = drivers.create("victron_dbus", {"bus": daemon.address, "library": "jeepney",
                                              "mode": "dess"}, clock=clock)
    else:
        gx = ModbusGx(plant, clock).start()
        drv = drivers.create("victron_modbus", {"host": "127.0.0.1", "port": gx.port},
                             clock=clock)  # dess is the Modbus default
    try:
        path = str(tmp_path / "schedule.json")
        sched.write(path, build_plan(T0, 16, 50.0, generated_at=clock(), valid_s=6 * 3600))
        drv.check_ownership()
        ex = Executor(drv, PlanTracker(FileSource(path)), Limits(), str(tmp_path / "p.json"),
                      clock=clock)
        for _ in range(6):
            assert isinstance(ex.tick(), Apply)
            clock.advance(10)
        gx.plant.advance(clock())
        assert gx.dess.status["Active"] == 1 and gx.plant.force_charge == 1  # charging
        died = clock()  # kill -9: no release, no shutdown, nothing more from Helios
        calls = len(getattr(gx, "set_calls", [])) if transport == "dbus" else gx.flash_writes
        back = None
        while clock() < died + timedelta(seconds=120):
            clock.advance(1)
            gx.plant.advance(clock())
            if _self_consuming(gx):
                back = (clock() - died).total_seconds()
                break
        print(f"{transport}: self-consumption {back:.0f} s after the executor died")
        assert back is not None and back <= 45 + 10 + 1, back  # window + last tick + DESS tick
        assert back < 60
        gx.plant.advance(clock.advance(2))
        battery = gx.plant.battery_power_w  # plain ESS: the battery covers the load
        assert battery == pytest.approx(gx.plant.load_power_w - gx.plant.pv_power_w, abs=1)
        after = len(getattr(gx, "set_calls", [])) if transport == "dbus" else gx.flash_writes
        assert after == calls  # no command from Helios after the death
    finally:
        # the dead executor's socket (no release: a kill sends nothing)
        if getattr(drv, "bus", None) is not None:
            drv.bus.close()
        if getattr(drv, "client", None) is not None:
            drv.client.close()
        gx.stop()
        if daemon is not None:
            daemon.cleanup()


def test_setpoint_mode_has_no_fail_safe(tmp_path):
    """The hub4 override has no timeout: after a death it stays (documented; not the default
    for remote hosts)."""
    clock = FakeClock(T0 + timedelta(hours=1))
    plant = EssPlant(50.0, 10.0, clock())
    with ModbusGx(plant, clock) as gx:
        drv = drivers.create("victron_modbus", {"host": "127.0.0.1", "port": gx.port,
                                                "mode": "setpoint"}, clock=clock)
        path = str(tmp_path / "schedule.json")
        sched.write(path, build_plan(T0, 16, 50.0, generated_at=clock(), valid_s=6 * 3600))
        drv.check_ownership()
        ex = Executor(drv, PlanTracker(FileSource(path)), Limits(), str(tmp_path / "p.json"),
                      clock=clock)
        d = ex.tick()
        clock.advance(600)
        gx.plant.advance(clock())
        assert gx.override_w == d.setpoint.grid_power_w  # still in force 10 min later
        drv.close()


SCENARIO_PLAN_S = 600


@pytest.mark.parametrize("transport", ["modbus", "dbus"])
def test_kill_9_of_the_cli(transport, tmp_path):
    """The real CLI (``mode: dess``, 2-s ticks, 15-s windows) against each emulator on the
    wall clock, killed with SIGKILL mid-slot."""
    def now():
        return datetime.now(timezone.utc)

    plant = EssPlant(50.0, 10.0, now())
    plant.profile = lambda t: (0.0, 500.0)
    for name in ("BatteryChargeLimit", "BatteryDischargeLimit"):
        plant.settings["/Settings/DynamicEss/" + name][0] = 5.0
    daemon = None
    if transport == "modbus":
        gx = ModbusGx(plant, now).start()
        driver = {"type": "victron_modbus", "host": "127.0.0.1", "port": gx.port,
                  "battery_unit_id": 225, "dess_window_s": 15}  # dess: the Modbus default
    else:
        daemon, gx = _dbus_gx(plant, now)
        driver = {"type": "victron_dbus", "bus": daemon.address, "library": "jeepney",
                  "mode": "dess", "dess_window_s": 15}
    try:
        _kill_cli(gx, driver, now, tmp_path, transport)
    finally:
        gx.stop()
        if daemon is not None:
            daemon.cleanup()


def _kill_cli(gx, driver, now, tmp_path, transport):
    """Run the CLI, SIGKILL it while DESS charges, time the way back to self-consumption."""
    plant = gx.plant
    start = now().replace(microsecond=0) - timedelta(seconds=5)
    plan = build_plan(start, 3, 50.0, profile=plant.profile,
                      battery_w=lambda s: -2500.0)  # charge from the grid
    path = str(tmp_path / "schedule.json")
    sched.write(path, plan)
    cfg = tmp_path / "helios.json"
    cfg.write_text(json.dumps({"executor": {
        "interval_s": 2, "state_dir": str(tmp_path),
        "driver": driver,
        "plan": {"source": "file", "path": path}, "telemetry": {"enabled": False}}}))
    log = open(tmp_path / "executor.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "executor", "--config", str(cfg)],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            with gx._lock:
                gx.plant.advance(now())
                if gx.dess.status["Active"] == 1 and gx.plant.force_charge == 1:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("DESS never charged: " + (tmp_path / "executor.log").read_text())
        time.sleep(3)
        os.kill(proc.pid, signal.SIGKILL)
        died = time.time()
        proc.wait(10)
        back = None
        while time.time() < died + 40 and back is None:
            time.sleep(0.2)
            with gx._lock:
                gx.plant.advance(now())
                if _self_consuming(gx):
                    back = time.time() - died
        print(f"{transport} CLI kill -9: self-consumption {back:.1f} s later (15-s windows)")
        assert back is not None and back <= 15 + 5 + 1, back
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
