"""Telemetry: per-minute rows to SQL, buffered on disk while the database is down, flushed
later — nothing lost, nothing duplicated; the JSONL store on a GX; plan from SQL/HTTP."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
import sqlalchemy as sa
from gx_emulator.fixtures import *  # noqa: F403 - shared fixtures (see there)
from gx_emulator.plans import T0, FakeClock, build_plan, run_for

from executor import __main__ as ex_main
from executor import config as ex_config
from executor import schedule as sched
from executor.control import Apply, Release
from executor.drivers.base import Measurement
from executor.drivers.dry_run import DryRunDriver
from executor.live import read_measurement
from executor.plansource import HttpSource, PlanTracker, SqlSource
from executor.telemetry import SqlSink, Telemetry
from planner import config as planner_config
from planner.history.store import Store
from planner.providers.load import history as load_history
from planner.providers.pv import openmeteo


@pytest.fixture
def db(tmp_path):
    """A SQLite database with the planner's own ``measurements`` table."""
    from planner.history import store

    path = tmp_path / "helios.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    store.metadata.create_all(engine)
    engine.dispose()
    return path


def _rows(path) -> list:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT measured_at, soc_pct, battery_power_w, source "
                                    "FROM measurements ORDER BY measured_at")).all()
    engine.dispose()
    return rows


def test_db_down_then_up_loses_nothing(make_executor, write_plan, clock, db, tmp_path, caplog):
    caplog.set_level(logging.INFO, "helios.executor.telemetry")
    buffer = str(tmp_path / "state" / "buffer.jsonl")
    tel = Telemetry(buffer, SqlSink(f"sqlite:///{db}"), interval_s=60)
    ex, _ = make_executor(telemetry=tel)
    write_plan(n_slots=8)
    run_for(ex, clock, 600)  # 10 min with the DB up
    assert len(_rows(db)) == 9  # the 10th minute is still open
    os.rename(db, str(db) + ".away")  # database down for 20 minutes
    run_for(ex, clock, 1200)
    assert len(tel.pending()) == 20
    assert caplog.text.count("measurements database unavailable") == 1
    # the process restarts while the DB is down: the buffer survives
    ex.shutdown()
    tel2 = Telemetry(buffer, SqlSink(f"sqlite:///{db}"), interval_s=60)
    ex2, _ = make_executor(telemetry=tel2)
    os.rename(str(db) + ".away", db)  # database back
    run_for(ex2, clock, 120)
    rows = _rows(db)
    minutes = [r[0] for r in rows]
    # every minute from 00:00 to 00:30 exactly once (00:29 was closed by the shutdown,
    # 00:31 is still open)
    expected = [(T0 + timedelta(minutes=k)).strftime("%Y-%m-%d %H:%M:%S") for k in range(31)]
    assert [str(m)[:19] for m in minutes] == expected
    assert rows[0][3] == "helios-executor" and all(r[1] is not None for r in rows)
    assert tel2.pending() == []
    assert "flushed" in caplog.text


def test_rows_are_minute_averages(tmp_path):
    from executor.drivers.base import Measurement

    tel = Telemetry(str(tmp_path / "b.jsonl"), None, interval_s=60)
    for k in range(6):
        at = T0 + timedelta(seconds=10 * k)
        tel.record(Measurement(at, 50.0 + k, 100.0 * k, 0.0, 0.0), at)
    tel.record(None, T0 + timedelta(seconds=60))
    (row,) = tel.pending()
    assert row["measured_at"] == "2026-06-01T00:00:00Z"
    assert row["battery_power_w"] == 250.0 and row["soc_pct"] == 55.0
    assert row["load_power_w"] is None


def test_gx_jsonl_store_rotates(tmp_path):
    from executor.drivers.base import Measurement

    tel = Telemetry(str(tmp_path / "b.jsonl"), None, interval_s=60, max_file_bytes=500)
    for k in range(30):
        at = T0 + timedelta(minutes=k)
        tel.record(Measurement(at, 50.0, 0.0, 0.0, 0.0), at)
    assert os.path.exists(str(tmp_path / "b.jsonl.1"))
    assert os.path.getsize(str(tmp_path / "b.jsonl")) < 1000


_INTENT = ("intent", "battery_min_kw", "battery_max_kw")


