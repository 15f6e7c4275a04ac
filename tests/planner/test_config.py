"""Config validation: every problem is reported, each naming its dotted key path."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from executor import config as executor_config
from executor import configspec
from executor.errors import ConfigError as ExecutorConfigError
from planner import config
from planner.core import siteconfig
from planner.core.errors import ConfigError
from planner.core.tariff import compile_tariff
from planner.providers import static

# (config mapping, key path that must be named, fragment of "expected ...", fragment of "got")
BAD_CONFIGS = [
    ({"battery": {"capacity_kwh": "ten"}}, "battery.capacity_kwh", "a number > 0 [kWh]", "'ten'"),
    ({"battery": {"capacity_kwh": -5}}, "battery.capacity_kwh", "> 0", "-5"),
    ({"battery": {"capacity_kwh": 0}}, "battery.capacity_kwh", "> 0", "0"),
    ({"battery": {"capacitty_kwh": 10}}, "battery.capacitty_kwh", "did you mean 'capacity_kwh'",
     "unknown key"),
    ({"bogus": 1}, "bogus", "known keys", "unknown key"),
    ({"battery": {"min_soc_pct": 80, "max_soc_pct": 20}}, "battery.min_soc_pct",
     "<= battery.max_soc_pct", "80"),
    ({"battery": {"min_soc_pct": 120}}, "battery.min_soc_pct", "<= 100", "120"),
    ({"battery": {"reserve_soc_pct": 5, "min_soc_pct": 10}}, "battery.reserve_soc_pct",
     "between battery.min_soc_pct", "5"),
    ({"battery": {"final_soc_pct": 100, "max_soc_pct": 90}}, "battery.final_soc_pct",
     "between", "100"),
    ({"battery": {"charge_efficiency": 1.2}}, "battery.charge_efficiency", "<= 1", "1.2"),
    ({"battery": {"cycle_cost_eur_per_kwh": 0.02, "cost_eur": 5000, "cycle_life": 6000}},
     "battery.cycle_cost_eur_per_kwh", "not both", "both"),
    ({"battery": {"cost_eur": 5000}}, "battery.cycle_life", "because battery.cost_eur is set",
     "nothing"),
    ({"battery": {"cycle_life": 5000.5}}, "battery.cycle_life", "a whole number", "5000.5"),
    ({"planning": {"slot_s": 700}}, "planning.slot_s", "divides one hour", "700"),
    ({"planning": {"slot_s": "15min"}}, "planning.slot_s", "a whole number", "'15min'"),
    ({"planning": {"recalc_interval_s": 200000}}, "planning.recalc_interval_s",
     "<= the horizon", "200000"),
    ({"planning": {"horizon_h": 0.1}}, "planning.horizon_h", "at least one slot", "0.1"),
    ({"planning": {"plan_valid_s": 60}}, "planning.plan_valid_s",
     ">= planning.recalc_interval_s", "60"),
    ({"planning": {"solver": "gurobi"}}, "planning.solver", "one of highs, clarabel, ecos",
     "'gurobi'"),
    ({"grid": {"export_enabled": "yes"}}, "grid.export_enabled", "true or false", "'yes'"),
    ({"grid": {"max_import_kw": None}}, "grid.max_import_kw", "a number", "null"),
    ({"site": {"timezone": "Mars/Olympus"}}, "site.timezone", "IANA time zone", "Mars/Olympus"),
    ({"site": {"latitude": 123}}, "site.latitude", "<= 90", "123"),
    ({"site": "Berlin"}, "site", "a mapping of keys", "'Berlin'"),
    ({"tariff": {"buy": "__import__('os').system('x')"}}, "tariff.buy", "a formula in 'price'",
     "only min, max and abs may be called"),
    ({"tariff": {"buy": "price ** 2"}}, "tariff.buy", "a formula", "Pow is not allowed"),
    ({"tariff": {"sell": "price / 0"}}, "tariff.sell", "a formula", "finite"),
    ({"tariff": {"buy": "spot * 1.2"}}, "tariff.buy", "a formula", "unknown name 'spot'"),
    ({"tariff": {"buy": "(price * 1.2"}}, "tariff.buy", "a formula", "syntax error"),
    ({"tariff": {"buy": {"multiplier": 1, "vat": 19}}}, "tariff.buy.vat", "known keys",
     "unknown key"),
    ({"tariff": {"sell": 5}}, "tariff.sell", "a formula string or a mapping", "5 (int)"),
    ({"prices": {"type": "tibbber"}}, "prices.type", "one of csv, demo", "'tibbber'"),
    ({"prices": {"type": "csv"}}, "prices.path", "a value", "nothing"),
    ({"prices": {"type": "csv", "path": "p.csv", "colum": "x"}}, "prices.colum",
     "did you mean 'column'", "unknown key"),
    ({"state": {"type": "static", "soc_pct": 150}}, "state.soc_pct", "<= 100", "150"),
    ({"load": {"type": "constant", "load_kw": -1}}, "load.load_kw", ">= 0", "-1"),
]


@pytest.mark.parametrize(("doc", "key", "expected", "got"), BAD_CONFIGS,
                         ids=[c[1] + ":" + c[3][:20] for c in BAD_CONFIGS])
def test_bad_config_names_key_expected_and_got(doc, key, expected, got):
    with pytest.raises(ConfigError) as info:
        config.from_mapping(doc)
    lines = [str(p) for p in info.value.problems]
    match = [line for line in lines if line.startswith(f"{key}: ")]
    assert match, f"no problem names {key}: {lines}"
    assert expected in match[0], match[0]
    assert got in match[0], match[0]
    assert info.value.exit_code == 2


def test_every_problem_is_reported_at_once():
    doc = {"battery": {"capacity_kwh": "x", "max_charge_kw": -1, "foo": 1},
           "grid": {"export_enabled": 3}, "planning": {"slot_s": 7}}
    with pytest.raises(ConfigError) as info:
        config.from_mapping(doc)
    keys = sorted(p.key_path for p in info.value.problems)
    assert keys == ["battery.capacity_kwh", "battery.foo", "battery.max_charge_kw",
                    "grid.export_enabled", "planning.slot_s"]
    assert str(info.value).count("\n") == 5  # header + one line per problem


def test_defaults_are_valid_and_documented():
    cfg = config.default()
    assert cfg.planning.slot_s == 900 and cfg.planning.horizon_h == 48
    assert cfg.planning.recalc_interval_s == 300
    rows = config.explain()
    keys = {r[0] for r in rows}
    assert {"battery.capacity_kwh", "planning.slot_s", "grid.export_enabled",
            "tariff.buy", "site.timezone"} <= keys
    assert all(r[3] for r in rows), "every key has a help text"


REPO_CONFIG = Path(__file__).parents[2] / "config.yaml"
#: config.yaml's sections with built-in defaults (the provider sections are required keys)
SECTIONS = {"site": config.SiteConfig, "planning": config.PlanningConfig,
            "battery": config.BatteryConfig, "grid": config.GridConfig,
            "tariff": config.TariffConfig, "output": config.OutputConfig,
            "storage": config.StorageConfig, "report": config.ReportConfig}


def test_repo_config_yaml_is_valid():
    cfg = config.load(REPO_CONFIG, require_providers=True)
    assert cfg.battery.reserve_soc_pct is None  # commented out: an example, not the default
    assert cfg.state.type == "static"


def _default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def test_repo_config_yaml_shows_the_built_in_defaults():
    """issue 16: "the value shown is the default" must be true of every key config.yaml sets,
    and every key of these sections is in the file (set, or commented out as an example)."""
    text = REPO_CONFIG.read_text()
    doc = yaml.safe_load(text)
    prices = np.array([-0.2, 0.0, 0.1, 0.35])
    for name, cls in SECTIONS.items():
        shown = doc.get(name) or {}
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            default = _default(f)
            if f.name in shown:
                value = shown[f.name]
                if name == "tariff":  # a formula or parts: compare what they compute
                    assert np.array_equal(compile_tariff(value)(prices),
                                          compile_tariff(default)(prices)), f.name
                elif dataclasses.is_dataclass(default):  # a nested section (planning.s_index)
                    assert value == dataclasses.asdict(default), f"config.yaml {name}.{f.name}"
                else:
                    assert value == default, f"config.yaml {name}.{f.name}: shows {value!r}, " \
                                             f"the built-in default is {default!r}"
            else:
                assert re.search(rf"^\s*#\s*{f.name}:", text, re.M), \
                    f"config.yaml does not mention {name}.{f.name}"
    assert doc["state"]["soc_pct"] == _default(
        next(f for f in dataclasses.fields(static.StaticState.Config) if f.name == "soc_pct"))
    # the header says so, and the provider sections say they are required
    assert "the value shown is the" in text and "*required*" in text


def test_repo_config_yaml_mqtt_example_shows_the_defaults():
    """The commented-out mqtt: block lists every key, each with its built-in default."""
    text = REPO_CONFIG.read_text()
    block = text.split("# mqtt:", 1)[1].split("\n\n", 1)[0]
    shown = {}
    for line in block.splitlines()[1:]:
        m = re.match(r"^\s*#\s(\w+):\s*(\S.*?)\s{2,}#", line)
        if m:
            shown[m.group(1)] = m.group(2)
    fields = {f.name: _default(f) for f in dataclasses.fields(config.MqttConfig)}
    assert set(shown) == set(fields)
    for name, default in fields.items():
        if default is not None:
            assert yaml.safe_load(shown[name]) == default, name


def test_wear_cost_derived_from_price_and_cycle_life():
    cfg = config.from_mapping({"battery": {"capacity_kwh": 10, "cost_eur": 6000,
                                           "cycle_life": 6000}})
    assert cfg.battery.wear_cost_eur_per_kwh == pytest.approx(6000 / (2 * 6000 * 10))
    assert config.default().battery.wear_cost_eur_per_kwh == 0.0


def test_secret_indirection_and_redaction(tmp_path):
    (tmp_path / "secrets.yaml").write_text("csv_file: prices-secret.csv\n")
    (tmp_path / "config.yaml").write_text("prices:\n  type: csv\n  path: !secret csv_file\n")
    cfg = config.load(tmp_path / "config.yaml")
    assert cfg.prices.options.path == str(tmp_path / "prices-secret.csv")
    assert "prices-secret.csv" in cfg.secret_values


def test_missing_secret_names_key_and_never_prints_other_secrets(tmp_path):
    (tmp_path / "secrets.yaml").write_text("token: s3cr3t-value\n")
    (tmp_path / "config.yaml").write_text(
        "prices:\n  type: csv\n  path: !secret nope\nstate:\n  type: static\n"
        "  soc_pct: !secret token\n")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path / "config.yaml")
    text = str(info.value)
    assert "prices.path: expected secret 'nope'" in text
    assert "s3cr3t-value" not in text


def test_secret_with_wrong_type_is_redacted_in_message(tmp_path):
    (tmp_path / "secrets.yaml").write_text("soc: very-secret\n")
    (tmp_path / "config.yaml").write_text("state:\n  type: static\n  soc_pct: !secret soc\n")
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path / "config.yaml")
    assert "state.soc_pct: expected a number" in str(info.value)
    assert "very-secret" not in str(info.value)
    assert "redacted" in str(info.value)


def test_yaml_syntax_error_and_duplicate_keys(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("battery:\n  capacity_kwh: 10\n  capacity_kwh: 12\n")
    with pytest.raises(ConfigError, match="duplicate key 'capacity_kwh'"):
        config.load(path)
    path.write_text("battery: [unclosed\n")
    with pytest.raises(ConfigError, match="valid YAML.*line"):
        config.load(path)
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "missing.yaml")


def test_relative_paths_resolve_against_config_dir(tmp_path):
    doc = {"prices": {"type": "csv", "path": "sub/p.csv"}, "output": {"schedule_path": "s.json"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(doc))
    cfg = config.load(tmp_path / "config.yaml")
    assert cfg.prices.options.path == str(tmp_path / "sub" / "p.csv")
    assert cfg.output.schedule_path == str(tmp_path / "s.json")


# --- one engine for helios and helios-executor ------------------------------------------------


@pytest.mark.parametrize(("planner_key", "executor_key", "value"), [
    ("grid.export_enabled", "executor.limits.export_enabled", "yes"),
    ("battery.capacity_kwh", "executor.limits.capacity_kwh", "ten"),
    ("battery.capacity_kwh", "executor.limits.capacity_kwh", -1),
    ("battery.min_soc_pct", "executor.limits.min_soc_pct", 101),
    ("battery.charge_efficiency", "executor.limits.charge_efficiency", None),
    ("battery.capacity_kw", "executor.limits.capacity_kw", 10),  # unknown, did you mean
])
def test_planner_and_executor_word_the_same_mistake_the_same(planner_key, executor_key,
                                                            value):
    def nested(key: str) -> dict:
        *path, last = key.split(".")
        doc: dict = {last: value}
        for part in reversed(path):
            doc = {part: doc}
        return doc

    with pytest.raises(ConfigError) as planner_err:
        config.from_mapping(nested(planner_key))
    with pytest.raises(ExecutorConfigError) as executor_err:
        executor_config.from_mapping(nested(executor_key))
    mine = [str(p) for p in planner_err.value.problems if p.key_path == planner_key]
    theirs = [str(p) for p in executor_err.value.problems if p.key_path == executor_key]
    assert len(mine) == len(theirs) == 1
    text = mine[0].removeprefix(planner_key)
    if "unknown key" in text:  # the lists of known keys differ; the wording does not
        assert "(did you mean 'capacity_kwh'?), got an unknown key" in text
        assert theirs[0].startswith(f"{executor_key}: expected one of the known keys ")
        assert theirs[0].endswith("(did you mean 'capacity_kwh'?), got an unknown key")
    else:
        assert theirs[0] == executor_key + text


def test_both_programs_declare_keys_with_the_same_engine():
    assert config.opt is executor_config.opt is configspec.opt
    assert config.ConfigProblem is executor_config.ConfigProblem
    assert config.SiteConfig is siteconfig.SiteConfig


def test_providers_do_not_import_the_config_package():
    """The circle config -> providers -> providers.base -> config is gone."""
    code = ("import sys, planner.providers as p\n"
            "for kind in p.KINDS:\n"
            "    for name in p.available(kind):\n"
            "        try:\n"
            "            p.config_class(kind, name)\n"
            "        except ImportError:\n"
            "            pass\n"
            "print('planner.config' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "False"


def test_explain_covers_the_executor_section_too():
    rows = {r[0]: r for r in config.explain()}
    assert rows["executor.limits.max_charge_w"][1:3] == ("5000.0", "W")
    assert rows["executor.correction.guard_forecast_error"][1] == "False"
    assert {r[0] for r in executor_config.explain()} <= set(rows)
