"""check_run as run-length rows: consecutive ok runs with the same outcome extend one row
(run_count, last_started_at, duration_max and buckets, outcome, last_slot_key/at, slot_steps).
Existing rows stay valid as one-run rows (run_count 1, the new columns NULL, outcome NULL:
never extended).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.store.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UTC = monitor.store.tables.UtcDateTime


def upgrade() -> None:
    # plain ADD COLUMNs (nullable, or a constant default): no table rewrite on either database
    op.add_column(
        "check_run", sa.Column("run_count", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("check_run", sa.Column("last_started_at", _UTC(), nullable=True))
    op.add_column("check_run", sa.Column("duration_max", sa.Float(), nullable=True))
    op.add_column("check_run", sa.Column("duration_buckets", sa.String(length=200), nullable=True))
    op.add_column("check_run", sa.Column("outcome", sa.String(length=32), nullable=True))
    op.add_column("check_run", sa.Column("last_slot_key", sa.String(length=255), nullable=True))
    op.add_column("check_run", sa.Column("last_slot_at", _UTC(), nullable=True))
    op.add_column("check_run", sa.Column("slot_steps", sa.String(length=400), nullable=True))
    # fewer and smaller indexes: nothing reads samples by (target, name, time); only
    # clustered runs have a slot
    op.create_index(
        "ix_check_run_last_slot_key",
        "check_run",
        ["last_slot_key"],
        sqlite_where=sa.text("last_slot_key IS NOT NULL"),
        postgresql_where=sa.text("last_slot_key IS NOT NULL"),
    )
    op.drop_index("ix_sample_target_name_time", table_name="sample")
    op.drop_index("ix_check_run_check_target_slot", table_name="check_run")
    op.create_index(
        "ix_check_run_check_target_slot",
        "check_run",
        ["check", "target", "slot_at"],
        sqlite_where=sa.text("slot_at IS NOT NULL"),
        postgresql_where=sa.text("slot_at IS NOT NULL"),
    )
    if op.get_bind().dialect.name == "sqlite":
        # the rollups as WITHOUT ROWID tables: their primary key is the table, not a copy
        for table in ("run_rollup", "sample_rollup"):
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_with_rowid": False}
            ):
                pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in ("run_rollup", "sample_rollup"):
            with op.batch_alter_table(table, recreate="always"):
                pass
    op.drop_index("ix_check_run_check_target_slot", table_name="check_run")
    op.create_index("ix_check_run_check_target_slot", "check_run", ["check", "target", "slot_at"])
    op.create_index("ix_sample_target_name_time", "sample", ["target", "name", "time"])
    # a run-length row becomes one run (its first); the totals keep every run
    op.drop_index("ix_check_run_last_slot_key", table_name="check_run")
    with op.batch_alter_table("check_run", schema=None) as batch_op:
        for name in (
            "slot_steps",
            "last_slot_at",
            "last_slot_key",
            "outcome",
            "duration_buckets",
            "duration_max",
            "last_started_at",
            "run_count",
        ):
            batch_op.drop_column(name)
