"""bin/install-gx in a scratch root: files under /data/helios, the service linked from
/data/rc.local (idempotent), the installed copy runs on its own, uninstall and purge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _run(args, tmp_path):
    env = {**os.environ, "HELIOS_DATA": str(tmp_path / "data"),
           "HELIOS_SERVICE_ROOT": str(tmp_path / "service"), "HELIOS_NO_SVC": "1"}
    return subprocess.run(["sh", str(ROOT / "bin" / "install-gx"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_install_run_uninstall(tmp_path):
    cfg = tmp_path / "site.yaml"
    cfg.write_text("executor:\n  driver: {type: simulated}\n  telemetry: {sql_url: null}\n")
    data = tmp_path / "data"
    (data).mkdir()
    (data / "rc.local").write_text("#!/bin/sh\necho other things\n")
    for _ in range(2):  # idempotent
        out = _run(["--config", str(cfg)], tmp_path)
        assert out.returncode == 0, out.stderr
    dest = data / "helios"
    assert (dest / "executor" / "__main__.py").exists()
    assert not (dest / "planner").exists()  # only the executor goes to the GX
    assert json.loads((dest / "config.json").read_text())["executor"]["driver"]["type"] == \
        "simulated"  # YAML converted to JSON (no PyYAML on the GX)
    run = (dest / "service" / "run").read_text()
    assert f"{dest}/bin/helios-executor --config {dest}/config.json" in run
    assert "multilog" in (dest / "service" / "log" / "run").read_text()
    rc = (data / "rc.local").read_text()
    assert rc.count("install-gx") == 1 and "echo other things" in rc
    assert os.access(data / "rc.local", os.X_OK)
    link = tmp_path / "service" / "helios-executor"
    assert link.is_symlink() and os.readlink(link) == str(dest / "service")

    # the installed copy runs without the checkout (stdlib only)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, str(dest / "bin" / "helios-executor"), "--config",
                          str(dest / "config.json"), "--once"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "released: --once" in out.stderr

    out = _run(["--uninstall"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert not link.exists() and dest.exists()
    rc = (data / "rc.local").read_text()
    assert "install-gx" not in rc and "echo other things" in rc
    assert _run(["--uninstall", "--purge"], tmp_path).returncode == 0
    assert not dest.exists()


def test_starter_config_when_none_given(tmp_path):
    out = _run([], tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "data" / "helios" / "config.json").read_text())
    assert doc["executor"]["driver"]["type"] == "victron_dbus"
    from executor import config

    cfg = config.load(str(tmp_path / "data" / "helios" / "config.json"))
    assert cfg.plan.source == "http"
