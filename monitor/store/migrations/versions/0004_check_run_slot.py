"""check_run.slot_key and slot_at: the scheduled slot a clustered run belongs to, recorded once

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("check_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slot_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("slot_at", monitor.store.tables.UtcDateTime(), nullable=True))
        batch_op.create_index("ux_check_run_slot_key", ["slot_key"], unique=True)
        batch_op.create_index(
            "ix_check_run_check_target_slot", ["check", "target", "slot_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("check_run", schema=None) as batch_op:
        batch_op.drop_index("ix_check_run_check_target_slot")
        batch_op.drop_index("ux_check_run_slot_key")
        batch_op.drop_column("slot_at")
        batch_op.drop_column("slot_key")
