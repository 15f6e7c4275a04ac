"""Live state of charge: from the inverter through the executor's driver, or from SQL.

``state: {type: gx}`` reads one measurement through exactly the driver code the executor
uses (``executor.live.read_measurement``: same registers, paths, signs and "0 means unknown"
handling), read-only, configured by the ``executor.driver`` section of the same config file.
``state: {type: measurements}`` takes the newest SoC the executor stored in the
``measurements`` table (``storage.url``), refusing one older than ``max_age_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from executor import errors as ex_errors
from executor.configspec import opt
from executor.live import read_measurement
from planner.core.errors import ProviderConfigError, ProviderUnavailable, StorageError
from planner.history.store import Store
from planner.providers import register
from planner.providers.base import ProviderContext


@register("state", "gx")
class GxState:
    """State of charge read live from the GX (D-Bus on the GX, Modbus-TCP elsewhere)."""

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, config: Config, context: ProviderContext):
        section = dict((context.config.executor if context.config is not None else {}) or {})
        driver = section.get("driver", {})
        if isinstance(driver, str):
            driver = {"type": driver}
        if not isinstance(driver, dict) or "type" not in driver:
            raise ProviderConfigError("state (gx)", "executor.driver: expected a mapping with "
                                      "a 'type' (victron_dbus or victron_modbus), got none")
        self.driver_type = driver["type"]
        self.options = {k: v for k, v in driver.items() if k != "type"}

    def read(self, now: pd.Timestamp) -> float:
        """The live SoC. [%]

        Raises
        ------
        ProviderUnavailable
            The GX could not be read (transient).
        ProviderConfigError
            The driver options are invalid.
        """
        try:
            m = read_measurement(self.driver_type, self.options)
        except ex_errors.ConfigError as exc:
            raise ProviderConfigError("state (gx)", str(exc)) from exc
        except ex_errors.ExecutorError as exc:
            raise ProviderUnavailable("state (gx)", f"cannot read the GX: {exc}") from exc
        if m.soc_pct is None:
            raise ProviderUnavailable("state (gx)", "the GX reports no state of charge")
        return float(m.soc_pct)


@register("state", "measurements")
class MeasuredState:
    """The newest state of charge stored by the executor in the SQL history."""

    @dataclass(frozen=True)
    class Config:
        max_age_s: int = opt(900, "Refuse a measurement older than this", "s", gt=0)

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config
        self.cfg = context.config

    def read(self, now: pd.Timestamp) -> float:
        """The newest stored SoC, if recent enough. [%]"""
        try:
            with Store.from_config(self.cfg) as store:
                latest = store.latest_soc(now)
        except StorageError as exc:
            raise ProviderUnavailable("state (measurements)", str(exc)) from exc
        if latest is None:
            raise ProviderUnavailable("state (measurements)",
                                      "no state of charge stored yet (is helios-executor "
                                      "running with telemetry to this database?)")
        at, soc = latest
        age_s = (now - at).total_seconds()
        if age_s > self.config.max_age_s:
            raise ProviderUnavailable(
                "state (measurements)", f"the newest state of charge is {age_s:.0f} s old "
                f"(measured {at.strftime('%Y-%m-%dT%H:%M:%SZ')}); max_age_s is "
                f"{self.config.max_age_s}")
        return soc
