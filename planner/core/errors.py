"""The Helios planner's exception hierarchy; the CLI maps each branch to an exit code.

::

    HeliosError
    ├── ConfigError            exit 2   one or more config problems, each naming its key path
    ├── ProviderError          exit 3
    │   ├── ProviderUnavailable         transient (timeout, 5xx)
    │   └── ProviderConfigError         permanent (bad token, unknown area)
    ├── DataError              exit 3
    │   ├── MissingSlotsError           the horizon is not covered
    │   └── NaiveTimestampError
    ├── OptimizationError      exit 4
    │   ├── InfeasibleError
    │   ├── UnboundedError
    │   └── SolverFailedError
    ├── OutputError            exit 5   schedule.json could not be written
    └── StorageError           exit 6   the plan history database failed (schedule.json is
                                        already written and stays as it is)
"""

from __future__ import annotations

from executor.errors import ConfigProblem  # one class for both programs (executor.configspec)


class HeliosError(Exception):
    """Base class of every error the planner reports to the user (no traceback)."""

    exit_code = 1


class ConfigError(HeliosError):
    """The configuration is invalid; carries one :class:`ConfigProblem` per problem."""

    exit_code = 2

    def __init__(self, problems: list[ConfigProblem] | ConfigProblem, source: str = ""):
        self.problems = [problems] if isinstance(problems, ConfigProblem) else list(problems)
        self.source = source
        head = f"invalid configuration{f' in {source}' if source else ''}"
        body = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{body}")


class ProviderError(HeliosError):
    """An input provider failed."""

    exit_code = 3

    def __init__(self, provider: str, message: str):
        self.provider = provider
        super().__init__(f"{provider}: {message}")


class ProviderUnavailable(ProviderError):
    """Transient provider failure (timeout, HTTP 5xx, connection refused)."""


class ProviderConfigError(ProviderError):
    """Permanent provider failure (bad token, unknown area, unreadable file)."""


class DataError(HeliosError):
    """Input data are inconsistent (gaps, duplicates, naive timestamps, too short)."""

    exit_code = 3


class MissingSlotsError(DataError):
    """The inputs do not cover the planning horizon."""


class NaiveTimestampError(DataError):
    """A timestamp without time zone was found where UTC was required."""


class OptimizationError(HeliosError):
    """The optimiser did not produce a usable plan."""

    exit_code = 4


class InfeasibleError(OptimizationError):
    """The problem has no feasible solution (should not happen: wishes are soft)."""


class UnboundedError(OptimizationError):
    """The problem is unbounded (a modelling error)."""


class SolverFailedError(OptimizationError):
    """Every configured solver failed numerically."""


class OutputError(HeliosError):
    """A result could not be written (schedule.json, report)."""

    exit_code = 5


class StorageError(HeliosError):
    """The plan history database could not be reached, migrated or written.

    The message names the database by its URL with the password hidden.
    """

    exit_code = 6
