"""plan_slot.energy_value_eur_per_kwh may be NULL: a solve without duals (issue 16).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The marginal value of stored energy is the LP's dual; a solver that returns none leaves it
NaN. That is no reason to lose the plan (schedule.json does not carry it), so the history
stores NULL there instead of failing after schedule.json was written. ``current_schedule``
is dropped and created again around the change (see 0003: MariaDB fixes the view's columns,
SQLite rebuilds the table in batch mode).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_VIEW = (
    "CREATE VIEW current_schedule AS "
    "SELECT s.* FROM plan_slot s "
    "WHERE s.plan_id = (SELECT MAX(h.id) FROM plan_history h)"
)


def _set_nullable(nullable: bool) -> None:
    op.execute("DROP VIEW current_schedule")
    with op.batch_alter_table("plan_slot") as batch:
        batch.alter_column("energy_value_eur_per_kwh", existing_type=sa.Double,
                           nullable=nullable)
    op.execute(_VIEW)


def upgrade() -> None:
    _set_nullable(True)


def downgrade() -> None:
    # the older schema has no "unknown": a missing value becomes 0 (neither worth charging
    # for nor discharging for); nothing else changes
    op.execute("UPDATE plan_slot SET energy_value_eur_per_kwh = 0 "
               "WHERE energy_value_eur_per_kwh IS NULL")
    _set_nullable(False)
