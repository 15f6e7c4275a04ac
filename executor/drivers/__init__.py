"""Driver registry: ``type:`` name → driver class (same shape as ``planner/providers``).

Driver modules are imported lazily by :func:`create`, so a GX without pymodbus can still run
``victron_dbus`` and a remote host without D-Bus can run ``victron_modbus``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from executor.errors import ConfigError, ConfigProblem

#: every driver shipped with Helios: name = module name = ``type:`` value
BUILTIN = ("simulated", "dry_run", "victron_dbus", "victron_modbus")

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
            importlib.import_module(f"executor.drivers.{name}")
        except ImportError as exc:
            raise ConfigError(ConfigProblem(
                "executor.driver.type", f"a driver whose library is installed ({name} needs "
                f"{exc.name or exc})", repr(name))) from exc
    if name not in _REGISTRY:
        raise ConfigError(ConfigProblem("executor.driver.type",
                                        f"one of {', '.join(BUILTIN)}", repr(name)))
    return _REGISTRY[name]


def available() -> tuple:
    """Names of the built-in drivers."""
    return BUILTIN


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
    from executor.config import build

    cls = get(name)
    problems: list = []
    defaults = cls.config_defaults(limits) \
        if limits is not None and hasattr(cls, "config_defaults") else None
    config = build(cls.Config, options, key_path, problems, defaults)
    if problems:
        raise ConfigError(problems)
    return cls(config, clock=clock)
