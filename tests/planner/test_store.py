"""Plan history store: the same tests on SQLite and on the real MariaDB server.

MariaDB: 127.0.0.1:3306, root, empty password (override with $HELIOS_TEST_MARIADB); each test
gets a fresh database ``helios_test_<random>`` that is dropped afterwards, so parallel runs do
not collide. With ``CI=true`` an unreachable server FAILS the tests; elsewhere they skip.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from executor import schedule as sched
from planner import config as config_mod
from planner.cli.main import main
from planner.core.errors import StorageError
from planner.history import rows as rows_mod
from planner.history import schema
from planner.history.schema import measurements
from planner.history.store import Store
from planner.plan import record as record_mod
from planner.plan import run

NOW = "2026-05-01T10:07:00Z"
MARIADB_ADMIN = os.environ.get("HELIOS_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "storage.md"
TABLES = {"plan_history", "plan_slot", "measurements", "price_cache"}


@pytest.fixture(scope="session")
def mariadb_admin():
    """An engine on the MariaDB server (root), or skip/fail when it is unreachable."""
    engine = sa.create_engine(MARIADB_ADMIN, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = f"MariaDB at {MARIADB_ADMIN} unreachable: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (.ci/run starts the server; it must be up in CI)")
        pytest.skip(f"{reason}; start it (see .ci/run) to run the MariaDB half")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request, tmp_path):
    """A fresh, empty database: SQLite file in tmp_path, or a new MariaDB database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/history.db"
        return
    admin = request.getfixturevalue("mariadb_admin")
    name = f"helios_test_{secrets.token_hex(5)}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        yield s


def _result(site_dir, **config):
    cfg = config_mod.load(site_dir(config=config or None))
    return run.plan_once(cfg, pd.Timestamp(NOW)), cfg


def _tables(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        insp = sa.inspect(conn)
        return set(insp.get_table_names()) | set(insp.get_view_names())


def _columns(store: Store, table: str) -> set[str]:
    """The columns a table or view shows (``SELECT *``: what a reader of the view gets)."""
    with store.engine.connect() as conn:
        return set(conn.execute(sa.text(f"SELECT * FROM {table} WHERE 1 = 0")).keys())


# --------------------------------------------------------------------------------------------
# migrations


def test_schema_revision_constant_is_alembics_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    acfg = Config()
    acfg.set_main_option("script_location", schema.MIGRATIONS)
    acfg.set_main_option("path_separator", "os")
    assert ScriptDirectory.from_config(acfg).get_current_head() == schema.SCHEMA_REVISION


def test_migrations_up_and_down(store):
    assert store.revision() is None
    assert store.upgrade() == schema.SCHEMA_REVISION
    assert _tables(store) >= TABLES | {"current_schedule", "alembic_version"}
    assert store.downgrade("0002") == "0002"
    assert "current_schedule" in _tables(store)
    assert not set(schema.INTENT_SLOT_FIELDS) & _columns(store, "plan_slot")
    assert store.downgrade("0001") == "0001"
    tables = _tables(store)
    assert "current_schedule" not in tables and tables >= TABLES
    assert store.downgrade("base") is None
    assert not (_tables(store) & (TABLES | {"current_schedule"}))
    assert store.upgrade("0001") == "0001"
    assert store.upgrade() == schema.SCHEMA_REVISION
    assert "current_schedule" in _tables(store)
    assert set(schema.INTENT_SLOT_FIELDS) <= _columns(store, "plan_slot")
    assert set(schema.INTENT_SLOT_FIELDS) <= _columns(store, "current_schedule")


def test_migrated_schema_equals_the_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store.upgrade()
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, schema.metadata)
    assert diff == []


