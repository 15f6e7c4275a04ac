#!/usr/bin/python3
"""States in which Victron's real Dynamic ESS would not act on Helios' windows (harness run).

    run_harness.sh --dvcc -- /usr/bin/python3 venus_states.py OUT.json

The harness starts with ``BatteryCapacity`` 0 (the real default). Checks, in order:
capacity 0 → ``helios-executor`` refuses (exit 5, says why); DVCC off → refuses; Mode 3 set
while systemcalc runs (its DESS timer stops: ReactiveStrategy 92) → Helios writes 0 then 4 and
DESS acts on the window (Active 1); ``--once`` → the mode goes back to 0 and slot 0 is empty;
the Modbus setpoint release (a real-valued override, then DESS mode 4 → 0) → systemcalc
writes the invalid override.
"""

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.environ.get("HARNESS_BIN", ""))
import harnesslib as H  # noqa: E402

from executor import schedule as sched  # noqa: E402

OUT = sys.argv[1]
RUNDIR = os.environ["HARNESS_RUNDIR"]
PLAN = os.path.join(RUNDIR, "schedule.json")
CFG = os.path.join(RUNDIR, "helios.json")


def write_plan():
    start = datetime.fromtimestamp(int(time.time()) - 5, timezone.utc)
    slots = tuple(sched.Slot(
        start=start + timedelta(seconds=600 * k), grid_import_kw=2.5, grid_export_kw=0.0,
        battery_charge_kw=2.0, battery_discharge_kw=0.0, pv_kw=0.0, pv_used_kw=0.0,
        load_kw=0.5, soc_pct=60.0, buy_eur_per_kwh=0.2, sell_eur_per_kwh=0.1,
        grid_setpoint_w=2500, action="charge_grid", reason="harness", intent="charge_grid",
        battery_min_kw=-5.0, battery_max_kw=-2.0) for k in range(3))
    sched.write(PLAN, sched.Schedule(
        generated_at=start, valid_until=start + timedelta(hours=1), slot_s=600,
        status="optimal", objective_eur=0.0, expected_cost_eur=0.0, solve_s=0.0,
        solver="TEST", slots=slots))
    with open(CFG, "w") as fh:
        json.dump({"executor": {
            "interval_s": 2, "state_dir": RUNDIR,
            "driver": {"type": "victron_dbus", "bus": os.environ["DBUS_SESSION_BUS_ADDRESS"],
                       "library": "dbus-python", "mode": "dess", "dess_window_s": 15},
            "plan": {"source": "file", "path": PLAN},
            "telemetry": {"enabled": False}}}, fh)


def executor(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "executor", "--config", CFG, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)


def finished(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return {"rc": proc.returncode, "stderr": err[-2000:]}


def main():
    got = {}
    write_plan()
    got["capacity0"] = finished(executor("--once"))
    H.setting("/Settings/DynamicEss/BatteryCapacity", 10.0)
    H.setting("/Settings/Services/Bol", 0)
    got["dvcc_off"] = finished(executor("--once"))
    H.setting("/Settings/Services/Bol", 1)
    # Mode 3 while systemcalc runs: the delegate's timer ends at its next tick
    H.setting("/Settings/DynamicEss/Mode", 3)
    time.sleep(6)
    before = H.get(H.SYSTEM, "/DynamicEss/ReactiveStrategy")
    proc = executor()
    seen = H.wait_for(lambda: H.get(H.SYSTEM, "/DynamicEss/Active") == 1, 20)
    got["mode3"] = {"reactive_before": before, "active_seen": 1 if seen is not None else 0,
                    "after_s": seen,
                    "reactive": H.get(H.SYSTEM, "/DynamicEss/ReactiveStrategy")}
    proc.terminate()
    got["mode3"].update(finished(proc))
    got["once"] = finished(executor("--once"))
    got["once"]["mode_after"] = H.get(H.SETTINGS, "/Settings/DynamicEss/Mode")
    got["once"]["slot0_start_after"] = H.get(H.SETTINGS,
                                             "/Settings/DynamicEss/Schedule/0/Start")
    # the Modbus setpoint release: 2716 reaches hub4 as a plain double (here -1234 W, as
    # dbus-modbustcp would write it); then DESS mode 4 -> 0 (registers 5423): systemcalc's next
    # DESS tick deactivates and writes the *invalid* override
    H.setv(H.HUB4, "/Overrides/Setpoint", -1234.0)
    H.setting("/Settings/DynamicEss/Mode", 4)
    H.setting("/Settings/DynamicEss/Mode", 0)
    t0 = time.time()
    cleared = H.wait_for(lambda: H.get(H.HUB4, "/Overrides/Setpoint") is None, 15, step=0.2)
    got["release_pulse"] = {"cleared_after_s": cleared,
                            "mode_after": H.get(H.SETTINGS, "/Settings/DynamicEss/Mode"),
                            "writers": sorted({w["from"].split("[")[0] for w in H.buslog(
                                t0, frm="dbus_systemcalc", to=H.HUB4)})}
    with open(OUT, "w") as fh:
        json.dump(got, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
