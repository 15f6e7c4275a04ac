"""The config-validation engine shared by ``helios`` and ``helios-executor`` (standard library).

A section is a frozen dataclass whose keys are declared once, with :func:`opt`::

    @dataclass(frozen=True)
    class GridConfig:
        max_import_kw: float = opt(17.0, "Maximum import power", "kW", ge=0)
        export_enabled: bool = opt(True, "Whether feeding in is allowed")
        mode: str = opt("auto", "How", choices=("auto", "off"))
        arrays: dict[str, ArrayConfig] = opt({}, "Named sub-sections")

The type of each key is its annotation, read as text (never evaluated, so ``float | None``
works on Python 3.8, where the executor runs on a GX): ``bool`` (only ``true``/``false``),
``int`` (whole numbers; ``2.0`` becomes ``2``), ``float`` (finite; ints become floats), ``str``
(non-empty), ``Literal["a", "b"]``, ``X | None`` / ``Optional[X]`` (``null`` allowed), other
unions (the value's shape picks the alternative), ``list[X]``, ``dict[str, X]``, ``Any``/``dict``
and nested section dataclasses. :func:`build` validates a mapping against a section and collects
every problem at once — unknown keys (with a "did you mean"), wrong types, values out of range,
missing required keys — as :class:`~executor.errors.ConfigProblem` lines, each with its dotted
key path, what was expected and what was found. :func:`explain` lists key, default, unit and help
for ``--explain``. :mod:`executor.configfile` reads the YAML/JSON documents and resolves
``!secret NAME`` references to ``secrets.yaml``.

The same mistake reads the same in both programs, e.g.
``battery.capacity_kwh: expected a number > 0 [kWh], got 'ten' (str)``.
"""

from __future__ import annotations

import ast
import builtins
import copy
import difflib
import math
import os
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from executor.errors import ConfigProblem

__all__ = ["INTERNAL", "Choices", "ConfigProblem", "Secret", "SecretRef", "build", "build_value",
           "describe", "explain", "expected_text", "field_spec", "internal", "join", "key_type",
           "opt", "section"]

# --------------------------------------------------------------------------------------------
# declarations


class Choices(Sequence):
    """Allowed values looked up when validating (e.g. the names in a registry open to plugins).

    ``opt(..., choices=Choices(drivers.available))``: the function is called on every use, so a
    driver registered after the schema was declared is accepted.
    """

    def __init__(self, names: Callable[[], Sequence[str]]):
        self._names = names

    def _all(self) -> tuple:
        return tuple(self._names())

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, value: object) -> bool:
        return value in self._all()

    def __iter__(self):
        return iter(self._all())

    def __repr__(self) -> str:
        return f"Choices({self._all()!r})"


def opt(default: Any = MISSING, help: str = "", unit: str = "", *, ge: float | None = None,
        gt: float | None = None, le: float | None = None, lt: float | None = None,
        choices: Sequence[str] | None = None, path: bool = False, secret: bool = False,
        expected: str = "", kind: Any = None, optional: bool | None = None) -> Any:
    """Declare a config key: default, help text, unit, bounds (a dataclass field).

    Parameters
    ----------
    default
        Omitted: the key is required. A dict or list default is copied for every instance.
    help, unit
        Shown by ``--explain`` (the unit also in problems, ``[kWh]``).
    ge, gt, le, lt
        Bounds of a number (of each item of a list or dict of numbers).
    choices
        Allowed strings (a tuple, or :class:`Choices` for a list looked up at validation).
    path
        A file path: a relative one is resolved against the config file's directory.
    secret
        Documentation only: the value should come from ``!secret``.
    expected
        Replaces the generated "expected ..." text of a type error (domain wording).
    kind, optional
        Redundant with the annotation; when given they must agree with it (checked on first
        use, a mismatch is a programming error, :class:`TypeError`).
    """
    meta = {"help": help, "unit": unit, "kind": kind, "optional": optional, "ge": ge, "gt": gt,
            "le": le, "lt": lt, "choices": choices, "path": path, "secret": secret,
            "expected": expected}
    if default is MISSING:
        return field(metadata=meta)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """A nested section whose every key has a default (absent = all defaults)."""
    return field(default_factory=cls, metadata={"help": cls.__doc__ or "", "section": True})


