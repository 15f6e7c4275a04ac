"""The executor stays light: RSS under the 30 MB target, and its code parses as Python 3.8
(Venus OS < 3.60 ships 3.8; also run under a 3.8 interpreter when one is installed)."""

from __future__ import annotations

import ast
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("executor_bench",
                                                  ROOT / "bench" / "executor_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rss_under_30_mb_and_no_heavy_imports():
    r = _bench()._child(sys.executable, "simulated", "-", 50)
    assert r["decision"] == "Apply"
    assert r["heavy"] == []
    assert r["peak_mb"] <= 30, r


def test_parses_as_python_3_8():
    for path in (ROOT / "executor").rglob("*.py"):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))


def test_runs_on_python_3_8_when_installed(tmp_path):
    candidates = [shutil.which("python3.8")] + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    python = next((c for c in candidates if c and subprocess.run(
        [c, "-c", "pass"], capture_output=True).returncode == 0), None)
    if python is None:
        return  # no 3.8 interpreter here; the parse check above still holds
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"executor": {"driver": {"type": "simulated"},
                                            "telemetry": {"enabled": False}}}))
    out = subprocess.run([python, "-m", "executor", "--config", str(cfg), "--once"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "released: --once" in out.stderr
