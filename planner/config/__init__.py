"""Configuration: config.yaml + ``!secret`` indirection → frozen, validated dataclasses.

Every key is declared once, in a section dataclass (:mod:`planner.config.sections`), with its
unit, default, range and a help text (``helios check-config --explain`` prints them).
Validation (:mod:`executor.configspec`, the engine the executor's own section goes through
too) is strict and complete: unknown keys, wrong types, out-of-range values and, in
:mod:`planner.config.checks`, inconsistent combinations are all collected and reported
together, one line per problem, each naming the dotted key path, what was expected and what
was found (:class:`planner.core.errors.ConfigError`, exit code 2). Reading the file, secrets
and relative paths: :mod:`planner.config.loading`.

Callers use ``from planner import config as config_mod; config_mod.load(path)``.
"""

from __future__ import annotations

from executor.configspec import Secret, build, opt, section
from planner.config.checks import config_warnings
from planner.config.loading import default, explain, from_mapping, load, with_demo_providers
from planner.config.sections import (
    DEFAULT_PROVIDERS,
    BatteryConfig,
    GridConfig,
    HeliosConfig,
    MqttConfig,
    OutputConfig,
    PlanningConfig,
    ProviderConfig,
    ReportConfig,
    SiteConfig,
    StorageConfig,
    TariffConfig,
    TariffParts,
)
from planner.core.errors import ConfigError, ConfigProblem

__all__ = ["DEFAULT_PROVIDERS", "BatteryConfig", "ConfigError", "ConfigProblem", "GridConfig",
           "HeliosConfig", "MqttConfig", "OutputConfig", "PlanningConfig", "ProviderConfig",
           "ReportConfig",
           "Secret", "SiteConfig", "StorageConfig", "TariffConfig", "TariffParts", "build",
           "config_warnings", "default", "explain", "from_mapping", "load", "opt", "section",
           "with_demo_providers"]
