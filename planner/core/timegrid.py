"""The slot grid: UTC, left-labelled, fixed slot length; and resampling onto it.

A slot labelled ``t`` covers ``[t, t + slot_s)``. Everything here is UTC; naive timestamps are
rejected, never assumed UTC. Local time (DST days with 23 or 25 hours) never enters the grid.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from planner.core.errors import DataError, MissingSlotsError, NaiveTimestampError


def to_utc(ts: datetime | pd.Timestamp | str, what: str = "timestamp") -> pd.Timestamp:
    """Convert an aware timestamp (or ISO 8601 string with offset) to a UTC ``pd.Timestamp``.

    Raises
    ------
    NaiveTimestampError
        When the value carries no time zone.
    """
    try:
        out = pd.Timestamp(ts)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what}: expected an ISO 8601 timestamp, got {ts!r}") from exc
    if out.tzinfo is None:
        raise NaiveTimestampError(
            f"{what}: {ts!s} has no time zone; give an offset such as Z or +01:00")
    return out.tz_convert("UTC")


def floor_to_slot(ts: pd.Timestamp, slot_s: int) -> pd.Timestamp:
    """The start of the slot containing ``ts`` (UTC)."""
    ts = to_utc(ts)
    return ts.floor(f"{slot_s}s")


def make_index(start: pd.Timestamp, n_slots: int, slot_s: int) -> pd.DatetimeIndex:
    """``n_slots`` slot starts from ``start`` (UTC, left-labelled), named ``slot_start``."""
    return pd.date_range(to_utc(start), periods=n_slots, freq=f"{slot_s}s", name="slot_start")


def utcnow() -> pd.Timestamp:
    """The current time, UTC."""
    return pd.Timestamp(datetime.now(timezone.utc))


def to_slot_grid(series: pd.Series, resolution_s: int, index: pd.DatetimeIndex, slot_s: int,
                 how: str, what: str) -> np.ndarray:
    """Put a regular, left-labelled series onto the slot grid.

    Parameters
    ----------
    series
        Values indexed by UTC interval start, regular with step ``resolution_s``.
    resolution_s
        Length of each source interval. [s]
    index
        Slot starts to produce. [UTC]
    slot_s
        Slot length. [s]
    how
        ``"hold"`` (prices: each slot takes the value of the interval that contains it when
        the source is coarser) or ``"mean"`` (powers); when the source is finer than the slot
        both average the source intervals inside the slot.
    what
        Name used in error messages (e.g. ``"prices"``).

    Raises
    ------
    MissingSlotsError
        Naming the first slot the series does not cover.
    DataError
        When the two resolutions are not multiples of each other.
    """
    if how not in ("hold", "mean"):
        raise ValueError(how)
    src = series.index
    if resolution_s >= slot_s:
        if resolution_s % slot_s:
            raise DataError(f"{what}: resolution {resolution_s} s is not a multiple of the "
                            f"{slot_s} s slot")
        pos = src.searchsorted(index, side="right") - 1
        ok = pos >= 0
        safe = np.where(ok, pos, 0)
        ends = src[safe] + pd.Timedelta(seconds=resolution_s)
        ok &= np.asarray(index < ends)
        if not ok.all():
            first = index[int(np.argmin(ok))]
            raise MissingSlotsError(f"{what}: no value for the slot starting {first.isoformat()}")
        return series.to_numpy(dtype=float)[safe]
    if slot_s % resolution_s:
        raise DataError(f"{what}: the {slot_s} s slot is not a multiple of the source "
                        f"resolution {resolution_s} s")
    per_slot = slot_s // resolution_s
    sub = series[(src >= index[0]) & (src < index[-1] + pd.Timedelta(seconds=slot_s))]
    grouped = sub.groupby(sub.index.floor(f"{slot_s}s"))
    means = grouped.mean().reindex(index)
    counts = grouped.count().reindex(index).fillna(0)
    ok = (counts.to_numpy() == per_slot)
    if not ok.all():
        first = index[int(np.argmin(ok))]
        raise MissingSlotsError(f"{what}: incomplete data for the slot starting "
                                f"{first.isoformat()}")
    return means.to_numpy(dtype=float)


def horizon_slots(start: pd.Timestamp, data_end: pd.Timestamp, horizon_h: float,
                  slot_s: int) -> int:
    """Number of slots from ``start`` to min(start + horizon, data_end), whole slots only."""
    end = min(start + timedelta(hours=horizon_h), data_end)
    return max(0, int((end - start).total_seconds() // slot_s))
