"""Findings and check runs to record in a store, with readable defaults (the store contract
suite and the tests built on it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.model import (
    CheckKind,
    CheckOutput,
    CheckRun,
    ErrorReason,
    Finding,
    FindingStatus,
    Observation,
    RunStatus,
    Severity,
)
from monitor.store.interface import HysteresisPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CERT = CheckKind.CERT_EXPIRY
ALL = frozenset(FindingStatus)


def finding(
    rule: str = "CERT-EXPIRES-SOON", subject: str = "leaf", severity: Severity = Severity.MEDIUM
) -> Finding:
    return Finding(rule, severity, f"{rule} title", subject, "evidence", "fix it")


def ok_run(
    target: str,
    at: datetime,
    *findings: Finding,
    observations: tuple[Observation, ...] = (),
    snapshot: dict | None = None,
) -> CheckRun:  # type: ignore[type-arg]
    return CheckRun(
        id=str(uuid.uuid4()),
        check=CERT,
        target=target,
        started_at=at,
        finished_at=at + timedelta(seconds=1),
        status=RunStatus.OK,
        output=CheckOutput(observations=observations, findings=tuple(findings), snapshot=snapshot),
    )


def error_run(target: str, at: datetime) -> CheckRun:
    return CheckRun(
        id=str(uuid.uuid4()),
        check=CERT,
        target=target,
        started_at=at,
        finished_at=at + timedelta(seconds=2),
        status=RunStatus.ERROR,
        error_reason=ErrorReason.UNREACHABLE,
        error_message="connection refused",
    )


def a_run(
    target: str,
    at: datetime,
    status: RunStatus = RunStatus.OK,
    *,
    check: CheckKind = CERT,
    findings: tuple[Finding, ...] = (),
    observations: tuple[Observation, ...] = (),
    snapshot: dict[str, Any] | None = None,
    seconds: float = 1.0,
    reason: ErrorReason | None = ErrorReason.UNREACHABLE,
    message: str = "connection refused",
) -> CheckRun:
    """A run of any status: an ok one carries `findings`, `observations` and `snapshot`, a
    failed or skipped one `reason` and `message`."""
    ok = status is RunStatus.OK
    return CheckRun(
        id=str(uuid.uuid4()),
        check=check,
        target=target,
        started_at=at,
        finished_at=at + timedelta(seconds=seconds),
        status=status,
        output=CheckOutput(observations=observations, findings=findings, snapshot=snapshot)
        if ok
        else None,
        error_reason=None if ok else reason,
        error_message=None if ok else message,
    )


POLICY = HysteresisPolicy(open_after=1, resolve_after=2)
