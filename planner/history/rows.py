"""The plan history's rows in Python: a run as a :class:`RunRecord`, UTC conversion at the
database boundary, and the redaction of secret values from messages.

All timestamps are stored as UTC without a zone (``DATETIME``/ISO text); this module converts
at the boundary (aware UTC ``pandas.Timestamp`` outside).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from planner.history.schema import INTENT_SLOT_FIELDS


def to_db_time(ts: Any) -> datetime:
    """Aware timestamp → naive UTC ``datetime`` for the database (naive input is rejected)."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp {ts!r}: expected UTC")
    return ts.tz_convert("UTC").tz_localize(None).to_pydatetime()


def from_db_time(value: Any) -> pd.Timestamp:
    """Naive UTC value from the database → aware UTC ``pandas.Timestamp``."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def missing(x: Any) -> bool:
    """None, NaN or pd.NA: how pandas may hold a NULL (a slot without intent)."""
    return x is None or (not isinstance(x, str) and bool(pd.isna(x)))


def none_for_missing(slots: pd.DataFrame) -> pd.DataFrame:
    """The intent columns with None (not NaN) where a slot has no intent."""
    slots = slots.copy()
    for name in INTENT_SLOT_FIELDS:
        values = slots[name]
        if any(missing(v) for v in values):
            slots[name] = pd.Series([None if missing(v) else v for v in values],
                                    index=slots.index, dtype=object)
    return slots


def finite(x: Any) -> float:
    """``x`` as a float; NaN and infinities are refused (``ValueError``)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x!r}")
    return x


@dataclass(frozen=True)
class RunRecord:
    """One run as stored: the ``plan_history`` row and its slots.

    ``run`` holds the ``plan_history`` columns (timestamps as aware UTC ``pd.Timestamp``);
    ``slots`` is indexed by ``slot_start`` (UTC) with :data:`SLOT_FIELDS` as columns; the
    :data:`INTENT_SLOT_FIELDS` are None in a slot without intent (a 1.0 plan). The
    report renders from this, whether it comes from a fresh plan or from the database.
    """

    run: dict
    slots: pd.DataFrame
    plan_id: int | None = None
    #: the devices' planned power [kW] indexed like ``slots``, one column per device
    #: (``plan_device``); None or no columns without devices
    devices: pd.DataFrame | None = None
    #: the devices' planned SoC at each slot's end [%] (``plan_device.soc_pct``, 0008): a
    #: column per device that has one (further batteries, the car), NaN where unknown
    device_soc: pd.DataFrame | None = None


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every secret value in ``text`` by ``***``."""
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text
