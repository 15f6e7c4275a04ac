"""plan_device: the flexible devices' planned power per slot (issue 13).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

One row per (plan, slot, device) with ``power_kw`` (+ = drawn from the home bus): exactly
``slots[i].devices.<name>.power_kw`` of schedule.json (water heater, deferrable loads). A
table rather than a JSON column on ``plan_slot``: "heater energy per day" is then one
``GROUP BY``, devices come and go without a migration, and plans without devices add no row.
Deleting a plan deletes its rows (``ON DELETE CASCADE``; the store also prunes them first).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_UTC = sa.DateTime().with_variant(sa.dialects.mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "plan_device",
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plan_history.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("slot_start", _UTC, primary_key=True, comment="[UTC]"),
        sa.Column("device", sa.String(64), primary_key=True,
                  comment="schedule.json devices key (water_heater, a load's name)"),
        sa.Column("power_kw", sa.Double, nullable=False, comment="+ = drawn from the bus"),
    )


def downgrade() -> None:
    op.drop_table("plan_device")