def _save_plan_sql(path, plan, plan_id, intent_columns=False):
    """Save ``plan`` like the planner's store does: revision 0002 (no intent columns) or, with
    ``intent_columns``, 0003 (NULL where a slot has no intent)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    doc = json.loads(plan.to_json())
    extra = ", intent, battery_min_kw, battery_max_kw" if intent_columns else ""
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE IF NOT EXISTS plan_history (id INTEGER PRIMARY KEY, generated_at, "
            "valid_until, slot_s, status, objective_eur, expected_cost_eur, solve_s, solver, "
            "violations)"))
        conn.execute(sa.text(
            "CREATE TABLE IF NOT EXISTS plan_slot (plan_id, slot_start, grid_import_kw, "
            "grid_export_kw, battery_charge_kw, battery_discharge_kw, pv_kw, pv_used_kw, "
            "load_kw, soc_pct, buy_eur_per_kwh, sell_eur_per_kwh, grid_setpoint_w, action, "
            f"reason{extra})"))
        conn.execute(sa.text(
            "CREATE VIEW IF NOT EXISTS current_schedule AS SELECT s.* FROM plan_slot s "
            "WHERE s.plan_id = (SELECT MAX(h.id) FROM plan_history h)"))
        conn.execute(sa.text(
            "INSERT INTO plan_history VALUES (:id, :g, :v, :slot_s, :status, 0, 0, 0, 'X', "
            "'[]')"), {"id": plan_id, "g": doc["generated_at"][:-1].replace("T", " "),
                       "v": doc["valid_until"][:-1].replace("T", " "),
                       "slot_s": doc["slot_s"], "status": doc["status"]})
        for s in doc["slots"]:
            s = dict(s, plan_id=plan_id, slot_start=s.pop("start")[:-1].replace("T", " "))
            values = ", :intent, :battery_min_kw, :battery_max_kw" if intent_columns else ""
            conn.execute(sa.text(
                "INSERT INTO plan_slot VALUES (:plan_id, :slot_start, :grid_import_kw, "
                ":grid_export_kw, :battery_charge_kw, :battery_discharge_kw, :pv_kw, "
                ":pv_used_kw, :load_kw, :soc_pct, :buy_eur_per_kwh, :sell_eur_per_kwh, "
                f":grid_setpoint_w, :action, :reason{values})"),
                {name: None for name in _INTENT} | s)
    engine.dispose()


def _with_intents(plan, intent=None):
    """``plan`` as a 1.1 plan: each slot's intent from its flows (or ``intent`` for all)."""
    slots = []
    for s in plan.slots:
        got = sched.intent_band(s.battery_charge_kw, s.battery_discharge_kw, s.grid_import_kw,
                                s.grid_export_kw, 5.0, 5.0)
        if intent is not None:
            got = intent
        slots.append(dataclasses.replace(s, intent=got[0], battery_min_kw=got[1],
                                         battery_max_kw=got[2]))
    return dataclasses.replace(plan, slots=tuple(slots))


def test_plan_from_sql(tmp_path):
    path = tmp_path / "plans.db"
    tracker = PlanTracker(SqlSource(f"sqlite:///{path}"))
    assert tracker.poll() is None and "does not exist" in tracker.reason
    plan = build_plan(T0, 4, 50.0)
    _save_plan_sql(path, plan, 1)
    got = tracker.poll()
    assert got is not None and got.slots == plan.slots and got.valid_until == plan.valid_until
    assert tracker.poll() is got  # unchanged id: not re-read
    _save_plan_sql(path, build_plan(T0, 4, 60.0), 2)
    assert tracker.poll().slots[0].soc_pct != plan.slots[0].soc_pct


def test_intents_round_trip_through_sql(tmp_path):
    path = tmp_path / "plans.db"
    tracker = PlanTracker(SqlSource(f"sqlite:///{path}"))
    plan = _with_intents(build_plan(T0, 8, 50.0))
    assert {s.intent for s in plan.slots} >= {"charge_grid", "hold"}
    _save_plan_sql(path, plan, 1, intent_columns=True)
    got = tracker.poll()
    assert got is not None and (got.version, got.version_minor) == (1, 1)
    assert got.slots == plan.slots
    # a plan saved before the planner wrote intents (NULL columns): a 1.0 plan
    _save_plan_sql(path, build_plan(T0, 8, 50.0), 2, intent_columns=True)
    got = tracker.poll()
    assert got.version_minor == 0 and {s.intent for s in got.slots} == {None}
    assert got.slots == build_plan(T0, 8, 50.0).slots
    # a half-filled row is rejected by the contract, naming the field; the last plan stays
    bad = _with_intents(build_plan(T0, 8, 50.0))
    _save_plan_sql(path, bad, 3, intent_columns=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE plan_slot SET battery_max_kw = NULL "
                             "WHERE plan_id = 3 AND slot_start = (SELECT MIN(slot_start) "
                             "FROM plan_slot WHERE plan_id = 3)"))
    engine.dispose()
    assert tracker.poll() is got
    assert "slots[0].battery_max_kw: required with intent" in tracker._last_error


