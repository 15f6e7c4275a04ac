"""Manual overrides on the planner's side: parse what a person typed, store it in SQL, keep
the executor's overrides file in step, and hand the overrides in force to a plan.

``helios override`` and ``helios serve`` both go through :func:`make`, :func:`add` and
:func:`clear`; each add/clear rewrites the executor's overrides file (``executor.overrides_path``,
default ``helios-overrides.json`` beside schedule.json) atomically with every override not over
yet, so the executor obeys it at its next tick. :func:`for_plan` gives ``helios plan`` the
overrides overlapping its horizon (the optimiser's constraints, schedule.json's ``overrides``).
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from executor import config as executor_config
from executor import overrides as ov
from executor.overrides import KINDS, Override, OverrideError
from executor.schedule import Violation, format_utc, parse_utc
from planner.config import HeliosConfig
from planner.core.errors import ConfigError, ConfigProblem, StorageError
from planner.history import overrides as sql
from planner.history.store import Store

__all__ = ["KINDS", "Override", "OverrideError", "add", "clear", "entries", "file_path",
           "for_plan", "listing", "make", "parse_duration", "parse_time", "sync_file",
           "violations", "who"]

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$", re.IGNORECASE)


def who() -> str:
    """``user@host`` of this process (recorded with each override)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name (a container without passwd entry)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def file_path(cfg: HeliosConfig) -> str:
    """The executor's overrides file for this installation (its own config decides)."""
    if cfg.source and os.path.isfile(cfg.source):
        return executor_config.load(cfg.source).overrides_path
    return os.path.join(os.path.dirname(os.path.abspath(cfg.output.schedule_path)),
                        ov.FILE_NAME)


def parse_duration(text: str, key: str = "--for") -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1.5h``, ``1d``."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise OverrideError(f"{key}: expected a duration like 30m, 2h or 1d, got {text!r}")
    return timedelta(seconds=float(m.group(1)) * {"s": 1, "m": 60, "h": 3600,
                                                  "d": 86400}[m.group(2).lower()])


