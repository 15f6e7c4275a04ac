"""Executor footprint: resident memory (target <= 30 MB, DESIGN.md) and CPU per tick.

Each driver runs in its own fresh process ("the executor"), ticking back-to-back against the
same device it would talk to in production, emulated in *another* process so the emulator's
memory is not counted:

* ``simulated``      in-process plant (no I/O): the floor;
* ``victron_modbus`` pymodbus client → emulated GX Modbus-TCP server (tests/gx_emulator);
* ``victron_dbus``   jeepney client → emulated GX services on a private dbus-daemon;
* ``victron_dbus`` via dbus-python (what Venus OS ships) when the system python has it.

RSS is ``VmRSS``/``VmHWM`` from ``/proc/self/status`` after the ticks (peak = HWM); CPU per
tick is ``time.process_time()`` over the ticks / ticks (the executor's own process only).

Run: python3 bench/executor_bench.py [--ticks 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, tempfile, time
from datetime import datetime, timedelta, timezone
sys.path.insert(0, os.environ["HELIOS_ROOT"])
sys.path.insert(0, os.path.join(os.environ["HELIOS_ROOT"], "tests"))
kind, target, ticks = sys.argv[1], sys.argv[2], int(sys.argv[3])

def rss():
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out

from executor import drivers, schedule as sched
from executor.control import Limits
from executor.plansource import FileSource, PlanTracker
from executor.runner import Executor
from executor.telemetry import Telemetry

now = datetime.now(timezone.utc)
start = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
slots = tuple(sched.Slot(start=start + timedelta(minutes=15 * i), grid_import_kw=1.0,
                         grid_export_kw=0.0, battery_charge_kw=0.5, battery_discharge_kw=0.0,
                         pv_kw=0.0, pv_used_kw=0.0, load_kw=0.5, soc_pct=50.0 + i * 0.1,
                         buy_eur_per_kwh=0.2, sell_eur_per_kwh=0.1, grid_setpoint_w=1000,
                         action="charge_grid", reason="bench") for i in range(192))
d = tempfile.mkdtemp()
path = os.path.join(d, "schedule.json")
sched.write(path, sched.Schedule(generated_at=now, valid_until=now + timedelta(hours=1),
                                 slot_s=900, status="optimal", objective_eur=0.0,
                                 expected_cost_eur=0.0, solve_s=0.0, solver="B", slots=slots))
if kind == "simulated":
    opts = {}
elif kind == "victron_modbus":
    opts = {"host": "127.0.0.1", "port": int(target), "battery_unit_id": 225,
            "mode": "setpoint"}  # the per-tick write path (dess, the default, writes once a slot)
else:
    opts = {"bus": target, "library": kind.split(":")[1]}
    kind = "victron_dbus"
clock = lambda: datetime.now(timezone.utc)
drv = drivers.create(kind, opts, clock=clock)
ex = Executor(drv, PlanTracker(FileSource(path)), Limits(), os.path.join(d, "pause.json"),
              Telemetry(os.path.join(d, "buf.jsonl"), None, 60), clock=clock)
for _ in range(20):
    ex.tick()
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(ticks):
    ex.tick()
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
ex.shutdown()
mods = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"rss_mb": rss()["VmRSS"], "peak_mb": rss()["VmHWM"],
                  "cpu_ms_per_tick": 1000 * cpu / ticks, "wall_ms_per_tick": 1000 * wall / ticks,
                  "decision": type(ex.last_decision).__name__,
                  "heavy": [m for m in mods if m in ("numpy", "pandas", "cvxpy", "planner")]}))
"""

MODBUS_SERVER = r"""
import os, sys, time
from datetime import datetime, timezone
ROOT = os.environ["HELIOS_ROOT"]
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
from gx_emulator.modbus_gx import ModbusGx
from executor.drivers.simulated import Plant
clock = lambda: datetime.now(timezone.utc)
plant = Plant(50.0, 10.0, clock(), bms_max_charge_w=3000.0, bms_max_discharge_w=3000.0)
gx = ModbusGx(plant, clock).start()
print(gx.port, flush=True)
sys.stdin.read()
gx.stop()
"""

DBUS_SERVER = r"""
import os, sys
from datetime import datetime, timezone
ROOT = os.environ["HELIOS_ROOT"]
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
from gx_emulator.dbus_gx import DbusDaemon, DbusGx
from executor.drivers.simulated import Plant
clock = lambda: datetime.now(timezone.utc)
daemon = DbusDaemon().start()
gx = DbusGx(Plant(50.0, 10.0, clock(), bms_max_charge_w=3000.0), clock, daemon.address).start()
print(daemon.address, flush=True)
sys.stdin.read()
gx.stop(); daemon.cleanup()
"""


def _server(code: str) -> tuple:
    env = {**os.environ, "HELIOS_ROOT": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    return proc, proc.stdout.readline().strip()


def _child(python: str, kind: str, target: str, ticks: int) -> dict:
    env = {**os.environ, "HELIOS_ROOT": str(ROOT)}
    out = subprocess.run([python, "-c", CHILD, kind, target, str(ticks)], capture_output=True,
                         text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list | None = None) -> int:
    """Run every case; print a table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = {}
    results["simulated"] = _child(sys.executable, "simulated", "-", args.ticks)
    proc, port = _server(MODBUS_SERVER)
    try:
        results["victron_modbus (pymodbus)"] = _child(sys.executable, "victron_modbus", port,
                                                      args.ticks)
    finally:
        proc.communicate("", timeout=30)
    proc, address = _server(DBUS_SERVER)
    try:
        results["victron_dbus (jeepney)"] = _child(sys.executable, "dbus:jeepney", address,
                                                   args.ticks)
        probe = subprocess.run(["/usr/bin/python3", "-c", "import dbus"], capture_output=True) \
            if os.path.exists("/usr/bin/python3") else None
        if probe is not None and probe.returncode == 0:
            results["victron_dbus (dbus-python, system python)"] = _child(
                "/usr/bin/python3", "dbus:dbus-python", address, args.ticks)
    finally:
        proc.communicate("", timeout=30)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"executor footprint, {args.ticks} ticks each ({time.strftime('%Y-%m-%d')}, "
          f"Python {sys.version.split()[0]}); target RSS <= 30 MB")
    print(f"{'driver':44} {'RSS MB':>7} {'peak MB':>8} {'CPU ms/tick':>12} {'wall ms/tick':>13}")
    for name, r in results.items():
        print(f"{name:44} {r['rss_mb']:7.1f} {r['peak_mb']:8.1f} {r['cpu_ms_per_tick']:12.2f} "
              f"{r['wall_ms_per_tick']:13.2f}  {r['decision']}"
              + (f"  HEAVY {r['heavy']}" if r["heavy"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
