"""The finding lifecycle: hysteresis on open and resolve, and the transitions it causes.

The one place findings open and resolve: /metrics, findings and alerts all read its state
(alert routes may only delay notifying)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlmodel import Session, col, select

from monitor.logs import logger
from monitor.model import (
    CheckRun,
    Finding,
    FindingStatus,
    Severity,
    Transition,
    TransitionKind,
)
from monitor.store.interface import HysteresisPolicy
from monitor.store.tables import FindingEventRow, FindingRow

_LIVE = (FindingStatus.OPEN.value, FindingStatus.PENDING.value)
MISSING_STREAK_CAP = 100  # resolved findings stop being counted after this many runs


def apply_findings(
    session: Session,
    run: CheckRun,
    findings: Sequence[Finding],
    policy: HysteresisPolicy,
    undetermined: Sequence[str] = (),
) -> list[Transition]:
    """Open, update, escalate and resolve the (check, target)'s findings for an evaluated run.

    A finding opens after `open_after` consecutive sightings and resolves after
    `resolve_after` consecutive absences; a finding whose subject starts with one of the
    `undetermined` prefixes is not absent, just unknown, and keeps its state. Returns the
    transitions people may need to hear.
    """
    reported = _worst_per_fingerprint(run, findings)
    existing = {
        row.fingerprint: row
        for row in session.exec(
            select(FindingRow).where(
                FindingRow.check == run.check.value,
                FindingRow.target == run.target,
                (col(FindingRow.status).in_(_LIVE))
                | (col(FindingRow.fingerprint).in_(list(reported)))
                | (
                    (col(FindingRow.status) == FindingStatus.RESOLVED.value)
                    & (col(FindingRow.missing_streak) < MISSING_STREAK_CAP)
                ),
            )
        ).all()
    }
    transitions: list[Transition] = []
    events: list[FindingEventRow] = []  # added after the finding rows they refer to exist

    def transition(row: FindingRow, kind: TransitionKind, previous: str | None = None) -> None:
        events.append(
            FindingEventRow(
                fingerprint=row.fingerprint,
                run_id=run.id,
                at=run.finished_at,
                kind=kind.value,
                severity=row.severity,
                previous_severity=previous,
            )
        )
        transitions.append(
            Transition(
                fingerprint=row.fingerprint,
                check=run.check,
                target=run.target,
                rule_id=row.rule_id,
                subject=row.subject,
                kind=kind,
                severity=Severity(row.severity),
                previous_severity=Severity(previous) if previous else None,
                at=run.finished_at,
            )
        )

    for fingerprint, finding in reported.items():
        row = existing.get(fingerprint)
        if row is None:
            row = FindingRow(
                fingerprint=fingerprint,
                check=run.check.value,
                target=run.target,
                rule_id=finding.rule_id,
                subject=finding.subject,
                severity=finding.severity.value,
                title=finding.title,
                evidence=finding.evidence,
                remediation=finding.remediation,
                status=FindingStatus.PENDING.value,
                first_seen=run.started_at,
                last_seen=run.started_at,
            )
        elif row.status == FindingStatus.RESOLVED.value:
            row.status = FindingStatus.PENDING.value
            row.resolved_at = None
            row.seen_streak = 0
            row.first_seen = run.started_at
        previous_severity = row.severity
        row.severity = finding.severity.value
        row.title, row.evidence, row.remediation = (
            finding.title,
            finding.evidence,
            finding.remediation,
        )
        row.labels = json.dumps(dict(finding.labels), sort_keys=True)
        row.last_seen = run.started_at
        row.seen_streak += 1
        row.missing_streak = 0
        session.add(row)
        if row.status == FindingStatus.PENDING.value and row.seen_streak >= policy.open_after:
            row.status = FindingStatus.OPEN.value
            transition(row, TransitionKind.OPENED)
        elif row.status == FindingStatus.OPEN.value and previous_severity != row.severity:
            transition(row, TransitionKind.SEVERITY_CHANGED, previous_severity)

    for fingerprint, row in existing.items():
        if fingerprint in reported or any(row.subject.startswith(p) for p in undetermined):
            continue
        if row.status not in _LIVE:
            # keeps counting after resolution (up to MISSING_STREAK_CAP): how long it is gone
            row.missing_streak += 1
            session.add(row)
            continue
        row.missing_streak += 1
        row.seen_streak = 0
        if row.missing_streak >= policy.resolve_after or row.status == FindingStatus.PENDING.value:
            was_open = row.status == FindingStatus.OPEN.value
            row.status = FindingStatus.RESOLVED.value
            row.resolved_at = run.finished_at
            if was_open:
                transition(row, TransitionKind.RESOLVED)
        session.add(row)
    session.flush()
    session.add_all(events)
    return transitions


def log_transitions(run: CheckRun, transitions: Sequence[Transition]) -> None:
    """Say what a committed run opened, resolved or escalated (finding_event keeps it too).

    Through `monitor.logs.logger`, at the level the command configured: a one-off scan that
    records into a throw-away store (`--push-gateway`) logs only errors, and never to stdout,
    where its JSON document goes."""
    if not transitions:
        return
    log = logger("apivigil.store")
    for transition in transitions:
        log.info(
            "finding " + transition.kind.value,
            check=str(run.check),
            target=run.target,
            run_id=run.id,
            fingerprint=transition.fingerprint,
            rule_id=transition.rule_id,
            subject=transition.subject,
            severity=transition.severity.value,
        )


def _worst_per_fingerprint(run: CheckRun, findings: Sequence[Finding]) -> dict[str, Finding]:
    worst: dict[str, Finding] = {}
    for finding in findings:
        fingerprint = finding.fingerprint(run.check, run.target)
        known = worst.get(fingerprint)
        if known is None or finding.severity.rank > known.severity.rank:
            worst[fingerprint] = finding
    return worst
