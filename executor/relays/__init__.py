"""Switched loads (water heater, deferrable loads) on relays: ``executor.relays: [{type:
gx_relay | shelly, device: NAME, ...}, ...]``.

A small registry of its own, like :mod:`executor.evse`: a relay driver is one module of this
package that decorates its class with ``@register("<module name>")``; modules are imported
on demand, so a host without D-Bus can run ``shelly`` and a GX without ``urllib``'s TLS
stack loaded runs ``gx_relay``. See :mod:`executor.relays.base` for the interface and the
plan-following rule.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from executor.configspec import Choices, build, opt
from executor.errors import ConfigError, ConfigProblem

#: the relay drivers shipped with Helios: name = module name = ``type:`` value
BUILTIN = ("gx_relay", "shelly")
KEY = "executor.relays"

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make a relay driver available under ``type: name``."""

    def wrap(cls: type) -> type:
        _REGISTRY[name] = cls
        return cls

    return wrap


def available() -> tuple[str, ...]:
    """The built-in relay drivers and any registered from elsewhere, sorted."""
    return tuple(sorted(set(BUILTIN) | set(_REGISTRY)))


def get(name: str, key: str = KEY) -> type:
    """The relay class registered as ``name`` (its module imported on demand).

    Raises
    ------
    ConfigError
        Unknown type, or its library (jeepney / dbus-python) is not installed; ``key`` names
        the entry (``executor.relays[0]``).
    """
    if name not in _REGISTRY and name in BUILTIN:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            raise ConfigError(ConfigProblem(
                f"{key}.type", f"a relay whose library is installed ({name} needs "
                f"{exc.name or exc})", repr(name))) from exc
    if name not in _REGISTRY:
        raise ConfigError(ConfigProblem(f"{key}.type", f"one of {', '.join(available())}",
                                        repr(name)))
    return _REGISTRY[name]


@dataclass(frozen=True)
class Choice:
    """One entry of ``executor.relays: [{type: ..., <that relay's options>}]`` (optional:
    absent = no relays; executor/config.py validates it)."""

    type: str = opt(help="The relay (executor/relays/: gx_relay, shelly)",
                    choices=Choices(available))


def validate(name: str, options: dict, problems: list, key: str = KEY) -> object | None:
    """The relay's ``Config`` from ``options`` (problems appended, naming ``key``), then the
    driver's own ``check(config)`` of rules across keys, if it has one."""
    try:
        cls = get(name, key)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    cfg = build(cls.Config, options, key, problems)
    check = getattr(cls, "check", None)
    if cfg is not None and check is not None:
        found = [ConfigProblem(f"{key}.{k}", expected, got) for k, expected, got in check(cfg)]
        problems.extend(found)
        return None if found else cfg
    return cfg


def create(name: str, config, *, clock):
    """Build the relay ``name`` from its validated ``Config``."""
    return get(name)(config, clock=clock)
