"""The executor's config section: defaults from the shared sections, keyed errors, JSON."""

from __future__ import annotations

import json

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
    ({"interval_s": "ten"}, "executor.interval_s: expected a number [s], got 'ten'"),
    ({"interval_s": 0.5}, "executor.interval_s: expected a number >= 1 [s], got 0.5"),
    ({"bogus": 1}, "executor.bogus: expected one of the keys"),
    ({"driver": {"type": "fronius"}}, "executor.driver.type: expected one of simulated, "
                                      "dry_run, victron_dbus, victron_modbus, got 'fronius'"),
    ({"limits": {"min_soc_pct": 120}}, "executor.limits.min_soc_pct: expected a number <= 100"),
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

    with pytest.raises(ConfigError, match=r"executor.driver.soc_pct: expected a number <= 100"):
        drivers.create("simulated", {"soc_pct": 150}, clock=lambda: None)
    with pytest.raises(ConfigError, match=r"executor.driver.colour: expected one of the keys"):
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
