"""Initial schema: plan_history, plan_slot, measurements, price_cache.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written out in full (not imported from planner.history.store) so that this migration keeps meaning
the same thing when the models change later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

_SLOT_FLOATS = ("grid_import_kw", "grid_export_kw", "battery_charge_kw",
                "battery_discharge_kw", "pv_kw", "pv_used_kw", "load_kw", "soc_pct",
                "buy_eur_per_kwh", "sell_eur_per_kwh")
_EXTRA_FLOATS = ("soc_kwh", "cost_eur", "energy_value_eur_per_kwh", "spot_eur_per_kwh")


def upgrade() -> None:
    op.create_table(
        "plan_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", UtcDateTime, nullable=False,
                  comment="wall-clock time the run was saved [UTC]"),
        sa.Column("generated_at", UtcDateTime, nullable=False,
                  comment="the plan's 'now' (schedule.json generated_at) [UTC]"),
        sa.Column("plan_start", UtcDateTime, nullable=False, comment="first slot start [UTC]"),
        sa.Column("plan_end", UtcDateTime, nullable=False, comment="end of the last slot [UTC]"),
        sa.Column("valid_until", UtcDateTime, nullable=False, comment="[UTC]"),
        sa.Column("slot_s", sa.Integer, nullable=False),
        sa.Column("n_slots", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("objective_eur", sa.Double, nullable=False),
        sa.Column("expected_cost_eur", sa.Double, nullable=False,
                  comment="grid bill over the horizon"),
        sa.Column("wear_cost_eur", sa.Double, nullable=False),
        sa.Column("terminal_value_eur_per_kwh", sa.Double, nullable=False),
        sa.Column("net_cost_eur", sa.Double, nullable=False,
                  comment="bill + wear - value of the change in stored energy"),
        sa.Column("baseline_no_battery_eur", sa.Double, nullable=False, comment="net cost"),
        sa.Column("baseline_self_consumption_eur", sa.Double, nullable=False,
                  comment="net cost"),
        sa.Column("baselines", sa.JSON, nullable=False),
        sa.Column("solver", sa.String(32), nullable=False),
        sa.Column("solve_s", sa.Double, nullable=False),
        sa.Column("exact_milp", sa.Boolean, nullable=False),
        sa.Column("soc_start_pct", sa.Double, nullable=False),
        sa.Column("capacity_kwh", sa.Double, nullable=False),
        sa.Column("min_soc_pct", sa.Double, nullable=False),
        sa.Column("reserve_soc_pct", sa.Double, nullable=False),
        sa.Column("max_soc_pct", sa.Double, nullable=False),
        sa.Column("site_timezone", sa.String(64), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False,
                  comment="sha256 of the effective configuration, secrets excluded"),
        sa.Column("helios_version", sa.String(32), nullable=False),
        sa.Column("price_provider", sa.String(64), nullable=False),
        sa.Column("inputs_degraded", sa.Boolean, nullable=False),
        sa.Column("inputs_age_s", sa.Double, nullable=False,
                  comment="age of the oldest input data at plan time [s]"),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("n_violations", sa.Integer, nullable=False),
        sa.Column("violations", sa.JSON, nullable=False),
    )
    op.create_index("ix_plan_history_created_at", "plan_history", ["created_at"])
    op.create_table(
        "plan_slot",
        sa.Column("plan_id", sa.Integer,
                  sa.ForeignKey("plan_history.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("slot_start", UtcDateTime, primary_key=True, comment="[UTC]"),
        sa.Column("slot_end", UtcDateTime, nullable=False,
                  comment="slot_start + slot_s [UTC]; lets SQL join measurements portably"),
        *[sa.Column(name, sa.Double, nullable=False) for name in _SLOT_FLOATS],
        sa.Column("grid_setpoint_w", sa.Integer, nullable=False, comment="+ = import"),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        *[sa.Column(name, sa.Double, nullable=False) for name in _EXTRA_FLOATS],
    )
    op.create_index("ix_plan_slot_slot_start", "plan_slot", ["slot_start"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("measured_at", UtcDateTime, nullable=False, comment="[UTC]"),
        sa.Column("soc_pct", sa.Double, nullable=True),
        sa.Column("battery_power_w", sa.Double, nullable=True, comment="+ = discharging"),
        sa.Column("grid_power_w", sa.Double, nullable=True, comment="+ = import"),
        sa.Column("pv_power_w", sa.Double, nullable=True),
        sa.Column("load_power_w", sa.Double, nullable=True),
        sa.Column("source", sa.String(64), nullable=True),
    )
    op.create_index("ix_measurements_measured_at", "measurements", ["measured_at"])
    op.create_table(
        "price_cache",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("slot_start", UtcDateTime, primary_key=True, comment="[UTC]"),
        sa.Column("slot_s", sa.Integer, nullable=False),
        sa.Column("spot_eur_per_kwh", sa.Double, nullable=False),
        sa.Column("fetched_at", UtcDateTime, nullable=False, comment="[UTC]"),
    )


def downgrade() -> None:
    op.drop_table("price_cache")
    op.drop_index("ix_measurements_measured_at", table_name="measurements")
    op.drop_table("measurements")
    op.drop_index("ix_plan_slot_slot_start", table_name="plan_slot")
    op.drop_table("plan_slot")
    op.drop_index("ix_plan_history_created_at", table_name="plan_history")
    op.drop_table("plan_history")