def _insert_as_0002(store: Store, record: rows_mod.RunRecord) -> int:
    """Save ``record`` the way a Helios at revision 0002 did: no intent columns exist."""
    meta = sa.MetaData()
    with store.engine.begin() as conn:
        history = schema.plan_history  # unchanged by 0003 (reflection loses JSON types)
        slot = sa.Table("plan_slot", meta, autoload_with=conn)
        assert not set(schema.INTENT_SLOT_FIELDS) & set(slot.c.keys())
        run = {k: (rows_mod.to_db_time(v) if isinstance(v, pd.Timestamp) else v)
               for k, v in record.run.items()}
        plan_id = int(conn.execute(history.insert().values(**run)).inserted_primary_key[0])
        step = pd.Timedelta(seconds=int(run["slot_s"]))
        rows = []
        for ts, r in record.slots.iterrows():
            row = {k: r[k] for k in schema.SLOT_FIELDS
                   if k not in schema.INTENT_SLOT_FIELDS}
            row["grid_setpoint_w"] = int(row["grid_setpoint_w"])
            rows.append({"plan_id": plan_id, "slot_start": rows_mod.to_db_time(ts),
                         "slot_end": rows_mod.to_db_time(ts + step), **row})
        conn.execute(slot.insert(), rows)
    return plan_id


def _sql_plan(url: str):
    """The newest plan as the executor reads it from this database."""
    from executor.plansource import SqlSource

    source = SqlSource(url)
    try:
        return source.fetch()
    finally:
        source._connect().dispose()


def test_upgrade_from_0002_keeps_rows_as_10_plans(store, site_dir):
    result, cfg = _result(site_dir)
    record = record_mod.record_from_result(result, cfg)
    assert {s.intent for s in result.schedule.slots} <= set(sched.INTENTS)
    store.upgrade("0002")
    old_id = _insert_as_0002(store, record)
    url = store.url.render_as_string(hide_password=False)
    old = _sql_plan(url)  # the executor reads a 0002 database as a 1.0 plan
    assert old.version_minor == 0 and {s.intent for s in old.slots} == {None}
    fresh = Store(store.url)
    loaded = fresh.load(old_id)  # upgrades to the head by itself
    assert fresh.revision() == schema.SCHEMA_REVISION
    for name in schema.INTENT_SLOT_FIELDS:  # old rows: NULL, read back as None
        assert list(loaded.slots[name]) == [None] * len(record.slots), name
    others = [n for n in schema.SLOT_FIELDS if n not in schema.INTENT_SLOT_FIELDS]
    pd.testing.assert_frame_equal(loaded.slots[others], record.slots[others],
                                  check_dtype=False, check_freq=False)
    with fresh.engine.connect() as conn:
        nulls = conn.execute(sa.text("SELECT COUNT(*) FROM current_schedule "
                                     "WHERE intent IS NULL AND battery_min_kw IS NULL "
                                     "AND battery_max_kw IS NULL")).scalar()
    assert nulls == len(record.slots)
    again = _sql_plan(url)
    assert again.version_minor == 0 and again.slots == old.slots
    # a plan saved after the upgrade carries its intents, in the table, the view and for
    # the executor
    new_id = fresh.save(record)
    assert list(fresh.load(new_id).slots["intent"]) == [s.intent for s in result.schedule.slots]
    with fresh.engine.connect() as conn:
        got = conn.execute(sa.text("SELECT intent, battery_min_kw, battery_max_kw "
                                   "FROM current_schedule ORDER BY slot_start")).all()
    assert [tuple(r) for r in got] == [(s.intent, s.battery_min_kw, s.battery_max_kw)
                                       for s in result.schedule.slots]
    new = _sql_plan(url)
    assert (new.version, new.version_minor) == (1, 1)
    assert new.slots == result.schedule.slots
    fresh.dispose()


