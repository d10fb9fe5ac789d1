"""Stored rows to domain values: one conversion per row type, for every read of the store."""

from __future__ import annotations

import json

from monitor.model import FindingStatus, RunStatus, Severity, StoredFinding, Target
from monitor.store.interface import AuditEntry, RunSummary
from monitor.store.sql_metrics import known_kind
from monitor.store.tables import AuditLogRow, CheckRunRow, FindingRow, TargetRow


def finding_from_row(row: FindingRow) -> StoredFinding | None:
    """The finding a row holds; None when its check is not one of ours (`known_kind`)."""
    check = known_kind(row.check)
    if check is None:
        return None
    return StoredFinding(
        fingerprint=row.fingerprint,
        check=check,
        target=row.target,
        rule_id=row.rule_id,
        subject=row.subject,
        severity=Severity(row.severity),
        title=row.title,
        evidence=row.evidence,
        remediation=row.remediation,
        status=FindingStatus(row.status),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        resolved_at=row.resolved_at,
    )


def run_summary_from_row(row: CheckRunRow) -> RunSummary | None:
    """The run a row holds; None when its check is not one of ours (`known_kind`)."""
    check = known_kind(row.check)
    if check is None:
        return None
    return RunSummary(
        id=row.id,
        check=check,
        target=row.target,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=RunStatus(row.status),
        error_reason=row.error_reason,
        error_message=row.error_message,
        finding_count=row.finding_count,
    )


def audit_entry_from_row(row: AuditLogRow) -> AuditEntry:
    return AuditEntry(
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        detail=json.loads(row.detail),
    )


def target_from_row(row: TargetRow) -> Target:
    return Target(name=row.name, url=row.url, labels=json.loads(row.labels))
