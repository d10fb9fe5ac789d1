"""action_claim: when a rationed action of a check (the once-a-day rate-limit burst) was last
claimed, committed before the action is sent

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.store.tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "action_claim",
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", monitor.store.tables.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("check", "target", "action"),
    )


def downgrade() -> None:
    op.drop_table("action_claim")