def test_downgrade_to_0002_keeps_rows_without_intents(store, site_dir):
    result, cfg = _result(site_dir)
    record = record_mod.record_from_result(result, cfg)
    plan_id = store.save(record)
    assert store.downgrade("0002") == "0002"
    assert not set(schema.INTENT_SLOT_FIELDS) & _columns(store, "plan_slot")
    assert not set(schema.INTENT_SLOT_FIELDS) & _columns(store, "current_schedule")
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM plan_slot")).scalar() == \
            len(record.slots)
        assert conn.execute(sa.text("SELECT COUNT(*) FROM current_schedule")).scalar() == \
            len(record.slots)
    url = store.url.render_as_string(hide_password=False)
    plan = _sql_plan(url)  # still a valid plan for the executor, now without intents
    assert plan.version_minor == 0 and {s.intent for s in plan.slots} == {None}
    assert [s.grid_setpoint_w for s in plan.slots] == \
        [s.grid_setpoint_w for s in result.schedule.slots]
    # and up again: the intents are gone for good (NULL), the rest is intact
    assert store.upgrade() == schema.SCHEMA_REVISION
    loaded = store.load(plan_id)
    assert list(loaded.slots["intent"]) == [None] * len(record.slots)
    assert list(loaded.slots["soc_pct"]) == list(record.slots["soc_pct"])


def test_slots_without_intent_are_saved_as_null(store, site_dir):
    result, cfg = _result(site_dir)
    record = record_mod.record_from_result(result, cfg)
    slots = record.slots.copy()
    for name in schema.INTENT_SLOT_FIELDS:  # a 1.0 plan's slots (None or NaN: both NULL)
        slots[name] = pd.Series([None] * len(slots), index=slots.index, dtype=object)
    slots.iloc[0, slots.columns.get_loc("battery_min_kw")] = float("nan")
    plan_id = store.save(rows_mod.RunRecord(record.run, slots))
    loaded = store.load(plan_id)
    for name in schema.INTENT_SLOT_FIELDS:
        assert list(loaded.slots[name]) == [None] * len(slots), name
    plan = _sql_plan(store.url.render_as_string(hide_password=False))
    assert plan.version_minor == 0 and {s.intent for s in plan.slots} == {None}


def test_newer_database_is_refused(store):
    store.upgrade()
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    fresh = Store(store.url)
    with pytest.raises(StorageError, match="revision 0099 is newer than this Helios"):
        fresh.ensure_schema()
    fresh.dispose()


# --------------------------------------------------------------------------------------------
# saving and loading


def test_save_creates_schema_and_round_trips_exactly(store, site_dir, tmp_path):
    result, cfg = _result(site_dir, battery={"reserve_soc_pct": 30})
    path = tmp_path / "schedule.json"
    run.write_schedule(result.schedule, str(path))
    record = record_mod.record_from_result(result, cfg)
    plan_id = store.save(record)  # creates the schema on first use
    assert store.revision() == schema.SCHEMA_REVISION
    loaded = store.load(plan_id)
    assert loaded.plan_id == plan_id
    # every per-slot field equals what schedule.json says, value for value
    written = sched.read(path)
    assert len(loaded.slots) == len(written.slots)
    for slot, (ts, row) in zip(written.slots, loaded.slots.iterrows(), strict=True):
        assert ts == pd.Timestamp(slot.start)
        for name in schema.SCHEDULE_SLOT_FIELDS:  # the intent fields too
            assert row[name] == getattr(slot, name), name
        assert slot.intent in sched.INTENTS
    pd.testing.assert_frame_equal(loaded.slots, record.slots, check_dtype=False,
                                  check_freq=False)
    for key, value in record.run.items():
        got = loaded.run[key]
        if isinstance(value, pd.Timestamp):
            assert abs((got - value).total_seconds()) < 1e-3, key
        else:
            assert got == value, key
    r = loaded.run
    assert r["reserve_soc_pct"] == 30 and r["site_timezone"] == "Europe/Berlin"
    # issue 16: the state is an input too, and a static SoC (site_dir's) is flagged degraded
    assert r["price_provider"] == "csv" and r["inputs_degraded"] is True
    assert {i["kind"] for i in r["inputs"]} == {"prices", "pv", "load", "state"}
    assert [i["kind"] for i in r["inputs"] if i["degraded"]] == ["state"]
    assert len(r["config_hash"]) == 64
    assert r["baseline_self_consumption_eur"] >= r["net_cost_eur"] - 1e-6


