"""The Store protocol: what the daemon, metrics and CLI need from persistence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from monitor.model import (
    Baseline,
    CheckKind,
    CheckRun,
    FindingStatus,
    RunStatus,
    Severity,
    StoredFinding,
    Target,
    Transition,
)

if TYPE_CHECKING:  # the retention module holds the SQL of pruning
    from contextlib import AbstractContextManager

    from sqlmodel import Session

    from monitor.store.retention import PruneResult, RetentionPolicy


class StoreError(Exception):
    """The store failed; `str()` says what and where."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or used right now."""


class SchemaState(StrEnum):
    CURRENT = "current"
    OUTDATED = "outdated"  # older than this apivigil: run `apivigil db upgrade`
    EMPTY = "empty"  # no apivigil tables yet
    NEWER = "newer"  # written by a newer apivigil


@dataclass(frozen=True, slots=True)
class HysteresisPolicy:
    open_after: int = 1
    resolve_after: int = 2


@dataclass(frozen=True, slots=True)
class RunSlot:
    """The scheduled slot a run belongs to: `key` names (check, target, slot) and is unique."""

    key: str
    at: datetime


@dataclass(frozen=True, slots=True)
class FindingQuery:
    target: str | None = None
    check: CheckKind | None = None
    min_severity: Severity | None = None
    statuses: frozenset[FindingStatus] = frozenset({FindingStatus.OPEN})


@dataclass(frozen=True, slots=True)
class RunSummary:
    id: str
    check: CheckKind
    target: str
    started_at: datetime
    finished_at: datetime
    status: RunStatus
    error_reason: str | None
    error_message: str | None
    finding_count: int
    run_count: int = 1  # consecutive runs with the same outcome this summary stands for
    last_started_at: datetime | None = None  # the newest of them (None: started_at)


@dataclass(frozen=True, slots=True)
class LatestSample:
    check: CheckKind
    target: str
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class DurationHistogram:
    """Cumulative run counts at each upper bound (seconds), plus the sum and count."""

    buckets: Sequence[tuple[float, int]]
    total_seconds: float
    count: int


@dataclass(frozen=True, slots=True)
class OpenRule:
    """Open findings of one rule on one target (for posture and compliance roll-ups)."""

    check: CheckKind
    target: str
    rule_id: str
    severity: Severity
    count: int


@dataclass(frozen=True, slots=True)
class MetricsState:
    """Everything /metrics shows, read in one go at scrape time."""

    targets: Mapping[str, Mapping[str, str]]  # active target -> labels
    run_counts: Mapping[tuple[CheckKind, str, RunStatus], int]
    last_run_at: Mapping[tuple[CheckKind, str, RunStatus], datetime]
    last_status: Mapping[tuple[CheckKind, str], RunStatus]
    durations: Mapping[CheckKind, DurationHistogram]
    open_findings: Mapping[tuple[CheckKind, str, Severity], int]
    latest_samples: Sequence[LatestSample] = field(default_factory=tuple)
    open_rules: Sequence[OpenRule] = field(default_factory=tuple)
    notifications_failed: Mapping[str, int] = field(default_factory=dict)  # receiver -> count
    notifications_pending: Mapping[str, int] = field(default_factory=dict)
    notifications_delivered: Mapping[str, int] = field(default_factory=dict)
    store_rows: Mapping[str, int] = field(default_factory=dict)  # table -> rows
    store_bytes: int | None = None  # None: not measured yet
    pruned_rows: Mapping[str, int] = field(default_factory=dict)  # table -> rows deleted


@dataclass(frozen=True, slots=True)
class BaselineApproval:
    """A person approves `content` as the new baseline; findings under `resolves` resolve."""

    check: CheckKind
    target: str
    content: Mapping[str, Any]
    approved_by: str
    reason: str
    at: datetime
    resolves: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    baseline: Baseline | None  # None: the content equals the current version, nothing added
    transitions: tuple[Transition, ...]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    subject: str
    detail: Mapping[str, Any]


