"""The schedule file format: the one contract between ``helios plan`` and ``helios-executor``.

Standard library only (the executor runs on a Venus OS GX with little memory); the planner
imports this module, never the reverse (enforced by import-linter, see ``pyproject.toml``).

A schedule is a JSON document::

    {
      "version": 1, "version_minor": 1,            # major.minor (see "Versions" below)
      "generated_at": "2026-11-22T10:00:00Z",      # UTC, ISO 8601 with Z
      "valid_until":  "2026-11-22T11:00:00Z",      # executor treats the plan as stale after this
      "slot_s": 900,
      "status": "optimal",                         # optimal | optimal_with_violations
      "objective_eur": 1.234, "expected_cost_eur": 1.5, "solve_s": 0.006,
      "solver": "HIGHS", "violations": [{"kind": "reserve_soc", "amount": 0.5, "unit": "kWh",
                                        "first_slot": "...", "message": "..."}],
      "slots": [{"start": "2026-11-22T10:00:00Z", "grid_import_kw": 0.0, ...}, ...]
    }

Slots are contiguous, left-labelled (slot ``i`` covers ``[start, start + slot_s)``), UTC.
Flows are non-negative directional pairs; ``grid_setpoint_w`` and the intent's battery band
are the only signed values (grid + = import, battery + = discharge), as sent to the device.

Intent (minor version 1)
------------------------
Each slot says what it is *for*, so the executor knows how to absorb a forecast error inside it
(``docs/architecture.md``, decision "intent per slot"). ``intent`` is one of :data:`INTENTS`
and ``battery_min_kw`` ≤ ``battery_max_kw`` bound the battery power (+ = discharge, AC side):
every tick the executor does plain self-consumption inside the band (``battery = clip(load −
pv measured, battery_min_kw, battery_max_kw)``), except that ``charge_grid`` and
``discharge_grid`` hold the band's forced end but never move more energy between battery and
grid than the plan (``grid_setpoint_w``) does (``executor.control.intent_battery``); for
those two ``soc_pct`` is the target at slot end (no more charging from, or discharging into,
the grid there). :func:`intent_band` derives intent and band from the
planned flows; the planner uses it, and the executor applies it to version 1.0 plans, which
carry no intent.

Devices (minor version 2)
-------------------------
A slot may carry a ``devices`` object: one entry per controllable device besides the home
battery and the grid (water heater, EV, deferrable load, a second battery), keyed by the
device's name (lower-case letters, digits and ``_``)::

    "devices": {"water_heater": {"power_kw": 3.0}, "ev": {"power_kw": 7.4, "soc_pct": 62.0}}

``power_kw`` is required: the device's planned average power over the slot, + = drawn from the
home bus (a load), − = supplied to it (a second battery discharging). Any other field is a
scalar (number, string, boolean or null) the device's driver needs. A slot without devices
omits the object; a reader that does not drive a device ignores its entry.

Overrides (minor version 3)
---------------------------
A plan may carry ``overrides``: the manual overrides (``helios override``) in force during its
horizon, which the plan already obeys where physics allows (a shortfall is also a violation
of kind ``override``)::

    "overrides": [{"id": 3, "kind": "hold", "target": null, "start": "...Z", "end": "...Z",
                   "soc_pct": null, "kw": null, "reason": "guests", "shortfall_kwh": 0.0}]

``kind`` is one of :data:`OVERRIDE_KINDS`; ``target`` names the deferrable load of a ``load``
override. A plan without overrides omits the list. The executor obeys the overrides from its
own overrides file (:mod:`executor.overrides`), which is current between plans too; this list
says what the plan was made with (for people, the report and ``helios serve``).

Versions
--------
``version`` is the major version: a reader refuses any other. ``version_minor`` (0 when
absent) only ever *adds* fields: a reader accepts a newer minor and ignores the fields it does
not know, and accepts an older one (missing fields take their documented defaults).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone

SCHEMA_VERSION = 1
#: additive changes within the major version: 1 = per-slot intent + battery band,
#: 2 = per-slot ``devices`` block, 3 = plan-level ``overrides`` list
SCHEMA_MINOR = 3

#: the kinds of manual override (:mod:`executor.overrides`)
OVERRIDE_KINDS = ("charge", "hold", "export", "water", "load")
#: the fields of one entry of ``overrides`` (all but kind/start/end may be null)
OVERRIDE_FIELDS = ("id", "kind", "target", "start", "end", "soc_pct", "kw", "reason",
                   "shortfall_kwh")

#: What a slot is for (the executor's control law, see the module docstring):
INTENTS = (
    "self_consume",  # battery covers load − PV whatever it is (band = full power range)
    "charge_grid",  # charge -battery_max_kw (no more from the grid than planned) to soc_pct
    "hold",  # discharge at most battery_max_kw (usually 0); PV surplus may still charge
    "limit_charge",  # charge at most -battery_min_kw from PV surplus, the rest is exported
    "discharge_grid",  # discharge battery_min_kw (no more to the grid than planned) to soc_pct
    "idle",  # battery neither charges nor discharges (band [0, 0])
)

#: Every action a slot may carry (see ``docs/architecture.md`` for their meaning).
ACTIONS = (
    "charge_grid",  # battery charges and the grid supplies part of that energy
    "charge_pv",  # battery charges from PV surplus only
    "discharge",  # battery discharges to cover the home's load
    "export",  # battery discharges and energy flows to the grid
    "hold",  # battery could cover load but keeps its energy for later
    "curtail",  # PV is curtailed (negative sell price or grid limit)
    "idle",  # nothing to do: battery neither charges nor discharges nor holds
)

#: Plan-level status values.
STATUSES = ("optimal", "optimal_with_violations")


class ScheduleError(ValueError):
    """A schedule document is invalid; the message names the offending field."""


def format_utc(ts: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a ``Z`` suffix.

    Raises
    ------
    ScheduleError
        If ``ts`` is naive (no time zone).
    """
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ScheduleError(f"naive timestamp {ts!r}: expected a time zone-aware datetime")
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: object, where: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries an offset (``Z`` or ``+00:00``) into UTC.

    Raises
    ------
    ScheduleError
        Naming ``where`` when the value is not a string, not ISO 8601, or naive.
    """
    if not isinstance(text, str):
        raise ScheduleError(f"{where}: expected an ISO 8601 UTC timestamp string, got {text!r}")
    raw = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise ScheduleError(
            f"{where}: expected an ISO 8601 UTC timestamp like 2026-01-01T00:00:00Z, got {text!r}"
        ) from None
    if ts.tzinfo is None:
        raise ScheduleError(f"{where}: timestamp {text!r} has no time zone; expected a Z suffix")
    return ts.astimezone(timezone.utc)


@dataclass(frozen=True)
class Slot:
    """One planned slot. Powers are slot averages. [kW]; prices [EUR/kWh]; SoC at slot end [%]."""

    start: datetime
    grid_import_kw: float
    grid_export_kw: float
    battery_charge_kw: float
    battery_discharge_kw: float
    pv_kw: float
    pv_used_kw: float
    load_kw: float
    soc_pct: float
    buy_eur_per_kwh: float
    sell_eur_per_kwh: float
    grid_setpoint_w: int
    action: str
    reason: str
    intent: str | None = None
    battery_min_kw: float | None = None
    battery_max_kw: float | None = None
    #: planned power and settings per flexible device (minor version 2; see "Devices")
    devices: dict[str, dict[str, object]] | None = None

    @property
    def battery_power_kw(self) -> float:
        """Net battery power, + = discharging into the home bus. [kW]"""
        return self.battery_discharge_kw - self.battery_charge_kw


def intent_band(charge_kw: float, discharge_kw: float, import_kw: float, export_kw: float,
                max_charge_kw: float, max_discharge_kw: float,
                tol_kw: float = 1e-3) -> tuple:
    """What a slot with these planned flows is for: ``(intent, battery_min_kw, battery_max_kw)``.

    The band bounds the battery power (+ = discharge) inside which the executor does plain
    self-consumption. It follows from the sign of the planned grid flow: a slot that plans no
    grid flow is ``self_consume`` (full range); one that imports caps the discharge at the
    plan's battery power (``hold``; ``charge_grid`` when that power is a charge); one that
    exports floors the battery power at the plan's (``discharge_grid`` when that is a
    discharge, else ``limit_charge``). So a forecast error is absorbed by self-consumption
    except where that would push more energy between battery and grid than the plan did.
    """
    max_ch = max(float(max_charge_kw), 0.0)
    max_dis = max(float(max_discharge_kw), 0.0)
    if max_ch <= tol_kw and max_dis <= tol_kw:
        return "idle", 0.0, 0.0
    power = discharge_kw - charge_kw
    grid = import_kw - export_kw
    if grid > tol_kw:
        if power < -tol_kw:
            return "charge_grid", -max_ch, max(power, -max_ch)
        return "hold", -max_ch, min(max(power, 0.0), max_dis)
    if grid < -tol_kw:
        if power > tol_kw:
            return "discharge_grid", min(power, max_dis), max_dis
        return "limit_charge", max(min(power, 0.0), -max_ch), max_dis
    return "self_consume", -max_ch, max_dis


@dataclass(frozen=True)
class Violation:
    """A soft constraint the plan could not meet, and by how much."""

    kind: str
    amount: float
    unit: str
    message: str
    first_slot: datetime | None = None


@dataclass(frozen=True)
class Schedule:
    """A whole plan as the executor sees it."""

    generated_at: datetime
    valid_until: datetime
    slot_s: int
    status: str
    objective_eur: float
    expected_cost_eur: float
    solve_s: float
    solver: str
    slots: tuple[Slot, ...]
    violations: tuple[Violation, ...] = field(default_factory=tuple)
    #: minor 3: the manual overrides in force during the plan (:data:`OVERRIDE_FIELDS`)
    overrides: tuple[dict, ...] = field(default_factory=tuple)
    version: int = SCHEMA_VERSION
    version_minor: int = SCHEMA_MINOR

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def end(self) -> datetime:
        """End of the last slot (exclusive). [UTC]"""
        return self.slots[-1].start + timedelta(seconds=self.slot_s)

    def slot_at(self, now: datetime) -> Slot | None:
        """The slot covering ``now`` (aware), or None when ``now`` is outside the plan."""
        if now.tzinfo is None:
            raise ScheduleError("slot_at: naive 'now'; expected a time zone-aware datetime")
        offset = (now - self.slots[0].start).total_seconds()
        if offset < 0:
            return None
        index = int(offset // self.slot_s)
        return self.slots[index] if index < len(self.slots) else None

    def to_dict(self) -> dict:
        """A JSON-ready dict (timestamps as UTC ``Z`` strings)."""
        doc = {
            "version": self.version,
            "version_minor": self.version_minor,
            "generated_at": format_utc(self.generated_at),
            "valid_until": format_utc(self.valid_until),
            "slot_s": self.slot_s,
            "status": self.status,
            "objective_eur": self.objective_eur,
            "expected_cost_eur": self.expected_cost_eur,
            "solve_s": self.solve_s,
            "solver": self.solver,
            "violations": [],
            "slots": [],
        }
        for v in self.violations:
            item = asdict(v)
            item["first_slot"] = format_utc(v.first_slot) if v.first_slot else None
            doc["violations"].append(item)
        # fields read directly (dataclasses.asdict deep-copies every value: ≈4x slower over
        # a 48 h plan); ``devices`` is one level of plain dicts of scalars
        names = _SLOT_FIELDS
        for s in self.slots:
            item = {name: getattr(s, name) for name in names}
            item["start"] = format_utc(s.start)
            if s.intent is None:  # a 1.0 slot: no intent fields
                for name in _INTENT_FIELDS:
                    item.pop(name)
            if s.devices:
                item["devices"] = {k: dict(v) for k, v in s.devices.items()}
            else:
                item.pop("devices")
            doc["slots"].append(item)
        if self.overrides:
            doc["overrides"] = [dict(o) for o in self.overrides]
        return doc

    def to_json(self) -> str:
        """Serialise to a JSON string (stable key order, no NaN)."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"


