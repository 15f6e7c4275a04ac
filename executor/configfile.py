"""Config documents: YAML (or JSON on a GX, which has no PyYAML) with ``!secret NAME``.

:func:`read_document` parses a file (duplicate keys refused, ``!secret`` kept as a
:class:`~executor.configspec.SecretRef`); :class:`Secrets` resolves references from
``secrets.yaml`` beside the config file. Both programs read their config through here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from executor.configspec import Secret, SecretRef, join
from executor.errors import ConfigProblem

__all__ = ["DocumentError", "Secrets", "read_document"]


class DocumentError(Exception):
    """A config or secrets file cannot be read or parsed (carries one :class:`ConfigProblem`)."""

    def __init__(self, problem: ConfigProblem):
        self.problem = problem
        super().__init__(str(problem))


def _yaml_loader(yaml: Any) -> type:
    class Loader(yaml.SafeLoader):
        pass

    def secret(loader: Any, node: Any) -> SecretRef:
        return SecretRef(loader.construct_scalar(node), node.start_mark.line + 1)

    def mapping(loader: Any, node: Any) -> dict:
        loader.flatten_mapping(node)
        result: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            result[key] = loader.construct_object(value_node, deep=True)
        return result

    Loader.add_constructor("!secret", secret)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def read_document(path: str | os.PathLike, what: str | None = None) -> Any:
    """Parse a YAML file, or JSON when the name ends in ``.json`` (a GX has no PyYAML).

    ``!secret NAME`` becomes a :class:`SecretRef`; duplicate keys are refused.

    Raises
    ------
    DocumentError
        Missing or unreadable file, bad syntax (with line and column), YAML without PyYAML.
    """
    path = Path(path)
    what = what or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(ConfigProblem(what, f"an existing file at {path}",
                                          "no such file")) from None
    except OSError as exc:
        raise DocumentError(ConfigProblem(what, f"a readable file at {path}", str(exc))) \
            from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DocumentError(ConfigProblem(what, "valid JSON", str(exc))) from None
    try:
        import yaml  # optional: Venus OS ships no PyYAML (JSON configs there)
    except ImportError:
        raise DocumentError(ConfigProblem(what, "a .json config (PyYAML is not installed "
                                          "here)", "a YAML file")) from None
    try:
        return yaml.load(text, Loader=_yaml_loader(yaml))  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DocumentError(ConfigProblem(what, "valid YAML", f"{problem}{where}")) from None


class Secrets:
    """The secrets file (``secrets.yaml``, else ``secrets.json``, beside the config), read on
    the first ``!secret`` resolved; the values resolved are collected in :attr:`found`."""

    def __init__(self, config_dir: str | os.PathLike, path: str | os.PathLike | None = None):
        if path is None:
            candidates = [Path(config_dir) / n for n in ("secrets.yaml", "secrets.json")]
            path = next((p for p in candidates if p.exists()), candidates[0])
        self.path = Path(path)
        self.found: set = set()
        self._doc: dict | None = None
        self._read = False

    def _load(self) -> dict | None:
        if not self._read:
            self._read = True
            if self.path.exists():
                doc = read_document(self.path) or {}
                if not isinstance(doc, dict):
                    raise DocumentError(ConfigProblem(str(self.path), "a mapping name: value",
                                                      "something else"))
                self._doc = doc
        return self._doc

    def resolve(self, node: Any, key_path: str, problems: list[ConfigProblem]) -> Any:
        """``node`` with every :class:`SecretRef` in it replaced by its :class:`Secret` value
        (None and a problem when the name is missing or its value is not a scalar)."""
        if isinstance(node, SecretRef):
            doc = self._load()
            if doc is None:
                problems.append(ConfigProblem(key_path, f"secret {node.name!r} from "
                                              f"{self.path}", "no secrets file"))
                return None
            if node.name not in doc:
                problems.append(ConfigProblem(key_path, f"secret {node.name!r} in {self.path}",
                                              "no such name there"))
                return None
            value = doc[node.name]
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                self.found.add(str(value))
                return Secret(str(value))
            problems.append(ConfigProblem(key_path, f"secret {node.name!r} to be a string",
                                          type(value).__name__))
            return None
        if isinstance(node, dict):
            return {k: self.resolve(v, join(key_path, k), problems) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v, f"{key_path}[{i}]", problems) for i, v in enumerate(node)]
        return node