def test_current_schedule_view_is_the_newest_plan(store, site_dir):
    result, cfg = _result(site_dir)
    first = store.save(record_mod.record_from_result(result, cfg))
    second = store.save(record_mod.record_from_result(result, cfg))
    assert second == first + 1
    with store.engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT DISTINCT plan_id FROM current_schedule")).scalars()
        assert list(ids) == [second]
        n = conn.execute(sa.text("SELECT COUNT(*) FROM current_schedule")).scalar()
    assert n == len(result.schedule.slots)
    assert store.load().plan_id == second
    assert [p[0] for p in store.plan_ids()] == [second, first]


def test_one_transaction_nothing_saved_when_a_slot_fails(store, site_dir):
    result, cfg = _result(site_dir)
    record = record_mod.record_from_result(result, cfg)
    store.save(record)
    bad = record.slots.copy()
    starts = list(bad.index)
    starts[5] = starts[4]  # a duplicate slot_start: the 6th slot row violates the primary key
    bad.index = pd.DatetimeIndex(starts, name="slot_start")
    with pytest.raises(StorageError, match="saving the plan failed"):
        store.save(rows_mod.RunRecord(record.run, bad))
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM plan_history")).scalar() == 1
        assert conn.execute(sa.text("SELECT COUNT(*) FROM plan_slot")).scalar() == len(bad)


def test_price_cache_and_measurements(store, site_dir):
    result, cfg = _result(site_dir)
    store.save(record_mod.record_from_result(result, cfg), cache_provider="csv")
    idx = result.plan.inputs.index
    cached = store.cached_prices("csv", idx[0], idx[-1] + pd.Timedelta(minutes=15))
    assert list(cached.index) == list(idx)
    assert (cached["spot_eur_per_kwh"].to_numpy()
            == result.plan.inputs.spot_eur_per_kwh.round(6)).all()
    assert store.cached_prices("other", idx[0], idx[-1]).empty
    # saving again over the same slots replaces, never duplicates
    store.save(record_mod.record_from_result(result, cfg), cache_provider="csv")
    assert len(store.cached_prices("csv", idx[0], idx[-1] + pd.Timedelta(minutes=15))) == len(idx)
    n = store.add_measurements([
        {"measured_at": idx[0] + pd.Timedelta(minutes=m), "soc_pct": 50.0 - m / 10,
         "battery_power_w": 800.0, "grid_power_w": -120.0, "pv_power_w": 3000.0,
         "load_power_w": 2080.0, "source": "test"} for m in range(0, 30, 5)])
    assert n == 6


def test_a_batch_of_real_and_simulated_rows_keeps_each_tag(store):
    """One insert call with rows of different keys (a real reading without ``simulated``, then
    a tagged simulated one): each row keeps its own tag, none is silently stored as real."""
    at = pd.Timestamp("2026-05-01T12:00:00Z")
    n = store.add_measurements([
        {"measured_at": at, "soc_pct": 40.0},
        {"measured_at": at + pd.Timedelta(seconds=10), "soc_pct": 41.0, "simulated": True},
        {"measured_at": at + pd.Timedelta(seconds=20), "soc_pct": 42.0, "simulated": False},
    ])
    assert n == 3
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(measurements.c.soc_pct, measurements.c.simulated)
                            .order_by(measurements.c.measured_at)).all()
    assert [(r[0], bool(r[1])) for r in rows] == [(40.0, False), (41.0, True), (42.0, False)]
    # the newest *real* SoC is 42 %, the simulated 41 % is never read as a measurement
    assert store.latest_soc(at + pd.Timedelta(minutes=1))[1] == 42.0


