"""The manual overrides in SQL (table ``manual_override``, migration 0009): add, list, clear.

The record is :class:`executor.overrides.Override` (the executor reads the same thing from
its overrides file). ``clear`` never deletes: it stamps ``cleared_at``/``cleared_by``, so the
history keeps who overruled the plan, when and why. An override whose ``end`` has passed is
expired: not in force, listed only on request.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from executor.overrides import Override
from planner.history.rows import from_db_time, to_db_time
from planner.history.schema import manual_override
from planner.history.store import Store

__all__ = ["add", "clear", "in_force", "listing"]

_T = manual_override


def _row(o: Override, now: datetime) -> dict:
    return {"kind": o.kind, "target": o.target, "start_at": to_db_time(o.start),
            "end_at": to_db_time(o.end), "soc_pct": o.soc_pct, "kw": o.kw,
            "reason": o.reason, "created_by": o.created_by[:128],
            "created_at": to_db_time(o.created_at or now)}


def _override(r: sa.RowMapping) -> Override:
    return Override(kind=r["kind"], target=r["target"],
                    start=from_db_time(r["start_at"]).to_pydatetime(),
                    end=from_db_time(r["end_at"]).to_pydatetime(),
                    soc_pct=r["soc_pct"], kw=r["kw"], reason=r["reason"],
                    created_by=r["created_by"],
                    created_at=from_db_time(r["created_at"]).to_pydatetime(), id=int(r["id"]))


def add(store: Store, o: Override, now: datetime) -> Override:
    """Store ``o``; returns it with its ``id`` and ``created_at``."""
    store.ensure_schema()
    row = _row(o, now)

    def run() -> int:
        with store.engine.begin() as conn:
            return int(conn.execute(_T.insert().values(**row)).inserted_primary_key[0])

    new_id = store._guard("saving an override", run)
    return Override(**{**o.__dict__, "id": new_id,
                       "created_at": from_db_time(row["created_at"]).to_pydatetime()})


def listing(store: Store, now: datetime, expired: bool = False) -> list[Override]:
    """The overrides not cleared and not yet over at ``now`` (with ``expired``: every
    override, cleared and past ones too), by start."""
    store.ensure_schema()
    q = sa.select(_T).order_by(_T.c.start_at, _T.c.id)
    if not expired:
        q = q.where(_T.c.cleared_at.is_(None), _T.c.end_at > to_db_time(now))

    def run() -> list[Override]:
        with store.engine.connect() as conn:
            return [_override(r) for r in conn.execute(q).mappings()]

    return store._guard("listing overrides", run)


def in_force(store: Store, start: datetime, end: datetime) -> list[Override]:
    """The overrides not cleared that overlap ``[start, end)`` (a plan's horizon)."""
    store.ensure_schema()
    q = (sa.select(_T).where(_T.c.cleared_at.is_(None), _T.c.end_at > to_db_time(start),
                             _T.c.start_at < to_db_time(end))
         .order_by(_T.c.start_at, _T.c.id))

    def run() -> list[Override]:
        with store.engine.connect() as conn:
            return [_override(r) for r in conn.execute(q).mappings()]

    return store._guard("reading overrides", run)


def clear(store: Store, now: datetime, by: str, override_id: int | None = None) -> int:
    """Clear override ``override_id`` (None: every override not over yet); returns how many
    were cleared (0: no such override in force)."""
    store.ensure_schema()
    q = _T.update().where(_T.c.cleared_at.is_(None))
    if override_id is not None:
        q = q.where(_T.c.id == int(override_id))
    else:
        q = q.where(_T.c.end_at > to_db_time(pd.Timestamp(now)))
    q = q.values(cleared_at=to_db_time(pd.Timestamp(now)), cleared_by=by[:128])

    def run() -> int:
        with store.engine.begin() as conn:
            return int(conn.execute(q).rowcount)

    return store._guard("clearing overrides", run)
