"""executor/schedule.py: the plan file contract (round trip, validation, atomic write)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from executor import schedule as sched

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=timezone.utc)


def _slot(i: int, **change) -> sched.Slot:
    values = dict(start=T0 + timedelta(minutes=15 * i), grid_import_kw=1.0, grid_export_kw=0.0,
                  battery_charge_kw=0.5, battery_discharge_kw=0.0, pv_kw=0.2, pv_used_kw=0.2,
                  load_kw=0.7, soc_pct=50.0, buy_eur_per_kwh=0.2, sell_eur_per_kwh=0.05,
                  grid_setpoint_w=1000, action="charge_grid", reason="cheap")
    values.update(change)
    return sched.Slot(**values)


def _schedule(n: int = 4, **change) -> sched.Schedule:
    values = dict(generated_at=T0, valid_until=T0 + timedelta(hours=1), slot_s=900,
                  status="optimal", objective_eur=1.5, expected_cost_eur=1.7, solve_s=0.004,
                  solver="HIGHS", slots=tuple(_slot(i) for i in range(n)),
                  violations=(sched.Violation("reserve_soc", 0.5, "kWh", "below reserve", T0),))
    values.update(change)
    return sched.Schedule(**values)


def test_round_trip():
    s = _schedule()
    back = sched.from_json(s.to_json())
    assert back == s
    doc = json.loads(s.to_json())
    assert doc["generated_at"] == "2026-05-01T10:00:00Z"
    assert doc["slots"][1]["start"] == "2026-05-01T10:15:00Z"


def test_slot_at():
    s = _schedule()
    assert s.slot_at(T0 + timedelta(minutes=20)).start == T0 + timedelta(minutes=15)
    assert s.slot_at(T0 - timedelta(seconds=1)) is None
    assert s.slot_at(T0 + timedelta(hours=1)) is None
    with pytest.raises(sched.ScheduleError, match="naive"):
        s.slot_at(datetime(2026, 5, 1, 10, 0))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("slots"), "slots: required field is missing"),
    (lambda d: d.update(version=2), "version: expected 1"),
    (lambda d: d.update(extra=1), "extra: unknown field"),
    (lambda d: d["slots"][2].update(soc_pct=140), "slots[2].soc_pct: expected 0..100, got 140"),
    (lambda d: d["slots"][1].update(grid_import_kw="x"), "slots[1].grid_import_kw: expected a"),
    (lambda d: d["slots"][1].update(battery_charge_kw=-1), "slots[1].battery_charge_kw: expected"
                                                           " a value >= 0"),
    (lambda d: d["slots"][0].update(start="2026-05-01T10:00:00"), "slots[0].start: timestamp"),
    (lambda d: d["slots"][3].update(start="2026-05-01T11:00:00Z"), "slots[3].start: expected "
                                                                   "2026-05-01T10:45:00Z"),
    (lambda d: d["slots"][0].update(action="dance"), "slots[0].action: expected one of"),
    (lambda d: d["slots"][0].update(grid_setpoint_w=1.5), "slots[0].grid_setpoint_w"),
    (lambda d: d["slots"][0].pop("reason"), "slots[0].reason: required field is missing"),
    (lambda d: d.update(slots=[]), "slots: expected at least one slot"),
    (lambda d: d.update(valid_until="2026-05-01T09:00:00Z"), "valid_until: must not be before"),
    (lambda d: d.update(status="great"), "status: expected one of"),
    (lambda d: d.update(objective_eur=float("nan")), "objective_eur: expected a finite number"),
])
def test_invalid_documents_name_the_field(mutate, message):
    doc = json.loads(_schedule().to_json())
    mutate(doc)
    with pytest.raises(sched.ScheduleError) as info:
        sched.from_dict(doc)
    assert message in str(info.value)


def test_truncated_and_garbage_files_are_rejected():
    text = _schedule().to_json()
    with pytest.raises(sched.ScheduleError, match="not valid JSON"):
        sched.from_json(text[: len(text) // 2])
    with pytest.raises(sched.ScheduleError, match="not valid JSON"):
        sched.from_json(b"\xff\xfe garbage")
    with pytest.raises(sched.ScheduleError, match="expected a JSON object"):
        sched.from_json("[1, 2]")


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "schedule.json"
    sched.write(path, _schedule(2))
    sched.write(path, _schedule(3))
    assert len(sched.read(path).slots) == 3
    assert os.listdir(tmp_path) == ["schedule.json"]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "schedule.json"
    sched.write(path, _schedule(2))
    before = path.read_bytes()

    def boom(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        sched.write(path, _schedule(3))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["schedule.json"]


def test_naive_times_rejected_when_building():
    with pytest.raises(sched.ScheduleError, match="generated_at"):
        _schedule(generated_at=datetime(2026, 5, 1))
    with pytest.raises(sched.ScheduleError, match="naive"):
        sched.format_utc(datetime(2026, 5, 1))


# --------------------------------------------------------------------------------------------
# versions and the per-slot intent (minor version 1)


def _intent_schedule(n: int = 4) -> sched.Schedule:
    bands = [("charge_grid", -5.0, -0.5), ("hold", -5.0, 0.0), ("self_consume", -5.0, 5.0),
             ("idle", 0.0, 0.0)]
    slots = tuple(_slot(i, intent=bands[i % 4][0], battery_min_kw=bands[i % 4][1],
                        battery_max_kw=bands[i % 4][2]) for i in range(n))
    return _schedule(n, slots=slots)


def test_round_trip_with_intents():
    s = _intent_schedule()
    doc = json.loads(s.to_json())
    assert (doc["version"], doc["version_minor"]) == (1, sched.SCHEMA_MINOR) == (1, 3)
    assert doc["slots"][0]["intent"] == "charge_grid"
    assert (doc["slots"][0]["battery_min_kw"], doc["slots"][0]["battery_max_kw"]) == (-5.0, -0.5)
    back = sched.from_json(s.to_json())
    assert back == s
    assert [x.intent for x in back.slots] == ["charge_grid", "hold", "self_consume", "idle"]


def test_slots_without_intent_write_no_intent_fields():
    doc = json.loads(_schedule().to_json())
    assert not {"intent", "battery_min_kw", "battery_max_kw"} & set(doc["slots"][0])


def test_version_10_document_without_intent_is_accepted():
    doc = json.loads(_intent_schedule().to_json())
    del doc["version_minor"]  # a 1.0 document: no version_minor, no intent fields
    for slot in doc["slots"]:
        for name in ("intent", "battery_min_kw", "battery_max_kw"):
            del slot[name]
    s = sched.from_dict(doc)
    assert (s.version, s.version_minor) == (1, 0)
    assert all(x.intent is None and x.battery_min_kw is None and x.battery_max_kw is None
               for x in s.slots)
    assert s.slots == _schedule().slots


def test_newer_minor_version_is_accepted_and_its_new_fields_ignored():
    doc = json.loads(_intent_schedule().to_json())
    doc["version_minor"] = sched.SCHEMA_MINOR + 1
    doc["tariff_name"] = "dynamic"  # fields a newer writer added, at both levels
    for slot in doc["slots"]:
        slot["ev_charge_kw"] = 3.7
    s = sched.from_dict(doc)
    assert (s.version, s.version_minor) == (1, sched.SCHEMA_MINOR + 1)
    assert s.slots == _intent_schedule().slots  # the known fields, intents included
    assert "tariff_name" not in s.to_dict() and "ev_charge_kw" not in s.to_dict()["slots"][0]
    # the known fields are still validated in a newer minor version
    doc["slots"][1]["soc_pct"] = 140
    with pytest.raises(sched.ScheduleError, match=r"slots\[1\].soc_pct: expected 0..100"):
        sched.from_dict(doc)


def test_unknown_fields_refused_in_a_known_minor_version():
    doc = json.loads(_intent_schedule().to_json())
    doc["slots"][2]["ev_charge_kw"] = 3.7
    with pytest.raises(sched.ScheduleError, match=r"slots\[2\].ev_charge_kw: unknown field"):
        sched.from_dict(doc)


@pytest.mark.parametrize("change", [
    {"version": 2},
    {"version": 2, "version_minor": 0},
    {"version": 2, "version_minor": 5},
    {"version": 0},
    {"version": "1"},
    {"version": True},
])
def test_other_major_versions_are_refused_naming_version(change):
    doc = json.loads(_intent_schedule().to_json())
    doc.update(change)
    with pytest.raises(sched.ScheduleError) as info:
        sched.from_dict(doc)
    text = str(info.value)
    assert text.startswith("version: expected 1 (major"), text
    assert repr(change["version"]) in text


def test_another_major_version_is_refused_whatever_its_fields():
    """A 2.x document may change any field: the reader must say "version", not name the
    first field it happens to trip over."""
    doc = json.loads(_intent_schedule().to_json())
    doc.update(version=2, version_minor=0, plan_id="abc")
    doc["slots"][0]["grid_power_kw"] = doc["slots"][0].pop("grid_import_kw")
    del doc["slots"][1]["reason"]
    with pytest.raises(sched.ScheduleError, match=r"^version: expected 1 \(major.*got 2$"):
        sched.from_dict(doc)


@pytest.mark.parametrize("minor", [-1, "2", 1.5, True, None])
def test_invalid_minor_version_is_refused_naming_it(minor):
    doc = json.loads(_intent_schedule().to_json())
    doc["version_minor"] = minor
    doc["future"] = 1  # not accepted on the strength of an invalid minor version
    with pytest.raises(sched.ScheduleError, match=r"^version_minor: expected a whole number"):
        sched.from_dict(doc)


@pytest.mark.parametrize(("change", "message"), [
    ({"intent": "dance"}, "slots[1].intent: expected one of self_consume, charge_grid, hold"),
    ({"intent": 3}, "slots[1].intent: expected one of"),
    ({"battery_min_kw": 1.0, "battery_max_kw": 0.5},
     "slots[1].battery_min_kw: expected <= battery_max_kw (0.5), got 1.0"),
    ({"battery_min_kw": "low"}, "slots[1].battery_min_kw: expected a number, got 'low'"),
    ({"battery_max_kw": True}, "slots[1].battery_max_kw: expected a number, got True"),
    ({"battery_max_kw": float("inf")}, "slots[1].battery_max_kw: expected a finite number"),
    ({"battery_min_kw": None}, "slots[1].battery_min_kw: required with intent"),
    ({"battery_max_kw": None}, "slots[1].battery_max_kw: required with intent"),
    ({"intent": None}, "slots[1].intent: required with battery_min_kw"),
    ({"intent": None, "battery_min_kw": None}, "slots[1].intent: required with battery_max_kw"),
    ({"battery_min_kw": None, "battery_max_kw": None}, "slots[1].battery_min_kw: required with "
                                                       "intent"),
])
def test_invalid_intents_name_the_field(change, message):
    doc = json.loads(_intent_schedule().to_json())
    for key, value in change.items():
        if value is None:
            del doc["slots"][1][key]  # a field left out
        else:
            doc["slots"][1][key] = value
    with pytest.raises(sched.ScheduleError) as info:
        sched.from_dict(doc)
    assert message in str(info.value)


def test_invalid_intents_are_refused_when_building_too():
    with pytest.raises(sched.ScheduleError, match=r"slots\[0\].battery_max_kw: required"):
        _schedule(1, slots=(_slot(0, intent="hold", battery_min_kw=-5.0),))
    with pytest.raises(sched.ScheduleError, match=r"slots\[0\].intent: expected one of"):
        _schedule(1, slots=(_slot(0, intent="boost", battery_min_kw=0.0, battery_max_kw=1.0),))


def test_an_empty_band_is_allowed():
    s = _schedule(1, slots=(_slot(0, intent="idle", battery_min_kw=0.0, battery_max_kw=0.0),))
    assert sched.from_json(s.to_json()).slots[0].battery_max_kw == 0.0


# --- minor version 2: the per-slot devices block ------------------------------------------------

def _device_schedule() -> sched.Schedule:
    slots = list(_intent_schedule().slots)
    slots[0] = sched.Slot(**{**slots[0].__dict__,
                             "devices": {"water_heater": {"power_kw": 3.0},
                                         "ev": {"power_kw": 7.4, "soc_pct": 62.5,
                                                "phases": 3, "note": "by 07:30", "on": True}}})
    return _schedule(len(slots), slots=tuple(slots))


def test_devices_round_trip_and_only_where_given():
    s = _device_schedule()
    doc = json.loads(s.to_json())
    assert doc["version_minor"] == sched.SCHEMA_MINOR
    assert doc["slots"][0]["devices"]["water_heater"] == {"power_kw": 3.0}
    assert doc["slots"][0]["devices"]["ev"]["phases"] == 3
    assert "devices" not in doc["slots"][1]  # a slot without devices omits the block
    back = sched.from_json(s.to_json())
    assert back == s
    assert back.slots[0].devices["ev"]["power_kw"] == 7.4 and back.slots[1].devices is None


def test_integer_device_power_reads_as_float():
    doc = json.loads(_device_schedule().to_json())
    doc["slots"][0]["devices"]["water_heater"]["power_kw"] = 2
    got = sched.from_dict(doc).slots[0].devices["water_heater"]["power_kw"]
    assert got == 2.0 and isinstance(got, float)


@pytest.mark.parametrize(("devices", "message"), [
    ([1, 2], r"slots\[0\]\.devices: expected an object of devices, got list"),
    ({"Water Heater": {"power_kw": 1.0}}, r"slots\[0\]\.devices: expected device names of "
                                          r"lower-case letters, digits and _, got 'Water Heater'"),
    ({"ev": 7.4}, r"slots\[0\]\.devices\.ev: expected an object with power_kw, got float"),
    ({"ev": {"soc_pct": 50}}, r"slots\[0\]\.devices\.ev\.power_kw: required field is missing"),
    ({"ev": {"power_kw": "7"}}, r"slots\[0\]\.devices\.ev\.power_kw: expected a number, got '7'"),
    ({"ev": {"power_kw": True}}, r"slots\[0\]\.devices\.ev\.power_kw: expected a number"),
    ({"ev": {"power_kw": 1.0, "plan": {"a": 1}}},
     r"slots\[0\]\.devices\.ev\.plan: expected a number, string, boolean or null, got dict"),
])
def test_bad_devices_are_refused_naming_the_field(devices, message):
    doc = json.loads(_device_schedule().to_json())
    doc["slots"][0]["devices"] = devices
    with pytest.raises(sched.ScheduleError, match=message):
        sched.from_dict(doc)


def test_non_finite_device_value_is_refused():
    doc = json.loads(_device_schedule().to_json())
    slot = sched.Slot(**{**sched.from_dict(doc).slots[0].__dict__,
                         "devices": {"ev": {"power_kw": 1.0, "soc_pct": float("nan")}}})
    with pytest.raises(sched.ScheduleError, match=r"devices\.ev\.soc_pct: expected a finite"):
        _schedule(1, slots=(slot,))


def test_devices_leave_the_other_fields_as_they_are():
    """A 1.2 document keeps every 1.1 field: the intents and flows are unchanged by devices."""
    s = _device_schedule()
    assert [x.intent for x in s.slots] == [x.intent for x in _intent_schedule().slots]
    assert s.slots[0].battery_power_kw == _intent_schedule().slots[0].battery_power_kw