def test_prune_keeps_recent_rows(store, site_dir):
    result, cfg = _result(site_dir)
    now = pd.Timestamp("2026-05-01T12:00:00Z")
    old = record_mod.record_from_result(result, cfg, created_at=now - pd.Timedelta(days=40))
    new = record_mod.record_from_result(result, cfg, created_at=now - pd.Timedelta(days=1))
    old_id = store.save(old)
    new_id = store.save(new, cache_provider="csv")
    store.add_measurements([{"measured_at": now - pd.Timedelta(days=d), "soc_pct": 50.0}
                            for d in (60, 2)])
    values = pd.Series([1.5, 2.0], index=pd.date_range(now, periods=2, freq="15min"))
    store.save_forecast("pv", "solcast:old", values, 900, now - pd.Timedelta(days=45), "old")
    store.save_forecast("pv", "solcast:new", values, 900, now - pd.Timedelta(hours=1), "new")
    counts = store.prune(now=now, keep_days=30)
    assert counts == {"plan_slot": len(old.slots), "plan_history": 1, "measurements": 1,
                      "price_cache": 0, "forecast_cache": 2}
    # a cached answer not fetched for keep_days goes; the recent one stays
    assert store.cached_forecast("pv", "solcast:old") is None
    assert store.cached_forecast("pv", "solcast:new")[3] == "new"
    assert [p[0] for p in store.plan_ids()] == [new_id]
    with pytest.raises(StorageError, match=f"no plan with id {old_id}"):
        store.load(old_id)


def _sql_examples() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    return [b.strip().rstrip(";") for b in re.findall(r"```sql\n(.*?)```", text, re.S)]


