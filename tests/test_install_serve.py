"""bin/install-systemd --with-serve installs helios-serve.service pointing at the installed
`helios`, and without the flag does not (issue 16 item 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _install(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "bin" / "install-systemd"), "--root",
                           str(tmp_path), "--bin-dir", "/opt/helios/bin",
                           "--python", sys.executable, *extra],
                          capture_output=True, text=True, timeout=60)


def test_with_serve_installs_the_serve_unit_with_the_helios_binary(tmp_path):
    proc = _install(tmp_path, "--with-serve")
    assert proc.returncode == 0, proc.stderr
    unit = tmp_path / "etc" / "systemd" / "system" / "helios-serve.service"
    text = unit.read_text()
    exec_start = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    assert exec_start == ("ExecStart=/opt/helios/bin/helios serve --config "
                          "/etc/helios/config.yaml --host 127.0.0.1 --port 8765")
    assert oct(unit.stat().st_mode & 0o777) == "0o644"
    assert "installed helios-serve.service" in proc.stdout
    # the rest of the hardened unit is the repository's, unchanged
    original = (ROOT / "systemd" / "helios-serve.service").read_text().splitlines()
    assert [x for x in text.splitlines() if not x.startswith("ExecStart=")] == \
        [x for x in original if not x.startswith("ExecStart=")]


def test_without_the_flag_no_serve_unit(tmp_path):
    proc = _install(tmp_path)
    assert proc.returncode == 0, proc.stderr
    units = tmp_path / "etc" / "systemd" / "system"
    assert (units / "helios-executor.service").exists()
    assert not (units / "helios-serve.service").exists()
