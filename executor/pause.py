"""Pause/resume automation: a small JSON state file that survives restarts.

``helios-executor pause --until TIME`` writes ``{"paused_until": "...Z"}`` atomically;
``resume`` deletes it. The loop reads it every tick; while paused, control is released
(the inverter runs its own self-consumption). An unreadable or corrupt pause file counts as
paused indefinitely (fail safe) and is logged; ``resume`` clears it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

from executor.schedule import atomic_write, format_utc, parse_utc

#: a pause without an end date ("until further notice")
FOREVER = datetime(9999, 1, 1, tzinfo=timezone.utc)


def read(path: str) -> datetime | None:
    """The instant automation is paused until, or None when not paused. [UTC]"""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        return parse_utc(doc["paused_until"], "paused_until")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return FOREVER  # fail safe: an unreadable pause file keeps automation paused


def pause(path: str, until: datetime) -> None:
    """Pause until ``until`` (aware)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, json.dumps({"paused_until": format_utc(until)}) + "\n")


def resume(path: str) -> bool:
    """Resume automation; returns whether a pause was in force."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def parse_until(text: str, now: datetime) -> datetime:
    """Parse ``--until``: ISO 8601 with offset (``2026-05-01T18:00:00Z``), a duration
    (``30m``, ``2h``, ``1d``, ``90s``) or ``forever``.

    Raises
    ------
    ValueError
        With a message saying what is accepted.
    """
    text = text.strip()
    if text.lower() in ("forever", "indefinitely"):
        return FOREVER
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1].lower() in units and text[:-1].replace(".", "", 1).isdigit():
        return now + timedelta(seconds=float(text[:-1]) * units[text[-1].lower()])
    try:
        return parse_utc(text, "--until")
    except ValueError:
        raise ValueError(f"--until: expected an ISO 8601 time with offset like "
                         f"2026-05-01T18:00:00Z, a duration like 30m/2h/1d, or 'forever', "
                         f"got {text!r}") from None
