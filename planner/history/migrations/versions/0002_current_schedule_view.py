"""The current_schedule view: the slots of the newest plan.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE VIEW current_schedule AS "
        "SELECT s.* FROM plan_slot s "
        "WHERE s.plan_id = (SELECT MAX(h.id) FROM plan_history h)"
    )


def downgrade() -> None:
    op.execute("DROP VIEW current_schedule")