def _readme_sql() -> list[str]:
    text = (DOCS.parents[1] / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        body = "\n".join(line for line in block.splitlines() if not line.startswith("--"))
        out += [q.strip() for q in body.split(";") if q.strip()]
    return out


def test_readme_queries_run(store, site_dir):
    result, cfg = _result(site_dir)
    store.save(record_mod.record_from_result(result, cfg))
    queries = _readme_sql()
    assert len(queries) == 3
    with store.engine.connect() as conn:
        last, soc, daily = [conn.execute(sa.text(q)).all() for q in queries]
    assert len(last) == 1 and len(soc) == len(result.schedule.slots)
    assert sum(r[1] for r in daily) == pytest.approx(result.schedule.expected_cost_eur,
                                                     abs=1e-4)


def test_documented_example_queries_run(store, site_dir):
    result, cfg = _result(site_dir)
    store.save(record_mod.record_from_result(result, cfg))
    idx = result.plan.inputs.index
    store.add_measurements([{"measured_at": idx[1] + pd.Timedelta(minutes=m), "soc_pct": 40.0}
                            for m in (1, 6, 11)])
    queries = _sql_examples()
    assert len(queries) >= 4
    with store.engine.connect() as conn:
        got = [conn.execute(sa.text(q)).all() for q in queries]
    last, view, soc, daily = got[:4]
    assert len(last) == 1 and last[0][4] == "optimal"
    assert len(view) == len(idx)
    assert len(soc) == len(idx) and soc[1][2] == pytest.approx(40.0) and soc[1][3] == 3
    assert soc[0][3] == 0
    assert len(daily) == 2  # 1 and 2 May (UTC); the prices end 3 May 00:00Z
    assert sum(r[1] for r in daily) == pytest.approx(result.schedule.expected_cost_eur,
                                                     abs=1e-4)


# --------------------------------------------------------------------------------------------
# failures: clear message, exit 6, schedule.json intact


def _capture_schedule_writes(monkeypatch) -> list[str]:
    written: list[str] = []
    real = sched.atomic_write

    def spy(path, text):
        if str(path).endswith(".json"):
            written.append(text)
        return real(path, text)

    monkeypatch.setattr(sched, "atomic_write", spy)
    return written


def _plan_cli(cfg_path, *extra):
    return CliRunner().invoke(main, ["plan", "--config", str(cfg_path), "--now", NOW, "-q",
                                     *extra])


def test_sqlite_path_unusable_exit_6_schedule_intact(site_dir, monkeypatch):
    cfg_path = site_dir(config={"storage": {"url": "sqlite:///state/helios.db"}})
    (cfg_path.parent / "state" / "helios.db").mkdir(parents=True)  # a directory: unusable
    written = _capture_schedule_writes(monkeypatch)
    res = _plan_cli(cfg_path)
    assert res.exit_code == 6, res.output
    line = res.output.strip()
    assert line.startswith("helios: error: plan not saved to history: database sqlite:///")
    assert "unable to open database file" in line
    assert "schedule.json was written and is unchanged" in line
    assert "Traceback" not in res.output and len(line.splitlines()) == 1
    out = cfg_path.parent / "schedule.json"
    assert len(written) == 1 and out.read_text(encoding="utf-8") == written[0]
    assert sched.read(out).slots


def test_storage_not_required_warns_and_succeeds(site_dir):
    cfg_path = site_dir(config={"storage": {"url": "sqlite:///nodir/sub/helios.db",
                                            "required": False}})
    res = _plan_cli(cfg_path)
    assert res.exit_code == 0, res.output
    assert res.output.startswith("helios: warning: plan not saved to history: database ")
    assert sched.read(cfg_path.parent / "schedule.json").slots


def test_storage_disabled_writes_no_database(site_dir):
    cfg_path = site_dir(config={"storage": {"enabled": False}})
    assert _plan_cli(cfg_path).exit_code == 0
    assert not (cfg_path.parent / "helios.db").exists()


def test_mariadb_closed_port_exit_6(site_dir, monkeypatch):
    cfg_path = site_dir(config={"storage": {"url": "mysql+pymysql://helios@127.0.0.1:1/none"}})
    written = _capture_schedule_writes(monkeypatch)
    res = _plan_cli(cfg_path)
    assert res.exit_code == 6, res.output
    assert "database mysql+pymysql://helios@127.0.0.1:1/none?charset=utf8mb4" in res.output
    assert "Can't connect to MySQL server on '127.0.0.1'" in res.output
    assert (cfg_path.parent / "schedule.json").read_text(encoding="utf-8") == written[0]


def test_mariadb_privileges_revoked_mid_life(site_dir, mariadb_admin, monkeypatch):
    """A real user whose rights are revoked after the schema exists: INSERT is denied.

    The password comes from secrets.yaml and must not appear in any output.
    """
    name = f"helios_test_{secrets.token_hex(5)}"
    user = f"h_{secrets.token_hex(4)}"
    password = f"pw-{secrets.token_hex(8)}"
    with mariadb_admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        conn.execute(sa.text(f"GRANT ALL ON {name}.* TO '{user}'@'%'"))
    try:
        cfg_path = site_dir()
        host = mariadb_admin.url.host
        port = mariadb_admin.url.port or 3306
        with cfg_path.open("a") as fh:
            fh.write(f"storage:\n  url: mysql+pymysql://{user}@{host}:{port}/{name}\n"
                     "  password: !secret db_password\n")
        (cfg_path.parent / "secrets.yaml").write_text(f"db_password: {password}\n")
        runner = CliRunner()
        res = runner.invoke(main, ["db", "upgrade", "--config", str(cfg_path)])
        assert res.exit_code == 0, res.output
        assert password not in res.output and ":***@" in res.output
        assert _plan_cli(cfg_path).exit_code == 0
        with mariadb_admin.begin() as conn:
            conn.execute(sa.text(f"REVOKE ALL PRIVILEGES ON {name}.* FROM '{user}'@'%'"))
            conn.execute(sa.text(f"GRANT SELECT ON {name}.* TO '{user}'@'%'"))
        written = _capture_schedule_writes(monkeypatch)
        res = _plan_cli(cfg_path)
        assert res.exit_code == 6, res.output
        assert "INSERT command denied to user" in res.output
        assert password not in res.output
        assert (cfg_path.parent / "schedule.json").read_text(encoding="utf-8") == written[0]
        with mariadb_admin.connect() as conn:
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {name}.plan_history")
                                ).scalar() == 1
    finally:
        with mariadb_admin.begin() as conn:
            conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)
