"""measurements.simulated: rows from a simulated plant are tagged (issue 16).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

The executor's ``simulated`` and standalone ``dry_run`` drivers read a simulated plant. Such
readings are not stored unless asked for (``helios-executor --store-simulated``) and then
carry ``simulated = true``; the planner's readers (load history, PV correction,
``state: measurements``) take only rows with ``simulated = false``. Rows stored before this
revision are taken as real (false): nothing tells them apart.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("measurements", sa.Column(
        "simulated", sa.Boolean, nullable=False, server_default=sa.false(),
        comment="true: read from a simulated plant, never learned from"))


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("simulated")
