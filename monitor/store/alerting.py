"""Alerting state in the store: candidates for the engine, group states, the outbox and
silences. Functions over a session; SqlStore wraps them in transactions."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from alerts.codec import notification_to_json, notified_from_json, notified_to_json
from alerts.engine import AlertCandidate, GroupState, TickResult, group_id
from alerts.model import Alert, AlertState, Silence
from alerts.outbox import OutboxEntry
from checks.controls import controls_for
from monitor.model import FindingStatus, RunStatus, Severity, finding_fingerprint
from monitor.store.lifecycle import MISSING_STREAK_CAP
from monitor.store.tables import (
    AlertGroupRow,
    AuditLogRow,
    CheckRunRow,
    FindingRow,
    OutboxRow,
    SilenceRow,
    TargetRow,
)

CHECK_FAILING_RULE = "CHECK-FAILING"
_FAILED = (RunStatus.ERROR.value, RunStatus.TIMEOUT.value, RunStatus.SKIPPED.value)


def candidates(session: Session, check_failing_after: int, now: datetime) -> list[AlertCandidate]:
    labels = {row.name: json.loads(row.labels) for row in session.exec(select(TargetRow)).all()}
    notified = {
        fingerprint
        for (text,) in session.execute(sa.select(col(AlertGroupRow.notified))).all()
        for fingerprint in json.loads(text)
    }
    rows = session.exec(
        select(FindingRow).where(
            (col(FindingRow.status) == FindingStatus.OPEN.value)
            | (
                (col(FindingRow.status) == FindingStatus.RESOLVED.value)
                & (
                    (col(FindingRow.missing_streak) < MISSING_STREAK_CAP)
                    | col(FindingRow.fingerprint).in_(list(notified))
                )
            )
        )
    ).all()
    result = [
        AlertCandidate(
            alert=Alert(
                fingerprint=row.fingerprint,
                check=row.check,
                target=row.target,
                rule_id=row.rule_id,
                severity=Severity(row.severity),
                title=row.title,
                subject=row.subject,
                evidence=row.evidence,
                remediation=row.remediation,
                state=AlertState.FIRING if row.status == "open" else AlertState.RESOLVED,
                started_at=row.first_seen,
                ended_at=row.resolved_at,
                controls=tuple(str(c) for c in controls_for(row.rule_id)),
                labels={**labels.get(row.target, {}), **json.loads(row.labels)},
            ),
            open=row.status == FindingStatus.OPEN.value,
            seen_streak=row.seen_streak,
            missing_streak=row.missing_streak,
        )
        for row in rows
    ]
    result.extend(_failing_checks(session, check_failing_after, labels))
    return result


def _failing_checks(
    session: Session, after: int, labels: dict[str, dict[str, str]]
) -> list[AlertCandidate]:
    """A 'check failing' alert for each (check, target) whose last `after` runs all failed.
    A run skipped with a reason failed (the runner skips with a reason when the previous
    run is still running, a stuck check); one skipped without (at shutdown) is left out."""
    number = (
        sa.func.row_number()
        .over(
            partition_by=(col(CheckRunRow.check), col(CheckRunRow.target)),
            order_by=col(CheckRunRow.started_at).desc(),
        )
        .label("number")
    )
    recent = (
        sa.select(
            col(CheckRunRow.check),
            col(CheckRunRow.target),
            col(CheckRunRow.status),
            col(CheckRunRow.started_at),
            col(CheckRunRow.error_message),
            number,
        )
        .where(
            (col(CheckRunRow.status) != RunStatus.SKIPPED.value)
            | col(CheckRunRow.error_reason).is_not(None)
        )
        .subquery()
    )
    rows = session.execute(sa.select(recent).where(recent.c.number <= after)).all()
    runs: dict[tuple[str, str], list[tuple[str, datetime, str | None]]] = defaultdict(list)
    for check, target, status, started, message, _number in rows:
        runs[(check, target)].append((status, started, message))
    failing: list[AlertCandidate] = []
    for (check, target), recent_runs in runs.items():
        if target not in labels or len(recent_runs) < after:
            continue
        if not all(status in _FAILED for status, _, _ in recent_runs):
            continue
        first = min(recent_runs, key=lambda run: run[1])
        newest = max(recent_runs, key=lambda run: run[1])
        alert = Alert(
            fingerprint=finding_fingerprint(check, target, CHECK_FAILING_RULE, check),
            check=check,
            target=target,
            rule_id=CHECK_FAILING_RULE,
            severity=Severity.HIGH,
            title=f"{check} has failed {after} times in a row on {target}",
            subject=check,
            evidence=newest[2] or "no error message",
            remediation="Findings are not updated while the check fails: fix what the error names.",
            state=AlertState.FIRING,
            started_at=first[1],
            labels=labels.get(target, {}),
        )
        failing.append(AlertCandidate(alert, open=True, seen_streak=after, missing_streak=0))
    return failing


def group_states(session: Session) -> list[GroupState]:
    return [
        GroupState(
            id=row.id,
            route=row.route,
            receiver=row.receiver,
            group_key=row.group_key,
            labels=json.loads(row.labels),
            firing_since=row.firing_since,
            last_sent_at=row.last_sent_at,
            notified=notified_from_json(row.notified),
        )
        for row in session.exec(select(AlertGroupRow)).all()
    ]


def silences_for_tick(session: Session, now: datetime) -> list[Silence]:
    """Active silences and those that ended but whose end was not handled yet."""
    rows = session.exec(
        select(SilenceRow).where(
            (col(SilenceRow.ends_at) > now) | (col(SilenceRow.expiry_handled).is_(False))
        )
    ).all()
    return [_silence(row) for row in rows]


def commit_tick(session: Session, result: TickResult, now: datetime) -> None:
    """Group states, outbox rows and handled silences of one tick; the caller commits."""
    for state in result.upserts:
        row = session.get(AlertGroupRow, state.id) or AlertGroupRow(
            id=state.id,
            route=state.route,
            receiver=state.receiver,
            group_key=state.group_key,
            firing_since=state.firing_since,
        )
        row.labels = json.dumps(dict(state.labels), sort_keys=True)
        row.firing_since = state.firing_since
        row.last_sent_at = state.last_sent_at
        row.notified = notified_to_json(state.notified)
        session.add(row)
    for gid in result.deleted:
        stale = session.get(AlertGroupRow, gid)
        if stale is not None:
            session.delete(stale)
    for notification in result.notifications:
        session.add(
            OutboxRow(
                id=notification.dedup_key,
                receiver=notification.receiver,
                group_id=group_id(
                    notification.route, notification.receiver, notification.group_key
                ),
                kind=notification.kind.value,
                payload=notification_to_json(notification),
                created_at=now,
                next_attempt_at=now,
            )
        )
    if result.handled_silences:
        session.execute(
            sa.update(SilenceRow)
            .where(col(SilenceRow.id).in_(result.handled_silences))
            .values(expiry_handled=True)
        )


def due(
    session: Session, now: datetime, limit: int, exclude: Collection[str] = ()
) -> list[OutboxEntry]:
    rows = session.exec(
        select(OutboxRow)
        .where(
            col(OutboxRow.delivered_at).is_(None),
            col(OutboxRow.permanent).is_(False),
            col(OutboxRow.next_attempt_at) <= now,
            (col(OutboxRow.claimed_until).is_(None)) | (col(OutboxRow.claimed_until) < now),
            col(OutboxRow.receiver).not_in(list(exclude)),
        )
        .order_by(col(OutboxRow.next_attempt_at))
        .limit(limit)
    ).all()
    return [_entry(row) for row in rows]


def claim(session: Session, entry_id: str, now: datetime, lease: timedelta) -> bool:
    """Compare-and-set: only one dispatcher sends a row at a time (until the lease ends)."""
    result = session.execute(
        sa.update(OutboxRow)
        .where(
            col(OutboxRow.id) == entry_id,
            col(OutboxRow.delivered_at).is_(None),
            col(OutboxRow.permanent).is_(False),
            (col(OutboxRow.claimed_until).is_(None)) | (col(OutboxRow.claimed_until) < now),
        )
        .values(claimed_until=now + lease)
    )
    assert isinstance(result, sa.CursorResult)
    return result.rowcount == 1


def release_claims(session: Session) -> int:
    """Free every claim: only for a single instance starting, whose earlier self may have
    died holding them (kill -9); its notifications are then sent now, not when leases end."""
    result = session.execute(
        sa.update(OutboxRow)
        .where(col(OutboxRow.claimed_until).is_not(None), col(OutboxRow.delivered_at).is_(None))
        .values(claimed_until=None)
    )
    assert isinstance(result, sa.CursorResult)
    return result.rowcount


def mark_delivered(session: Session, entry_id: str, now: datetime) -> None:
    session.execute(
        sa.update(OutboxRow)
        .where(col(OutboxRow.id) == entry_id)
        .values(delivered_at=now, claimed_until=None, attempts=OutboxRow.attempts + 1)
    )


def mark_failed(
    session: Session,
    entry_id: str,
    error: str,
    permanent: bool,
    next_attempt_at: datetime,
) -> None:
    session.execute(
        sa.update(OutboxRow)
        .where(col(OutboxRow.id) == entry_id)
        .values(
            attempts=OutboxRow.attempts + 1,
            last_error=error[:2000],
            permanent=permanent,
            next_attempt_at=next_attempt_at,
            claimed_until=None,
        )
    )


def entries(
    session: Session, failed_only: bool, pending_only: bool, limit: int
) -> list[OutboxEntry]:
    statement = select(OutboxRow)
    if failed_only:
        statement = statement.where(col(OutboxRow.permanent).is_(True))
    if pending_only:
        statement = statement.where(
            col(OutboxRow.delivered_at).is_(None), col(OutboxRow.permanent).is_(False)
        )
    rows = session.exec(statement.order_by(col(OutboxRow.created_at).desc()).limit(limit)).all()
    return [_entry(row) for row in rows]


def failed_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(col(OutboxRow.receiver), sa.func.count())
        .where(col(OutboxRow.permanent).is_(True))
        .group_by(col(OutboxRow.receiver))
    ).all()
    return {receiver: int(count) for receiver, count in rows}


def delivered_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(col(OutboxRow.receiver), sa.func.count())
        .where(col(OutboxRow.delivered_at).is_not(None))
        .group_by(col(OutboxRow.receiver))
    ).all()
    return {receiver: int(count) for receiver, count in rows}


def pending_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(col(OutboxRow.receiver), sa.func.count())
        .where(col(OutboxRow.delivered_at).is_(None), col(OutboxRow.permanent).is_(False))
        .group_by(col(OutboxRow.receiver))
    ).all()
    return {receiver: int(count) for receiver, count in rows}


def add_silence(session: Session, silence: Silence, now: datetime) -> None:
    session.add(
        AuditLogRow(
            at=now,
            actor=silence.created_by,
            action="silence.add",
            subject=silence.id,
            detail=json.dumps(
                {
                    "matchers": dict(silence.matchers),
                    "starts_at": silence.starts_at.isoformat(),
                    "ends_at": silence.ends_at.isoformat(),
                    "comment": silence.comment,
                }
            ),
        )
    )
    session.add(
        SilenceRow(
            id=silence.id,
            matchers=json.dumps(dict(silence.matchers), sort_keys=True),
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            created_by=silence.created_by,
            comment=silence.comment,
            created_at=now,
        )
    )


def list_silences(session: Session, now: datetime, include_expired: bool) -> list[Silence]:
    statement = select(SilenceRow).order_by(col(SilenceRow.ends_at))
    if not include_expired:
        statement = statement.where(col(SilenceRow.ends_at) > now)
    return [_silence(row) for row in session.exec(statement).all()]


def expire_silence(session: Session, silence_id: str, actor: str, now: datetime) -> bool:
    row = session.get(SilenceRow, silence_id)
    if row is None or row.ends_at <= now:
        return False
    row.ends_at = now
    session.add(row)
    session.add(AuditLogRow(at=now, actor=actor, action="silence.expire", subject=silence_id))
    return True


def _silence(row: SilenceRow) -> Silence:
    try:
        matchers = json.loads(row.matchers)
    except ValueError:
        matchers = None
    return Silence(
        id=row.id,
        # unreadable matchers become none at all, which the engine refuses (never "mute all")
        matchers=matchers if isinstance(matchers, dict) else {},
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_by=row.created_by,
        comment=row.comment,
    )


def _entry(row: OutboxRow) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        receiver=row.receiver,
        kind=row.kind,
        payload=row.payload,
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        permanent=row.permanent,
    )
