"""Import cvxpy without paying for scipy.stats (≈0.45 s of a 1.5 s run on 2 cores).

cvxpy's only use of ``scipy.stats`` is ``entropy`` in the quantum relative entropy atom, which
Helios never uses, yet importing it at cvxpy import time pulls in all of scipy.stats. While
cvxpy is imported, ``scipy.stats`` is a tiny stand-in whose ``entropy`` loads the real
function on first call; the stand-in is removed right after, so any later
``import scipy.stats`` gets the real module. The planner runs every 5 minutes on small
machines, so this start-up time is worth saving (measured in ``bench/solve.py``).

HiGHS (highspy ≥ 1.16) prints a two-line licence banner on the C stdout the first time a
``Highs`` object is made in a process, which would land in the middle of ``helios plan``'s
summary (and of anything piped from it). :func:`_quiet_highs_banner` makes that first object
with the C stdout pointed at /dev/null (a start-up notice, neither an error nor a result).
"""

from __future__ import annotations

import os
import sys
import types


def _lazy_entropy(*args, **kwargs):
    from scipy.stats import entropy  # heavy (≈0.45 s): only on first use, see above

    return entropy(*args, **kwargs)


def _import():
    if "cvxpy" in sys.modules or "scipy.stats" in sys.modules:
        import cvxpy  # heavy: imported here, once, with or without the stand-in

        return cvxpy
    shim = types.ModuleType("scipy.stats")
    shim.entropy = _lazy_entropy
    sys.modules["scipy.stats"] = shim
    try:
        import cvxpy  # heavy: imported while scipy.stats is the stand-in
    finally:
        if sys.modules.get("scipy.stats") is shim:
            del sys.modules["scipy.stats"]
    return cvxpy


def _quiet_highs_banner():
    """highspy (None when it is not installed), its banner already printed to /dev/null."""
    try:
        import highspy  # optional: cvxpy falls back to Clarabel/ECOS without it
    except ImportError:  # HiGHS missing: cvxpy falls back to Clarabel/ECOS
        return None
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no usable fd 1 (embedded, closed stdout)
        highspy.Highs()
        return highspy
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
        finally:
            os.close(devnull)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return highspy


cp = _import()
#: highspy for the direct backend (planner/optimize/_highs.py), or None without it
hp = _quiet_highs_banner()
