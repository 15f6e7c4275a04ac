#!/usr/bin/python3
"""Helios' executor against Victron's REAL localsettings + dbus-systemcalc-py (DESS delegate).

Run by ``tests/executor/test_venus_harness.py`` inside ``../shared/venus/run_harness.sh`` on
Debian's ``/usr/bin/python3`` (dbus-python, as on a GX):

    run_harness.sh --dvcc --set /Settings/DynamicEss/BatteryCapacity=1.0 -- \
        /usr/bin/python3 venus_scenario.py OUT.json SLOT_S [DESS_WINDOW_S (15)]

1. A small plant (``gx_emulator.victron_ess.EssPlant``: the Multi under hub4's overrides)
   runs in a thread: every 0.5 s it reads what systemcalc wrote to the hub4 dummy and the DVCC
   charge limit on the vebus dummy, integrates a 1-kWh battery (500 W load, no PV) and writes
   SoC, battery and grid power back to the BMS, vebus and grid-meter dummies.
2. ``helios-executor`` (the real CLI, ``driver: victron_dbus, mode: dess``, 2-s ticks, 5 kW
   battery limits, DESS window 15 s) runs as a child process on a plan of 4 slots that
   charge from the grid, hold, export (discharge into the grid) and self-consume, then a
   fifth (charge) slot in which the executor is killed with SIGKILL.
3. Everything systemcalc wrote (``logs/bus.jsonl``), the DESS status every 0.5 s, the SoC at
   every slot end and the time from the kill to plain self-consumption go to OUT.json.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.environ.get("HARNESS_BIN", os.path.join(ROOT, "..", "shared", "venus",
                                                              "bin")))
import harnesslib as H  # noqa: E402
from gx_emulator.victron_ess import EssPlant  # noqa: E402

from executor import schedule as sched  # noqa: E402

OUT, SLOT_S = sys.argv[1], int(sys.argv[2])
WINDOW_S = float(sys.argv[3]) if len(sys.argv) > 3 else 15.0  # dess_window_s
CAPACITY_KWH = 1.0
LOAD_W = 500.0
LIMIT_W = 5000.0
VOLTS = 52.0
GRID = "com.victronenergy.grid.cgwacs"


def setv(service, path, value):
    H.setv(service, path, value)


class PlantThread(threading.Thread):
    """The plant loop (see the module docstring); ``samples`` every 0.5 s."""

    def __init__(self):
        super().__init__(daemon=True)
        now = datetime.now(timezone.utc)
        self.plant = EssPlant(50.0, CAPACITY_KWH, now, profile=lambda t: (0.0, LOAD_W),
                              inverter_max_w=8000.0)
        self.plant.settings["/Settings/CGwacs/AcPowerSetPoint"][0] = 50.0  # harness seed
        self.stop = threading.Event()
        self.samples = []

    def run(self):
        import dbus

        bus = dbus.bus.BusConnection(os.environ["DBUS_SESSION_BUS_ADDRESS"])

        def get(service, path):
            import vbus
            return vbus.get(bus, service, path)

        p = self.plant
        while not self.stop.is_set():
            try:
                h = {k: get(H.HUB4, "/Overrides/" + k) for k in (
                    "Setpoint", "ForceCharge", "MaxDischargePower", "FeedInExcess")}
                ccl = get(H.VEBUS, "/BatteryOperationalLimits/MaxChargeCurrent")
                mdp_setting = get(H.SETTINGS, "/Settings/CGwacs/MaxDischargePower")
                dess = {k: get(H.SYSTEM, "/DynamicEss/" + k) for k in (
                    "Active", "ReactiveStrategy", "ErrorCode", "TargetSoc", "ChargeRate")}
            except Exception as exc:  # a service restarting: try again
                self.samples.append({"t": time.time(), "error": str(exc)})
                time.sleep(0.5)
                continue
            p.setpoint = None if h["Setpoint"] is None else float(h["Setpoint"])
            p.force_charge = int(h["ForceCharge"] or 0)
            p.max_discharge_power = -1.0 if h["MaxDischargePower"] is None \
                else float(h["MaxDischargePower"])
            p.feed_in_excess = int(h["FeedInExcess"] or 0)
            p.dvcc_charge_w = None if ccl is None else float(ccl) * VOLTS  # DVCC's result
            p.settings["/Settings/SystemSetup/MaxChargeCurrent"][0] = -1.0  # inside ccl
            p.settings["/Settings/CGwacs/MaxDischargePower"][0] = float(mdp_setting)
            p.advance(datetime.now(timezone.utc), max_step_s=0.5)
            charge_w = -p.battery_power_w
            soc = round(p.soc_pct, 1)
            for service, path, value in (
                    (H.BATTERY, "/Soc", soc), (H.BATTERY, "/Dc/0/Power", charge_w),
                    (H.BATTERY, "/Dc/0/Current", charge_w / VOLTS),
                    (H.VEBUS, "/Soc", soc), (H.VEBUS, "/Dc/0/Power", charge_w),
                    (H.VEBUS, "/Ac/ActiveIn/L1/P", p.grid_power_w),
                    (H.VEBUS, "/Ac/ActiveIn/P", p.grid_power_w),
                    (H.VEBUS, "/Ac/Out/L1/P", LOAD_W), (H.VEBUS, "/Ac/Out/P", LOAD_W),
                    (GRID, "/Ac/L1/Power", p.grid_power_w), (GRID, "/Ac/Power", p.grid_power_w)):
                import vbus
                vbus.setv(bus, service, path, value)
            self.samples.append({"t": time.time(), "soc": p.soc_pct, "battery_w": p.battery_power_w,
                                 "grid_w": p.grid_power_w, "hub4": h, "dvcc_a": ccl,
                                 "ess_max_discharge_w": mdp_setting,
                                 "dess": dess})
            time.sleep(0.5)


def plan(start):
    """charge_grid, hold, discharge_grid (export), self_consume, charge_grid. [SLOT_S each]"""
    dt_h = SLOT_S / 3600.0
    specs = [("charge_grid", -3000.0), ("hold", 0.0), ("discharge_grid", 3000.0),
             ("self_consume", LOAD_W), ("charge_grid", -3000.0)]
    soc, slots = 50.0, []
    for k, (intent, battery_w) in enumerate(specs):
        charge, discharge = max(-battery_w, 0) / 1000, max(battery_w, 0) / 1000
        soc += (charge * 0.95 - discharge / 0.95) * dt_h / CAPACITY_KWH * 100
        grid = LOAD_W / 1000 - discharge + charge
        band = {"charge_grid": (-5.0, battery_w / 1000), "hold": (-5.0, 0.0),
                "discharge_grid": (battery_w / 1000, 5.0), "self_consume": (-5.0, 5.0)}[intent]
        slots.append(sched.Slot(
            start=start + timedelta(seconds=k * SLOT_S), grid_import_kw=max(grid, 0),
            grid_export_kw=max(-grid, 0), battery_charge_kw=charge,
            battery_discharge_kw=discharge, pv_kw=0.0, pv_used_kw=0.0,
            load_kw=LOAD_W / 1000, soc_pct=round(soc, 3), buy_eur_per_kwh=0.3,
            sell_eur_per_kwh=0.1, grid_setpoint_w=int(round(grid * 1000)),
            action={"charge_grid": "charge_grid", "hold": "hold", "discharge_grid": "export",
                    "self_consume": "discharge"}[intent], reason="harness", intent=intent,
            battery_min_kw=band[0], battery_max_kw=band[1]))
    return sched.Schedule(generated_at=start, valid_until=start + timedelta(hours=1),
                          slot_s=SLOT_S, status="optimal", objective_eur=0.0,
                          expected_cost_eur=0.0, solve_s=0.0, solver="TEST", slots=tuple(slots))


def main():
    rundir = os.environ["HARNESS_RUNDIR"]
    plant = PlantThread()
    plant.start()
    time.sleep(2.0)
    # slots start on a whole second, the first one 3 s from now
    start = datetime.fromtimestamp(int(time.time()) + 3, timezone.utc)
    schedule = plan(start)
    plan_path = os.path.join(rundir, "schedule.json")
    sched.write(plan_path, schedule)
    cfg = {"executor": {
        "interval_s": 2, "state_dir": rundir, "log_level": "info",
        "driver": {"type": "victron_dbus", "bus": os.environ["DBUS_SESSION_BUS_ADDRESS"],
                   "library": "dbus-python", "mode": "dess", "dess_window_s": WINDOW_S},
        "plan": {"source": "file", "path": plan_path, "max_age_s": 3600},
        "limits": {"capacity_kwh": CAPACITY_KWH, "max_charge_w": LIMIT_W,
                   "max_discharge_w": LIMIT_W, "min_soc_pct": 10, "max_soc_pct": 100},
        "telemetry": {"enabled": False}}}
    cfg_path = os.path.join(rundir, "helios.json")
    with open(cfg_path, "w") as fh:
        json.dump(cfg, fh)
    log = open(os.path.join(rundir, "logs", "helios-executor.log"), "w")
    env = dict(os.environ, PYTHONPATH=ROOT)
    t_started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "executor", "--config", cfg_path],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    ends = {}
    kill_at = start.timestamp() + 4 * SLOT_S + SLOT_S / 2
    for k in range(4):
        t_end = start.timestamp() + (k + 1) * SLOT_S
        while time.time() < t_end - 0.25:
            time.sleep(0.05)
        ends[k] = {"t": time.time(), "soc": plant.plant.soc_pct,
                   "planned": schedule.slots[k].soc_pct}
    while time.time() < kill_at:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the executor dies mid-slot: no release, no command
    t_kill = time.time()
    proc.wait()

    def self_consuming(s):
        h, d = s.get("hub4") or {}, s.get("dess") or {}
        return (h.get("Setpoint") is None and h.get("ForceCharge") == 0
                and h.get("MaxDischargePower") in (-1, -1.0) and d.get("Active") == 0)

    back = None
    while time.time() < t_kill + WINDOW_S + 60 and back is None:
        time.sleep(0.5)
        if plant.samples and self_consuming(plant.samples[-1]):
            back = plant.samples[-1]["t"] - t_kill
    time.sleep(1.0)
    plant.stop.set()
    plant.join(5)
    writes = H.buslog(t_started, frm="dbus_systemcalc")
    settings = {k: H.get(H.SETTINGS, k) for k in (
        "/Settings/DynamicEss/Mode", "/Settings/DynamicEss/BatteryChargeLimit",
        "/Settings/DynamicEss/BatteryDischargeLimit", "/Settings/DynamicEss/GridExportLimit",
        "/Settings/SystemSetup/MaxChargeCurrent", "/Settings/CGwacs/MaxDischargePower",
        "/Settings/DynamicEss/Schedule/0/Start", "/Settings/DynamicEss/Schedule/0/Duration")}
    with open(OUT, "w") as fh:
        json.dump({"start": start.timestamp(), "slot_s": SLOT_S, "t_kill": t_kill,
                   "self_consumption_after_kill_s": back, "slot_ends": ends,
                   "exit_code": proc.returncode, "samples": plant.samples,
                   "systemcalc_writes": writes, "settings_after_kill": settings,
                   "windows": [{"intent": s.intent, "soc_pct": s.soc_pct}
                               for s in schedule.slots]}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
