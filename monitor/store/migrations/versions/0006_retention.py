"""retention: stored totals, per-(check, target) state, daily rollups, retention marks, and the
indexes pruning deletes by

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.store.tables
from monitor.store.counters import seed_from_runs

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_UTC = monitor.store.tables.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "counter_total",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.String(length=512), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", "labels"),
    )
    op.create_table(
        "check_state",
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("evaluated_status", sa.String(length=16), nullable=True),
        sa.Column("evaluated_started_at", _UTC(), nullable=True),
        sa.Column("ok_run_id", sa.String(length=36), nullable=True),
        sa.Column("ok_started_at", _UTC(), nullable=True),
        sa.PrimaryKeyConstraint("check", "target"),
    )
    op.create_table(
        "run_rollup",
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_reason", sa.String(length=32), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("duration_max", sa.Float(), nullable=False),
        sa.Column("duration_p50", sa.Float(), nullable=False),
        sa.Column("duration_p95", sa.Float(), nullable=False),
        sa.Column("first_started", _UTC(), nullable=False),
        sa.Column("last_started", _UTC(), nullable=False),
        sa.PrimaryKeyConstraint("check", "target", "day", "status", "error_reason"),
    )
    op.create_table(
        "sample_rollup",
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.String(length=1024), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("minimum", sa.Float(), nullable=False),
        sa.Column("maximum", sa.Float(), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.Column("last_at", _UTC(), nullable=False),
        sa.PrimaryKeyConstraint("check", "target", "day", "name", "labels"),
    )
    op.create_table(
        "retention_mark",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("at", _UTC(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_check_run_started_at", "check_run", ["started_at"])
    op.create_index("ix_check_run_snapshot", "check_run", ["snapshot_sha256"])
    op.create_index("ix_sample_time", "sample", ["time"])
    op.create_index("ix_finding_event_run_id", "finding_event", ["run_id"])
    op.create_index("ix_snapshot_check_target_taken", "snapshot", ["check", "target", "taken_at"])
    seed_from_runs(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_snapshot_check_target_taken", table_name="snapshot")
    op.drop_index("ix_finding_event_run_id", table_name="finding_event")
    op.drop_index("ix_sample_time", table_name="sample")
    op.drop_index("ix_check_run_snapshot", table_name="check_run")
    op.drop_index("ix_check_run_started_at", table_name="check_run")
    for table in ("retention_mark", "sample_rollup", "run_rollup", "check_state", "counter_total"):
        op.drop_table(table)
