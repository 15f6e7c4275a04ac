"""The executor's config section: defaults from the shared sections, keyed errors, JSON."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, make_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, Optional

import pytest
import yaml

from executor import config
from executor.errors import ConfigError


def _load(tmp_path, doc, name="config.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc))
    return config.load(str(path))


def test_defaults_come_from_the_shared_sections(tmp_path):
    cfg = _load(tmp_path, {
        "battery": {"capacity_kwh": 13.5, "max_charge_kw": 3.2, "min_soc_pct": 15},
        "grid": {"max_import_kw": 11, "export_enabled": False},
        "planning": {"plan_valid_s": 1800},
        "output": {"schedule_path": "out/plan.json"},
        "storage": {"url": "sqlite:///h.db"},
    })
    lim = cfg.limits
    assert (lim.capacity_kwh, lim.max_charge_w, lim.min_soc_pct) == (13.5, 3200.0, 15.0)
    assert (lim.max_import_w, lim.export_enabled, lim.max_plan_age_s) == (11000.0, False, 1800)
    assert cfg.plan.path == str(tmp_path / "out" / "plan.json")
    assert cfg.telemetry.sql_url == f"sqlite:///{tmp_path}/h.db"
    assert cfg.driver_type == "dry_run" and cfg.interval_s == 10
    assert cfg.pause_path == str(tmp_path / "helios-executor.pause.json")


def test_executor_keys_override_and_json_works(tmp_path):
    cfg = _load(tmp_path, {
        "battery": {"min_soc_pct": 15},
        "executor": {"interval_s": 5, "limits": {"min_soc_pct": 20, "max_charge_w": 1000},
                     "driver": {"type": "victron_modbus", "host": "gx.local"},
                     "correction": {"soc_gain_w_per_pct": 0},
                     "telemetry": {"sql_url": None}, "state_dir": "/data/helios"}},
        name="config.json")
    assert cfg.limits.min_soc_pct == 20 and cfg.limits.max_charge_w == 1000
    assert cfg.limits.interval_s == 5 and cfg.limits.soc_gain_w_per_pct == 0
    assert cfg.driver_type == "victron_modbus" and cfg.driver_options == {"host": "gx.local"}
    assert cfg.telemetry.sql_url is None
    assert cfg.buffer_path == "/data/helios/helios-measurements.jsonl"


@pytest.mark.parametrize(("executor", "message"), [
    ({"interval_s": "ten"},
     "executor.interval_s: expected a number >= 1 and <= 3600 [s], got 'ten' (str)"),
    ({"interval_s": 0.5},
     "executor.interval_s: expected a number >= 1 and <= 3600 [s], got 0.5 (float)"),
    ({"bogus": 1}, "executor.bogus: expected one of the known keys"),
    ({"driver": {"type": "fronius"}}, "executor.driver.type: expected one of dry_run, marstek, "
                                      "opendtu, simulated, victron_dbus, victron_modbus, got "
                                      "'fronius'"),
    ({"limits": {"min_soc_pct": 120}},
     "executor.limits.min_soc_pct: expected a number >= 0 and <= 100 [%], got 120 (int)"),
    ({"limits": {"min_soc_pct": 60, "max_soc_pct": 50}},
     "executor.limits.min_soc_pct: expected a value <= max_soc_pct (50), got 60.0"),
    ({"limits": {"export_enabled": "no"}}, "executor.limits.export_enabled: expected true or "
                                           "false, got 'no'"),
    ({"plan": {"source": "http"}}, "executor.plan.url: expected a URL for plan.source http"),
    ({"plan": {"source": "ftp"}}, "executor.plan.source: expected one of file, sql, http"),
    ({"telemetry": {"interval_s": -1}}, "executor.telemetry.interval_s: expected a number > 0"),
    ([], "executor: expected a mapping, got a list"),
])
def test_errors_name_the_key(tmp_path, executor, message):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, {"executor": executor})
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_all_problems_reported_together(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, {"executor": {"interval_s": "x", "limits": {"max_import_w": -1},
                                      "correction": {"nope": 1}}})
    keys = [p.key_path for p in info.value.problems]
    assert keys == ["executor.interval_s", "executor.limits.max_import_w",
                    "executor.correction.nope"]


def test_driver_options_are_validated_by_the_driver(tmp_path):
    from executor import drivers

    with pytest.raises(ConfigError, match=r"executor.driver.soc_pct: expected a number >= 0 "
                                          r"and <= 100 \[%\], got 150 \(int\)"):
        drivers.create("simulated", {"soc_pct": 150}, clock=lambda: None)
    with pytest.raises(ConfigError,
                       match=r"executor.driver.colour: expected one of the known keys"):
        drivers.create("dry_run", {"colour": "red"}, clock=lambda: None)


def test_secret_in_storage_password(tmp_path):
    (tmp_path / "secrets.yaml").write_text("dbpw: s3cr/t\n")
    (tmp_path / "config.yaml").write_text(
        "storage:\n  url: mysql+pymysql://helios@db/helios\n  password: !secret dbpw\n")
    cfg = config.load(str(tmp_path / "config.yaml"))
    assert cfg.telemetry.sql_url == "mysql+pymysql://helios:s3cr%2Ft@db/helios"


def test_repository_config_is_valid():
    from pathlib import Path

    cfg = config.load(str(Path(__file__).parents[2] / "config.yaml"))
    assert cfg.interval_s > 0


def test_state_dir_follows_systemd_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/helios")
    cfg = _load(tmp_path, {})
    assert cfg.pause_path == "/var/lib/helios/helios-executor.pause.json"
    assert cfg.buffer_path == "/var/lib/helios/helios-measurements.jsonl"
    assert _load(tmp_path, {"executor": {"state_dir": "st"}}).state_dir == str(tmp_path / "st")


# --------------------------------------------------------------------------------------------
# every option's type
#
# One row per option the code declares: the ``executor:`` sections of executor.config and
# every built-in driver's ``Config``. test_every_declared_option_has_a_row fails when an
# option is added without a row here (or a row outlives its option), so each new option gets
# the accept / reject tests below.


class Row(NamedTuple):
    kind: type  # bool, int, float or str
    valid: Any  # accepted, not the default (so reading it back proves it was read)
    read: Callable[[config.ExecutorConfig], Any] | None = None  # where it ends up (or a tuple)
    nullable: bool = False  # null is accepted too


OPTIONS = {
    "executor.interval_s": Row(float, 5, lambda c: (c.interval_s, c.limits.interval_s)),
    "executor.state_dir": Row(str, "/data/helios", lambda c: c.state_dir),
    "executor.log_level": Row(str, "debug", lambda c: c.log_level),
    "executor.pause_file": Row(str, "p.json", lambda c: os.path.basename(c.pause_path)),
    # null: helios-overrides.json beside the plan file (read back as None)
    "executor.overrides_path": Row(
        str, "/run/ovr.json", lambda c: None if c.overrides_path == os.path.join(
            os.path.dirname(c.plan.path), "helios-overrides.json") else c.overrides_path,
        nullable=True),
    "executor.driver.type": Row(str, "simulated", lambda c: c.driver_type),
    "executor.plan.source": Row(str, "sql", lambda c: c.plan.source),
    "executor.plan.path": Row(str, "/srv/plan.json", lambda c: c.plan.path),
    "executor.plan.url": Row(str, "http://gx/schedule.json", lambda c: c.plan.url, True),
    "executor.plan.max_age_s": Row(float, 600,
                                   lambda c: (c.plan.max_age_s, c.limits.max_plan_age_s)),
    "executor.plan.timeout_s": Row(float, 3, lambda c: c.plan.timeout_s),
    "executor.limits.min_soc_pct": Row(float, 20, lambda c: c.limits.min_soc_pct),
    "executor.limits.max_soc_pct": Row(float, 90.5, lambda c: c.limits.max_soc_pct),
    "executor.limits.max_charge_w": Row(float, 3000, lambda c: c.limits.max_charge_w),
    "executor.limits.max_discharge_w": Row(float, 3500, lambda c: c.limits.max_discharge_w),
    "executor.limits.max_import_w": Row(float, 9000, lambda c: c.limits.max_import_w),
    "executor.limits.max_export_w": Row(float, 4000, lambda c: c.limits.max_export_w),
    "executor.limits.export_enabled": Row(bool, False, lambda c: c.limits.export_enabled),
    "executor.limits.capacity_kwh": Row(float, 13, lambda c: c.limits.capacity_kwh),
    "executor.limits.charge_efficiency": Row(float, 1, lambda c: c.limits.charge_efficiency),
    "executor.limits.discharge_efficiency": Row(float, 0.9,
                                                lambda c: c.limits.discharge_efficiency),
    "executor.limits.max_measurement_age_s": Row(float, 30,
                                                 lambda c: c.limits.max_measurement_age_s),
    "executor.correction.soc_gain_w_per_pct": Row(float, 100,
                                                  lambda c: c.limits.soc_gain_w_per_pct),
    "executor.correction.soc_deadband_pct": Row(float, 2, lambda c: c.limits.soc_deadband_pct),
    "executor.correction.control": Row(str, "grid", lambda c: c.limits.control),
    "executor.correction.guard_forecast_error": Row(bool, True,
                                                    lambda c: c.limits.guard_forecast_error),
    "executor.telemetry.enabled": Row(bool, False, lambda c: c.telemetry.enabled),
    "executor.telemetry.interval_s": Row(float, 30, lambda c: c.telemetry.interval_s),
    "executor.telemetry.sql_url": Row(str, "sqlite:////tmp/t.db", lambda c: c.telemetry.sql_url,
                                      True),
    "executor.telemetry.buffer_path": Row(str, "b.jsonl", lambda c: c.telemetry.buffer_path),
}

#: ``executor.driver.<option>`` of each driver (read back from ``driver.config``)
DRIVER_OPTIONS = {
    "simulated": {"soc_pct": Row(float, 20), "capacity_kwh": Row(float, 7),
                  "max_charge_w": Row(float, 2000), "max_discharge_w": Row(float, 2500),
                  "min_soc_pct": Row(float, 5)},
    "dry_run": {"soc_pct": Row(float, 80)},
    "victron_dbus": {"mode": Row(str, "dess"), "bus": Row(str, "session"),
                     "library": Row(str, "jeepney"),
                     "battery_service": Row(str, "com.victronenergy.battery.ttyO0", nullable=True),
                     "timeout_s": Row(float, 1), "backoff_max_s": Row(float, 30),
                     "dess_window_s": Row(float, 50), "max_charge_w": Row(float, 4000),
                     "max_discharge_w": Row(float, 4500), "max_import_w": Row(float, 9000),
                     "max_export_w": Row(float, 3000)},
    "victron_modbus": {"host": Row(str, "10.0.0.2"), "port": Row(int, 1502),
                       "unit_id": Row(int, 227), "battery_unit_id": Row(int, 225, nullable=True),
                       "mode": Row(str, "setpoint"), "timeout_s": Row(float, 1),
                       "backoff_max_s": Row(float, 30), "dess_window_s": Row(float, 50),
                       "max_charge_w": Row(float, 4000), "max_discharge_w": Row(float, 4500),
                       "max_import_w": Row(float, 9000), "max_export_w": Row(float, 3000)},
    # issue 15 drivers: scalar options here; batteries, meter, soc, inverters (list / nested
    # sections) are tested in test_marstek.py, test_opendtu.py and test_meters.py
    "marstek": {"port": Row(int, 30001), "max_charge_w": Row(float, 800),
                "max_discharge_w": Row(float, 800), "capacity_wh": Row(float, 2560),
                "timeout_s": Row(float, 1), "retries": Row(int, 3),
                "request_gap_s": Row(float, 2), "cd_time_s": Row(int, 300),
                "refresh_s": Row(float, 30), "deadband_w": Row(float, 5),
                "status_every_s": Row(float, 30), "release_mode": Row(str, "AI")},
    "opendtu": {"url": Row(str, "http://10.0.0.9"), "username": Row(str, "root"),
                "password": Row(str, "pw", nullable=True), "feed_in_cap_w": Row(float, 600),
                "other_pv_w": Row(float, 100), "max_discharge_w": Row(float, 700, nullable=True),
                "inverter_max_w": Row(float, 600), "min_limit_w": Row(float, 10),
                "rise_samples": Row(int, 3), "deadband_w": Row(float, 5),
                "refresh_s": Row(float, 60), "max_temp_c": Row(float, 60),
                "temp_hysteresis_c": Row(float, 5), "rotate_s": Row(float, 3600),
                "min_soc_pct": Row(float, 15, nullable=True), "resume_above_pct": Row(float, 3),
                "feed_above_soc_pct": Row(float, 95, nullable=True),
                "seasonal_floor": Row(bool, True), "seasonal_margin_pct": Row(float, 30),
                "seasonal_max_pct": Row(float, 40), "seasonal_fall_pct_per_day": Row(float, 2),
                "firmware": Row(str, "old"), "release": Row(str, "off"),
                "timeout_s": Row(float, 1), "publish_dbus": Row(bool, True),
                "dbus_service": Row(str, "dcload"), "dbus_bus": Row(str, "session"),
                "dbus_device_instance": Row(int, 40)},
}
#: required driver options, given while another option is tested
DRIVER_REQUIRED = {"victron_modbus": {"host": "gx.local"},
                   "marstek": {"batteries": ["127.0.0.1"],
                               "meter": {"type": "homewizard", "url": "http://127.0.0.1"}},
                   "opendtu": {"url": "http://127.0.0.1",
                               "meter": {"type": "shelly", "url": "http://127.0.0.1"}}}
#: options that are not scalars (lists, nested sections): no Row, tested with their driver
NON_SCALAR = {"marstek": {"batteries", "meter", "plan_names"},
              "opendtu": {"meter", "soc", "inverters"}, "simulated": {"batteries"}}

#: values of the wrong type for each kind (null is added for options that are not nullable)
WRONG = {
    bool: [3, 0, 1, 1.0, "true", "yes", "", [True], {"on": True}],
    float: [True, False, "10", "", float("nan"), float("inf"), [1], {"w": 1}],
    int: [True, False, 2.5, "5", float("nan"), [1], {"n": 1}],
    str: [3, 2.5, True, False, "", ["a"], {"a": "b"}],
}


def _clock():
    return datetime(2025, 6, 1, 12, tzinfo=timezone.utc)


def _doc(key: str, value: Any) -> dict:
    """``{"executor": {"limits": {"min_soc_pct": value}}}`` for ``executor.limits.min_soc_pct``."""
    doc: dict = {}
    *path, last = key.split(".")
    node = doc
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value
    return doc


def _declared() -> dict:
    """Every ``executor:`` option executor.config declares: dotted key → dataclass field."""
    sections = {"executor": config.ExecutorSection, "executor.driver": config.DriverChoice,
                **{f"executor.{name}": cls for name, cls in config.SECTIONS.items()}}
    return {f"{prefix}.{f.name}": f for prefix, cls in sections.items() for f in fields(cls)}


def _driver_class(name: str) -> type:
    from executor import drivers

    try:
        return drivers.get(name)
    except ConfigError as exc:  # its library is not installed here
        pytest.skip(str(exc))


def _driver(tmp_path, name: str, options: dict):
    """Validate like helios-executor does: from_mapping, then drivers.create (as __main__)."""
    from executor import drivers

    _driver_class(name)
    cfg = config.from_mapping(
        {"executor": {"driver": {"type": name, **DRIVER_REQUIRED.get(name, {}), **options}}},
        str(tmp_path))
    return drivers.create(cfg.driver_type, cfg.driver_options, clock=_clock, limits=cfg.limits)


def _accepted(row: Row) -> list:
    values = [True, False] if row.kind is bool else [row.valid]
    return values + [None] * row.nullable


def _rejected(row: Row) -> list:
    return WRONG[row.kind] + [None] * (not row.nullable)


def _assert_read_back(got: Any, value: Any, kind: type, key: str) -> None:
    want = None if value is None else kind(value)
    for one in got if isinstance(got, tuple) else (got,):
        assert one == want, f"{key}: {value!r} read back as {one!r}"
        assert type(one) is type(want), f"{key}: {value!r} read back as {type(one).__name__}"


def _shown(value: Any) -> str:
    """How a wrong value is shown: its repr and type (the same text as ``helios``)."""
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list"}.get(type(value),
                                                   f"{value!r} ({type(value).__name__})")


def _bounds(meta: Any) -> str:
    parts = [f"{sym} {meta[k]:g}" for k, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"),
                                                ("le", "<=")) if meta.get(k) is not None]
    return " " + " and ".join(parts) if parts else ""


def _assert_type_error(exc: ConfigError, key: str, f: Any, kind: type, value: Any) -> None:
    """Exactly one problem, naming ``key``, the expected type and the value found."""
    assert len(exc.problems) == 1, exc
    problem = exc.problems[0]
    if f.metadata["choices"]:
        expected = f"one of {', '.join(f.metadata['choices'])}"
    else:
        unit = _bounds(f.metadata) + (f" [{f.metadata['unit']}]" if f.metadata["unit"] else "")
        expected = {bool: "true or false", float: "a number" + unit,
                    int: "a whole number" + unit, str: "a non-empty string"}[kind]
    assert str(problem) == f"{key}: expected {expected}, got {_shown(value)}"
    assert f"  {key}: expected {expected}, got " in str(exc)


def test_every_declared_option_has_a_row():
    declared = _declared()
    assert sorted(declared) == sorted(OPTIONS), "add a Row for each new option (and its test)"
    for key, f in declared.items():
        row = OPTIONS[key]
        assert config.key_type(f) == (row.kind, row.nullable), key


@pytest.mark.parametrize("name", sorted(DRIVER_OPTIONS))
def test_every_driver_option_has_a_row(name):
    from executor import drivers

    assert sorted(DRIVER_OPTIONS) == sorted(drivers.available())
    declared = {f.name: f for f in fields(_driver_class(name).Config)
                if f.name not in NON_SCALAR.get(name, ())}
    assert sorted(declared) == sorted(DRIVER_OPTIONS[name]), f"add a Row for each {name} option"
    for key, f in declared.items():
        row = DRIVER_OPTIONS[name][key]
        assert config.key_type(f) == (row.kind, row.nullable), f"{name}.{key}"


def test_every_schema_class_is_a_section():
    """A new section in executor.config must be in SECTIONS (so in _declared and the rows)."""
    schema = {cls for cls in vars(config).values()
              if isinstance(cls, type) and is_dataclass(cls)
              and any("kind" in f.metadata for f in fields(cls))}
    assert schema == {config.ExecutorSection, config.DriverChoice, *config.SECTIONS.values()}


@pytest.mark.parametrize("section", sorted(config.SECTIONS))
def test_every_section_is_validated_under_its_key(section):
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"executor": {section: {"nope": 1}}})
    names = ", ".join(sorted(f.name for f in fields(config.SECTIONS[section])))
    assert [str(p) for p in info.value.problems] == [
        f"executor.{section}.nope: expected one of the known keys {names}, got an unknown key"]


def test_unknown_top_level_key_lists_every_key():
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"executor": {"nope": 1}})
    assert str(info.value.problems[0]) == (
        "executor.nope: expected one of the known keys correction, driver, interval_s, limits, "
        "log_level, overrides_path, pause_file, plan, state_dir, telemetry, got an unknown key")


@pytest.mark.parametrize("key", sorted(OPTIONS))
def test_option_accepts_its_type(tmp_path, key):
    row = OPTIONS[key]
    for value in _accepted(row):
        cfg = config.from_mapping(_doc(key, value), str(tmp_path))
        _assert_read_back(row.read(cfg), value, row.kind, key)


@pytest.mark.parametrize("key", sorted(OPTIONS))
def test_option_rejects_other_types(tmp_path, key):
    row, f = OPTIONS[key], _declared()[key]
    for value in _rejected(row):
        with pytest.raises(ConfigError) as info:
            config.from_mapping(_doc(key, value), str(tmp_path))
        _assert_type_error(info.value, key, f, row.kind, value)


@pytest.mark.parametrize(("name", "option"),
                         [(n, o) for n, opts in sorted(DRIVER_OPTIONS.items()) for o in opts])
def test_driver_option_accepts_its_type(tmp_path, name, option):
    row = DRIVER_OPTIONS[name][option]
    for value in _accepted(row):
        driver = _driver(tmp_path, name, {option: value})
        _assert_read_back(getattr(driver.config, option), value, row.kind,
                          f"executor.driver.{option} ({name})")


@pytest.mark.parametrize(("name", "option"),
                         [(n, o) for n, opts in sorted(DRIVER_OPTIONS.items()) for o in opts])
def test_driver_option_rejects_other_types(tmp_path, name, option):
    row = DRIVER_OPTIONS[name][option]
    f = {f.name: f for f in fields(_driver_class(name).Config)}[option]
    for value in _rejected(row):
        with pytest.raises(ConfigError) as info:
            _driver(tmp_path, name, {option: value})
        _assert_type_error(info.value, f"executor.driver.{option}", f, row.kind, value)


@pytest.mark.parametrize(("name", "text"), [
    ("config.yaml", "executor:\n  correction:\n    guard_forecast_error: true\n"),
    ("config.json", '{"executor": {"correction": {"guard_forecast_error": true}}}'),
])
def test_guard_forecast_error_true_is_accepted(tmp_path, name, text):
    """Issue 10 item 6: it was declared without kind=bool, so validated as a number."""
    (tmp_path / name).write_text(text)
    assert config.load(str(tmp_path / name)).limits.guard_forecast_error is True


def test_documented_example_is_valid(tmp_path):
    """The ``executor:`` example in docs/executor.md loads, its driver options too."""
    from executor import drivers

    doc = (Path(__file__).parents[2] / "docs" / "executor.md").read_text()
    section = doc.split("## Configuration", 1)[1]
    example = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])
    cfg = config.from_mapping(example, str(tmp_path))
    assert cfg.limits.guard_forecast_error is False and cfg.limits.export_enabled is True
    _driver_class(cfg.driver_type)
    drivers.create(cfg.driver_type, cfg.driver_options, clock=_clock, limits=cfg.limits)


# --- the declaration mechanism: the type is the annotation --------------------------------


@dataclass(frozen=True)
class _Declared:
    flag: bool = config.opt(False, "declared like guard_forecast_error was", "")
    count: int | None = config.opt(None, "whole or null")
    name: Optional[str] = config.opt(None, "typing.Optional works too")  # noqa: UP045


def test_the_type_comes_from_the_annotation():
    problems: list = []
    built = config.build(_Declared, {"flag": True, "count": 3, "name": "x"}, "t", problems)
    assert problems == [] and built == _Declared(True, 3, "x")
    assert config.build(_Declared, {"count": None}, "t", problems) == _Declared()
    config.build(_Declared, {"flag": 1, "count": True, "name": 2}, "t", problems)
    assert [str(p) for p in problems] == ["t.flag: expected true or false, got 1 (int)",
                                          "t.count: expected a whole number, got True (bool)",
                                          "t.name: expected a non-empty string, got 2 (int)"]


def test_real_type_annotations_work_too():
    cls = make_dataclass("C", [("on", bool, config.opt(True)), ("n", float, config.opt(1.0))])
    problems: list = []
    assert config.build(cls, {"on": False, "n": 2}, "t", problems) == cls(False, 2.0)
    assert problems == []


@pytest.mark.parametrize(("annotation", "declaration", "message"), [
    ("bool", config.opt(False, kind=float), "kind=float but annotated 'bool'"),
    ("int | None", config.opt(None, optional=False), "optional=False but annotated"),
    ("str", config.opt("a", optional=True), "optional=True but annotated 'str'"),
    ("set[int]", config.opt(None), "unsupported annotation 'set[int]'"),
    ("tuple[int, int]", config.opt(1), "unsupported annotation"),
])
def test_a_declaration_that_contradicts_its_annotation_is_a_programming_error(
        annotation, declaration, message):
    cls = make_dataclass("C", [("x", annotation, declaration)])
    with pytest.raises(TypeError, match=re.escape(message)):
        config.build(cls, {}, "t", [])


def test_dess_window_must_outlive_the_tick():
    doc = {"executor": {"interval_s": 10,
                        "driver": {"type": "victron_dbus", "mode": "dess", "dess_window_s": 10}}}
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(doc)
    assert "executor.driver.dess_window_s: expected a number > executor.interval_s (10)" \
        in str(err.value)
    doc["executor"]["driver"]["dess_window_s"] = 30
    assert config.from_mapping(doc).driver_options["dess_window_s"] == 30


def test_driver_type_comes_from_the_registry_at_validation_time():
    from executor import drivers

    with pytest.raises(ConfigError, match="executor.driver.type: expected one of dry_run, "):
        config.from_mapping({"executor": {"driver": {"type": "toy_inverter"}}})

    @drivers.register("toy_inverter")
    class Toy:
        pass

    try:
        cfg = config.from_mapping({"executor": {"driver": {"type": "toy_inverter", "x": 1}}})
        assert (cfg.driver_type, cfg.driver_options) == ("toy_inverter", {"x": 1})
    finally:
        drivers._registry.entries.pop("toy_inverter")


def test_secrets_inside_the_executor_section_are_resolved(tmp_path):
    """``plan.url: !secret`` used to reach the type check unresolved (never valid)."""
    (tmp_path / "secrets.yaml").write_text("plan_url: http://gx.local/schedule.json\n")
    (tmp_path / "config.yaml").write_text(
        "prices:\n  type: tibber\n  token: !secret not_for_the_executor\n"
        "executor:\n  plan:\n    source: http\n    url: !secret plan_url\n")
    cfg = config.load(str(tmp_path / "config.yaml"))
    assert cfg.plan.url == "http://gx.local/schedule.json"
    (tmp_path / "config.yaml").write_text("executor:\n  plan:\n    url: !secret nope\n")
    with pytest.raises(ConfigError) as err:
        config.load(str(tmp_path / "config.yaml"))
    assert [p.key_path for p in err.value.problems] == ["executor.plan.url"]
    assert "expected secret 'nope' in" in str(err.value)


def test_explain_lists_the_executor_keys():
    rows = {r[0]: r for r in config.explain()}
    assert rows["executor.limits.max_charge_w"][1:3] == ("5000.0", "W")
    assert "executor.driver.type" in rows and "executor.correction.guard_forecast_error" in rows
    assert all(r[3] for r in rows.values())
