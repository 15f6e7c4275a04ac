"""The config-validation engine itself (executor/configspec.py, configfile.py), on toy sections.

Types come from the annotations; every problem is collected with its dotted key path, what
was expected and what was found. helios and helios-executor both validate through it
(tests/planner/test_config.py checks they word the same mistake the same way).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, make_dataclass
from typing import Literal, Optional

import pytest

from executor import configfile
from executor import configspec as spec
from executor.configspec import Choices, Secret, SecretRef, build, opt, section


@dataclass(frozen=True)
class Array:
    """One PV plane."""

    kwp: float = opt(help="Peak power", unit="kWp", gt=0)
    tilt_deg: float = opt(30.0, "Tilt", "deg", ge=0, le=90)


@dataclass(frozen=True)
class Inner:
    """A nested section."""

    depth_m: int = opt(2, "Depth", "m", ge=0)
    label: str | None = opt(None, "Optional text")


@dataclass(frozen=True)
class Toy:
    """Every kind of key the engine knows."""

    on: bool = opt(False, "A switch")
    count: int = opt(3, "Whole", "", ge=1, le=10)
    power_kw: float = opt(1.5, "Any number", "kW", ge=0)
    limit_kw: float | None = opt(None, "Number or null", "kW", gt=0)
    old_style: Optional[int] = opt(None, "typing.Optional")  # noqa: UP045 - on purpose
    mode: str = opt("auto", "Picked from a tuple", choices=("auto", "manual"))
    level: Literal["low", "high"] = opt("low", "Picked by Literal")
    name: str = opt("x", "Any non-empty text")
    tags: list[str] = opt([], "Texts")
    setpoints_kw: list[float] = opt([], "Numbers, each in range", "kW", ge=0, le=10)
    arrays: dict[str, Array] = opt({}, "Named sections")
    inner: Inner = section(Inner)
    either: Inner | str = opt("plain", "A formula or a section")
    extra: dict = opt({}, "Anything, carried through")


def problems_of(raw, cls=Toy) -> list[str]:
    problems: list = []
    built = build(cls, raw, "toy", problems)
    assert (built is None) == bool(problems)
    return [str(p) for p in problems]


def test_defaults_and_every_kind_accepted():
    built = build(Toy, {
        "on": True, "count": 4.0, "power_kw": 2, "limit_kw": None, "old_style": 7,
        "mode": "manual", "level": "high", "name": "n", "tags": ["a", "b"],
        "setpoints_kw": [0, 2.5], "arrays": {"south": {"kwp": 5}, "west": {"kwp": 2,
                                                                            "tilt_deg": 45}},
        "inner": {"depth_m": 3, "label": "deep"}, "either": {"depth_m": 1},
        "extra": {"whatever": [1, {"x": None}]}}, "toy", [])
    assert built.on is True and built.count == 4 and type(built.count) is int
    assert built.power_kw == 2.0 and type(built.power_kw) is float
    assert built.setpoints_kw == [0.0, 2.5] and all(type(v) is float for v in built.setpoints_kw)
    assert built.arrays == {"south": Array(5.0), "west": Array(2.0, 45.0)}
    assert built.inner == Inner(3, "deep") and built.either == Inner(1)
    assert built.extra == {"whatever": [1, {"x": None}]}
    assert build(Toy, {"either": "price * 2"}, "toy", []).either == "price * 2"
    assert build(Toy, None, "toy", []) == Toy()
    assert Toy().tags is not Toy().tags  # list defaults are not shared


@pytest.mark.parametrize(("raw", "message"), [
    ({"on": 1}, "toy.on: expected true or false, got 1 (int)"),
    ({"on": "yes"}, "toy.on: expected true or false, got 'yes' (str)"),
    ({"count": True}, "toy.count: expected a whole number >= 1 and <= 10, got True (bool)"),
    ({"count": 2.5}, "toy.count: expected a whole number >= 1 and <= 10, got 2.5 (float)"),
    ({"count": 11}, "toy.count: expected a whole number >= 1 and <= 10, got 11 (int)"),
    ({"power_kw": "1"}, "toy.power_kw: expected a number >= 0 [kW], got '1' (str)"),
    ({"power_kw": float("nan")}, "toy.power_kw: expected a number >= 0 [kW], got nan (float)"),
    ({"power_kw": None}, "toy.power_kw: expected a number >= 0 [kW], got nothing (null)"),
    ({"limit_kw": 0}, "toy.limit_kw: expected a number > 0 [kW], got 0 (int)"),
    ({"old_style": "7"}, "toy.old_style: expected a whole number, got '7' (str)"),
    ({"mode": "auto "}, "toy.mode: expected one of auto, manual, got 'auto ' (str)"),
    ({"mode": 3}, "toy.mode: expected one of auto, manual, got 3 (int)"),
    ({"level": "mid"}, "toy.level: expected one of low, high, got 'mid' (str)"),
    ({"name": ""}, "toy.name: expected a non-empty string, got '' (str)"),
    ({"tags": "a"}, "toy.tags: expected a list (a non-empty string each), got 'a' (str)"),
    ({"tags": ["a", 2]}, "toy.tags[1]: expected a non-empty string, got 2 (int)"),
    ({"setpoints_kw": [1, 11]},
     "toy.setpoints_kw[1]: expected a number >= 0 and <= 10 [kW], got 11 (int)"),
    ({"arrays": ["south"]}, "toy.arrays: expected a mapping of names to a mapping of keys "
                            "(kwp, tilt_deg), got a list"),
    ({"arrays": {"south": {"tilt_deg": 95, "kwp": 1}}},
     "toy.arrays.south.tilt_deg: expected a number >= 0 and <= 90 [deg], got 95 (int)"),
    ({"arrays": {"south": {}}},
     "toy.arrays.south.kwp: expected a value (a number > 0 [kWp]), got nothing"),
    ({"inner": {"depth_m": -1}}, "toy.inner.depth_m: expected a whole number >= 0 [m], got -1 "
                                 "(int)"),
    ({"inner": 5}, "toy.inner: expected a mapping of keys (depth_m, label), got 5 (int)"),
    ({"either": 5}, "toy.either: expected a mapping of keys (depth_m, label) or a non-empty "
                    "string, got 5 (int)"),
    ({"either": {"depht_m": 1}}, "toy.either.depht_m: expected one of the known keys depth_m, "
                                 "label (did you mean 'depth_m'?), got an unknown key"),
    ({"extra": []}, "toy.extra: expected a mapping, got a list"),
])
def test_each_mistake_is_one_problem_naming_key_expected_and_got(raw, message):
    assert problems_of(raw) == [message]


def test_unknown_key_lists_the_keys_and_suggests_the_closest():
    assert problems_of({"powr_kw": 1}) == [
        "toy.powr_kw: expected one of the known keys arrays, count, either, extra, inner, "
        "level, limit_kw, mode, name, old_style, on, power_kw, setpoints_kw, tags "
        "(did you mean 'power_kw'?), got an unknown key"]
    assert "did you mean" not in problems_of({"zzz": 1})[0]


def test_every_problem_is_reported_at_once_in_document_order():
    assert [p.split(":")[0] for p in problems_of({
        "bogus": 1, "on": 0, "count": 0, "tags": [1, 2], "inner": {"depth_m": "x", "more": 1},
        "arrays": {"a": {}, "b": {"kwp": -1}}})] == [
        "toy.bogus", "toy.on", "toy.count", "toy.tags[0]", "toy.tags[1]", "toy.arrays.a.kwp",
        "toy.arrays.b.kwp", "toy.inner.more", "toy.inner.depth_m"]


def test_defaults_ignore_and_top_level():
    problems: list = []
    built = build(Toy, {"power_kw": 1, "driver": "x"}, "", problems,
                  defaults={"count": 9}, ignore=("driver",))
    assert problems == [] and built.count == 9 and built.power_kw == 1.0
    assert problems_of("text") == ["toy: expected a mapping of keys (arrays, count, either, "
                                   "extra, inner, level, limit_kw, mode, name, old_style, on, "
                                   "power_kw, setpoints_kw, tags), got 'text' (str)"]
    problems = []
    build(Toy, {"nope": 1}, "", problems, ignore=("driver",))
    assert str(problems[0]).startswith("nope: expected one of the known keys arrays, count, "
                                       "driver, either")


def test_choices_are_looked_up_at_validation_time():
    names = ["a"]
    cls = make_dataclass("C", [("kind", "str", opt("a", choices=Choices(lambda: names)))])
    problems: list = []
    build(cls, {"kind": "b"}, "t", problems)
    assert [str(p) for p in problems] == ["t.kind: expected one of a, got 'b' (str)"]
    names.append("b")  # e.g. a driver registered after the schema was declared
    assert build(cls, {"kind": "b"}, "t", []).kind == "b"


def test_paths_resolve_against_base_dir_and_secrets_stay_redacted(tmp_path):
    cls = make_dataclass("P", [("file", "str", opt("a.csv", path=True)),
                               ("other", "str | None", opt(None, path=True)),
                               ("n", "float", opt(1.0, ge=0))])
    built = build(cls, {"other": Secret("sub/b.csv")}, "p", [], base_dir=tmp_path)
    assert built.file == str(tmp_path / "a.csv") and built.other == str(tmp_path / "sub/b.csv")
    assert isinstance(built.other, Secret)
    problems: list = []
    build(cls, {"n": Secret("hunter2")}, "p", problems)
    assert [str(p) for p in problems] == ["p.n: expected a number >= 0, got a secret value "
                                          "(redacted)"]


def test_annotations_are_parsed_not_evaluated():
    # "float | None" cannot be evaluated on Python 3.8 (Venus OS); real types work too
    cls = make_dataclass("R", [("a", bool, opt(True)), ("b", Optional[float], opt(None)),  # noqa: UP045
                               ("c", "Optional[Literal['x', 'y']]", opt(None)),
                               ("d", "dict[str, list[int]]", opt({}))])
    built = build(cls, {"a": False, "b": 2, "c": "y", "d": {"k": [1, 2.0]}}, "r", [])
    assert (built.a, built.b, built.c, built.d) == (False, 2.0, "y", {"k": [1, 2]})
    for bad in ("set[int]", "tuple[int, int]", "dict[int, str]", "Unknown"):
        with pytest.raises(TypeError, match="unsupported annotation"):
            build(make_dataclass("B", [("x", bad, opt(None))]), {}, "b", [])


def test_explain_lists_every_key_with_default_unit_and_help():
    rows = {r[0]: r[1:] for r in spec.explain(Toy, "toy")}
    assert rows["toy.power_kw"] == ("1.5", "kW", "Any number")
    assert rows["toy.inner.depth_m"] == ("2", "m", "Depth")
    assert rows["toy.arrays.<name>.kwp"] == ("'(required)'", "kWp", "Peak power")
    assert rows["toy.tags"] == ("[]", "", "Texts")
    assert all(help_text for _, _, help_text in rows.values())
    only = spec.explain(Toy, "toy", expand=lambda f, key: [] if f.name != "on" else None)
    assert [r[0] for r in only] == ["toy.on"]


def test_documents_yaml_json_duplicates_and_secrets(tmp_path):
    (tmp_path / "c.yaml").write_text("a: !secret tok\nb: [1, !secret n]\n")
    doc = configfile.read_document(tmp_path / "c.yaml")
    assert isinstance(doc["a"], SecretRef) and doc["a"].name == "tok"
    (tmp_path / "secrets.yaml").write_text("tok: abc\nn: 5\n")
    secrets, problems = configfile.Secrets(tmp_path), []
    assert secrets.resolve(doc, "", problems) == {"a": "abc", "b": [1, "5"]}
    assert problems == [] and secrets.found == {"abc", "5"}
    assert secrets.resolve(SecretRef("gone"), "x.y", problems) is None
    assert [str(p) for p in problems] == [
        f"x.y: expected secret 'gone' in {tmp_path / 'secrets.yaml'}, got no such name there"]
    (tmp_path / "c.json").write_text(json.dumps({"a": 1}))
    assert configfile.read_document(tmp_path / "c.json") == {"a": 1}
    (tmp_path / "d.yaml").write_text("a: 1\na: 2\n")
    with pytest.raises(configfile.DocumentError, match="duplicate key 'a'"):
        configfile.read_document(tmp_path / "d.yaml")
    with pytest.raises(configfile.DocumentError, match="no such file"):
        configfile.read_document(tmp_path / "missing.yaml")
