"""One plug-in registry for the executor's device kinds (battery drivers, EV chargers, relays).

A device module decorates its class with ``@register("<module name>")``; the built-in modules
of a package are imported on demand by :meth:`Registry.get`, so a GX without pymodbus can run
the D-Bus devices and a host without D-Bus the Modbus/HTTP ones. Stdlib only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from executor.errors import ConfigError, ConfigProblem


class Registry:
    """``type:`` name → class for the modules of ``package``.

    ``what`` names one device in errors ("driver", "charger", "relay"); ``key`` is the config
    key whose ``.type`` an error names (overridable per call, e.g. ``executor.relays[1]``).
    """

    def __init__(self, package: str, builtin: Iterable[str], what: str, key: str) -> None:
        self.package, self.what, self.key = package, what, key
        #: the modules shipped with Helios: name = module name = ``type:`` value
        self.builtin = tuple(builtin)
        self.entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: make a class available under ``type: name``."""

        def wrap(cls: type) -> type:
            self.entries[name] = cls
            return cls

        return wrap

    def available(self) -> tuple[str, ...]:
        """The built-in names and any registered from elsewhere, sorted."""
        return tuple(sorted(set(self.builtin) | set(self.entries)))

    def get(self, name: str, key: str | None = None) -> type:
        """The class registered as ``name`` (its built-in module imported on demand).

        Raises
        ------
        ConfigError
            Unknown type, or its library is not installed, naming ``<key>.type``.
        """
        key = self.key if key is None else key
        if name not in self.entries and name in self.builtin:
            try:
                importlib.import_module(f"{self.package}.{name}")
            except ImportError as exc:
                raise ConfigError(ConfigProblem(
                    f"{key}.type", f"a {self.what} whose library is installed ({name} needs "
                    f"{exc.name or exc})", repr(name))) from exc
        if name not in self.entries:
            raise ConfigError(ConfigProblem(f"{key}.type",
                                            f"one of {', '.join(self.available())}", repr(name)))
        return self.entries[name]