#: every per-slot field, in declaration order (the JSON key order)
_SLOT_FIELDS = tuple(f.name for f in fields(Slot))
#: the per-slot fields of minor version 1 (optional: absent in 1.0 documents)
_INTENT_FIELDS = ("intent", "battery_min_kw", "battery_max_kw")
_SLOT_FLOATS = tuple(
    f.name for f in fields(Slot)
    if f.name not in ("start", "grid_setpoint_w", "action", "reason", "devices") + _INTENT_FIELDS
)
_NONNEG = ("grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw",
           "pv_kw", "pv_used_kw", "load_kw")


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScheduleError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ScheduleError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _check_version(version: object, minor: object) -> None:
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise ScheduleError(f"version: expected {SCHEMA_VERSION} (major; this executor reads "
                            f"{SCHEMA_VERSION}.0 to {SCHEMA_VERSION}.{SCHEMA_MINOR} and newer "
                            f"minor versions), got {version!r}")
    if isinstance(minor, bool) or not isinstance(minor, int) or minor < 0:
        raise ScheduleError(f"version_minor: expected a whole number >= 0, got {minor!r}")


def _validate(s: Schedule) -> None:
    _check_version(s.version, s.version_minor)
    if isinstance(s.slot_s, bool) or not isinstance(s.slot_s, int) or s.slot_s <= 0:
        raise ScheduleError(
            f"slot_s: expected a positive whole number of seconds, got {s.slot_s!r}")
    if s.status not in STATUSES:
        raise ScheduleError(f"status: expected one of {', '.join(STATUSES)}, got {s.status!r}")
    if not s.slots:
        raise ScheduleError("slots: expected at least one slot, got none")
    for name in ("generated_at", "valid_until"):
        ts = getattr(s, name)
        if not isinstance(ts, datetime) or ts.tzinfo is None:
            raise ScheduleError(f"{name}: expected an aware datetime, got {ts!r}")
    if s.valid_until < s.generated_at:
        raise ScheduleError("valid_until: must not be before generated_at")
    step = timedelta(seconds=s.slot_s)
    for i, slot in enumerate(s.slots):
        where = f"slots[{i}]"
        if slot.start.tzinfo is None:
            raise ScheduleError(f"{where}.start: naive timestamp; expected UTC")
        if i and slot.start - s.slots[i - 1].start != step:
            raise ScheduleError(
                f"{where}.start: expected {format_utc(s.slots[i - 1].start + step)} "
                f"(slots must be contiguous, {s.slot_s} s apart), got {format_utc(slot.start)}"
            )
        for name in _SLOT_FLOATS:
            value = _number(getattr(slot, name), f"{where}.{name}")
            if name in _NONNEG and value < 0:
                raise ScheduleError(f"{where}.{name}: expected a value >= 0, got {value!r}")
        if not 0.0 <= slot.soc_pct <= 100.0:
            raise ScheduleError(f"{where}.soc_pct: expected 0..100, got {slot.soc_pct!r}")
        sp = slot.grid_setpoint_w
        if isinstance(sp, bool) or not isinstance(sp, int):
            raise ScheduleError(f"{where}.grid_setpoint_w: expected an integer [W], got {sp!r}")
        if slot.action not in ACTIONS:
            raise ScheduleError(
                f"{where}.action: expected one of {', '.join(ACTIONS)}, got {slot.action!r}"
            )
        if not isinstance(slot.reason, str):
            raise ScheduleError(f"{where}.reason: expected a string, got {slot.reason!r}")
        _validate_intent(slot, where)
        _validate_devices(slot.devices, where)
    for i, entry in enumerate(s.overrides):
        _validate_override(entry, f"overrides[{i}]")


