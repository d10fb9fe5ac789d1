"""run_rollup as one row per (check, target, UTC day): a count per run status, failed runs by
error reason (`reason:count` text), durations (sum, max, bucket counts) and the first and last
start of the day's counted and ok runs, and the day's numeric series (count, min, max, last;
sample_rollup is dropped). Existing per-(status, reason) rows and per-series rows are folded
into it (old duration quantiles do not convert to buckets: duration_buckets NULL, not known).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.store.tables
from monitor.store import run_rollup
from monitor.store.sql_metrics import as_utc

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_UTC = monitor.store.tables.UtcDateTime


def upgrade() -> None:
    op.rename_table("run_rollup", "run_rollup_0008")
    if op.get_bind().dialect.name == "postgresql":  # the key's index keeps the old name
        op.execute("ALTER INDEX run_rollup_pkey RENAME TO run_rollup_0008_pkey")
    op.create_table(
        "run_rollup",
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("runs_ok", sa.Integer(), nullable=False),
        sa.Column("runs_error", sa.Integer(), nullable=False),
        sa.Column("runs_timeout", sa.Integer(), nullable=False),
        sa.Column("runs_skipped", sa.Integer(), nullable=False),
        sa.Column("error_reasons", sa.String(length=200), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("duration_max", sa.Float(), nullable=False),
        sa.Column("duration_buckets", sa.String(length=200), nullable=True),
        sa.Column("first_started", _UTC(), nullable=False),
        sa.Column("last_started", _UTC(), nullable=False),
        sa.Column("ok_first_started", _UTC(), nullable=True),
        sa.Column("ok_last_started", _UTC(), nullable=True),
        sa.Column("series", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("check", "target", "day"),
        sqlite_with_rowid=False,
    )
    _fold_old_rows(op.get_bind())
    op.drop_table("run_rollup_0008")
    _fold_old_series(op.get_bind())
    op.drop_table("sample_rollup")


def _fold_old_rows(connection: sa.Connection) -> None:
    """Old rows folded per (check, target, day) by the database, in one statement."""
    if connection.dialect.name == "postgresql":
        joined = "string_agg(error_reason || ':' || runs, ',' ORDER BY error_reason)"
    else:  # rows come in the subquery's order
        joined = "group_concat(error_reason || ':' || runs, ',')"
    counted = "status IN ('ok', 'error', 'timeout')"
    connection.execute(
        sa.text(
            f"""
            INSERT INTO run_rollup ("check", target, day, runs_ok, runs_error, runs_timeout,
                runs_skipped, error_reasons, duration_sum, duration_max, duration_buckets,
                first_started, last_started, ok_first_started, ok_last_started)
            SELECT o."check", o.target, o.day,
                SUM(CASE WHEN o.status = 'ok' THEN o.runs ELSE 0 END),
                SUM(CASE WHEN o.status = 'error' THEN o.runs ELSE 0 END),
                SUM(CASE WHEN o.status = 'timeout' THEN o.runs ELSE 0 END),
                SUM(CASE WHEN o.status = 'skipped' THEN o.runs ELSE 0 END),
                COALESCE(MAX(r.reasons), ''),
                SUM(o.duration_sum), MAX(o.duration_max), NULL,
                COALESCE(MIN(CASE WHEN o.{counted} THEN o.first_started END),
                    MIN(o.first_started)),
                COALESCE(MAX(CASE WHEN o.{counted} THEN o.last_started END),
                    MAX(o.last_started)),
                MIN(CASE WHEN o.status = 'ok' THEN o.first_started END),
                MAX(CASE WHEN o.status = 'ok' THEN o.last_started END)
            FROM run_rollup_0008 o
            LEFT JOIN (
                SELECT "check", target, day, {joined} AS reasons
                FROM (
                    SELECT "check", target, day, error_reason, SUM(runs) AS runs
                    FROM run_rollup_0008 WHERE error_reason != ''
                    GROUP BY "check", target, day, error_reason
                    ORDER BY "check", target, day, error_reason
                ) by_reason
                GROUP BY "check", target, day
            ) r ON r."check" = o."check" AND r.target = o.target AND r.day = o.day
            GROUP BY o."check", o.target, o.day
            """  # noqa: S608 (fixed text, no input)
        )
    )


def _fold_old_series(connection: sa.Connection) -> None:
    """sample_rollup rows (a row per series and day) as the series of their day's row."""
    old = sa.table(
        "sample_rollup",
        *(sa.column(name) for name in ("check", "target", "day", "name", "labels", "count")),
        sa.column("minimum"),
        sa.column("maximum"),
        sa.column("last"),
        sa.column("last_at", _UTC()),
    )
    new = sa.table(
        "run_rollup",
        *(
            sa.column(name, _UTC() if name.endswith("_started") else None)
            for name in (
                "check",
                "target",
                "day",
                "runs_ok",
                "runs_error",
                "runs_timeout",
                "runs_skipped",
                "error_reasons",
                "duration_sum",
                "duration_max",
                "duration_buckets",
                "first_started",
                "last_started",
                "ok_first_started",
                "ok_last_started",
                "series",
            )
        ),
    )
    found = connection.execute(sa.select(old).order_by(old.c.check, old.c.target, old.c.day))
    series = [
        (c, t, d, run_rollup.Series(n, labels, int(k), low, high, last, as_utc(at)))
        for c, t, d, n, labels, k, low, high, last, at in found
    ]
    keys = {(c, t, d) for c, t, d, _ in series}
    existing = {
        tuple(row): None
        for row in connection.execute(sa.select(new.c.check, new.c.target, new.c.day))
        if tuple(row) in keys
    }
    rows = run_rollup.with_series(
        [{"check": c, "target": t, "day": d} for c, t, d in existing], series
    )
    for row in rows:
        key = (row["check"], row["target"], row["day"])
        if key in existing:
            connection.execute(
                sa.update(new)
                .where(new.c.check == key[0], new.c.target == key[1], new.c.day == key[2])
                .values(series=row["series"])
            )
        else:
            connection.execute(sa.insert(new).values(**row))


def downgrade() -> None:
    raise NotImplementedError("0009 folds rollup rows together; restore a backup instead")
