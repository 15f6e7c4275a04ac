"""Manual overrides (``helios override add hold --from 18:00 --to 23:00``): the record, its
file, and which one is in force now.

An override overrules the plan for a time window: ``charge`` (charge the battery towards
``soc_pct``, default the maximum SoC, at ``kw``, default its full power), ``hold`` (never
discharge the battery), ``export`` (discharge into the grid at ``kw`` down to ``soc_pct``,
default the minimum SoC), ``water`` (run the water heater, at ``kw`` or full power) and
``load`` (run the deferrable load ``target``). The planner stores them in SQL (who, when,
why) and turns them into constraints of the optimisation; ``helios override add/clear`` and
``helios serve`` also write the overrides in force to a small JSON file next to
schedule.json (atomic write, like :mod:`executor.pause`), which the executor reads every tick,
so an override is obeyed at once, not only from the next plan on::

    {"overrides": [{"id": 3, "kind": "hold", "target": null, "start": "2026-12-01T17:00:00Z",
                    "end": "2026-12-01T22:00:00Z", "soc_pct": null, "kw": null,
                    "reason": "guests", "created_by": "anna@pi"}]}

Overrides expire by themselves: one whose ``end`` has passed is simply not in force. The
executor applies the battery kinds over the slot's intent, always inside its clamps and the
minimum SoC (:func:`executor.control.decide`), and the device kinds to the relays that
follow that device (:func:`device_override`: ``water`` → ``water_heater``, ``load NAME`` →
``NAME``): on for the whole window, ``kw`` ignored by an on/off relay, inside the relay's
minimum on/off times (:class:`executor.relays.base.RelayFollower`). Standard library only
(Python 3.8 on a GX).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from datetime import datetime

from executor.schedule import OVERRIDE_KINDS, atomic_write, format_utc, parse_utc

#: every kind of override; the battery kinds are obeyed by the executor between plans too
KINDS = OVERRIDE_KINDS
BATTERY_KINDS = ("charge", "hold", "export")
#: the kinds that switch a device (its relays obey them between plans too)
DEVICE_KINDS = ("water", "load")
#: the device a ``water`` override runs (schedule.json's ``devices`` key)
WATER_DEVICE = "water_heater"
#: the overrides file's default name, beside schedule.json
FILE_NAME = "helios-overrides.json"


class OverrideError(ValueError):
    """An override that is not valid, naming the offending field."""


@dataclass(frozen=True)
class Override:
    """One manual override. ``start``/``end`` are aware UTC; ``end`` > ``start``.

    ``target``: the deferrable load's name for ``load`` (None otherwise); ``soc_pct`` and
    ``kw`` are optional (None: the kind's default, see the module docstring).
    """

    kind: str
    start: datetime
    end: datetime
    target: str | None = None
    soc_pct: float | None = None
    kw: float | None = None
    reason: str = ""
    created_by: str = ""
    created_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        validate(self)

    def in_force(self, now: datetime) -> bool:
        """Whether ``now`` is inside ``[start, end)``."""
        return self.start <= now < self.end

    def describe(self) -> str:
        """One line for people: ``hold 18:00Z-23:00Z`` plus its numbers and reason."""
        what = self.kind if self.target is None else f"{self.kind} {self.target}"
        parts = [what, f"{format_utc(self.start)} -> {format_utc(self.end)}"]
        if self.soc_pct is not None:
            parts.append(f"soc {self.soc_pct:g} %")
        if self.kw is not None:
            parts.append(f"{self.kw:g} kW")
        if self.reason:
            parts.append(f"({self.reason})")
        return " ".join(parts)

    def to_dict(self) -> dict:
        """A JSON-ready dict (times as UTC ``Z`` strings)."""
        doc = asdict(self)
        for name in ("start", "end", "created_at"):
            doc[name] = format_utc(doc[name]) if doc[name] is not None else None
        return doc


def validate(o: Override) -> None:
    """Check one override; raises :class:`OverrideError` naming the field."""
    if o.kind not in KINDS:
        raise OverrideError(f"kind: expected one of {', '.join(KINDS)}, got {o.kind!r}")
    for name in ("start", "end"):
        ts = getattr(o, name)
        if not isinstance(ts, datetime) or ts.tzinfo is None:
            raise OverrideError(f"{name}: expected an aware datetime, got {ts!r}")
    if o.end <= o.start:
        raise OverrideError(f"end: expected a time after start ({format_utc(o.start)}), "
                            f"got {format_utc(o.end)}")
    if o.kind == "load":
        if not o.target or not isinstance(o.target, str):
            raise OverrideError("target: a load override needs the name of a deferrable load")
    elif o.target is not None:
        raise OverrideError(f"target: only a load override names a device, got {o.target!r} "
                            f"for {o.kind}")
    if o.soc_pct is not None:
        if o.kind not in ("charge", "export"):
            raise OverrideError(f"soc_pct: only for charge and export, not {o.kind}")
        if not _finite(o.soc_pct) or not 0.0 <= o.soc_pct <= 100.0:
            raise OverrideError(f"soc_pct: expected 0..100, got {o.soc_pct!r}")
    if o.kw is not None:
        if o.kind == "hold":
            raise OverrideError("kw: a hold override has no power")
        if not _finite(o.kw) or o.kw <= 0:
            raise OverrideError(f"kw: expected a power > 0, got {o.kw!r}")


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def from_dict(doc: object, where: str = "override") -> Override:
    """An :class:`Override` from its JSON form; raises :class:`OverrideError` naming the
    field (``where.field``)."""
    if not isinstance(doc, dict):
        raise OverrideError(f"{where}: expected an object, got {type(doc).__name__}")
    try:
        created = doc.get("created_at")
        return Override(
            kind=str(doc.get("kind")),
            start=parse_utc(doc.get("start"), f"{where}.start"),
            end=parse_utc(doc.get("end"), f"{where}.end"),
            target=doc.get("target"),
            soc_pct=None if doc.get("soc_pct") is None else float(doc["soc_pct"]),
            kw=None if doc.get("kw") is None else float(doc["kw"]),
            reason=str(doc.get("reason") or ""),
            created_by=str(doc.get("created_by") or ""),
            created_at=None if created is None else parse_utc(created, f"{where}.created_at"),
            id=None if doc.get("id") is None else int(doc["id"]),
        )
    except OverrideError as exc:
        raise OverrideError(f"{where}.{exc}") from None
    except (TypeError, ValueError) as exc:
        raise OverrideError(f"{where}: {exc}") from None


def read(path: str) -> tuple[list[Override], str | None]:
    """The overrides in the file and a problem to log (None when fine). A missing file is no
    overrides; an unreadable or corrupt one (or entry) is skipped and reported: the executor
    then follows the plan, which already carries the overrides the planner knew of."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return [], None
    except (OSError, ValueError) as exc:
        return [], f"overrides file {path} unreadable: {exc}"
    items = doc.get("overrides") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return [], f"overrides file {path}: expected {{\"overrides\": [...]}}"
    out, problems = [], []
    for i, item in enumerate(items):
        try:
            out.append(from_dict(item, f"overrides[{i}]"))
        except OverrideError as exc:
            problems.append(str(exc))
    return out, ("; ".join(problems) if problems else None)


def write(path: str, overrides: list[Override]) -> None:
    """Write ``overrides`` atomically to ``path`` (the directory is created)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    doc = {"overrides": [o.to_dict() for o in overrides]}
    atomic_write(path, json.dumps(doc, indent=1) + "\n")


def in_force(overrides: list[Override], now: datetime,
             kinds: tuple[str, ...] = KINDS) -> list[Override]:
    """The overrides of ``kinds`` in force at ``now``, newest first (a later one wins)."""
    live = [o for o in overrides if o.kind in kinds and o.in_force(now)]
    return sorted(live, key=lambda o: (o.created_at or o.start, o.id or 0), reverse=True)


def battery_override(overrides: list[Override], now: datetime
                     ) -> Override | None:
    """The battery override the executor obeys now: the newest in force, or None."""
    live = in_force(overrides, now, BATTERY_KINDS)
    return live[0] if live else None


def device_of(o: Override) -> str | None:
    """The schedule device a ``water``/``load`` override runs (None for the battery kinds)."""
    if o.kind == "water":
        return WATER_DEVICE
    return o.target if o.kind == "load" else None


def device_override(overrides: list[Override], now: datetime, device: str
                    ) -> Override | None:
    """The newest ``water``/``load`` override in force now that runs ``device``, or None."""
    live = [o for o in in_force(overrides, now, DEVICE_KINDS) if device_of(o) == device]
    return live[0] if live else None
