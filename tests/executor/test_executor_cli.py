"""``helios-executor`` as a process: exit codes, --once, pause/resume, SIGTERM → release."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gx_emulator.plans import build_plan

from executor import __main__ as cli
from executor import pause
from executor import schedule as sched

ROOT = Path(__file__).parents[2]


def _config(tmp_path, **executor) -> Path:
    doc = {"executor": {"driver": {"type": "simulated"}, "telemetry": {"sql_url": None},
                        **executor}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


def _fresh_plan(tmp_path) -> None:
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 15)
    sched.write(tmp_path / "schedule.json", build_plan(start, 8, 50.0, generated_at=now))


def test_bad_config_exits_2(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"executor": {"interval_s": "x"}}))
    assert cli.main(["--config", str(path), "--once"]) == 2
    assert "executor.interval_s: expected a number" in capsys.readouterr().err


def test_yaml_without_pyyaml_is_a_clear_config_error(tmp_path, monkeypatch, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("executor: {}\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # like a GX: no PyYAML
    assert cli.main(["--config", str(path), "--once"]) == 2
    assert "a .json config (PyYAML is not installed here)" in capsys.readouterr().err


def test_once_applies_then_releases(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    _fresh_plan(tmp_path)
    assert cli.main(["--config", str(_config(tmp_path)), "--once"]) == 0
    assert "apply: slot" in caplog.text
    assert "released: --once" in caplog.text


def test_pause_resume_commands(tmp_path, capsys):
    cfg = _config(tmp_path)
    assert cli.main(["--config", str(cfg), "pause", "--until", "2h"]) == 0
    until = pause.read(str(tmp_path / "helios-executor.pause.json"))
    assert until is not None and until > datetime.now(timezone.utc) + timedelta(minutes=119)
    assert "paused until" in capsys.readouterr().out
    assert cli.main(["--config", str(cfg), "pause", "--until", "yesterday"]) == 2
    assert cli.main(["--config", str(cfg), "resume"]) == 0
    assert pause.read(str(tmp_path / "helios-executor.pause.json")) is None
    assert cli.main(["--config", str(cfg), "pause", "--until", "2030-01-01T00:00:00Z"]) == 0
    assert cli.main(["--config", str(cfg), "status"]) == 0
    out = capsys.readouterr().out
    assert "paused until: 2030-01-01T00:00:00Z" in out and "reading:" in out


def test_sigterm_releases_then_exits_0(tmp_path):
    _fresh_plan(tmp_path)
    cfg = _config(tmp_path, interval_s=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "executor", "--config", str(cfg)],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:  # wait for the first applied tick (no sleeping)
            lines.append(line)
            if "apply: slot" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(lines) + rest
    assert "released: signal SIGTERM" in rest
