"""EV charger (EVSE) drivers: ``executor.ev_charger: {type: victron_evcs | alfen, ...}``.

An :class:`executor.registry.Registry` of its own (the battery drivers' registry lists every
public module of ``executor/drivers/``, so chargers live here): a charger is one module of
this package that decorates its class with ``@register("<module name>")``; modules are
imported on demand, so a GX without pymodbus can run ``victron_evcs`` and a host
without D-Bus ``alfen``.
See :mod:`executor.evse.base` for the interface and the plan-following rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from executor.configspec import Choices, build, opt
from executor.errors import ConfigError
from executor.registry import Registry

KEY = "executor.ev_charger"
_registry = Registry(__name__, ("alfen", "kia_hyundai", "tesla", "victron_evcs"), "charger",
                     KEY)
#: the chargers shipped with Helios: name = module name = ``type:`` value
BUILTIN = _registry.builtin
register = _registry.register
available = _registry.available
get = _registry.get


@dataclass(frozen=True)
class Choice:
    """``executor.ev_charger: {type: ..., <that charger's options>}`` (optional: absent =
    no EV charger; executor/config.py validates it)."""

    type: str = opt(help="The EV charger (executor/evse/: alfen, victron_evcs; car-side: "
                    "tesla, kia_hyundai)",
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
