"""SQLModel tables. Alembic (monitor/store/migrations) owns the schema; keep them in step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in Python; timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(UtcDateTime(), nullable=nullable, index=index))


class TargetRow(SQLModel, table=True):
    __tablename__ = "target"

    name: str = Field(primary_key=True, max_length=128)
    url: str | None = Field(default=None, max_length=2048)
    labels: str = Field(default="{}", description="JSON object")
    active: bool = Field(default=True)
    updated_at: datetime = _utc()


class CheckRunRow(SQLModel, table=True):
    """A run, or a run-length row: consecutive ok runs of one (check, target) and UTC day
    with the same outcome (status, findings, snapshot, series), `run_count` of them from
    `started_at` to `last_started_at`. A finding transition always starts a new row."""

    __tablename__ = "check_run"
    __table_args__ = (
        sa.Index("ix_check_run_check_target_started", "check", "target", "started_at"),
        sa.Index("ux_check_run_slot_key", "slot_key", unique=True),
        sa.Index(  # only clustered runs have a slot
            "ix_check_run_check_target_slot",
            "check",
            "target",
            "slot_at",
            sqlite_where=sa.text("slot_at IS NOT NULL"),
            postgresql_where=sa.text("slot_at IS NOT NULL"),
        ),
        sa.Index("ix_check_run_started_at", "started_at"),
        sa.Index("ix_check_run_snapshot", "snapshot_sha256"),
        sa.Index(
            "ix_check_run_last_slot_key",
            "last_slot_key",
            sqlite_where=sa.text("last_slot_key IS NOT NULL"),
            postgresql_where=sa.text("last_slot_key IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    check: str = Field(max_length=64)
    target: str = Field(max_length=128)
    started_at: datetime = _utc()
    finished_at: datetime = _utc()  # of the row's newest run
    duration_seconds: float  # the sum over the row's runs
    status: str = Field(max_length=16)
    error_reason: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None)
    finding_count: int = Field(default=0)
    snapshot_sha256: str | None = Field(default=None, foreign_key="snapshot.sha256", max_length=64)
    slot_key: str | None = Field(
        default=None, max_length=255, description="(check, target, slot) of a clustered run"
    )
    slot_at: datetime | None = _utc(nullable=True)
    # run-length: ok runs whose outcome equals the previous run's extend its row (same UTC day)
    run_count: int = Field(
        default=1, sa_column_kwargs={"server_default": "1"}, description="runs this row stands for"
    )
    last_started_at: datetime | None = _utc(nullable=True)  # None: started_at (one run)
    duration_max: float | None = Field(default=None)  # None: duration_seconds (one run)
    duration_buckets: str | None = Field(
        default=None, max_length=200, description="runs per duration bucket; None: one run"
    )
    outcome: str | None = Field(
        default=None, max_length=32, description="hash of what the run found; None: never folded"
    )
    last_slot_key: str | None = Field(default=None, max_length=255)
    last_slot_at: datetime | None = _utc(nullable=True)
    slot_steps: str | None = Field(
        default=None, max_length=400, description="slots after the first: 'ms*times,...'"
    )


class SampleRow(SQLModel, table=True):
    __tablename__ = "sample"
    __table_args__ = (sa.Index("ix_sample_time", "time"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="check_run.id", index=True, max_length=36)
    time: datetime = _utc()
    check: str = Field(max_length=64)
    target: str = Field(max_length=128)
    name: str = Field(max_length=200)
    labels: str = Field(default="{}", description="JSON object")
    value: float


class FindingRow(SQLModel, table=True):
    __tablename__ = "finding"
    __table_args__ = (sa.Index("ix_finding_check_target_status", "check", "target", "status"),)

    fingerprint: str = Field(primary_key=True, max_length=64)
    check: str = Field(max_length=64)
    target: str = Field(max_length=128)
    rule_id: str = Field(max_length=128)
    subject: str
    severity: str = Field(max_length=16)
    title: str
    evidence: str
    remediation: str
    labels: str = Field(default="{}", description="JSON object: the finding's own labels")
    status: str = Field(max_length=16)
    first_seen: datetime = _utc()
    last_seen: datetime = _utc()
    resolved_at: datetime | None = _utc(nullable=True)
    seen_streak: int = Field(default=0, description="consecutive ok runs that reported it")
    missing_streak: int = Field(default=0, description="consecutive ok runs that did not")


class FindingEventRow(SQLModel, table=True):
    __tablename__ = "finding_event"
    __table_args__ = (sa.Index("ix_finding_event_run_id", "run_id"),)

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(foreign_key="finding.fingerprint", index=True, max_length=64)
    run_id: str | None = Field(
        default=None, foreign_key="check_run.id", max_length=36, description="None: by a person"
    )
    at: datetime = _utc()
    kind: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    previous_severity: str | None = Field(default=None, max_length=16)


class SnapshotRow(SQLModel, table=True):
    __tablename__ = "snapshot"
    __table_args__ = (sa.Index("ix_snapshot_check_target_taken", "check", "target", "taken_at"),)

    sha256: str = Field(primary_key=True, max_length=64)
    check: str = Field(max_length=64)
    target: str = Field(max_length=128)
    taken_at: datetime = _utc()  # when last seen (to a day): retention keeps it from then on
    content: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))


class BaselineRow(SQLModel, table=True):
    """One approved version of a baseline; rows are only ever inserted (NIST SP 800-128)."""

    __tablename__ = "baseline"
    __table_args__ = (sa.UniqueConstraint("check", "target", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    check: str = Field(max_length=64)
    target: str = Field(max_length=128)
    version: int
    content: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    content_sha256: str = Field(max_length=64)
    approved_by: str = Field(max_length=200)
    approved_at: datetime = _utc()
    reason: str


class AuditLogRow(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc(index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    subject: str
    detail: str = Field(default="{}", description="JSON object")


class InstanceKeyRow(SQLModel, table=True):
    """Random key material of this installation (keyed hashes of secret values)."""

    __tablename__ = "instance_key"

    name: str = Field(primary_key=True, max_length=64)
    value: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    created_at: datetime = _utc()


class AlertGroupRow(SQLModel, table=True):
    """Notification state of one alert group at one receiver of one route."""

    __tablename__ = "alert_group"

    id: str = Field(primary_key=True, max_length=64)
    route: str = Field(max_length=64)
    receiver: str = Field(max_length=64)
    group_key: str
    labels: str = Field(default="{}", description="JSON object")
    firing_since: datetime = _utc()
    last_sent_at: datetime | None = _utc(nullable=True)
    notified: str = Field(default="{}", description="JSON: fingerprint -> severity last sent")


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "delivered_at", "permanent", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=64, description="the dedup key")
    receiver: str = Field(max_length=64, index=True)
    group_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    payload: str = Field(description="JSON of the notification")
    created_at: datetime = _utc()
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _utc()
    claimed_until: datetime | None = _utc(nullable=True)
    delivered_at: datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None)
    permanent: bool = Field(default=False, description="failed for good; kept for inspection")


class SilenceRow(SQLModel, table=True):
    __tablename__ = "silence"

    id: str = Field(primary_key=True, max_length=36)
    matchers: str = Field(description="JSON object: label -> value or ~regex")
    starts_at: datetime = _utc()
    ends_at: datetime = _utc(index=True)
    created_by: str = Field(max_length=200)
    comment: str
    created_at: datetime = _utc()
    expiry_handled: bool = Field(default=False)


class CounterRow(SQLModel, table=True):
    """A stored total (or latest value) per label set: what deleting rows never lowers."""

    __tablename__ = "counter_total"

    name: str = Field(primary_key=True, max_length=64)
    labels: str = Field(primary_key=True, max_length=512, description="JSON object, keys sorted")
    value: float = Field(default=0.0)


class CheckStateRow(SQLModel, table=True):
    """The latest evaluated run and the latest ok run of each (check, target)."""

    __tablename__ = "check_state"

    check: str = Field(primary_key=True, max_length=64)
    target: str = Field(primary_key=True, max_length=128)
    evaluated_status: str | None = Field(default=None, max_length=16)
    evaluated_started_at: datetime | None = _utc(nullable=True)
    ok_run_id: str | None = Field(default=None, max_length=36)
    ok_started_at: datetime | None = _utc(nullable=True)


class ActionClaimRow(SQLModel, table=True):
    """When a rationed action of a check (the opt-in rate-limit burst) was last claimed;
    written and committed before the action starts, so it counts whatever happens next."""

    __tablename__ = "action_claim"

    check: str = Field(primary_key=True, max_length=64)
    target: str = Field(primary_key=True, max_length=128)
    action: str = Field(primary_key=True, max_length=64)
    claimed_at: datetime = _utc()


class RunRollupRow(SQLModel, table=True):
    """Runs of one (check, target, UTC day), once raw rows age out: a count per status, failed
    runs by error reason, durations (sum, max, bucket counts), and when the day's counted runs
    (ok, error, timeout) and its ok runs first and last started."""

    __tablename__ = "run_rollup"
    __table_args__ = {"sqlite_with_rowid": False}  # SQLite: the key is the table

    check: str = Field(primary_key=True, max_length=64)
    target: str = Field(primary_key=True, max_length=128)
    day: str = Field(primary_key=True, max_length=10, description="YYYY-MM-DD (UTC)")
    runs_ok: int = 0
    runs_error: int = 0
    runs_timeout: int = 0
    runs_skipped: int = 0
    error_reasons: str = Field(
        default="", max_length=200, description="`reason:count` pairs, e.g. `bug:1`"
    )
    duration_sum: float = 0.0
    duration_max: float = 0.0
    duration_buckets: str | None = Field(
        default=None,
        max_length=200,
        description="run_length.buckets_text of all runs; None: not known",
    )
    first_started: datetime = _utc()
    last_started: datetime = _utc()
    ok_first_started: datetime | None = _utc(nullable=True)
    ok_last_started: datetime | None = _utc(nullable=True)
    series: str = Field(
        default="",
        sa_column=sa.Column(sa.Text(), nullable=False),
        description="run_rollup.series_text: min/max/last of each numeric series of the day",
    )


class RetentionMarkRow(SQLModel, table=True):
    """Named moments of retention, e.g. the day before which runs exist only as rollups."""

    __tablename__ = "retention_mark"

    name: str = Field(primary_key=True, max_length=64)
    at: datetime = _utc()
