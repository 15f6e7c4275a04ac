"""Reading config.yaml: YAML + ``!secret`` → validated :class:`HeliosConfig`.

Secrets live in ``secrets.yaml`` next to the config file and are referenced as
``token: !secret tibber_token``. Their values are remembered in ``HeliosConfig.secret_values``
so log filters can redact them; they never appear in problem texts. Relative paths
(``opt(path=True)`` keys, a ``sqlite:///`` URL) are resolved against the config file's
directory. Validation goes through :mod:`executor.configspec`, the engine the executor uses
for its own section, so every problem is reported at once, in the same words.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from executor import config as executor_config
from executor.configfile import DocumentError, Secrets, read_document
from executor.configspec import build, describe
from executor.configspec import explain as explain_section
from planner import providers
from planner.config.checks import consistency, resolve_storage_url
from planner.config.sections import DEFAULT_PROVIDERS, HeliosConfig, ProviderConfig
from planner.core.errors import ConfigError, ConfigProblem

__all__ = ["default", "explain", "from_mapping", "load", "with_demo_providers"]


def _build_provider(kind: str, data: Any, problems: list[ConfigProblem],
                    base_dir: Path | None) -> ProviderConfig | None:
    """``prices:`` etc.: ``type`` from the provider registry, the rest by that provider's
    ``Config`` dataclass."""
    if not isinstance(data, dict):
        problems.append(ConfigProblem(kind, "a mapping with a 'type' key", describe(data)))
        return None
    available = providers.available(kind)
    typ = data.get("type")
    if typ not in available:
        problems.append(ConfigProblem(f"{kind}.type", f"one of {', '.join(available)}",
                                      describe(typ)))
        return None
    rest = {k: v for k, v in data.items() if k != "type"}
    options = build(providers.config_class(kind, typ), rest, kind, problems, base_dir=base_dir)
    return None if options is None else ProviderConfig(typ, options)


def from_mapping(data: Any, base_dir: Path | None = None, source: str = "",
                 secret_values: frozenset[str] = frozenset(),
                 require_providers: bool | Collection[str] = False) -> HeliosConfig:
    """Validate an already-parsed mapping (secrets resolved) into a :class:`HeliosConfig`.

    A missing provider section takes the demo provider (:data:`DEFAULT_PROVIDERS`: tests,
    backtests, ``--demo``) unless it is required (``require_providers``: True = all four, or
    the kinds that must be there): then each missing one is a problem naming it (what
    ``helios`` does with a config file, so that an empty or partial file never plans on demo
    data).

    Raises
    ------
    ConfigError
        With every problem found (not just the first).
    """
    problems: list[ConfigProblem] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(ConfigProblem("(top level)", "a mapping of sections", describe(data)),
                          source)
    data = dict(data)
    given = frozenset(k for k in data if isinstance(k, str))
    required = (tuple(DEFAULT_PROVIDERS) if require_providers is True
                else tuple(require_providers or ()))
    for kind in required:
        if kind not in data:
            problems.append(ConfigProblem(
                kind, f"a {kind}: section {{type: ...}} (one of "
                f"{', '.join(t for t in providers.available(kind) if t != 'demo')}); the "
                "built-in demo data only with --demo", "nothing"))
    provider_data = {kind: data.pop(kind, DEFAULT_PROVIDERS[kind]) for kind in DEFAULT_PROVIDERS}
    cfg = build(HeliosConfig, data, "", problems, base_dir=base_dir,
                ignore=tuple(provider_data))
    built = {kind: _build_provider(kind, value, problems, base_dir)
             for kind, value in provider_data.items()}
    if cfg is None or any(v is None for v in built.values()):
        raise ConfigError(problems, source)
    cfg = replace(cfg, **built, secret_values=secret_values, source=source or None,
                  given=given)
    cfg = resolve_storage_url(cfg, base_dir)
    consistency(cfg, problems)
    if problems:
        raise ConfigError(problems, source)
    return cfg


def load(path: str | os.PathLike, secrets_path: str | os.PathLike | None = None,
         require_providers: bool | Collection[str] = False) -> HeliosConfig:
    """Load and validate ``config.yaml`` (and ``secrets.yaml`` beside it, when referenced).

    ``require_providers``: every provider section must be in the file (``helios`` without
    ``--demo``; see :func:`from_mapping`).

    Raises
    ------
    ConfigError
        Naming every offending key (exit code 2 in the CLI).
    """
    path = Path(path)
    secrets = Secrets(path.parent, secrets_path)
    problems: list[ConfigProblem] = []
    try:
        data = secrets.resolve(read_document(path), "", problems)
    except DocumentError as exc:
        raise ConfigError(exc.problem) from None
    if problems:
        raise ConfigError(problems, str(path))
    return from_mapping(data, path.parent.resolve(), str(path), frozenset(secrets.found),
                        require_providers)


def default() -> HeliosConfig:
    """The built-in demo configuration (demo providers, a static 50 % SoC, defaults
    everywhere): what ``--demo`` plans on without a config file."""
    return from_mapping({}, Path.cwd(), "built-in defaults")


def with_demo_providers(cfg: HeliosConfig) -> HeliosConfig:
    """Replace the price, PV and load providers by the built-in demo data (``--demo``)."""
    demo = from_mapping({k: v for k, v in DEFAULT_PROVIDERS.items() if k != "state"})
    return replace(cfg, prices=demo.prices, pv=demo.pv, load=demo.load)


def _provider_rows(kind: str) -> list[tuple[str, str, str, str]]:
    help_text = next(f.metadata.get("help", "") for f in fields(HeliosConfig) if f.name == kind)
    names = providers.available(kind)
    rows = [(f"{kind}.type", f"(required; --demo: {DEFAULT_PROVIDERS[kind]['type']!r})", "",
             f"{help_text}; one of {', '.join(names)}")]
    for name in names:
        rows += explain_section(providers.config_class(kind, name), f"{kind} (type {name})")
    return rows


def _expand(f: Any, key: str) -> list[tuple[str, str, str, str]] | None:
    if f.name in DEFAULT_PROVIDERS:
        return _provider_rows(f.name)
    if f.name == "executor":  # helios-executor's keys, declared in executor/config.py
        return [(key, "{}", "", f.metadata.get("help", "")), *executor_config.explain()]
    return None


def explain() -> list[tuple[str, str, str, str]]:
    """(key path, default, unit, help) for every documented key, for ``check-config --explain``
    (``executor:`` too; the options of each driver are in docs/executor.md)."""
    return explain_section(HeliosConfig, expand=_expand)
