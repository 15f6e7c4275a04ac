"""Switched loads (water heater, deferrable loads) on relays: ``executor.relays: [{type:
gx_relay | shelly, device: NAME, ...}, ...]``.

An :class:`executor.registry.Registry` of its own, like :mod:`executor.evse`: a relay driver
is one module of this package that decorates its class with ``@register("<module name>")``;
modules are imported on demand, so a host without D-Bus can run ``shelly`` and a GX without
``urllib``'s TLS stack loaded runs ``gx_relay``. See :mod:`executor.relays.base` for the
interface and the plan-following rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from executor.configspec import Choices, build, opt
from executor.errors import ConfigError, ConfigProblem
from executor.registry import Registry

KEY = "executor.relays"
_registry = Registry(__name__, ("gx_relay", "shelly"), "relay", KEY)
#: the relay drivers shipped with Helios: name = module name = ``type:`` value
BUILTIN = _registry.builtin
register = _registry.register
available = _registry.available
#: ``get(name, key=KEY)``: ``key`` names the entry (``executor.relays[0]``) in errors
get = _registry.get


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