def parse_time(text: str, now: datetime, tz: str, key: str,
               after: datetime | None = None) -> datetime:
    """A time as typed: ``now``, a local clock time ``18:00`` (today's, or with ``after`` the
    first one after it) or ISO 8601 (with offset; without one it is local time). [UTC]"""
    text = str(text).strip()
    zone = ZoneInfo(tz)
    if text.lower() == "now":
        return now
    m = _CLOCK.match(text)
    if m:
        hours, minutes = int(m.group(1)), int(m.group(2))
        if hours > 23 or minutes > 59:
            raise OverrideError(f"{key}: {text!r} is not a clock time (00:00..23:59)")
        day = pd.Timestamp(after or now).tz_convert(tz).normalize().tz_localize(None)
        for k in range(3):
            at = (day + pd.Timedelta(days=k, hours=hours, minutes=minutes)).tz_localize(
                tz, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")
            if after is None or at > after:
                return at.to_pydatetime()
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        ts = None
    if ts is None or pd.isna(ts):
        raise OverrideError(f"{key}: expected 'now', a local clock time like 18:00 or an ISO "
                            f"time like 2026-12-01T18:00+01:00, got {text!r}")
    if ts.tzinfo is None:
        ts = ts.tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
    return parse_utc(ts.tz_convert("UTC").isoformat(), key)


def make(cfg: HeliosConfig, now: datetime, kind: str, target: str | None = None,
         start: str = "now", end: str | None = None, duration: str | None = None,
         soc_pct: float | None = None, kw: float | None = None, reason: str = "",
         by: str | None = None) -> Override:
    """An :class:`Override` from typed values, checked against the configuration.

    Raises
    ------
    OverrideError
        Naming the offending option (``--to``, ``NAME``, ``--soc-pct`` ...).
    """
    kind = str(kind).strip().lower()
    if kind not in KINDS:
        raise OverrideError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "load":
        names = [x.name for x in cfg.loads]
        if not target:
            raise OverrideError(f"NAME: a load override names a deferrable load from loads: "
                                f"({', '.join(names) or 'none configured'})")
        if target not in names:
            raise OverrideError(f"NAME: no deferrable load {target!r} in loads: "
                                f"(configured: {', '.join(names) or 'none'})")
    elif target:
        raise OverrideError(f"NAME: only a load override names a device, got {target!r}")
    if kind == "water" and cfg.water_heater is None:
        raise OverrideError("water: no water_heater: section in the configuration")
    tz = cfg.site.timezone
    begin = parse_time(start, now, tz, "--from")
    if end is not None and duration is not None:
        raise OverrideError("--for: give either --to or --for, not both")
    if end is None and duration is None:
        raise OverrideError("--to: the override needs an end (--to TIME or --for 2h)")
    finish = (begin + parse_duration(duration) if duration is not None
              else parse_time(end, now, tz, "--to", after=begin))
    if finish <= now:
        raise OverrideError(f"--to: {finish:%Y-%m-%dT%H:%MZ} has already passed")
    return Override(kind=kind, target=target or None, start=begin, end=finish,
                    soc_pct=None if soc_pct is None else float(soc_pct),
                    kw=None if kw is None else float(kw), reason=reason.strip(),
                    created_by=by or who(), created_at=now)


def _store(cfg: HeliosConfig) -> Store:
    if not cfg.storage.enabled:
        raise ConfigError(ConfigProblem("storage.enabled", "true: manual overrides are "
                                        "stored in the plan history database", "false"),
                          cfg.source or "")
    return Store.from_config(cfg)


def listing(cfg: HeliosConfig, now: datetime, expired: bool = False) -> list[Override]:
    """The overrides not cleared and not over at ``now`` (``expired``: all of them)."""
    with _store(cfg) as store:
        return sql.listing(store, now, expired)


def sync_file(cfg: HeliosConfig, now: datetime, current: list[Override] | None = None) -> str:
    """Write every override not over yet to the executor's overrides file; returns its path."""
    path = file_path(cfg)
    ov.write(path, current if current is not None else listing(cfg, now))
    return path


def add(cfg: HeliosConfig, o: Override, now: datetime) -> tuple[Override, str]:
    """Store ``o`` and rewrite the overrides file; returns the stored override and the file."""
    with _store(cfg) as store:
        stored = sql.add(store, o, now)
        current = sql.listing(store, now)
    return stored, sync_file(cfg, now, current)


def clear(cfg: HeliosConfig, now: datetime, override_id: int | None = None,
          by: str | None = None) -> tuple[int, str]:
    """Clear one override (or all not over yet); returns how many and the file rewritten."""
    with _store(cfg) as store:
        count = sql.clear(store, now, by or who(), override_id)
        current = sql.listing(store, now)
    return count, sync_file(cfg, now, current)


def for_plan(cfg: HeliosConfig, start: pd.Timestamp, end: pd.Timestamp,
             warn=None) -> list[Override]:
    """The overrides overlapping the horizon ``[start, end)``: from SQL, else (no storage, no
    database yet, or the database failing, which the plan's save reports) from the executor's
    overrides file, which every add and clear rewrites. A plan never creates the database
    for this; ``warn`` gets a broken overrides file."""
    begin, finish = (pd.Timestamp(t).tz_convert("UTC").to_pydatetime() for t in (start, end))
    if cfg.storage.enabled:
        try:
            with Store.from_config(cfg) as store:
                u = store.url
                if u.get_backend_name() == "sqlite" and not (
                        u.database and os.path.exists(u.database)):
                    raise LookupError  # no database yet: nothing was ever added through it
                return sql.in_force(store, begin, finish)
        except (LookupError, StorageError):
            pass  # the file mirrors the table; a failing database is reported by the save
    found, problem = ov.read(file_path(cfg))
    if problem and warn is not None:
        warn(problem)
    return [o for o in found if o.end > begin and o.start < finish]


def utc_now() -> datetime:
    """The wall clock. [UTC]"""
    return datetime.now(timezone.utc)


def entries(outputs: Any) -> list[dict]:
    """schedule.json's ``overrides`` (and plan_history's) from a solution's
    ``overrides_report``: each override in force during the plan with its shortfall."""
    out = []
    for item in (outputs or {}).get("overrides_report", ()):
        o = item["override"]
        short = item["shortfall_kwh"]
        out.append({"id": o.id, "kind": o.kind, "target": o.target,
                    "start": format_utc(o.start), "end": format_utc(o.end),
                    "soc_pct": o.soc_pct, "kw": o.kw, "reason": o.reason,
                    "shortfall_kwh": None if short is None else round(short, 4)})
    return out


def violations(outputs: Any, index: pd.DatetimeIndex) -> list[Violation]:
    """One ``override`` violation per override the plan cannot fully obey (physics: a full
    or empty battery, a grid or power limit, an outage) or whose device is not configured."""
    out = []
    for item in (outputs or {}).get("overrides_report", ()):
        o, short = item["override"], item["shortfall_kwh"]
        label = f"override #{o.id} {o.kind}" + (f" {o.target}" if o.target else "")
        if short is None:
            out.append(Violation("override", 0.0, "kWh",
                                 f"{label}: no such device in this plan's model",
                                 index[0].to_pydatetime()))
        elif short > 0:
            first = item["first"] or 0
            out.append(Violation(
                "override", round(short, 4), "kWh",
                f"{label}: the plan misses it by {short:.2f} kWh (limits, SoC bounds or an "
                "outage forbid the rest)", index[first].to_pydatetime()))
    return out
