"""``helios doctor`` against a real install's parts: the Modbus GX emulator (a pymodbus server
on 127.0.0.1), a loopback Nord Pool server replaying a recorded day, SQLite, a schedule file.
Each failure case checks that the failing step is named and a fix is given."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from gx_emulator.modbus_gx import ModbusGx
from gx_emulator.plans import build_plan
from gx_emulator.victron_ess import EssPlant

from executor import schedule as sched
from planner.cli import doctor as doc
from planner.cli.main import main
from planner.history.store import Store

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded" / "nordpool"


class _PriceServer:
    """Answers every GET with the recorded Nord Pool SE3 day (or ``status``)."""

    def __init__(self):
        self.status = 200
        body = (RECORDED / "SE3_2023-10-28.json").read_bytes()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                payload = body if outer.status == 200 else b'{"error": "unauthorized"}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prices():
    server = _PriceServer()
    yield server
    server.close()


@pytest.fixture
def gx():
    plant = EssPlant(63.0, 10.0, datetime.now(timezone.utc))
    emulator = ModbusGx(plant, lambda: datetime.now(timezone.utc)).start()
    yield emulator
    emulator.stop()


def _install(tmp_path: Path, gx_port: int, price_url: str, plan_age_min: float = 1.0) -> Path:
    """A real-home config (Nord Pool, state gx, victron_modbus), a DB at schema, a plan."""
    cfg = {
        "site": {"timezone": "Europe/Stockholm", "latitude": 59.3, "longitude": 18.1},
        "tariff": {"buy": "price + 0.1", "sell": "price"},
        "prices": {"type": "nordpool", "area": "SE3", "base_url": price_url, "timeout_s": 2},
        "pv": {"type": "none"},
        "load": {"type": "constant", "load_kw": 0.5},
        "state": {"type": "gx"},
        "storage": {"url": "sqlite:///helios.db"},
        "executor": {"driver": {"type": "victron_modbus", "host": "127.0.0.1",
                                "port": gx_port, "battery_unit_id": 225}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with Store(f"sqlite:///{tmp_path / 'helios.db'}") as store:
        store.ensure_schema()
    now = datetime.now(timezone.utc)
    generated = now - timedelta(minutes=plan_age_min)
    sched.write(str(tmp_path / "schedule.json"),
                build_plan(generated, 8, 63.0, generated_at=generated))
    return path


def _by_step(checks) -> dict:
    out: dict = {}
    for c in checks:
        out.setdefault(c.step, []).append(c)
    return out


def _run(path: Path):
    return doc.run_checks(str(path), pd.Timestamp.now(tz="UTC"), timeout_s=2.0, systemd=False)


def test_a_healthy_install_passes_every_step(tmp_path, gx, prices):
    path = _install(tmp_path, gx.port, prices.url)
    checks = _by_step(_run(path))
    assert list(checks) == ["config", "executor", "prices", "pv", "load", "gx", "state",
                            "database", "plan"]
    assert [c.status for c in checks["config"]] == ["OK"]
    for step in ("executor", "prices", "gx", "state", "database", "plan"):
        assert checks[step][0].status == "OK", checks[step][0]
    assert "SoC 63.0 %" in checks["state"][0].message  # the emulator's battery unit, 0.1 %
    assert "ESS ready for mode dess" in checks["gx"][0].message
    # pv: none and load: constant are valid but not a home's data
    assert checks["pv"][0].status == checks["load"][0].status == "WARN"
    assert gx.dess_mode == 0 and gx.override_w is None  # the doctor wrote nothing to the GX


def test_cli_json_exit_0_on_warnings_and_1_on_a_failure(tmp_path, gx, prices, monkeypatch):
    path = _install(tmp_path, gx.port, prices.url)
    runner = CliRunner()
    result = runner.invoke(main, ["doctor", "--config", str(path), "--json", "--no-systemd"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["status"] for r in rows} == {"OK", "WARN"}
    assert all({"step", "status", "message", "fix"} <= set(r) for r in rows)
    gx.hub4_mode = 3
    result = runner.invoke(main, ["doctor", "--config", str(path), "--no-systemd"])
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.startswith("FAIL"))
    assert line.split()[1] == "gx" and "External control" in line


def test_gx_unreachable_names_the_gx_and_modbus_tcp(tmp_path, prices, gx):
    path = _install(tmp_path, gx.port, prices.url)
    gx.stop()
    checks = _by_step(_run(path))
    assert checks["gx"][0].status == "FAIL"
    assert "cannot read 127.0.0.1" in checks["gx"][0].message
    assert "Modbus TCP" in checks["gx"][0].fix and "unit id" in checks["gx"][0].fix
    assert checks["state"][0].status == "FAIL" and "gx step" in checks["state"][0].fix


def test_dess_in_vrm_mode_is_the_wrong_mode(tmp_path, gx, prices):
    path = _install(tmp_path, gx.port, prices.url)
    gx.dess_mode = 1
    check = _by_step(_run(path))["gx"][0]
    assert check.status == "FAIL" and "VRM mode" in check.message
    assert "Dynamic ESS" in check.fix
    assert gx.dess_mode == 1  # only checked, never taken over


def test_a_refused_price_token_names_the_provider_and_secrets(tmp_path, gx, prices):
    path = _install(tmp_path, gx.port, prices.url)
    prices.status = 401
    check = _by_step(_run(path))["prices"][0]
    assert check.status == "FAIL" and check.message.startswith("prices (nordpool):")
    assert "HTTP 401" in check.message and "secrets.yaml" in check.fix


def test_a_database_newer_than_this_helios_fails(tmp_path, gx, prices):
    path = _install(tmp_path, gx.port, prices.url)
    with sqlite3.connect(tmp_path / "helios.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    check = _by_step(_run(path))["database"][0]
    assert check.status == "FAIL" and "'9999'" in check.message
    assert "upgrade Helios" in check.fix


def test_no_database_yet_is_a_warning_and_nothing_is_created(tmp_path, gx, prices):
    path = _install(tmp_path, gx.port, prices.url)
    (tmp_path / "helios.db").unlink()
    check = _by_step(_run(path))["database"][0]
    assert check.status == "WARN" and "helios db upgrade" in check.fix
    assert not (tmp_path / "helios.db").exists()


def test_a_stale_plan_fails_and_points_at_the_timer(tmp_path, gx, prices):
    path = _install(tmp_path, gx.port, prices.url, plan_age_min=90)
    check = _by_step(_run(path))["plan"][0]
    assert check.status == "FAIL" and "stale" in check.message
    assert "helios-plan.timer" in check.fix


def test_an_invalid_config_stops_at_the_config_step(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("battery: {capacity_kwh: -1}\n")
    checks = _run(path)
    assert [c.step for c in checks] == ["config"] and checks[0].status == "FAIL"
    assert "battery.capacity_kwh" in checks[0].message


def test_systemd_units_enabled_missing_or_absent(tmp_path, monkeypatch):
    units = tmp_path / "units"
    units.mkdir()
    runtime = tmp_path / "run"
    monkeypatch.setattr(doc, "UNIT_DIRS", (str(units),))
    monkeypatch.setattr(doc, "SYSTEMD_RUNTIME", str(runtime))
    monkeypatch.setattr(doc.shutil, "which", lambda name: "/bin/systemctl")
    no_systemd = doc.check_systemd(lambda unit: "enabled")
    assert [c.status for c in no_systemd] == ["WARN"] and "does not run systemd" in \
        no_systemd[0].message
    runtime.mkdir()
    (units / "helios-plan.timer").write_text("")
    (units / "helios-executor.service").write_text("")
    states = {"helios-plan.timer": "enabled", "helios-executor.service": "disabled"}
    checks = {c.message.split(":")[0].split()[0]: c
              for c in doc.check_systemd(lambda unit: states[unit])}
    assert checks["helios-plan.timer"].status == "OK"
    assert checks["helios-executor.service"].status == "FAIL"
    assert "systemctl enable --now helios-executor.service" in \
        checks["helios-executor.service"].fix
    assert checks["helios-serve.service"].status == "WARN"  # optional
    (units / "helios-plan.timer").unlink()
    missing = [c for c in doc.check_systemd(lambda unit: "enabled") if c.status == "FAIL"]
    assert [c.message for c in missing] == ["helios-plan.timer not installed"]
    assert "bin/install-systemd" in missing[0].fix


def test_a_load_history_still_too_short_is_a_warning_not_a_failure(tmp_path, gx, prices):
    """What `helios setup` writes (load: history) on a new install: the plan uses the default
    profile (flagged) until 7 days of measurements exist, so the doctor warns, never fails."""
    path = _install(tmp_path, gx.port, prices.url)
    doc_ = yaml.safe_load(path.read_text())
    doc_["load"] = {"type": "history"}
    path.write_text(yaml.safe_dump(doc_))
    load = _by_step(_run(path))["load"][0]
    assert load.status == "WARN", load
    assert "only 0.0 days of measured load" in load.message
    assert "default load profile" in load.message and "measurements" in load.fix
