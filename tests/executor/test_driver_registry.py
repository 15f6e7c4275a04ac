"""The driver registry is open: built-in drivers are found in the package, others register."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from executor import drivers
from executor.configspec import opt
from executor.drivers.base import Measurement, Setpoint
from executor.errors import ConfigError


def test_builtin_drivers_are_the_package_modules_and_register_under_their_name():
    folder = Path(drivers.__file__).parent
    modules = sorted(p.stem for p in folder.glob("*.py")
                     if not p.stem.startswith("_") and p.stem != "base")
    assert list(drivers.BUILTIN) == modules and "simulated" in modules
    for name in modules:
        try:
            importlib.import_module(f"executor.drivers.{name}")
        except ImportError:  # an optional library (pymodbus, jeepney) is not installed
            continue
        assert drivers.get(name).__module__ == f"executor.drivers.{name}"


def test_a_driver_defined_elsewhere_registers_and_is_validated(monkeypatch):
    monkeypatch.setattr(drivers._registry, "entries", dict(drivers._registry.entries))

    @drivers.register("toy")
    class ToyDriver:
        @dataclass(frozen=True)
        class Config:
            power_w: float = opt(100.0, "Toy power", "W", ge=0)

        def __init__(self, config, *, clock):
            self.config, self.clock = config, clock

        def read(self) -> Measurement:
            return Measurement(self.clock(), 50.0, 0.0, self.config.power_w, 0.0)

        def apply(self, setpoint: Setpoint) -> None:
            pass

        def release(self) -> None:
            pass

    assert "toy" in drivers.available()
    drv = drivers.create("toy", {"power_w": 250}, clock=lambda: None)
    assert isinstance(drv, ToyDriver) and drv.config.power_w == 250.0
    with pytest.raises(ConfigError, match=r"executor.driver.power_w: expected a number >= 0"):
        drivers.create("toy", {"power_w": -1}, clock=lambda: None)
    with pytest.raises(ConfigError, match=r"executor.driver.type: expected one of dry_run, "
                                          r"(\w+, )*simulated, toy, victron_dbus, victron_modbus"):
        drivers.get("fronius")
