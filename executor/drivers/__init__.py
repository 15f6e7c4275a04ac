"""Driver registry: ``type:`` name → driver class (same shape as ``planner/providers``).

A driver is one module in this package that decorates its class with ``@register("name")``,
``name`` being the module's name: the registry finds the built-in drivers by listing the
package (every public module except :mod:`executor.drivers.base`, the interface), so a new
driver is a new file and nothing else. Driver modules are imported on demand by :func:`get`,
so a GX without pymodbus can still run ``victron_dbus`` and a remote host without D-Bus can run
``victron_modbus``. A driver defined elsewhere (a test, a plugin) is available once the module
that registers it has been imported.
"""

from __future__ import annotations

import pkgutil

from executor.configspec import build
from executor.errors import ConfigError
from executor.registry import Registry

#: modules of this package that are not drivers (private helpers start with ``_``)
_NOT_DRIVERS = frozenset({"base"})


def _discover() -> tuple[str, ...]:
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                        if not m.name.startswith("_") and m.name not in _NOT_DRIVERS))


#: every driver shipped with Helios: name = module name = ``type:`` value (found, not listed)
BUILTIN = _discover()

_registry = Registry(__name__, BUILTIN, "driver", "executor.driver")
register = _registry.register
available = _registry.available
#: ``get(name)``: the driver class registered as ``name`` (``executor.drivers.<name>``
#: imported on demand); a ConfigError naming ``executor.driver.type`` when it is unknown or
#: its library is not installed
get = _registry.get


def create(name: str, options: dict, *, clock, limits=None, key_path: str = "executor.driver"):
    """Validate ``options`` against the driver's ``Config`` and build the driver.

    Parameters
    ----------
    name : str
        ``executor.driver.type``.
    options : dict
        The other keys of ``executor.driver``.
    clock : callable
        ``clock() -> datetime`` (aware UTC); injected so tests run faster than real time.
    limits : executor.control.Limits, optional
        Source of option defaults for drivers that define ``config_defaults(limits)``.

    Raises
    ------
    ConfigError
        Unknown driver or invalid options, naming ``executor.driver.<key>``.
    """
    cls = get(name)
    problems: list = []
    defaults = cls.config_defaults(limits) \
        if limits is not None and hasattr(cls, "config_defaults") else None
    config = build(cls.Config, options, key_path, problems, defaults)
    if problems:
        raise ConfigError(problems)
    return cls(config, clock=clock)
