"""The one simulated clock shared by the planner and the executor, and the pacing to wall time.

:class:`SimClock` is what both programs are given instead of the wall clock: the executor as
its ``clock`` (``clock() -> datetime``, aware UTC), the planner as the ``now`` of each
``plan_once``. It only moves when the simulation loop sets it. :class:`Pacer` holds the loop
back so that simulated time runs ``speed`` times faster than the wall clock (``None`` = as fast
as possible, ``--speed max``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd

from planner.core.errors import ConfigError, ConfigProblem


class SimClock:
    """Simulated time (aware UTC); ``clock()`` returns it."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware start time")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    @property
    def timestamp(self) -> pd.Timestamp:
        """Now as a UTC ``pd.Timestamp`` (the planner's ``now``)."""
        return pd.Timestamp(self.now).tz_convert("UTC")

    def set(self, when: datetime) -> None:
        """Move to ``when`` (never backwards)."""
        if when < self.now:
            raise ValueError(f"the simulated clock cannot go back ({when} < {self.now})")
        self.now = when

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        self.set(self.now + timedelta(seconds=seconds))


def parse_speed(text: str) -> float | None:
    """``--speed``: ``100x``, ``500x``, ``100`` or ``max`` (None: as fast as possible).

    Raises
    ------
    ConfigError
        Naming ``--speed`` when the value is not a positive factor or ``max``.
    """
    value = str(text).strip().lower()
    if value == "max":
        return None
    try:
        factor = float(value[:-1] if value.endswith("x") else value)
    except ValueError:
        factor = float("nan")
    if not factor > 0 or factor == float("inf"):
        raise ConfigError(ConfigProblem("--speed", "a factor > 0 such as 100x or 500x, or max",
                                        str(text)))
    return factor


class Pacer:
    """Keeps simulated time at ``speed`` × wall time (``speed=None``: never waits).

    ``wait_until(sim_elapsed_s)`` sleeps until the wall clock has reached
    ``sim_elapsed_s / speed`` since the start; ``behind_s`` is how far the loop has fallen
    behind that schedule at the worst moment (the machine could not keep up).
    """

    def __init__(self, speed: float | None, wall: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.speed = speed
        self.wall = wall
        self.sleep = sleep
        self.started = wall()
        self.slept_s = 0.0
        self.behind_s = 0.0

    def wait_until(self, sim_elapsed_s: float) -> None:
        """Sleep until the wall clock catches up with ``sim_elapsed_s`` of simulated time."""
        if self.speed is None:
            return
        due = self.started + sim_elapsed_s / self.speed
        left = due - self.wall()
        if left > 0:
            self.sleep(left)
            self.slept_s += left
        else:
            self.behind_s = max(self.behind_s, -left)

    def elapsed_s(self) -> float:
        """Wall time since the start. [s]"""
        return self.wall() - self.started