def test_plan_from_http(tmp_path):
    state = {"body": build_plan(T0, 4, 50.0).to_json().encode(), "status": 200, "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            state["hits"] += 1
            if self.headers.get("If-None-Match") == '"v1"' and state["status"] == 200:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(state["status"])
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/schedule.json"
        tracker = PlanTracker(HttpSource(url, timeout_s=2))
        plan = tracker.poll()
        assert plan is not None and len(plan.slots) == 4
        assert tracker.poll() is plan  # 304 Not Modified
        state["status"] = 404
        assert tracker.poll() is None and "HTTP 404" in tracker.reason
    finally:
        server.shutdown()
        server.server_close()


def test_live_reading_for_the_planner():
    m = read_measurement("simulated", {"soc_pct": 42.0}, clock=FakeClock(T0))
    assert m.soc_pct == 42.0 and m.at == T0


def test_executor_follows_plan_from_sql(make_executor, clock, tmp_path):
    path = tmp_path / "plans.db"
    _save_plan_sql(path, build_plan(T0, 8, 50.0), 1)
    ex, _ = make_executor()
    ex.tracker = PlanTracker(SqlSource(f"sqlite:///{path}"))
    assert isinstance(ex.tick(), Apply)
    clock.advance(3 * 3600)
    assert isinstance(ex.tick(), Release)
    sched.ScheduleError  # noqa: B018 - the contract module is what validates SQL rows too


def test_executor_follows_the_intent_from_sql(make_executor, clock, tmp_path):
    path = tmp_path / "plans.db"
    # the first slot plans a 300 W discharge; its stored intent says "hold, no discharge"
    plan = _with_intents(build_plan(T0, 8, 50.0), intent=("hold", -5.0, 0.0))
    _save_plan_sql(path, plan, 1, intent_columns=True)
    ex, _ = make_executor()
    ex.tracker = PlanTracker(SqlSource(f"sqlite:///{path}"))
    decision = ex.tick()
    assert isinstance(decision, Apply) and decision.setpoint.intent == "hold"
    assert decision.setpoint.battery_power_w == pytest.approx(0.0, abs=1e-6)
    assert "in [-5000, +0] W" in decision.reason and decision.setpoint.grid_power_w == 350
    # the same plan without intents: the executor derives the band from the flows
    _save_plan_sql(path, build_plan(T0, 8, 50.0), 2, intent_columns=True)
    decision = ex.tick()
    assert isinstance(decision, Apply) and "in [-5000, +300] W" in decision.reason
    assert decision.setpoint.battery_power_w == pytest.approx(300.0)


# --- issue 16: a simulated plant's readings never enter the history as real -------------------


def test_simulated_readings_are_not_stored_unless_asked_for(tmp_path, db):
    url = f"sqlite:///{db}"
    for driver in ({"type": "simulated"}, {"type": "dry_run"}):
        cfg = ex_config.from_mapping({"executor": {"driver": driver,
                                                   "telemetry": {"sql_url": url}}},
                                     str(tmp_path))
        ex = ex_main.build(cfg)
        assert ex.driver.simulated and ex.telemetry is None, driver
        ex = ex_main.build(cfg, store_simulated=True)
        assert ex.telemetry is not None and ex.telemetry.simulated, driver
    # a real driver wrapped by --dry-run reads real measurements: stored, not tagged
    assert not DryRunDriver(clock=lambda: T0, inner=object()).simulated


def test_simulated_rows_are_tagged_and_never_read_as_measurements(tmp_path):
    url = f"sqlite:///{tmp_path / 'helios.db'}"
    Store(url).upgrade()

    def store_rows(simulated: bool, soc: float, start, minutes: int) -> None:
        tel = Telemetry(str(tmp_path / f"buf-{simulated}.jsonl"), SqlSink(url), interval_s=60,
                        simulated=simulated)
        for k in range(minutes * 6 + 1):
            at = start + timedelta(seconds=10 * k)
            tel.record(Measurement(at, soc, 100.0, 200.0, 1500.0, 800.0), at)

    store_rows(False, 41.0, T0, 5)  # real, older
    store_rows(True, 77.0, T0 + timedelta(minutes=10), 5)  # simulated, newer
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT soc_pct, simulated FROM measurements "
                                   "ORDER BY measured_at")).all()
    engine.dispose()
    assert {tuple(r) for r in got} == {(41.0, 0), (77.0, 1)}
    assert [r[1] for r in got].count(1) == 5
    rows = [json.loads(x) for x in (tmp_path / "buf-True.jsonl").read_text().splitlines()]
    assert rows == [] or all(r["simulated"] is True for r in rows)
    now = pd.Timestamp(T0 + timedelta(hours=1))
    at, soc = Store(url).latest_soc(now)
    assert soc == 41.0  # the simulated SoC (newer) is not a measurement
    cfg = planner_config.from_mapping({"storage": {"url": url}})
    load = load_history.read_measured_history(cfg, now - pd.Timedelta(days=1))
    pv = openmeteo._measured_pv(cfg, now - pd.Timedelta(days=1))
    assert len(load) == len(pv) == 5
    assert (load.index < pd.Timestamp(T0 + timedelta(minutes=6))).all()


def test_real_rows_go_into_a_database_without_the_simulated_column(tmp_path):
    """Real rows are inserted without the column, so an executor upgraded before the
    planner's database (still schema 0003) keeps storing them."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url).upgrade("0003")
    tel = Telemetry(str(tmp_path / "buf.jsonl"), SqlSink(url), interval_s=60)
    for k in range(13):
        at = T0 + timedelta(seconds=10 * k)
        tel.record(Measurement(at, 50.0, 0.0, 100.0, 0.0, 100.0), at)
    assert tel.pending() == [] and tel.stored == 2
