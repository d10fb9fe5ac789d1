"""alerting: alert groups, the outbox, silences

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = monitor.store.tables.UtcDateTime
    op.create_table(
        "alert_group",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("group_key", sa.String(), nullable=False),
        sa.Column("labels", sa.String(), nullable=False),
        sa.Column("firing_since", utc(), nullable=False),
        sa.Column("last_sent_at", utc(), nullable=True),
        sa.Column("notified", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", utc(), nullable=False),
        sa.Column("claimed_until", utc(), nullable=True),
        sa.Column("delivered_at", utc(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_due", ["delivered_at", "permanent", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_outbox_receiver", ["receiver"], unique=False)
    op.create_table(
        "silence",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("matchers", sa.String(), nullable=False),
        sa.Column("starts_at", utc(), nullable=False),
        sa.Column("ends_at", utc(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.String(), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("expiry_handled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("silence", schema=None) as batch_op:
        batch_op.create_index("ix_silence_ends_at", ["ends_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("silence", schema=None) as batch_op:
        batch_op.drop_index("ix_silence_ends_at")
    op.drop_table("silence")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_receiver")
        batch_op.drop_index("ix_outbox_due")
    op.drop_table("outbox")
    op.drop_table("alert_group")