#: metadata of a dataclass field that is not a config key (set by the program, never read)
INTERNAL = {"internal": True}


def internal(default: Any, **kwargs: Any) -> Any:
    """A field that is not a config key (e.g. where the config came from)."""
    return field(default=default, metadata=INTERNAL, **kwargs)


# --------------------------------------------------------------------------------------------
# types, read from the annotations


@dataclass(frozen=True)
class _Spec:
    """A parsed annotation: ``kind`` in bool int float str none any literal list dict section
    union; ``args`` the item spec(s), the literal values or the section class."""

    kind: str
    args: tuple = ()

    @property
    def optional(self) -> bool:
        return self.kind == "union" and any(a.kind == "none" for a in self.args)


_SCALARS = {"bool": bool, "int": int, "float": float, "str": str}
_TYPING = {"Optional", "Union", "Literal", "List", "Dict", "Any", "Sequence", "Mapping"}


def _union(parts: list) -> _Spec:
    flat: list = []
    for p in parts:
        for one in (p.args if p.kind == "union" else (p,)):
            if one not in flat:
                flat.append(one)
    return flat[0] if len(flat) == 1 else _Spec("union", tuple(flat))


def _from_text(text: str, namespace: dict) -> _Spec:
    """Parse an annotation string without evaluating it."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise TypeError(f"unsupported annotation {text!r}") from None
    return _from_node(node, namespace, text)


def _subscript(node: Any) -> list:
    sl = node.slice
    if type(sl).__name__ == "Index":  # Python 3.8
        sl = sl.value
    return list(sl.elts) if isinstance(sl, ast.Tuple) else [sl]


def _from_node(node: Any, ns: dict, text: str) -> _Spec:
    bad = TypeError(f"unsupported annotation {text!r}")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([_from_node(node.left, ns, text), _from_node(node.right, ns, text)])
    if isinstance(node, ast.Constant):
        if node.value is None:
            return _Spec("none")
        if isinstance(node.value, str):  # a quoted forward reference
            return _from_text(node.value, ns)
        raise bad
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    if isinstance(node, ast.Subscript):
        outer = node.value.attr if isinstance(node.value, ast.Attribute) \
            else getattr(node.value, "id", None)
        items = _subscript(node)
        if outer == "Literal":
            values = tuple(getattr(i, "value", None) for i in items)
            if not all(isinstance(v, str) for v in values):
                raise bad
            return _Spec("literal", values)
        inner = [_from_node(i, ns, text) for i in items]
        if outer == "Optional" and len(inner) == 1:
            return _union([inner[0], _Spec("none")])
        if outer == "Union":
            return _union(inner)
        if outer in ("list", "List", "Sequence") and len(inner) == 1:
            return _Spec("list", (inner[0],))
        if outer in ("dict", "Dict", "Mapping") and len(inner) == 2 and inner[0].kind == "str":
            return _Spec("dict", (inner[1],))
        raise bad
    if name is None:
        raise bad
    if name in _SCALARS:
        return _Spec(name)
    if name in ("None", "NoneType"):
        return _Spec("none")
    if name == "Any":
        return _Spec("any")
    if name in ("dict", "Dict", "Mapping"):
        return _Spec("dict", (_Spec("any"),))
    if name in ("list", "List"):
        return _Spec("list", (_Spec("any"),))
    found = ns.get(name)
    if isinstance(found, type) and is_dataclass(found):
        return _Spec("section", (found,))
    raise bad


def _from_type(tp: Any, ns: dict) -> _Spec:
    """The same for a real type object (``make_dataclass``, no ``__future__`` annotations)."""
    if isinstance(tp, str):
        return _from_text(tp, ns)
    if tp is type(None) or tp is None:
        return _Spec("none")
    if tp is Any:
        return _Spec("any")
    for name, scalar in _SCALARS.items():
        if tp is scalar:
            return _Spec(name)
    if isinstance(tp, type) and is_dataclass(tp):
        return _Spec("section", (tp,))
    if tp is dict:
        return _Spec("dict", (_Spec("any"),))
    if tp is list:
        return _Spec("list", (_Spec("any"),))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        return _union([_from_type(a, ns) for a in args])
    if origin is typing.Literal and all(isinstance(a, str) for a in args):
        return _Spec("literal", tuple(args))
    if origin is list and len(args) == 1:
        return _Spec("list", (_from_type(args[0], ns),))
    if origin is dict and len(args) == 2 and args[0] is str:
        return _Spec("dict", (_from_type(args[1], ns),))
    raise TypeError(f"unsupported annotation {tp!r}")


_SPECS: dict[tuple[type, str], _Spec] = {}


def _namespace(cls: type) -> dict:
    ns = dict(vars(builtins))
    ns.update(vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {})
    ns.update({k: v for k, v in vars(cls).items() if isinstance(v, type)})
    return ns


def _checked_spec(f: Any, ns: dict) -> _Spec:
    try:
        spec = _from_type(f.type, ns)
    except TypeError as exc:
        raise TypeError(f"config key {f.name!r}: {exc}") from None
    kind, optional = f.metadata.get("kind"), f.metadata.get("optional")
    if kind is not None:
        scalar = next((a for a in (spec.args if spec.kind == "union" else (spec,))
                       if a.kind != "none"), spec)
        if _SCALARS.get(scalar.kind) is not kind:
            raise TypeError(f"config key {f.name!r}: kind={kind.__name__} but annotated "
                            f"{f.type!r}")
    if optional is not None and bool(optional) != spec.optional:
        raise TypeError(f"config key {f.name!r}: optional={optional} but annotated "
                        f"{f.type!r}")
    return spec


def field_spec(cls: type, f: Any) -> _Spec:
    """The parsed annotation of field ``f`` of section ``cls`` (cached per class and key).

    Raises
    ------
    TypeError
        An unsupported annotation, or ``kind``/``optional`` given to :func:`opt` disagree with
        it (so a ``bool`` key can never be validated as a number again).
    """
    spec = _SPECS.get((cls, f.name))
    if spec is None:
        spec = _SPECS[(cls, f.name)] = _checked_spec(f, _namespace(cls))
    return spec


def key_type(f: Any) -> tuple[type, bool]:
    """``(type, optional)`` of a scalar key (``bool``, ``int``, ``float`` or ``str``).

    Raises
    ------
    TypeError
        The key is not a scalar (a list, a mapping, a section...) or its declaration is wrong.
    """
    spec = _checked_spec(f, dict(vars(builtins)))
    parts = [a for a in (spec.args if spec.kind == "union" else (spec,)) if a.kind != "none"]
    if len(parts) != 1 or parts[0].kind not in _SCALARS:
        raise TypeError(f"config key {f.name!r}: not a scalar annotation {f.type!r}")
    return _SCALARS[parts[0].kind], spec.optional


# --------------------------------------------------------------------------------------------
# problem texts


class Secret(str):
    """A value read from the secrets file: redacted in every problem text."""

    __slots__ = ()


def describe(value: Any) -> str:
    """What was found, for the "got ..." part of a problem (secrets redacted)."""
    if isinstance(value, Secret):
        return "a secret value (redacted)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, SecretRef):
        return f"an unresolved !secret {value.name}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _bounds(meta: Any) -> str:
    parts = [f"{sym} {meta[key]:g}" for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"),
                                                    ("le", "<="))
             if meta.get(key) is not None]
    return " " + " and ".join(parts) if parts else ""


def _unit(meta: Any) -> str:
    return f" [{meta['unit']}]" if meta.get("unit") else ""


def expected_text(spec: _Spec, meta: Any) -> str:
    """What a value of this type looks like, e.g. ``a number >= 0 and <= 100 [%]``."""
    kind = spec.kind
    if kind == "bool":
        return "true or false"
    if kind in ("int", "float"):
        what = "a whole number" if kind == "int" else "a number"
        return what + _bounds(meta) + _unit(meta)
    if kind == "str":
        choices = meta.get("choices")
        return f"one of {', '.join(choices)}" if choices else "a non-empty string"
    if kind == "literal":
        return f"one of {', '.join(spec.args)}"
    if kind == "none":
        return "null"
    if kind == "list":
        return f"a list ({expected_text(spec.args[0], meta)} each)"
    if kind == "dict":
        item = spec.args[0]
        return "a mapping" if item.kind == "any" else \
            f"a mapping of names to {expected_text(item, meta)}"
    if kind == "section":
        return f"a mapping of keys ({', '.join(sorted(_keys(spec.args[0])))})"
    if kind == "union":
        return " or ".join(expected_text(a, meta) for a in spec.args if a.kind != "none")
    return "a value"


def join(prefix: str, key: object) -> str:
    """``prefix.key`` (just ``key`` at the top level)."""
    return f"{prefix}.{key}" if prefix else str(key)


# --------------------------------------------------------------------------------------------
# validation


def _keys(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.init and not f.metadata.get("internal")]


def _shape_fits(spec: _Spec, value: Any) -> bool:
    """Whether ``value`` has the shape of this union alternative (no range checks)."""
    kind = spec.kind
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("int", "float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("str", "literal"):
        return isinstance(value, str)
    if kind in ("dict", "section"):
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    return kind == "any"


def _number(spec: _Spec, value: Any, key_path: str, meta: Any,
            problems: list[ConfigProblem]) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value) and (spec.kind == "float" or value.is_integer())
    if ok:
        for key, test in (("gt", lambda v, b: v > b), ("ge", lambda v, b: v >= b),
                          ("lt", lambda v, b: v < b), ("le", lambda v, b: v <= b)):
            bound = meta.get(key)
            if bound is not None and not test(value, bound):
                ok = False
    if not ok:
        problems.append(ConfigProblem(key_path, meta.get("expected") or
                                      expected_text(spec, meta), describe(value)))
        return MISSING
    return int(value) if spec.kind == "int" else float(value)


def _string(spec: _Spec, value: Any, key_path: str, meta: Any, problems: list[ConfigProblem],
            base_dir: Path | None) -> Any:
    choices = spec.args if spec.kind == "literal" else meta.get("choices")
    if choices and value not in choices:
        problems.append(ConfigProblem(key_path, f"one of {', '.join(choices)}",
                                      describe(value)))
        return MISSING
    if not isinstance(value, str) or not value:
        problems.append(ConfigProblem(key_path, meta.get("expected") or "a non-empty string",
                                      describe(value)))
        return MISSING
    if meta.get("path") and base_dir is not None:
        resolved = str((base_dir / os.path.expanduser(value)).resolve())
        return Secret(resolved) if isinstance(value, Secret) else resolved
    return value


def build_value(spec: _Spec, value: Any, key_path: str, meta: Any,
                problems: list[ConfigProblem], base_dir: Path | None = None) -> Any:
    """Validate one value against ``spec``; :data:`~dataclasses.MISSING` on failure (the
    problem is appended to ``problems``)."""
    kind = spec.kind
    if kind == "any":
        return value
    if kind == "union":
        if value is None and spec.optional:
            return None
        alternatives = [a for a in spec.args if a.kind != "none"]
        fitting = next((a for a in alternatives if _shape_fits(a, value)), None)
        if fitting is None and len(alternatives) == 1:
            fitting = alternatives[0]  # X | None: X's own message
        if fitting is None:
            problems.append(ConfigProblem(key_path, meta.get("expected") or
                                          expected_text(spec, meta), describe(value)))
            return MISSING
        return build_value(fitting, value, key_path, meta, problems, base_dir)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        problems.append(ConfigProblem(key_path, "true or false", describe(value)))
        return MISSING
    if kind in ("int", "float"):
        return _number(spec, value, key_path, meta, problems)
    if kind in ("str", "literal"):
        return _string(spec, value, key_path, meta, problems, base_dir)
    if kind == "none":
        if value is None:
            return None
        problems.append(ConfigProblem(key_path, "null", describe(value)))
        return MISSING
    if kind == "section":
        result = build(spec.args[0], value, key_path, problems, base_dir=base_dir)
        return MISSING if result is None else result
    if kind == "list":
        if not isinstance(value, list):
            problems.append(ConfigProblem(key_path, meta.get("expected") or
                                          expected_text(spec, meta), describe(value)))
            return MISSING
        items = [build_value(spec.args[0], v, f"{key_path}[{i}]", meta, problems, base_dir)
                 for i, v in enumerate(value)]
        return MISSING if any(v is MISSING for v in items) else items
    if kind == "dict":
        if not isinstance(value, dict):
            problems.append(ConfigProblem(key_path, meta.get("expected") or
                                          expected_text(spec, meta), describe(value)))
            return MISSING
        out, failed = {}, False
        for name, item in value.items():
            if not isinstance(name, str) or not name:
                problems.append(ConfigProblem(join(key_path, name), "a non-empty name",
                                              describe(name)))
                failed = True
                continue
            got = build_value(spec.args[0], item, join(key_path, name), meta, problems,
                              base_dir)
            failed = failed or got is MISSING
            out[name] = got
        return MISSING if failed else out
    raise TypeError(f"unsupported kind {kind!r} at {key_path}")  # pragma: no cover


def build(cls: type, raw: Any, key_path: str, problems: list[ConfigProblem],
          defaults: dict[str, Any] | None = None, ignore: Sequence[str] = (), *,
          base_dir: Path | None = None) -> Any:
    """Validate mapping ``raw`` into an instance of section dataclass ``cls``.

    Parameters
    ----------
    key_path
        Dotted path of ``raw`` in the document ("" at the top level).
    problems
        Every problem found is appended (unknown keys, types, ranges, missing keys).
    defaults
        Override the dataclass defaults of absent keys (e.g. values from another section).
    ignore
        Extra keys accepted here and handled by the caller (listed among the known keys).
    base_dir
        Directory against which ``opt(path=True)`` keys are resolved (None: left as given).

    Returns
    -------
    The instance, or None when any problem was found in this mapping.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(key_path or "(top level)",
                                      f"a mapping of keys ({', '.join(sorted(_keys(cls)))})",
                                      describe(raw)))
        return None
    before = len(problems)
    names = _keys(cls)
    known = sorted([*names, *ignore])
    for key in raw:
        if key not in names and key not in ignore:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(ConfigProblem(join(key_path, key),
                                          f"one of the known keys {', '.join(known)}{hint}",
                                          "an unknown key"))
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in names:
            continue
        spec = field_spec(cls, f)  # a declaration error shows on first use, whatever the file
        sub = join(key_path, f.name)
        if f.name in raw:
            value = build_value(spec, raw[f.name], sub, f.metadata, problems, base_dir)
            if value is not MISSING:
                values[f.name] = value
        elif defaults and f.name in defaults:
            values[f.name] = defaults[f.name]
        elif f.metadata.get("section") and spec.kind == "section":
            value = build_value(spec, {}, sub, f.metadata, problems, base_dir)
            if value is not MISSING:
                values[f.name] = value
        elif f.default is MISSING and f.default_factory is MISSING:
            text = f.metadata.get("expected") or expected_text(spec, f.metadata)
            problems.append(ConfigProblem(sub, f"a value ({text})", "nothing"))
        elif f.metadata.get("path") and base_dir is not None and isinstance(f.default, str):
            values[f.name] = str((base_dir / f.default).resolve())
    if len(problems) > before:
        return None
    return cls(**values)


