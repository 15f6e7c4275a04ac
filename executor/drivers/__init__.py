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

import importlib
import pkgutil
from collections.abc import Callable

from executor.configspec import build
from executor.errors import ConfigError, ConfigProblem

#: modules of this package that are not drivers (private helpers start with ``_``)
_NOT_DRIVERS = frozenset({"base"})


def _discover() -> tuple[str, ...]:
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                        if not m.name.startswith("_") and m.name not in _NOT_DRIVERS))


#: every driver shipped with Helios: name = module name = ``type:`` value (found, not listed)
BUILTIN = _discover()

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make a driver available under ``type: name``."""

    def wrap(cls: type) -> type:
        _REGISTRY[name] = cls
        return cls

    return wrap


def get(name: str) -> type:
    """The driver class registered as ``name`` (imports ``executor.drivers.<name>`` on demand).

    Raises
    ------
    ConfigError
        ``executor.driver.type`` is unknown, or its library is not installed.
    """
    if name not in _REGISTRY and name in BUILTIN:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            raise ConfigError(ConfigProblem(
                "executor.driver.type", f"a driver whose library is installed ({name} needs "
                f"{exc.name or exc})", repr(name))) from exc
    if name not in _REGISTRY:
        raise ConfigError(ConfigProblem("executor.driver.type",
                                        f"one of {', '.join(available())}", repr(name)))
    return _REGISTRY[name]


def available() -> tuple[str, ...]:
    """Names of the drivers: the built-in ones and any registered from elsewhere, sorted."""
    return tuple(sorted(set(BUILTIN) | set(_REGISTRY)))


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
