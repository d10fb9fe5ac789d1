"""The shared vocabulary of apivigil: enums and frozen dataclasses, no I/O.

Every other package speaks in these types. Times are timezone-aware UTC; naive
datetimes are rejected where they enter.

Vocabulary shared with checks, alerts and dashboards: one of the few monitor modules they
may import (the import-linter contracts in pyproject.toml); it imports no other part of
monitor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


def require_utc(moment: datetime, what: str) -> datetime:
    """Return `moment` in UTC; raise ValueError for a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_SEVERITY_ORDER = (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


class CheckKind(StrEnum):
    """The checks apivigil knows; the values are the public names (config, JSON, metrics)."""

    CERT_EXPIRY = "cert_expiry"
    TLS_POSTURE = "tls_posture"
    PATCH_LEVEL = "patch_level"
    CONFIG_DRIFT = "config_drift"
    API_INVENTORY = "api_inventory"
    AUTH_POSTURE = "auth_posture"
    HTTP_POSTURE = "http_posture"


class RunStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


class ErrorReason(StrEnum):
    UNREACHABLE = "unreachable"
    MISCONFIGURED = "misconfigured"
    BAD_INPUT = "bad_input"
    BUG = "bug"


class FindingStatus(StrEnum):
    PENDING = "pending"  # seen, but fewer than open_after consecutive times
    OPEN = "open"
    RESOLVED = "resolved"


class TransitionKind(StrEnum):
    OPENED = "opened"
    RESOLVED = "resolved"
    SEVERITY_CHANGED = "severity_changed"
    REMINDED = "reminded"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A host and TCP port; `host` is a DNS name or an IP address literal."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_DEFAULT_PORTS = {"https": 443, "http": 80}


def parse_endpoint(url: str) -> Endpoint:
    """`https://host[:port][/path]` or `host:port` -> Endpoint; raise ValueError otherwise."""
    text = url.strip()
    scheme = "https"
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"unsupported URL scheme {scheme!r} in {url!r} (use https://)")
    authority = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        # not quoting the URL: it holds a password
        raise ValueError("credentials (user:password@) in a target URL are not allowed")
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif authority.count(":") == 1:
        host, _, port_text = authority.partition(":")
    else:
        host, port_text = authority, ""
    if not host:
        raise ValueError(f"no host in {url!r}")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port {port_text!r} in {url!r}")
        port = int(port_text)
    elif "://" in url:
        port = _DEFAULT_PORTS[scheme]
    else:
        raise ValueError(f"{url!r} needs a port (host:port) or a scheme (https://host)")
    return Endpoint(host=host.lower(), port=port)


@dataclass(frozen=True, slots=True)
class Target:
    """A monitored API. `name` is its stable id; check parameters stay with the checks."""

    name: str
    url: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> Endpoint | None:
        return parse_endpoint(self.url) if self.url else None


@dataclass(frozen=True, slots=True)
class Observation:
    """One numeric sample; exported as the gauge `apivigil_<name>`."""

    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong. `rule_id` never changes meaning; `subject` narrows it."""

    rule_id: str
    severity: Severity
    title: str
    subject: str
    evidence: str
    remediation: str
    # A state of the finding that routes and silences match on, beside the target's labels
    # (e.g. ("overdue", "true")); not part of the fingerprint.
    labels: tuple[tuple[str, str], ...] = ()

    def fingerprint(self, check: CheckKind | str, target: str) -> str:
        return finding_fingerprint(str(check), target, self.rule_id, self.subject)


def finding_fingerprint(check: str, target: str, rule_id: str, subject: str) -> str:
    key = "|".join((check, target, rule_id, subject))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


FIRST_OBSERVATION = "first observation"


@dataclass(frozen=True, slots=True)
class BaselineUpdate:
    """A baseline the check proposes for parts that have none yet (first observation)."""

    content: Mapping[str, Any]
    reason: str


@dataclass(frozen=True, slots=True)
class Baseline:
    """One approved version of a (check, target)'s baseline; versions are never edited."""

    check: CheckKind
    target: str
    version: int
    content: Mapping[str, Any]
    approved_by: str
    approved_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class CheckOutput:
    """What a check returns.

    `undetermined` lists subject prefixes the run could not judge (a source that failed):
    findings under them are neither opened nor resolved by this run.
    """

    observations: tuple[Observation, ...] = ()
    findings: tuple[Finding, ...] = ()
    snapshot: Mapping[str, Any] | None = None
    undetermined: tuple[str, ...] = ()
    baseline_update: BaselineUpdate | None = None


@dataclass(frozen=True, slots=True)
class CheckRun:
    """The outcome of running one check on one target, successful or not."""

    id: str
    check: CheckKind
    target: str
    started_at: datetime
    finished_at: datetime
    status: RunStatus
    error_reason: ErrorReason | None = None
    error_message: str | None = None
    output: CheckOutput | None = None

    def __post_init__(self) -> None:
        require_utc(self.started_at, "CheckRun.started_at")
        require_utc(self.finished_at, "CheckRun.finished_at")
        if self.status is RunStatus.OK and self.output is None:
            raise ValueError("an ok run must carry its output")

    @property
    def duration(self) -> timedelta:
        return self.finished_at - self.started_at

    @property
    def evaluated(self) -> bool:
        """True when the run judged the target; only such runs open or resolve findings."""
        return self.status is RunStatus.OK


@dataclass(frozen=True, slots=True)
class Transition:
    """A finding changed state in a way people may need to hear about."""

    fingerprint: str
    check: CheckKind
    target: str
    rule_id: str
    subject: str
    kind: TransitionKind
    severity: Severity
    previous_severity: Severity | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as the store knows it: the latest report plus its lifecycle."""

    fingerprint: str
    check: CheckKind
    target: str
    rule_id: str
    subject: str
    severity: Severity
    title: str
    evidence: str
    remediation: str
    status: FindingStatus
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
