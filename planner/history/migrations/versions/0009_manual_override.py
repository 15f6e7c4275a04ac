"""manual_override: the manual overrides, and the ones in force per plan (issue 13).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

``helios override add hold --from 18:00 --to 23:00 --reason guests`` stores one row: kind,
target (a deferrable load's name for ``load``), the window, the optional SoC and power, who
(``user@host``), when and why. Rows are never deleted by ``clear``: it sets ``cleared_at`` and
``cleared_by``, so the history says who overruled the plan; an override expires by itself
when ``end_at`` has passed (the store's prune removes rows older than ``keep_days``).
``plan_history.overrides`` (JSON, nullable: NULL in plans saved before this revision) keeps
the overrides in force at each plan, as in schedule.json.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: the view over plan_history/plan_slot (as in 0002), dropped around the column's removal
_VIEW = (
    "CREATE VIEW current_schedule AS "
    "SELECT s.* FROM plan_slot s "
    "WHERE s.plan_id = (SELECT MAX(h.id) FROM plan_history h)"
)

_UTC = sa.DateTime().with_variant(sa.dialects.mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "manual_override",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False,
                  comment="charge | hold | export | water | load"),
        sa.Column("target", sa.String(64), nullable=True, comment="the load's name (kind load)"),
        sa.Column("start_at", _UTC, nullable=False, comment="[UTC]"),
        sa.Column("end_at", _UTC, nullable=False, comment="[UTC]; expired after this"),
        sa.Column("soc_pct", sa.Double, nullable=True),
        sa.Column("kw", sa.Double, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False, comment="user@host"),
        sa.Column("created_at", _UTC, nullable=False, comment="[UTC]"),
        sa.Column("cleared_at", _UTC, nullable=True, comment="[UTC]; NULL = not cleared"),
        sa.Column("cleared_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_manual_override_end_at", "manual_override", ["end_at"])
    op.add_column("plan_history", sa.Column(
        "overrides", sa.JSON, nullable=True,
        comment="manual overrides in force at this plan (schedule.json overrides)"))


def downgrade() -> None:
    # a plain ALTER TABLE (SQLite >= 3.35 and MariaDB): batch mode would copy plan_history,
    # and dropping the old copy cascades to every plan_slot row
    op.execute("DROP VIEW current_schedule")
    op.execute("ALTER TABLE plan_history DROP COLUMN overrides")
    op.execute(_VIEW)
    op.drop_index("ix_manual_override_end_at", table_name="manual_override")
    op.drop_table("manual_override")