def explain(cls: type, prefix: str = "",
            expand: Callable[[Any, str], list | None] | None = None,
            ) -> list[tuple[str, str, str, str]]:
    """``(key path, default, unit, help)`` of every key of section ``cls`` and its sections.

    ``expand(field, key_path)`` may return the rows of a key itself (None: the usual rows).
    """
    rows: list[tuple[str, str, str, str]] = []
    for f in fields(cls):
        if not f.init or f.metadata.get("internal"):
            continue
        spec, key = field_spec(cls, f), join(prefix, f.name)
        own = expand(f, key) if expand is not None else None
        if own is not None:
            rows.extend(own)
            continue
        if spec.kind == "section":
            rows.extend(explain(spec.args[0], key))
            continue
        if spec.kind == "dict" and spec.args[0].kind == "section":
            rows.append((key, "{}", "", f.metadata.get("help", "")))
            rows.extend(explain(spec.args[0].args[0], f"{key}.<name>"))
            continue
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else "(required)")
        shown = "(section)" if is_dataclass(default) else repr(default)
        rows.append((key, shown, f.metadata.get("unit", ""), f.metadata.get("help", "")))
    return rows


# --------------------------------------------------------------------------------------------
# secrets (reading them: executor.configfile)


class SecretRef:
    """``!secret NAME`` as read from the document, before :class:`Secrets` resolves it."""

    __slots__ = ("name", "line")

    def __init__(self, name: str, line: int = 0):
        self.name = name
        self.line = line

    def __repr__(self) -> str:
        return f"!secret {self.name}"
