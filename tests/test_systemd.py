"""systemd units: keys and hardening checked by parsing; `systemd-analyze verify` when present;
bin/install-systemd renders the timer interval from the config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "systemd"
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "StateDirectory": "helios",
             "ConfigurationDirectory": "helios", "ReadWritePaths": "/var/lib/helios"}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as {section: {key: [values...]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: key outside a section: {line!r}"
        assert "=" in line, f"{path.name}: not key=value: {line!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, (section, key, values)
    return values[0]


@pytest.mark.parametrize("name", ["helios-plan.service", "helios-executor.service",
                                  "helios-serve.service"])
def test_services_are_hardened_and_use_etc_and_var_lib(name):
    unit = parse_unit(UNITS / name)
    svc = unit["Service"]
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    assert one(unit, "Service", "User") == "helios" and "root" not in svc["User"]
    assert "--config /etc/helios/config.yaml" in one(unit, "Service", "ExecStart")
    assert one(unit, "Service", "WorkingDirectory") == "/var/lib/helios"
    assert one(unit, "Service", "CapabilityBoundingSet") == ""


def test_plan_service_is_oneshot():
    unit = parse_unit(UNITS / "helios-plan.service")
    assert one(unit, "Service", "Type") == "oneshot"
    assert one(unit, "Service", "ExecStart").split()[1:3] == ["plan", "--config"]
    assert "Install" not in unit  # started by the timer only


def test_executor_service_restarts_always():
    unit = parse_unit(UNITS / "helios-executor.service")
    assert one(unit, "Service", "Restart") == "always"
    assert one(unit, "Service", "Type") == "simple"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_serve_service_listens_on_loopback_and_restarts_on_failure():
    unit = parse_unit(UNITS / "helios-serve.service")
    start = one(unit, "Service", "ExecStart").split()
    assert start[1] == "serve" and start[start.index("--host") + 1] == "127.0.0.1"
    assert one(unit, "Service", "Type") == "simple"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "UMask") == "0077"  # the token file stays private
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_timer_every_recalc_interval_persistent_small_delay():
    from planner import config as config_mod

    unit = parse_unit(UNITS / "helios-plan.timer")
    assert one(unit, "Timer", "Persistent") == "true"
    assert one(unit, "Timer", "Unit") == "helios-plan.service"
    assert one(unit, "Install", "WantedBy") == "timers.target"
    interval = config_mod.default().planning.recalc_interval_s
    assert interval == 300
    assert one(unit, "Timer", "OnCalendar") == "*:0/5:00"
    delay = one(unit, "Timer", "RandomizedDelaySec")
    assert delay.endswith("s") and 0 < int(delay[:-1]) <= interval // 10


def _analyze() -> str | None:
    return shutil.which("systemd-analyze")


def test_systemd_analyze_verify(tmp_path):
    tool = _analyze()
    if tool is None:
        pytest.skip("systemd-analyze not installed; the parsing tests above cover the keys")
    # point ExecStart at executables that exist here (verify checks that they do)
    for name in ("helios-plan.service", "helios-plan.timer", "helios-executor.service",
                 "helios-serve.service"):
        text = (UNITS / name).read_text(encoding="utf-8")
        text = text.replace("/usr/local/bin/helios-executor", sys.executable)
        text = text.replace("/usr/local/bin/helios", sys.executable)
        (tmp_path / name).write_text(text, encoding="utf-8")
    proc = subprocess.run([tool, "verify", "helios-plan.service", "helios-plan.timer",
                           "helios-executor.service", "helios-serve.service"],
                          cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if "helios" in line]
    assert proc.returncode == 0 and ours == [], proc.stdout + proc.stderr
    cal = subprocess.run([tool, "calendar", "--iterations", "3", "*:0/5:00"],
                         capture_output=True, text=True, timeout=30)
    assert cal.returncode == 0, cal.stderr
    assert "*-*-* *:00/5:00" in cal.stdout


@pytest.mark.parametrize(("interval", "expected"), [
    (300, ["OnCalendar=*:0/5:00"]),
    (600, ["OnCalendar=*:0/10:00"]),
    (30, ["OnCalendar=*:*:0/30"]),
    (7200, ["OnCalendar=0/2:00:00"]),
    (450, ["OnBootSec=30s", "OnUnitActiveSec=450s"]),
])
def test_install_systemd_renders_the_interval(tmp_path, interval, expected):
    etc = tmp_path / "etc" / "helios"
    etc.mkdir(parents=True)
    doc = {"planning": {"recalc_interval_s": interval, "plan_valid_s": max(3600, interval)}}
    (etc / "config.yaml").write_text(yaml.safe_dump(doc))
    bin_dir = tmp_path / "venv-bin"
    proc = subprocess.run(["bash", str(ROOT / "bin" / "install-systemd"), "--root",
                           str(tmp_path), "--bin-dir", str(bin_dir), "--python", sys.executable],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    units = tmp_path / "etc" / "systemd" / "system"
    timer = (units / "helios-plan.timer").read_text()
    for line in expected:
        assert line in timer.splitlines()
    assert "Persistent=true" in timer
    delay = int(next(x for x in timer.splitlines() if x.startswith("RandomizedDelaySec="))
                .split("=")[1][:-1])
    assert 1 <= delay <= max(1, interval // 10)
    plan = parse_unit(units / "helios-plan.service")
    assert one(plan, "Service", "ExecStart").startswith(f"{bin_dir}/helios plan ")
    executor = parse_unit(units / "helios-executor.service")
    assert one(executor, "Service", "ExecStart").startswith(f"{bin_dir}/helios-executor ")
    assert (tmp_path / "var" / "lib" / "helios").is_dir()


def test_install_systemd_writes_a_valid_config_with_state_paths(tmp_path):
    from planner import config as config_mod

    proc = subprocess.run(["bash", str(ROOT / "bin" / "install-systemd"), "--root",
                           str(tmp_path), "--bin-dir", "/opt/helios/bin",
                           "--python", sys.executable],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    cfg = config_mod.load(tmp_path / "etc" / "helios" / "config.yaml")
    assert cfg.output.schedule_path == "/var/lib/helios/schedule.json"
    assert cfg.storage.url == "sqlite:////var/lib/helios/helios.db"
    assert cfg.report.path == "/var/lib/helios/report.html"


def _install(tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "bin" / "install-systemd"), "--root",
                           str(tmp_path), "--bin-dir", "/opt/helios/bin",
                           "--python", sys.executable],
                          capture_output=True, text=True, timeout=60)


def test_install_systemd_warns_loudly_about_a_demo_config(tmp_path):
    """issue 16: the config written from config.yaml plans on demo data with a static SoC."""
    proc = _install(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: " in proc.stderr and "is not a real home's configuration" in proc.stderr
    assert "prices, pv, load: type demo" in proc.stderr
    assert "state: type static" in proc.stderr
    assert "helios check-config --config" in proc.stderr


def test_install_systemd_warns_about_missing_providers_and_tariff(tmp_path):
    etc = tmp_path / "etc" / "helios"
    etc.mkdir(parents=True)
    (etc / "config.yaml").write_text("battery: {capacity_kwh: 8}\n")
    proc = _install(tmp_path)
    assert proc.returncode == 0, proc.stderr
    for kind in ("prices", "pv", "load", "state"):
        assert f"{kind}: expected a {kind}: section" in proc.stderr
    assert "will fail (exit 2) until you fix it" in proc.stderr
    # a real home's config: no warning
    doc = {"prices": {"type": "nordpool", "area": "SE3"}, "pv": {"type": "none"},
           "load": {"type": "constant", "load_kw": 0.4}, "state": {"type": "measurements"},
           "tariff": {"buy": "price + 0.1", "sell": "price"}}
    (etc / "config.yaml").write_text(yaml.safe_dump(doc))
    proc = _install(tmp_path)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
