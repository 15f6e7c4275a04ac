"""plan_device.soc_pct and measurements.water_heater_power_w (issue 13).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

``plan_device.soc_pct``: a device's state of charge at the slot's end as planned —
schedule.json's ``slots[i].devices.<name>.soc_pct`` of a further battery (``batteries:``) or
the car; NULL for devices without one (water heater, deferrable loads) and for plans stored
before this revision.

``measurements.water_heater_power_w``: the heater's power averaged over the row's window, as
the executor's relay measured it (a Shelly's meter) or ``relays[].power_kw`` while on; NULL
when nothing measures it. The planner subtracts the energy already delivered today at a
re-plan from it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("plan_device", sa.Column(
        "soc_pct", sa.Double, nullable=True,
        comment="SoC at the slot's end (batteries, the car); NULL otherwise"))
    op.add_column("measurements", sa.Column(
        "water_heater_power_w", sa.Double, nullable=True,
        comment="the water heater's power (relay meter, or power_kw while on)"))


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("water_heater_power_w")
    with op.batch_alter_table("plan_device") as batch:
        batch.drop_column("soc_pct")