BEFORE_PERIOD = "before"  # the day of `ReportRows.run_activity` rows older than the period


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report reads: the period [start, end), the targets (None: every one), how far
    back runs still count for coverage, the moments open findings are counted at, and the
    latest samples wanted per check."""

    start: datetime
    end: datetime
    targets: frozenset[str] | None
    runs_since: datetime
    day_ends: tuple[tuple[date, datetime], ...]
    samples: Mapping[CheckKind, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class ReportRows:
    """A report's reads, a few aggregate rows per target, day or rule however long the
    history (timestamps are aware UTC except where said). Rows are plain tuples:"""

    targets: tuple[Target, ...]  # the active ones, by name
    # (check, target, day | BEFORE_PERIOD, status, count, first started, last started)
    run_activity: tuple[tuple[Any, ...], ...]
    last_evaluated: tuple[tuple[Any, ...], ...]  # (check, target, last ok run start)
    first_evaluated: tuple[tuple[Any, ...], ...]  # (target, first ok run start)
    open_findings: tuple[StoredFinding, ...]
    event_counts: tuple[tuple[Any, ...], ...]  # (day, check, rule_id, kind, count)
    open_at_day_ends: tuple[tuple[Any, ...], ...]  # (day, target, rule_id, severity, count)
    remediation_times: tuple[tuple[Any, ...], ...]  # (severity, count, mean seconds)
    known_rules: tuple[tuple[Any, ...], ...]  # (check, rule_id) ever reported
    # check -> (target, name, labels JSON, value) of its newest ok run on each target
    samples: Mapping[CheckKind, tuple[tuple[Any, ...], ...]]
    audit: tuple[AuditEntry, ...]  # in the period, newest first


class Store(Protocol):
    def describe(self) -> str:
        """Where the store is (its URL, password hidden), for logs and messages."""
        ...

    def schema_state(self) -> SchemaState:
        """Whether the schema matches this apivigil. Raises StoreUnavailable."""
        ...

    def upgrade_schema(self) -> None:
        """Apply every pending migration. Raises StoreUnavailable or StoreError."""
        ...

    def ping(self) -> None:
        """Return when the store answers a trivial query; raise StoreUnavailable otherwise."""
        ...

    def sync_targets(self, targets: Sequence[Target], now: datetime) -> None:
        """Make the configured targets the active ones; others are kept but inactive."""
        ...

    def record(self, run: CheckRun, policy: HysteresisPolicy, slot: RunSlot | None = None) -> None:
        """Store a run, its samples and snapshot, and update findings, in one transaction.

        Only an evaluated (ok) run opens or resolves findings: the store is the one place
        they do (`policy` is the one hysteresis). The transitions the run caused are kept
        as finding events and logged once committed; alerting reads the findings' state,
        not the transitions. With a `slot` whose key was recorded before (a redelivered
        message), nothing is written. Raises StoreUnavailable or StoreError; nothing is
        written then.
        """
        ...

    def slot_recorded(self, key: str) -> bool:
        """Whether a run with this slot key is stored. Raises StoreUnavailable."""
        ...

    def last_slots(self) -> dict[tuple[CheckKind, str], datetime]:
        """Per (check, target): the latest slot of a non-skipped run, or for runs recorded
        without a slot, their start time."""
        ...

    def last_run_started(self) -> dict[tuple[CheckKind, str], datetime]:
        """Start time of the latest non-skipped run of each (check, target)."""
        ...

    def findings(self, query: FindingQuery) -> list[StoredFinding]:
        """Findings matching `query`, worst severity first."""
        ...

    def runs(
        self, check: CheckKind | None = None, target: str | None = None, limit: int = 100
    ) -> list[RunSummary]:
        """The latest runs, newest first."""
        ...

    def metrics_state(self, duration_buckets: Sequence[float]) -> MetricsState:
        """Current state for /metrics."""
        ...

    def approved_baseline(self, check: CheckKind, target: str) -> Baseline | None:
        """The newest approved baseline version, or None before the first observation."""
        ...

    def baseline_history(self, check: CheckKind, target: str) -> list[Baseline]:
        """Every baseline version, oldest first."""
        ...

    def approve_baseline(self, approval: BaselineApproval) -> ApprovalResult:
        """Add a baseline version (unless unchanged), audit it, and resolve the findings
        it makes moot, in one transaction. Raises StoreUnavailable or StoreError."""
        ...

    def latest_snapshot(self, check: CheckKind, target: str) -> dict[str, Any] | None:
        """The snapshot of the newest ok run of (check, target) that kept one."""
        ...

    def claim_action(
        self, check: CheckKind, target: str, action: str, at: datetime, every: timedelta
    ) -> datetime | None:
        """Record, durably, that `action` of (check, target) happens at `at`, unless it was
        last recorded less than `every` before `at`. None when recorded (go ahead: the record
        stands whatever happens next), else the time of the last one. Raises StoreError."""
        ...

    def hash_key(self) -> bytes:
        """This installation's random key for keyed hashes of secret values."""
        ...

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        """Who did what (baseline approvals ...), newest first."""
        ...

    def report_rows(self, query: ReportQuery) -> ReportRows:
        """Everything a report reads (see `ReportRows`), in one read. Raises StoreUnavailable
        or StoreError."""
        ...

    def prune(
        self,
        policy: RetentionPolicy,
        now: datetime,
        budget_seconds: float = 5.0,
        dry_run: bool = False,
    ) -> PruneResult:
        """Roll up and delete what `policy` lets go, within about `budget_seconds`. Raises
        StoreUnavailable or StoreError."""
        ...

    def sqlite_auto_vacuum(self) -> bool | None:
        """Whether a SQLite file shrinks as rows are deleted (None: not SQLite)."""
        ...

    def alert_transaction(self) -> AbstractContextManager[Session]:
        """One transaction over alerting's rows (`monitor.store.alert_rows`, read and written
        by `monitor.alert_records`): committed when the block ends, rolled back if it raises;
        database errors become StoreUnavailable or StoreError."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
