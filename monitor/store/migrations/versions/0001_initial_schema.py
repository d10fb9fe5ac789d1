"""initial schema: targets, runs, samples, findings, snapshots

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.store.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "finding",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("evidence", sa.String(), nullable=False),
        sa.Column("remediation", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_seen", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.Column("last_seen", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.Column("resolved_at", monitor.store.tables.UtcDateTime(), nullable=True),
        sa.Column("seen_streak", sa.Integer(), nullable=False),
        sa.Column("missing_streak", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index(
            "ix_finding_check_target_status", ["check", "target", "status"], unique=False
        )

    op.create_table(
        "snapshot",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("taken_at", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "target",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("labels", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "check_run",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("started_at", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.Column("finished_at", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_reason", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.String(), nullable=True),
        sa.Column("finding_count", sa.Integer(), nullable=False),
        sa.Column("snapshot_sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_sha256"],
            ["snapshot.sha256"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("check_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_check_run_check_target_started", ["check", "target", "started_at"], unique=False
        )

    op.create_table(
        "finding_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("at", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("previous_severity", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["fingerprint"],
            ["finding.fingerprint"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["check_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("finding_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_finding_event_fingerprint"), ["fingerprint"], unique=False
        )

    op.create_table(
        "sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("time", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["check_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sample", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sample_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            "ix_sample_target_name_time", ["target", "name", "time"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("sample", schema=None) as batch_op:
        batch_op.drop_index("ix_sample_target_name_time")
        batch_op.drop_index(batch_op.f("ix_sample_run_id"))

    op.drop_table("sample")
    with op.batch_alter_table("finding_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finding_event_fingerprint"))

    op.drop_table("finding_event")
    with op.batch_alter_table("check_run", schema=None) as batch_op:
        batch_op.drop_index("ix_check_run_check_target_started")

    op.drop_table("check_run")
    op.drop_table("target")
    op.drop_table("snapshot")
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index("ix_finding_check_target_status")

    op.drop_table("finding")
