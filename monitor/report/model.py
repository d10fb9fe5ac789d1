"""What a report says, as frozen values: built once from the store (build.py), then rendered
to HTML, Markdown, JSON, OSCAL or SARIF by the sibling modules. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from checks.controls import Control
from monitor.model import CheckKind, Severity, require_utc
from monitor.posture import ControlStatus

SEVERITIES_WORST_FIRST = tuple(sorted(Severity, key=lambda s: -s.rank))


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """[start, end): the window the report's trends and counts cover."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", require_utc(self.start, "ReportPeriod.start"))
        object.__setattr__(self, "end", require_utc(self.end, "ReportPeriod.end"))
        if self.end <= self.start:
            raise ValueError("a report period must end after it starts")

    @classmethod
    def ending(cls, end: datetime, length: timedelta) -> ReportPeriod:
        return cls(start=end - length, end=end)

    def days(self) -> tuple[date, ...]:
        """Every UTC day the period touches, oldest first."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))

    def day_end(self, day: date) -> datetime:
        """The moment a day's point in a trend describes: its end, or the period's end."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        return min(midnight, self.end)


@dataclass(frozen=True, slots=True)
class Expectation:
    """A (check, target) the configuration schedules, and how stale its last run may be."""

    check: CheckKind
    target: str
    interval: timedelta
    grace: timedelta = timedelta(0)  # jitter + timeout: a run due now may still be going
    url: str | None = None  # the configured target's URL (shown before it ever ran)

    @property
    def allowed_age(self) -> timedelta:
        return self.interval + self.grace


@dataclass(frozen=True, slots=True)
class ReportFinding:
    fingerprint: str
    check: CheckKind
    target: str
    rule_id: str
    severity: Severity
    title: str
    subject: str
    evidence: str
    remediation: str
    first_seen: datetime
    last_seen: datetime
    controls: tuple[Control, ...]


@dataclass(frozen=True, slots=True)
class CheckCoverage:
    """One scheduled (check, target): its last evaluated run and the period's runs."""

    check: CheckKind
    target: str
    interval: timedelta | None  # None: ran, but the configuration no longer schedules it
    last_evaluated: datetime | None
    within_interval: bool
    runs: int
    failed_runs: int


@dataclass(frozen=True, slots=True)
class CertificateExpiry:
    target: str
    address: str
    subject: str
    issuer: str
    serial: str
    position: str
    not_after: datetime
    days_left: float


@dataclass(frozen=True, slots=True)
class TargetReport:
    name: str
    url: str | None
    labels: Mapping[str, str]
    posture: float | None  # None: never evaluated (no ok run), so no evidence for a score
    open_by_severity: Mapping[Severity, int]
    covered: bool | None  # None: nothing scheduled for it
    checks: tuple[CheckCoverage, ...]
    runs: int
    failed_runs: int
    tls_baseline_met: bool | None  # None: tls_posture never evaluated it
    tls_grade: str | None
    certificates: tuple[CertificateExpiry, ...]
    findings: tuple[ReportFinding, ...]


@dataclass(frozen=True, slots=True)
class DayPoint:
    """The state at the end of one day, and what happened during it."""

    day: date
    open_by_severity: Mapping[Severity, int]
    posture: float | None  # None: no target had been evaluated by the day's end
    coverage: float | None
    opened: int
    resolved: int
    runs: int
    failed_runs: int


@dataclass(frozen=True, slots=True)
class WeekCount:
    week: str  # ISO week, e.g. 2026-W45
    start: date
    drift_events: int
    inventory_changes: int
    opened: int
    resolved: int


@dataclass(frozen=True, slots=True)
class RemediationTime:
    severity: Severity
    resolved: int
    mean_hours: float


@dataclass(frozen=True, slots=True)
class CheckActivity:
    """Every execution of one check kind in the period (an OSCAL observation)."""

    check: CheckKind
    runs: int
    evaluated: int
    failed: int
    targets: int
    first_run: datetime | None
    last_run: datetime | None

    @property
    def error_rate(self) -> float:
        return self.failed / (self.evaluated + self.failed) if self.evaluated + self.failed else 0.0


@dataclass(frozen=True, slots=True)
class ControlRollup:
    control: Control
    status: ControlStatus
    open_findings: int
    targets: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    actor: str
    action: str
    subject: str
    detail: str


@dataclass(frozen=True, slots=True)
class Summary:
    """The headline numbers (NIST SP 800-137 §5.1.1 metrics)."""

    targets: int
    posture: float | None  # mean of the evaluated targets' scores; None: none evaluated
    coverage: float | None  # share of targets whose every check ran within its interval
    open_by_severity: Mapping[Severity, int]
    opened: int
    resolved: int
    remediation: tuple[RemediationTime, ...]
    tls_baseline_met: int
    tls_baseline_evaluated: int
    certificates_expiring_30d: int
    certificates_expired: int
    drift_events: int
    inventory_changes: int
    runs: int
    failed_runs: int

    @property
    def open_total(self) -> int:
        return sum(self.open_by_severity.values())

    @property
    def error_rate(self) -> float:
        return self.failed_runs / self.runs if self.runs else 0.0

    @property
    def tls_baseline_share(self) -> float | None:
        if not self.tls_baseline_evaluated:
            return None
        return self.tls_baseline_met / self.tls_baseline_evaluated


@dataclass(frozen=True, slots=True)
class HttpPostureGrade:
    """One profile's grade of one target from its newest ok http_posture run."""

    target: str
    profile: str  # observatory | api
    grade: str
    score: float
    version: str  # the Observatory's algorithm version, or the API profile's


@dataclass(frozen=True, slots=True)
class ReportData:
    generated_at: datetime
    period: ReportPeriod
    framework: str | None
    target_filter: tuple[str, ...]
    summary: Summary
    days: tuple[DayPoint, ...]
    weeks: tuple[WeekCount, ...]
    checks: tuple[CheckActivity, ...]
    targets: tuple[TargetReport, ...]
    controls: tuple[ControlRollup, ...]
    findings: tuple[ReportFinding, ...]
    certificates: tuple[CertificateExpiry, ...]
    audit: tuple[AuditRecord, ...]
    known_rules: Mapping[CheckKind, tuple[str, ...]] = field(default_factory=dict)
    http_posture: tuple[HttpPostureGrade, ...] = ()
