"""forecast_cache: the last answer of each web provider (issue 16).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Solcast's free plan allows about 10 calls a day while ``helios plan`` runs 288 times: each
web provider (``min_interval_s``) is called at most that often, and in between the series of
its last answer, kept here, is planned on (shown as cached in the input status). One series
per (kind, provider key); a new answer replaces the old one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_UTC = sa.DateTime().with_variant(sa.dialects.mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "forecast_cache",
        sa.Column("kind", sa.String(16), primary_key=True, comment="prices | pv | load"),
        sa.Column("provider", sa.String(64), primary_key=True,
                  comment="type:hash of its options (new options = a new series)"),
        sa.Column("slot_start", _UTC, primary_key=True, comment="[UTC]"),
        sa.Column("resolution_s", sa.Integer, nullable=False),
        sa.Column("value", sa.Double, nullable=False,
                  comment="spot price [EUR/kWh] or power [kW]"),
        sa.Column("fetched_at", _UTC, nullable=False, comment="[UTC]"),
        sa.Column("source", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("forecast_cache")