def test_mariadb_connection_killed_mid_transaction(db_url, site_dir, mariadb_admin):
    """The server drops the connection between the run row and its slots: nothing is saved."""
    result, cfg = _result(site_dir)
    record = record_mod.record_from_result(result, cfg)
    with Store(db_url) as store:
        store.ensure_schema()
        killed = []

        def kill(conn, cursor, statement, *_args):
            if statement.startswith("INSERT INTO plan_slot") and not killed:
                thread = conn.connection.dbapi_connection.thread_id()
                with mariadb_admin.begin() as admin:
                    admin.execute(sa.text(f"KILL CONNECTION {int(thread)}"))
                killed.append(thread)

        sa.event.listen(store.engine, "before_cursor_execute", kill)
        with pytest.raises(StorageError) as err:
            store.save(record)
        sa.event.remove(store.engine, "before_cursor_execute", kill)
        assert killed
        assert "saving the plan failed" in str(err.value)
        assert "Lost connection" in str(err.value) or "server has gone away" in str(err.value)
        with store.engine.connect() as conn:  # pre-ping replaces the dead connection
            assert conn.execute(sa.text("SELECT COUNT(*) FROM plan_history")).scalar() == 0
            assert conn.execute(sa.text("SELECT COUNT(*) FROM plan_slot")).scalar() == 0
        assert store.save(record) == 1 or store.load().plan_id >= 1


def test_db_commands(db_url, site_dir):
    cfg_path = site_dir(config={"storage": {"url": db_url, "keep_days": 30}})
    runner = CliRunner()

    def cli(*args):
        res = runner.invoke(main, [*args, "--config", str(cfg_path)])
        assert "Traceback" not in res.output
        return res

    res = cli("db", "upgrade")
    head = schema.SCHEMA_REVISION
    assert res.exit_code == 0 and res.output.strip().endswith(f"schema none -> {head}"), \
        res.output
    res = cli("db", "downgrade", "0001")
    assert res.exit_code == 0 and f"{schema.SCHEMA_REVISION} -> 0001" in res.output
    res = cli("plan", "--now", NOW, "-q")  # upgrades again by itself
    assert res.exit_code == 0, res.output
    res = cli("db", "status")
    assert res.exit_code == 0 and f"schema {head}" in res.output
    assert "plan      1" in res.output
    res = cli("db", "prune")
    assert res.exit_code == 0
    assert res.output.strip() == ("pruned rows older than 30 days: plan_slot 0, plan_history 0, "
                                  "measurements 0, price_cache 0, forecast_cache 0")
    res = cli("db", "downgrade", "base")
    assert res.exit_code == 0 and "-> none" in res.output


def test_storage_config_keys(tmp_path):
    cfg = config_mod.from_mapping({"storage": {"url": "sqlite:///data/h.db"}}, tmp_path)
    assert cfg.storage.url == f"sqlite:///{tmp_path.resolve()}/data/h.db"
    assert (cfg.storage.required, cfg.storage.keep_days, cfg.report.path) == (True, 365, None)
    assert config_mod.from_mapping({"storage": {"url": "sqlite:////abs/h.db"}},
                                   tmp_path).storage.url == "sqlite:////abs/h.db"
    with pytest.raises(config_mod.ConfigError) as err:
        config_mod.from_mapping({"storage": {"url": "mysql+pymysql://u:pw@h/db"}})
    text = str(err.value)
    assert "storage.url: expected no password in the URL" in text
    assert "pw" not in text.replace("password", "")
    with pytest.raises(config_mod.ConfigError, match="storage.keep_days: expected a whole "
                                                     "number > 0"):
        config_mod.from_mapping({"storage": {"keep_days": 0}})
    with pytest.raises(config_mod.ConfigError, match="storage.url: expected sqlite:///FILE"):
        config_mod.from_mapping({"storage": {"url": "postgresql://h/db"}})
    keys = [row[0] for row in config_mod.explain()]
    assert {"storage.url", "storage.password", "storage.required", "storage.keep_days",
            "report.path", "report.enabled"} <= set(keys)