def _validate_override(entry: object, where: str) -> None:
    if not isinstance(entry, dict):
        raise ScheduleError(f"{where}: expected an object, got {type(entry).__name__}")
    for key in ("kind", "start", "end"):
        if key not in entry:
            raise ScheduleError(f"{where}.{key}: required field is missing")
    if entry["kind"] not in OVERRIDE_KINDS:
        raise ScheduleError(f"{where}.kind: expected one of {', '.join(OVERRIDE_KINDS)}, "
                            f"got {entry['kind']!r}")
    start, end = parse_utc(entry["start"], f"{where}.start"), parse_utc(entry["end"],
                                                                        f"{where}.end")
    if end <= start:
        raise ScheduleError(f"{where}.end: expected a time after start")
    for key, value in entry.items():
        if isinstance(value, (dict, list)):
            raise ScheduleError(f"{where}.{key}: expected a number, string, boolean or null, "
                                f"got {type(value).__name__}")
        if key in ("soc_pct", "kw", "shortfall_kwh") and value is not None:
            _number(value, f"{where}.{key}")


def _validate_devices(devices: object, where: str) -> None:
    if devices is None:
        return
    if not isinstance(devices, dict):
        raise ScheduleError(f"{where}.devices: expected an object of devices, "
                            f"got {type(devices).__name__}")
    for name, device in devices.items():
        at = f"{where}.devices.{name}"
        if not (isinstance(name, str) and name[:1].isascii() and name[:1].islower()
                and all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in name)):
            raise ScheduleError(f"{where}.devices: expected device names of lower-case letters, "
                                f"digits and _, got {name!r}")
        if not isinstance(device, dict):
            raise ScheduleError(f"{at}: expected an object with power_kw, "
                                f"got {type(device).__name__}")
        if "power_kw" not in device:
            raise ScheduleError(f"{at}.power_kw: required field is missing")
        _number(device["power_kw"], f"{at}.power_kw")
        for key, value in device.items():
            if isinstance(value, (dict, list)):
                raise ScheduleError(f"{at}.{key}: expected a number, string, boolean or null, "
                                    f"got {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ScheduleError(f"{at}.{key}: expected a finite number, got {value!r}")


def _validate_intent(slot: Slot, where: str) -> None:
    given = [name for name in _INTENT_FIELDS if getattr(slot, name) is not None]
    if not given:
        return
    if len(given) < len(_INTENT_FIELDS):
        missing = next(n for n in _INTENT_FIELDS if getattr(slot, n) is None)
        raise ScheduleError(f"{where}.{missing}: required with {given[0]} (the intent fields "
                            f"{', '.join(_INTENT_FIELDS)} come together)")
    if slot.intent not in INTENTS:
        raise ScheduleError(
            f"{where}.intent: expected one of {', '.join(INTENTS)}, got {slot.intent!r}")
    low = _number(slot.battery_min_kw, f"{where}.battery_min_kw")
    high = _number(slot.battery_max_kw, f"{where}.battery_max_kw")
    if low > high:
        raise ScheduleError(f"{where}.battery_min_kw: expected <= battery_max_kw "
                            f"({high!r}), got {low!r}")


def _require(doc: dict, key: str, where: str) -> object:
    if key not in doc:
        raise ScheduleError(f"{where}{key}: required field is missing")
    return doc[key]


def from_dict(doc: object) -> Schedule:
    """Build and validate a :class:`Schedule` from a decoded JSON document.

    Raises
    ------
    ScheduleError
        Naming the first offending field (e.g. ``slots[3].soc_pct: expected 0..100, got 140``).
    """
    if not isinstance(doc, dict):
        raise ScheduleError(f"document: expected a JSON object, got {type(doc).__name__}")
    version = _require(doc, "version", "")
    minor = doc.get("version_minor", 0)
    # the version first: another major version may differ in any field, and the message
    # must say that rather than name the first field this reader does not expect
    _check_version(version, minor)
    # a newer minor version only adds fields: ignore the ones this reader does not know
    newer = minor > SCHEMA_MINOR
    known = {f.name for f in fields(Schedule)}
    unknown = sorted(set(doc) - known)
    if unknown and not newer:
        raise ScheduleError(
            f"{unknown[0]}: unknown field (expected only {', '.join(sorted(known))})")
    raw_slots = _require(doc, "slots", "")
    if not isinstance(raw_slots, list):
        raise ScheduleError(f"slots: expected a list, got {type(raw_slots).__name__}")
    slot_names = [f.name for f in fields(Slot)]
    required = [name for name in slot_names if name not in _INTENT_FIELDS + ("devices",)]
    slots = []
    for i, raw in enumerate(raw_slots):
        where = f"slots[{i}]."
        if not isinstance(raw, dict):
            raise ScheduleError(f"slots[{i}]: expected an object, got {type(raw).__name__}")
        extra = sorted(set(raw) - set(slot_names))
        if extra and not newer:
            raise ScheduleError(f"{where}{extra[0]}: unknown field")
        values = {name: _require(raw, name, where) for name in required}
        values["start"] = parse_utc(values["start"], f"{where}start")
        for name in _SLOT_FLOATS:
            values[name] = _number(values[name], f"{where}{name}")
        for name in _INTENT_FIELDS:
            values[name] = raw.get(name)
        for name in ("battery_min_kw", "battery_max_kw"):
            if values[name] is not None:
                values[name] = _number(values[name], f"{where}{name}")
        devices = raw.get("devices")
        _validate_devices(devices, f"slots[{i}]")
        if isinstance(devices, dict):  # power_kw as float, like every other power
            devices = {name: {**dev, "power_kw": float(dev["power_kw"])}
                       for name, dev in devices.items()}
        values["devices"] = devices or None
        slots.append(Slot(**values))
    violations = []
    raw_violations = doc.get("violations", [])
    if not isinstance(raw_violations, list):
        raise ScheduleError("violations: expected a list")
    for i, raw in enumerate(raw_violations):
        where = f"violations[{i}]."
        if not isinstance(raw, dict):
            raise ScheduleError(f"violations[{i}]: expected an object")
        first = raw.get("first_slot")
        violations.append(
            Violation(
                kind=str(_require(raw, "kind", where)),
                amount=_number(_require(raw, "amount", where), f"{where}amount"),
                unit=str(_require(raw, "unit", where)),
                message=str(_require(raw, "message", where)),
                first_slot=parse_utc(first, f"{where}first_slot") if first is not None else None,
            )
        )
    raw_overrides = doc.get("overrides", [])
    if not isinstance(raw_overrides, list):
        raise ScheduleError("overrides: expected a list")
    return Schedule(
        version=version,
        version_minor=minor,
        generated_at=parse_utc(_require(doc, "generated_at", ""), "generated_at"),
        valid_until=parse_utc(_require(doc, "valid_until", ""), "valid_until"),
        slot_s=_require(doc, "slot_s", ""),
        status=_require(doc, "status", ""),
        objective_eur=_number(_require(doc, "objective_eur", ""), "objective_eur"),
        expected_cost_eur=_number(_require(doc, "expected_cost_eur", ""), "expected_cost_eur"),
        solve_s=_number(_require(doc, "solve_s", ""), "solve_s"),
        solver=str(_require(doc, "solver", "")),
        slots=tuple(slots),
        violations=tuple(violations),
        overrides=tuple(raw_overrides),
    )


def from_json(text: str | bytes) -> Schedule:
    """Parse and validate a schedule JSON document.

    Raises
    ------
    ScheduleError
        On malformed JSON (with line/column) or any invalid field.
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScheduleError(f"document: not valid JSON ({exc})") from None
    return from_dict(doc)


def read(path: str | os.PathLike) -> Schedule:
    """Read and validate a schedule file. OSError propagates (missing file, permissions)."""
    with open(path, "rb") as fh:
        return from_json(fh.read())


def atomic_write(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same directory, fsync, rename.

    A reader sees either the old file or the complete new one, never a partial write; on any
    error the previous file is left untouched and the temporary file removed.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write(path: str | os.PathLike, schedule: Schedule) -> None:
    """Serialise ``schedule`` and write it atomically to ``path``."""
    atomic_write(path, schedule.to_json())
