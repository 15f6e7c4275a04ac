"""A new user's run, end to end, with real subprocesses (issue 16, "Show"):

fresh clone → the README's install command → ``helios plan --demo`` in an empty folder →
``helios setup`` against the GX Modbus emulator → ``helios check-config`` → ``helios plan`` →
``helios doctor`` → ``helios-executor`` live on the emulator for a few ticks, then stopped.

No test touches the internet, so two things differ from a real first run, and only these:

* the install is ``pip install --no-index --no-build-isolation -e .`` in a venv made with
  ``--system-site-packages`` — the README's ``pip install -e .`` without downloading what
  this machine already has (the dependencies and the build requirements, setuptools-scm and
  wheel, must already be installed: the ``test`` extra has them, as `.ci/run` installs it);
* the Nord Pool provider's ``base_url`` (the one line edited in the config ``helios setup``
  wrote) points at a loopback server that answers the data portal's
  ``/api/DayAheadPriceIndices?date=D`` with the recorded SE3 day (Nord Pool, 2023-10-28)
  moved onto ``D``.

The figures (step times, doctor lines, executor ticks) are printed (``pytest -s``) and
written to ``walkthrough.json`` in the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from gx_emulator.modbus_gx import ModbusGx
from gx_emulator.victron_ess import EssPlant

from planner.history.schema import measurements

ROOT = Path(__file__).resolve().parents[1]
RECORDED_DAY = ROOT / "tests" / "data" / "recorded" / "nordpool" / "SE3_2023-10-28.json"

#: doctor steps that cannot be OK on a first run on this machine, and why
EXPECTED_WARN = {
    "pv": "pv: none (setup --pv-kwp 0): no PV forecast, valid but not a home's data",
    "load": "load: history needs 7 days of the executor's measurements; the plan uses the "
            "default profile until then",
    "systemd": "no systemd here (a container): the units cannot be checked",
}


class NordPoolReplay:
    """``/api/DayAheadPriceIndices?date=D``: the recorded SE3 day moved onto ``D``."""

    def __init__(self):
        day = json.loads(RECORDED_DAY.read_text())
        recorded = pd.Timestamp(day["deliveryDateCET"])
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlsplit(self.path)
                outer.requests.append(self.path)
                date = parse_qs(url.query).get("date", [None])[0]
                if not url.path.endswith("/DayAheadPriceIndices") or date is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                shift = pd.Timestamp(date) - recorded
                moved = dict(day, deliveryDateCET=date, multiIndexEntries=[
                    {**e, "deliveryStart": _shift(e["deliveryStart"], shift),
                     "deliveryEnd": _shift(e["deliveryEnd"], shift)}
                    for e in day["multiIndexEntries"]])
                body = json.dumps(moved).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _shift(text: str, by: pd.Timedelta) -> str:
    return (pd.Timestamp(text) + by).strftime("%Y-%m-%dT%H:%M:%SZ")


class Steps:
    """Runs each command, times it, keeps what the report needs."""

    def __init__(self, env: dict):
        self.env = env
        self.figures: dict = {"steps": []}

    def run(self, name: str, args: list, cwd: Path, timeout_s: float = 300,
            ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        began = time.monotonic()
        proc = subprocess.run([str(a) for a in args], cwd=cwd, env=self.env, text=True,
                              capture_output=True, timeout=timeout_s)
        took = time.monotonic() - began
        self.figures["steps"].append({"step": name, "exit": proc.returncode,
                                      "seconds": round(took, 2)})
        print(f"--- {name}: exit {proc.returncode} in {took:.1f} s")
        assert proc.returncode in ok, f"{name}: exit {proc.returncode}\n{proc.stdout}\n" \
                                      f"{proc.stderr}"
        return proc


def test_fresh_clone_readme_demo_setup_doctor_executor(tmp_path):
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the walkthrough needs a git checkout and git")
        pytest.skip("not a git checkout")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HELIOS_CONFIG", "STATE_DIRECTORY", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    steps = Steps(env)
    started = time.monotonic()

    # 1. a fresh clone of what is committed
    clone = tmp_path / "helios"
    steps.run("git clone", ["git", "clone", "--quiet", ROOT, clone], tmp_path)
    # 2. the README: python3 -m venv .venv && . .venv/bin/activate && pip install -e .
    venv = clone / ".venv"
    # (--without-pip: this machine's pip, setuptools, setuptools-scm and wheel build it)
    steps.run("python3 -m venv", [sys.executable, "-m", "venv", "--system-site-packages",
                                  "--without-pip", venv], clone)
    # when this test itself runs in a venv, --system-site-packages would see the base
    # interpreter's packages only: a .pth file adds this interpreter's, where .ci/run put them
    lib = next((venv / "lib").glob("python3*/site-packages"))
    (lib / "outer-site-packages.pth").write_text("\n".join(
        p for p in sys.path if p.endswith("site-packages")) + "\n")
    bin_dir = venv / "bin"
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    steps.run("pip install -e .", [bin_dir / "python", "-m", "pip", "install", "-q",
                                   "--no-index", "--no-build-isolation", "-e", "."], clone)
    helios, executor = bin_dir / "helios", bin_dir / "helios-executor"
    assert helios.exists() and executor.exists()
    where = steps.run("import planner", [bin_dir / "python", "-c",
                                         "import planner; print(planner.__file__)"], tmp_path)
    assert where.stdout.startswith(str(clone)), where.stdout  # the clone's code runs
    # 3. the demo in an empty folder
    demo = tmp_path / "demo"
    demo.mkdir()
    out = steps.run("helios plan --demo", [helios, "plan", "--demo"], demo, 120).stdout
    assert "schedule.json" in out and (demo / "schedule.json").exists()
    assert (demo / "helios.db").exists()
    steps.run("helios report --demo", [helios, "report", "--demo"], demo, 120)

    plant = EssPlant(63.0, 13.8, datetime.now(timezone.utc))
    plant.settings["/Settings/DynamicEss/BatteryCapacity"][0] = 13.8
    gx = ModbusGx(plant, lambda: datetime.now(timezone.utc)).start()
    prices = NordPoolReplay()
    proc = None
    try:
        # 4. helios setup against the GX emulator (reads SoC and the DESS capacity)
        site = tmp_path / "site"
        setup = steps.run("helios setup", [
            helios, "setup", "--dir", site, "--gx-host", "127.0.0.1", "--gx-port", gx.port,
            "--prices", "nordpool", "--area", "SE3", "--lat", "59.33", "--lon", "18.06",
            "--max-charge-kw", "5", "--max-discharge-kw", "5", "--pv-kwp", "0",
            "--buy", "(price + 0.10) * 1.25", "--sell", "price", "-y"], tmp_path).stdout
        assert "unit 100 answers: SoC 63.0 %" in setup and "13.8 kWh" in setup
        config = site / "config.yaml"
        doc = yaml.safe_load(config.read_text())
        assert doc["prices"] == {"type": "nordpool", "area": "SE3"}
        # the one edit: prices from the loopback replay instead of the internet
        config.write_text(config.read_text().replace(
            "area: SE3", f"area: SE3\n  base_url: {prices.url}", 1))
        check = steps.run("helios check-config", [helios, "check-config", "--config", config],
                          site).stdout
        assert "config OK" in check
        # 5. the first real plan
        plan = steps.run("helios plan", [helios, "plan", "--config", config], site, 120)
        assert "wrote" in plan.stdout and (site / "schedule.json").exists()
        assert "demo" not in plan.stderr
        # 6. helios doctor
        doctor = steps.run("helios doctor", [helios, "doctor", "--config", config, "--json"],
                           site, 120)
        checks = json.loads(doctor.stdout)
        lines = [f"{c['status']} {c['step']}: {c['message']}" for c in checks]
        print("\n".join(lines))
        steps.figures["doctor"] = lines
        failed = [c for c in checks if c["status"] == "FAIL"]
        assert not failed, failed
        warned = {c["step"] for c in checks if c["status"] == "WARN"}
        systemd_steps = {c["step"] for c in checks if c["step"].startswith(("helios-",
                                                                            "systemd"))}
        assert warned - systemd_steps <= set(EXPECTED_WARN), warned
        ok = {c["step"] for c in checks if c["status"] == "OK"}
        assert {"config", "executor", "prices", "gx", "state", "database", "plan"} <= ok
        steps.figures["doctor_warn_reasons"] = {k: EXPECTED_WARN.get(k, "systemd units")
                                                for k in sorted(warned)}
        # 7. the executor, live on the emulator, for a few ticks (10 s each), then SIGTERM
        began = time.monotonic()
        proc = subprocess.Popen([str(executor), "--config", str(config)], cwd=site, env=env,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (gx.dess_mode != 4
                                               or not gx.slot0()["Duration"]):
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        assert gx.dess_mode == 4, "the executor did not take Dynamic ESS into local mode"
        time.sleep(21)  # two more ticks
        driving = {"dess_mode": gx.dess_mode, "slot0": gx.slot0(),
                   "soc_pct": round(plant.soc_pct, 2)}
        proc.send_signal(signal.SIGTERM)
        log, _ = proc.communicate(timeout=30)
        ran_s = time.monotonic() - began
        print(log[-3000:])
        steps.figures["executor_log"] = log.splitlines()[-12:]
        assert proc.returncode == 0, log
        assert gx.dess_mode == 0, "DESS mode not given back at exit"
        engine = sa.create_engine(f"sqlite:///{site / 'helios.db'}")
        with engine.connect() as conn:
            rows = conn.execute(sa.select(measurements.c.soc_pct, measurements.c.source,
                                          measurements.c.simulated)).all()
        engine.dispose()
        steps.figures["executor"] = {"ran_s": round(ran_s, 1), "while_driving": driving,
                                     "measurement_rows": len(rows),
                                     "flash_writes": gx.flash_writes,
                                     "log_lines": len(log.splitlines())}
        # live measurements from the emulated GX reached the history, not tagged simulated
        assert len(rows) >= 1 and not any(r.simulated for r in rows), rows
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        gx.stop()
        prices.close()
    steps.figures["total_s"] = round(time.monotonic() - started, 1)
    steps.figures["price_requests"] = len(prices.requests)
    print(json.dumps(steps.figures, indent=1, default=str))
    (tmp_path / "walkthrough.json").write_text(json.dumps(steps.figures, indent=1,
                                                          default=str))