def test_config_hash_ignores_secrets_and_follows_settings(tmp_path):
    (tmp_path / "secrets.yaml").write_text("pw: one\n")
    (tmp_path / "config.yaml").write_text(
        "storage:\n  url: mysql+pymysql://u@h/db\n  password: !secret pw\n")
    first = record_mod.config_hash(config_mod.load(tmp_path / "config.yaml"))
    (tmp_path / "secrets.yaml").write_text("pw: two\n")
    assert record_mod.config_hash(config_mod.load(tmp_path / "config.yaml")) == first
    (tmp_path / "config.yaml").write_text(
        "storage:\n  url: mysql+pymysql://u@h/db\n  password: !secret pw\n"
        "battery:\n  capacity_kwh: 12\n")
    assert record_mod.config_hash(config_mod.load(tmp_path / "config.yaml")) != first
    with Store("mysql+pymysql://u@h/db", password="two", secrets={"two"}) as s:
        assert "two" not in s.safe_url and s.safe_url.startswith("mysql+pymysql://u:***@h/db")
        assert "two" not in str(s.error("x", RuntimeError("auth two failed")))


def test_price_outage_falls_back_to_cached_prices(db_url, site_dir, monkeypatch):
    from planner.core.errors import ProviderUnavailable
    from planner.providers.files import csv as csv_provider

    cfg_path = site_dir(config={"storage": {"url": db_url}})
    runner = CliRunner()
    res = runner.invoke(main, ["plan", "--config", str(cfg_path), "--now", NOW, "-q"])
    assert res.exit_code == 0, res.output

    real_fetch = csv_provider.CsvPrices.fetch

    def down(self, start, end):  # the site's price source is down; the cache path still reads
        if "helios-price-cache-" not in self.config.path:
            raise ProviderUnavailable("prices (csv)", "HTTP 503 from the price API")
        return real_fetch(self, start, end)

    monkeypatch.setattr(csv_provider.CsvPrices, "fetch", down)
    later = "2026-05-01T11:07:00Z"
    res = runner.invoke(main, ["plan", "--config", str(cfg_path), "--now", later, "-q"])
    assert res.exit_code == 0, res.output
    assert "warning: prices (csv): HTTP 503 from the price API; planning on cached prices" \
        in res.output
    with Store(db_url) as store:
        rec = store.load()
        assert rec.plan_id == 2
        assert rec.run["price_provider"] == "csv (cached)" and rec.run["inputs_degraded"]
        assert rec.run["inputs_age_s"] == pytest.approx(3600.0)  # fetched at 10:07Z
        first = store.load(1)
        common = rec.slots.index.intersection(first.slots.index)
        assert len(common) == len(rec.slots) == len(first.slots) - 4
        assert (rec.slots.loc[common, "spot_eur_per_kwh"]
                == first.slots.loc[common, "spot_eur_per_kwh"]).all()
        # the cache still says when the prices were really fetched
        cached = store.cached_prices("csv", common[0], common[-1])
        assert (cached["fetched_at"] == pd.Timestamp(NOW)).all()
    # a permanent error (bad token, missing file) is never masked by old prices
    monkeypatch.undo()
    (cfg_path.parent / "prices.csv").unlink()
    res = runner.invoke(main, ["plan", "--config", str(cfg_path), "--now", later, "-q"])
    assert res.exit_code == 3 and "file not found" in res.output


def test_nan_in_a_record_is_a_storage_error_naming_the_column(store, site_dir):
    """Defence in depth (issue 16): a non-finite number reaching Store.save is exit 6 with
    the column and slot, never a traceback; nothing is saved."""
    result, cfg = _result(site_dir)
    record = record_mod.record_from_result(result, cfg)
    slots = record.slots.copy()
    slots.iloc[2, slots.columns.get_loc("soc_kwh")] = float("nan")
    with pytest.raises(StorageError, match=r"plan_slot.soc_kwh is nan in the slot starting "
                                           r"2026-05-01T10:30Z \(not a finite number\)"):
        store.save(rows_mod.RunRecord(record.run, slots))
    run = dict(record.run, net_cost_eur=float("inf"))
    with pytest.raises(StorageError, match="plan_history.net_cost_eur is inf"):
        store.save(rows_mod.RunRecord(run, record.slots))
    assert store.plan_ids() == []
