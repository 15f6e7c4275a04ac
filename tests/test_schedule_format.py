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
