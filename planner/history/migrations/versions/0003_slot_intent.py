"""Per-slot intent (schedule.json 1.1): plan_slot.intent, battery_min_kw, battery_max_kw.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The columns are nullable: rows saved before this revision stay NULL, i.e. a 1.0 plan whose
intent the executor derives from the planned flows.

``current_schedule`` is dropped and created again around the change. MariaDB expands the
view's ``SELECT s.*`` into a fixed column list when the view is created, so without this the
view would not show the new columns (and after a downgrade it would name columns that no
longer exist). SQLite (3.40) expands ``*`` on every use and needs nothing; the view is
recreated there too so that both databases take one code path.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_VIEW = (
    "CREATE VIEW current_schedule AS "
    "SELECT s.* FROM plan_slot s "
    "WHERE s.plan_id = (SELECT MAX(h.id) FROM plan_history h)"
)


def upgrade() -> None:
    op.execute("DROP VIEW current_schedule")
    op.add_column("plan_slot", sa.Column("intent", sa.String(16), nullable=True))
    op.add_column("plan_slot", sa.Column("battery_min_kw", sa.Double, nullable=True,
                                         comment="+ = discharge [kW]"))
    op.add_column("plan_slot", sa.Column("battery_max_kw", sa.Double, nullable=True,
                                         comment="+ = discharge [kW]"))
    op.execute(_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW current_schedule")
    for name in ("battery_max_kw", "battery_min_kw", "intent"):
        op.drop_column("plan_slot", name)
    op.execute(_VIEW)
