"""EV charger (EVSE) drivers: ``executor.ev_charger: {type: victron_evcs | alfen, ...}``.

A small registry of its own (the battery drivers' registry lists every public module of
``executor/drivers/``, so chargers live here): a charger is one module of this package that
decorates its class with ``@register("<module name>")``; modules are imported on demand, so
a GX without pymodbus can run ``victron_evcs`` and a host without D-Bus ``alfen``.
See :mod:`executor.evse.base` for the interface and the plan-following rule.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from executor.configspec import Choices, build, opt
from executor.errors import ConfigError, ConfigProblem

#: the chargers shipped with Helios: name = module name = ``type:`` value
BUILTIN = ("alfen", "victron_evcs")
KEY = "executor.ev_charger"

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make a charger available under ``type: name``."""

    def wrap(cls: type) -> type:
        _REGISTRY[name] = cls
        return cls

    return wrap


def available() -> tuple[str, ...]:
    """The built-in chargers and any registered from elsewhere, sorted."""
    return tuple(sorted(set(BUILTIN) | set(_REGISTRY)))


def get(name: str) -> type:
    """The charger class registered as ``name`` (its module imported on demand).

    Raises
    ------
    ConfigError
        Unknown type, or its library (pymodbus, jeepney) is not installed.
    """
    if name not in _REGISTRY and name in BUILTIN:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            raise ConfigError(ConfigProblem(
                f"{KEY}.type", f"a charger whose library is installed ({name} needs "
                f"{exc.name or exc})", repr(name))) from exc
    if name not in _REGISTRY:
        raise ConfigError(ConfigProblem(f"{KEY}.type", f"one of {', '.join(available())}",
                                        repr(name)))
    return _REGISTRY[name]


@dataclass(frozen=True)
class Choice:
    """``executor.ev_charger: {type: ..., <that charger's options>}`` (optional: absent =
    no EV charger; executor/config.py validates it)."""

    type: str = opt(help="The EV charger (executor/evse/: alfen, victron_evcs)",
                    choices=Choices(available))


def validate(name: str, options: dict, problems: list) -> object | None:
    """The charger's ``Config`` from ``options`` (problems appended, naming the key)."""
    try:
        cls = get(name)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    return build(cls.Config, options, KEY, problems)


def create(name: str, config, *, clock):
    """Build the charger ``name`` from its validated ``Config``."""
    return get(name)(config, clock=clock)
