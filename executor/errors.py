"""The executor's own small, stdlib-only exception hierarchy (STYLE.md §3.5).

The executor's rule is simple: any error during a tick → ``driver.release()`` and the reason is
logged. Only configuration errors and a foreign controller owning the inverter stop the process
(exit codes below), because retrying cannot fix them.
"""

from __future__ import annotations


class ExecutorError(Exception):
    """Base class of every error the executor raises on purpose."""

    exit_code = 1


class ConfigProblem:
    """One configuration problem: the dotted key path, what was expected, what was found."""

    __slots__ = ("key_path", "expected", "got")

    def __init__(self, key_path: str, expected: str, got: str):
        self.key_path = key_path
        self.expected = expected
        self.got = got

    def __str__(self) -> str:
        return f"{self.key_path}: expected {self.expected}, got {self.got}"

    def __repr__(self) -> str:
        return f"ConfigProblem({str(self)!r})"


class ConfigError(ExecutorError):
    """The ``executor:`` configuration is invalid (exit code 2, like ``helios``)."""

    exit_code = 2

    def __init__(self, problems, source: str = ""):
        if isinstance(problems, ConfigProblem):
            problems = [problems]
        self.problems = list(problems)
        self.source = source
        head = f"invalid executor configuration{f' in {source}' if source else ''}"
        body = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{body}")


class DriverError(ExecutorError):
    """A driver could not read or write the device."""

    exit_code = 3


class DriverUnavailable(DriverError):
    """Transient: the device is unreachable (connection refused, timeout, bus gone)."""


class ForeignControllerError(DriverError):
    """Another controller owns the inverter (e.g. Dynamic ESS in VRM mode): refuse to run."""

    exit_code = 5


class PlanError(ExecutorError):
    """No usable plan: missing, unreadable, corrupt or stale."""

    exit_code = 4
