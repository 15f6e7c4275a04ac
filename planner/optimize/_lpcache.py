"""cvxpy's compiled LP data on disk, so that a fresh process skips the compile (issue 17).

``helios plan`` is one process per timer tick: its one solve used to spend ≈25-40 ms of CPU
in cvxpy's canonicalisation (``Problem.get_problem_data``), more than the solve itself. The
compiled data of a problem's *structure* (which only :class:`planner.optimize.model.ModelSpec`
and the planner's code fix; the numbers are Parameters) is the same in every run, so
:func:`save` stores it — the plain arrays of :func:`planner.optimize._highs.compile_arrays`,
pickled (≈0.2 ms to load; an ``.npz`` of the same arrays takes 1-4 ms) in a file only its
user can read or write (``mkstemp``: 0600, like Python's own bytecode cache it is trusted
as the user's own output) — and :func:`load` gives it back to the next process.

The file is named by a hash of the structure key (``repr(ModelSpec)``), the path, size and
modification time of every source of :mod:`planner.optimize` and the versions of cvxpy,
numpy and scipy: any code change makes a new name (files of older code are removed on the
next save), so a stale file is not read.
A loaded file is checked against the problem (the Parameters' and Variables' names and
shapes); on any mismatch or read error the caller compiles as before.

Where: ``$HELIOS_LP_CACHE`` (``off`` disables it), else ``$XDG_CACHE_HOME/helios/lp``, else
``~/.cache/helios/lp``. A directory that cannot be written only costs the compile.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy

from planner.optimize._cvxpy import cp

#: the environment variable naming the cache directory (``off``: no cache)
ENV = "HELIOS_LP_CACHE"
_CODE: list[str] = []  # the code hash, computed once per process


def directory() -> Path | None:
    """The cache directory (None: disabled)."""
    given = os.environ.get(ENV)
    if given is not None:
        return None if given.strip().lower() in ("", "0", "off", "no", "false") else Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "helios" / "lp"


def code_hash() -> str:
    """A hash of the planner's optimisation sources (path, size, modification time: ≈0.1 ms
    against ≈1 ms for their contents) and the libraries that compile them."""
    if not _CODE:
        h = hashlib.sha256()
        root = os.path.dirname(os.path.abspath(__file__))
        for folder, dirs, files in sorted(os.walk(root)):
            dirs.sort()
            for name in sorted(f for f in files if f.endswith(".py")):
                st = os.stat(os.path.join(folder, name))
                rel = os.path.relpath(os.path.join(folder, name), root)
                h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        h.update(f"{cp.__version__}|{np.__version__}|{scipy.__version__}".encode())
        _CODE.append(h.hexdigest()[:16])
    return _CODE[0]


def path_for(key: str) -> Path | None:
    """The file of structure ``key`` (None: caching disabled)."""
    folder = directory()
    if folder is None:
        return None
    return folder / f"{code_hash()}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pickle"


def _signature(problem: Any) -> np.ndarray:
    """The names and shapes of the problem's Parameters and Variables, in order."""
    return [f"{x.name()}{x.shape}" for x in (*problem.parameters(), *problem.variables())]


def load(key: str, problem: Any) -> dict[str, Any] | None:
    """The stored arrays of structure ``key`` for ``problem``, or None (none stored, caching
    off, unreadable, or made for another problem)."""
    try:
        path = path_for(key)
        if path is None or not path.is_file():
            return None
        with open(path, "rb") as f:
            signature, arrays = pickle.load(f)
        if signature != _signature(problem):
            return None
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError):
        return None
    arrays["cached"] = True
    return arrays


def save(key: str, arrays: dict[str, Any], problem: Any) -> None:
    """Store the arrays of structure ``key`` compiled from ``problem`` (atomically; errors
    only cost the next compile). Files of other code versions in the directory are removed."""
    tmp = None
    try:
        path = path_for(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump((_signature(problem), arrays), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
        for old in path.parent.glob("*.pickle"):
            if not old.name.startswith(code_hash()):
                old.unlink(missing_ok=True)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
