"""The web app's manual overrides: ``GET/POST /api/overrides``, ``DELETE /api/overrides/<id>``.

The same path as ``helios override`` (:mod:`planner.plan.overrides`): checked against the
configuration, stored in SQL with who (``<user>@<host> (web)``), when and why, and written to
the executor's overrides file, so the executor obeys an override made in the page at its next
tick. A bad value is a :class:`ControlError` naming the field (the app answers 400).
"""

from __future__ import annotations

from datetime import datetime

from executor.overrides import Override
from planner.core.errors import HeliosError
from planner.plan import overrides as ovr
from planner.serve.data import Home

__all__ = ["ControlError", "add", "clear", "listing"]

#: the fields a POST may carry (form or JSON); the rest is refused
FIELDS = ("kind", "name", "from", "to", "for", "soc_pct", "kw", "reason")


class ControlError(ValueError):
    """Bad input (400), naming the field."""


def _text(body: dict, key: str, limit: int = 64) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ControlError(f"{key}: expected text, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > limit:
        raise ControlError(f"{key}: at most {limit} characters")
    return text


def _number(body: dict, key: str) -> float | None:
    text = _text(body, key)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ControlError(f"{key}: expected a number, got {text!r}") from None


def listing(home: Home, now: datetime) -> list[dict]:
    """The overrides not over yet: from SQL (with who and why), else the executor's file."""
    try:
        found = ovr.listing(home.cfg, now)
    except HeliosError:
        return home.overrides_state(now)
    return [{**o.to_dict(), "in_force": o.in_force(now), "text": o.describe()} for o in found]


def add(home: Home, body: dict, now: datetime) -> Override:
    """Store the override the form describes and rewrite the executor's file."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ControlError(f"{unknown[0]}: unknown field (expected {', '.join(FIELDS)})")
    kind = _text(body, "kind")
    if kind is None:
        raise ControlError(f"kind: required, one of {', '.join(ovr.KINDS)}")
    try:
        o = ovr.make(home.cfg, now, kind, _text(body, "name"), _text(body, "from") or "now",
                     _text(body, "to"), _text(body, "for"), _number(body, "soc_pct"),
                     _number(body, "kw"), _text(body, "reason", 200) or "",
                     by=f"{ovr.who()} (web)")
    except ovr.OverrideError as exc:
        raise ControlError(str(exc).replace("--", "", 1).replace("NAME", "name", 1)) from None
    stored, _path = ovr.add(home.cfg, o, now)
    return stored


def clear(home: Home, override_id: int, now: datetime) -> int:
    """Clear one override; how many were cleared (0: none such in force)."""
    count, _path = ovr.clear(home.cfg, now, override_id, by=f"{ovr.who()} (web)")
    return count
