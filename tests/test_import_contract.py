"""The executor stays light: importing it never loads planner, pandas, cvxpy or numpy."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import executor

FORBIDDEN = ("planner", "pandas", "cvxpy", "numpy", "scipy")


def test_executor_modules_import_without_heavy_packages():
    names = sorted(m.name for m in pkgutil.walk_packages(executor.__path__, "executor."))
    assert "executor.schedule" in names
    code = (
        "import importlib, json, sys\n"
        f"names = {names!r}\n"
        "for n in names:\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except ImportError as e:\n"  # optional driver libraries may be absent
        "        if any(f in str(e) for f in ('planner', 'pandas', 'cvxpy', 'numpy')): raise\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1])
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert not bad, f"executor pulled in {bad[:5]}"


def test_import_linter_contracts_pass():
    """The executor contract and the planner's layers (pyproject.toml [tool.importlinter])."""
    out = subprocess.run(["lint-imports"], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 2 kept, 0 broken" in out.stdout
