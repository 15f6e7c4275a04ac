"""The plan history's tables, as SQLAlchemy Core metadata (the migrations create exactly
this; ``tests/planner/test_store.py`` compares them).

``plan_history``
    one row per run: when, the plan window, slot length, status, objective and expected
    cost, the two baselines, solver and solve time, a hash of the effective configuration,
    the input summary (provider, data window and age, degraded or not) and the violations.
``plan_slot``
    one row per (plan id, slot start) with every per-slot field of ``schedule.json`` plus
    ``soc_kwh``, ``cost_eur``, ``energy_value_eur_per_kwh`` and ``spot_eur_per_kwh``. The
    intent fields of schedule 1.1 (``intent``, ``battery_min_kw``, ``battery_max_kw``;
    migration 0003) are NULL in rows saved before them: a 1.0 plan, whose intent the executor
    derives from the flows.
``plan_device``
    one row per (plan id, slot start, device) with the device's planned ``power_kw``
    (migration 0007): schedule.json's ``devices`` block (water heater, deferrable loads).
``measurements``
    what the executor measured (SoC, battery/grid/PV/load power, time); ``simulated`` rows
    (migration 0004) come from a simulated plant and are never read as real.
``price_cache``
    the last known spot price per provider and slot, so an outage can fall back to it.
``forecast_cache``
    the last answer of each web provider (migration 0006), planned on until its
    ``min_interval_s`` has passed (:mod:`planner.inputs.cache`).
``manual_override``
    the manual overrides (migration 0009): kind, target, window, SoC/power, who made it,
    when and why; a cleared one keeps its row with ``cleared_at``/``cleared_by``. The
    overrides in force at a plan are also in ``plan_history.overrides`` (JSON, NULL before
    0009).
``current_schedule`` (view)
    the slots of the newest plan.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

#: the newest migration (``planner/history/migrations/versions``); a test checks it is
#: Alembic's head
SCHEMA_REVISION = "0009"
#: Alembic's script location: the ``migrations`` folder shipped beside this module (an absolute
#: path, so a ``planner`` folder elsewhere on ``sys.path`` — e.g. ``tests/planner`` — cannot
#: shadow it)
MIGRATIONS = str(Path(__file__).resolve().parent / "migrations")

#: UTC timestamps: microseconds on MariaDB (``DATETIME(6)``), ISO text on SQLite
UtcDateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Money = sa.Double

metadata = sa.MetaData()

plan_history = sa.Table(
    "plan_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True,
              comment="wall-clock time the run was saved [UTC]"),
    sa.Column("generated_at", UtcDateTime, nullable=False,
              comment="the plan's 'now' (schedule.json generated_at) [UTC]"),
    sa.Column("plan_start", UtcDateTime, nullable=False, comment="first slot start [UTC]"),
    sa.Column("plan_end", UtcDateTime, nullable=False, comment="end of the last slot [UTC]"),
    sa.Column("valid_until", UtcDateTime, nullable=False, comment="[UTC]"),
    sa.Column("slot_s", sa.Integer, nullable=False),
    sa.Column("n_slots", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("objective_eur", Money, nullable=False),
    sa.Column("expected_cost_eur", Money, nullable=False, comment="grid bill over the horizon"),
    sa.Column("wear_cost_eur", Money, nullable=False),
    sa.Column("terminal_value_eur_per_kwh", sa.Double, nullable=False),
    sa.Column("net_cost_eur", Money, nullable=False,
              comment="bill + wear - value of the change in stored energy"),
    sa.Column("baseline_no_battery_eur", Money, nullable=False, comment="net cost"),
    sa.Column("baseline_self_consumption_eur", Money, nullable=False, comment="net cost"),
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
    # migration 0009: the manual overrides in force at this plan (NULL in older rows)
    sa.Column("overrides", sa.JSON, nullable=True,
              comment="manual overrides in force at this plan (schedule.json overrides)"),
)

#: the intent fields of schedule.json 1.1 (nullable: NULL in plans saved before 0003)
INTENT_SLOT_FIELDS = ("intent", "battery_min_kw", "battery_max_kw")
#: the per-slot fields of schedule.json, in file order
SCHEDULE_SLOT_FIELDS = (
    "grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw",
    "pv_kw", "pv_used_kw", "load_kw", "soc_pct", "buy_eur_per_kwh", "sell_eur_per_kwh",
    "grid_setpoint_w", "action", "reason", *INTENT_SLOT_FIELDS,
)
#: per-slot fields from the plan frame beyond schedule.json
EXTRA_SLOT_FIELDS = ("soc_kwh", "cost_eur", "energy_value_eur_per_kwh", "spot_eur_per_kwh")
SLOT_FIELDS = SCHEDULE_SLOT_FIELDS + EXTRA_SLOT_FIELDS
#: per-slot values that may be unknown (NULL; migration 0005): the LP's dual, when a solver
#: returns none
NULLABLE_SLOT_FIELDS = ("energy_value_eur_per_kwh",)

plan_slot = sa.Table(
    "plan_slot", metadata,
    sa.Column("plan_id", sa.Integer, sa.ForeignKey("plan_history.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("slot_start", UtcDateTime, primary_key=True, comment="[UTC]"),
    sa.Column("slot_end", UtcDateTime, nullable=False,
              comment="slot_start + slot_s [UTC]; lets SQL join measurements portably"),
    *[sa.Column(name, sa.Double, nullable=False) for name in SCHEDULE_SLOT_FIELDS[:10]],
    sa.Column("grid_setpoint_w", sa.Integer, nullable=False, comment="+ = import"),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    *[sa.Column(name, sa.Double, nullable=name in NULLABLE_SLOT_FIELDS)
      for name in EXTRA_SLOT_FIELDS],
    # schedule 1.1 (migration 0003, hence last): NULL = a 1.0 plan without intent
    sa.Column("intent", sa.String(16), nullable=True),
    sa.Column("battery_min_kw", sa.Double, nullable=True, comment="+ = discharge [kW]"),
    sa.Column("battery_max_kw", sa.Double, nullable=True, comment="+ = discharge [kW]"),
    sa.Index("ix_plan_slot_slot_start", "slot_start"),
)

#: the flexible devices' planned power per slot (migration 0007): schedule.json's
#: ``slots[i].devices.<device>.power_kw``
plan_device = sa.Table(
    "plan_device", metadata,
    sa.Column("plan_id", sa.Integer, sa.ForeignKey("plan_history.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("slot_start", UtcDateTime, primary_key=True, comment="[UTC]"),
    sa.Column("device", sa.String(64), primary_key=True,
              comment="schedule.json devices key (water_heater, a load's name)"),
    sa.Column("power_kw", sa.Double, nullable=False, comment="+ = drawn from the bus"),
    # migration 0008: schedule.json's devices.<name>.soc_pct (further batteries, the car)
    sa.Column("soc_pct", sa.Double, nullable=True,
              comment="SoC at the slot's end (batteries, the car); NULL otherwise"),
)

measurements = sa.Table(
    "measurements", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("measured_at", UtcDateTime, nullable=False, index=True, comment="[UTC]"),
    sa.Column("soc_pct", sa.Double, nullable=True),
    sa.Column("battery_power_w", sa.Double, nullable=True, comment="+ = discharging"),
    sa.Column("grid_power_w", sa.Double, nullable=True, comment="+ = import"),
    sa.Column("pv_power_w", sa.Double, nullable=True),
    sa.Column("load_power_w", sa.Double, nullable=True),
    sa.Column("source", sa.String(64), nullable=True),
    # migration 0004: a simulated plant's readings, stored only when asked for, never learned
    sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="true: read from a simulated plant, never learned from"),
    # migration 0008: what the executor's relay measured (or power_kw while on)
    sa.Column("water_heater_power_w", sa.Double, nullable=True,
              comment="the water heater's power (relay meter, or power_kw while on)"),
)

price_cache = sa.Table(
    "price_cache", metadata,
    sa.Column("provider", sa.String(64), primary_key=True),
    sa.Column("slot_start", UtcDateTime, primary_key=True, comment="[UTC]"),
    sa.Column("slot_s", sa.Integer, nullable=False),
    sa.Column("spot_eur_per_kwh", sa.Double, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False, comment="[UTC]"),
)

forecast_cache = sa.Table(
    "forecast_cache", metadata,
    sa.Column("kind", sa.String(16), primary_key=True, comment="prices | pv | load"),
    sa.Column("provider", sa.String(64), primary_key=True,
              comment="type:hash of its options (new options = a new series)"),
    sa.Column("slot_start", UtcDateTime, primary_key=True, comment="[UTC]"),
    sa.Column("resolution_s", sa.Integer, nullable=False),
    sa.Column("value", sa.Double, nullable=False, comment="spot price [EUR/kWh] or power [kW]"),
    sa.Column("fetched_at", UtcDateTime, nullable=False, comment="[UTC]"),
    sa.Column("source", sa.String(255), nullable=False),
)

#: manual overrides (migration 0009; executor/overrides.py is the record)
manual_override = sa.Table(
    "manual_override", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False,
              comment="charge | hold | export | water | load"),
    sa.Column("target", sa.String(64), nullable=True, comment="the load's name (kind load)"),
    sa.Column("start_at", UtcDateTime, nullable=False, comment="[UTC]"),
    sa.Column("end_at", UtcDateTime, nullable=False, index=True,
              comment="[UTC]; expired after this"),
    sa.Column("soc_pct", sa.Double, nullable=True),
    sa.Column("kw", sa.Double, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False, comment="user@host"),
    sa.Column("created_at", UtcDateTime, nullable=False, comment="[UTC]"),
    sa.Column("cleared_at", UtcDateTime, nullable=True, comment="[UTC]; NULL = not cleared"),
    sa.Column("cleared_by", sa.String(128), nullable=True),
)

#: the view the migrations create (same SQL on SQLite and MariaDB)
CURRENT_SCHEDULE_SQL = (
    "CREATE VIEW current_schedule AS "
    "SELECT s.* FROM plan_slot s "
    "WHERE s.plan_id = (SELECT MAX(h.id) FROM plan_history h)"
)
