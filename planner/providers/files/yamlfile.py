"""Reading a small data file (an outage list, a sweep grid) with errors that name it."""

from __future__ import annotations

from pathlib import Path

import yaml

from planner.core.errors import DataError


def read_text(path: Path, what: str) -> str:
    """The file's UTF-8 text.

    Raises
    ------
    DataError
        ``"{what}: cannot read: ..."``.
    """
    try:
        return Path(path).read_text("utf-8")
    except OSError as exc:
        raise DataError(f"{what}: cannot read: {exc.strerror or exc}") from None


def read_yaml(path: Path, what: str) -> object:
    """The file's YAML document (any type: the caller checks its shape).

    Raises
    ------
    DataError
        ``"{what}: cannot read: ..."`` or ``"{what}: not valid YAML: ..."``.
    """
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"{what}: not valid YAML: {exc}") from None
