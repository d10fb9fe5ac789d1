"""Alerting's value types: what a notification carries (the alert group, its firing and
resolved alerts), what the engine reads from the store (candidates, failing checks, group
states, silences) and what it writes back (a tick's result, outbox rows). No I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from monitor.model import Severity


class NotificationKind(StrEnum):
    FIRING = "firing"  # new alerts in the group, or changes
    REMINDER = "reminder"  # nothing changed; repeat_interval passed
    RESOLVED = "resolved"  # every alert of the group resolved
    SILENCE_EXPIRED = "silence_expired"  # a silence ended while its alerts still fire
    TEST = "test"  # `apivigil notify test`


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """One finding (or a failing check) as a notification shows it."""

    fingerprint: str
    check: str
    target: str
    rule_id: str
    severity: Severity
    title: str
    subject: str
    evidence: str
    remediation: str
    state: AlertState
    started_at: datetime
    ended_at: datetime | None = None
    controls: tuple[str, ...] = ()  # "NIST SP 800-53 SC-8", ...
    labels: Mapping[str, str] = field(default_factory=dict)  # target labels


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one receiver about one alert group.

    `dedup_key` is stable across retries of the same notification: receivers pass it on
    (Message-ID, a header, a Slack context line) so duplicates can be recognised.
    """

    dedup_key: str
    receiver: str
    route: str
    group_key: str
    group_labels: Mapping[str, str]
    kind: NotificationKind
    created_at: datetime
    firing: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()
    note: str | None = None  # e.g. which silence expired
    external_url: str | None = None  # where the daemon's API answers, for links

    @property
    def severity(self) -> Severity:
        """The worst severity among firing alerts (of resolved ones when none fire)."""
        alerts = self.firing or self.resolved
        return max((a.severity for a in alerts), key=lambda s: s.rank, default=Severity.INFO)

    @property
    def title(self) -> str:
        """A one-line summary, e.g. `[FIRING 3] high: payments`."""
        labels = ", ".join(self.group_labels.values()) or self.route
        match self.kind:
            case NotificationKind.RESOLVED:
                return f"[RESOLVED {len(self.resolved)}] {labels}"
            case NotificationKind.SILENCE_EXPIRED:
                return f"[SILENCE EXPIRED] {self.severity.value}: {labels}"
            case NotificationKind.TEST:
                return "[TEST] apivigil notification test"
            case _:
                prefix = "FIRING" if self.kind is NotificationKind.FIRING else "STILL FIRING"
                return f"[{prefix} {len(self.firing)}] {self.severity.value}: {labels}"


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes alerts whose labels match every matcher (`value`, or `~regex`) in [starts, ends)."""

    id: str
    matchers: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


class SkipKind(StrEnum):
    """What alerting left out rather than let it stop every alert (metric label values)."""

    SILENCE = "silence"  # a stored silence whose matchers cannot be used
    ROUTE = "route"  # a route whose matching or grouping failed this tick
    MAINTENANCE_WINDOW = "maintenance_window"  # a window that cannot be evaluated
    TEMPLATE = "template"  # a message template that failed to render


@dataclass(frozen=True, slots=True)
class Skipped:
    """One input left out, with the name an operator can find it by and why."""

    kind: SkipKind
    name: str  # silence id, route name, window name or template name
    reason: str


@dataclass(frozen=True, slots=True)
class AlertCandidate:
    """A finding (or a failing check) as the store sees it now."""

    alert: Alert
    open: bool  # open in the store (pending findings are not candidates)
    seen_streak: int  # consecutive runs that reported it
    missing_streak: int  # consecutive ok runs that did not


@dataclass(frozen=True, slots=True)
class FailingCheck:
    """A (check, target) whose latest runs all failed (errored, timed out, skipped stuck)."""

    check: str
    target: str
    failed_runs: int  # how many of its latest runs were looked at, all failed
    since: datetime  # start of the oldest of them
    last_error: str | None  # the newest one's error message
    labels: Mapping[str, str] = field(default_factory=dict)  # the target's labels


@dataclass(frozen=True, slots=True)
class NotifiedAlert:
    """What a group last told its receiver about one alert (enough to announce its end)."""

    severity: Severity
    check: str
    target: str
    rule_id: str
    subject: str
    title: str

    @staticmethod
    def of(alert: Alert) -> NotifiedAlert:
        return NotifiedAlert(
            alert.severity, alert.check, alert.target, alert.rule_id, alert.subject, alert.title
        )


@dataclass(frozen=True, slots=True)
class GroupState:
    id: str
    route: str
    receiver: str
    group_key: str
    labels: Mapping[str, str]
    firing_since: datetime
    last_sent_at: datetime | None
    notified: Mapping[str, NotifiedAlert] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TickResult:
    upserts: tuple[GroupState, ...]
    deleted: tuple[str, ...]
    notifications: tuple[Notification, ...]
    handled_silences: tuple[str, ...]
    skipped: tuple[Skipped, ...] = ()  # inputs left out this tick, so the rest still alerts


def group_id(route: str, receiver: str, group_key: str) -> str:
    return hashlib.sha256(f"{route}|{receiver}|{group_key}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: str  # the notification's dedup key
    receiver: str
    kind: str
    payload: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    permanent: bool
