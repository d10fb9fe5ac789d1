"""Alerting's rows in the store: findings and failing runs alerting may announce, alert
groups, the outbox and silences. Row-level functions over a session, in the store's own
terms (tables, JSON text, primitives); `monitor.alert_records` maps them to alerting's
types. Knows nothing of alerting's rules."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.model import FindingStatus, RunStatus
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

_FAILED = (RunStatus.ERROR.value, RunStatus.TIMEOUT.value, RunStatus.SKIPPED.value)


@dataclass(frozen=True, slots=True)
class FailedRuns:
    """A (check, target) whose latest `count` runs all failed."""

    check: str
    target: str
    count: int
    first_started_at: datetime  # the oldest of them
    last_error: str | None  # the newest one's error message


def lock_tick(session: Session) -> None:
    """One tick at a time across instances (PostgreSQL; SQLite serialises writers anyway): a
    deposed leader's last tick then sees the new leader's group states, and the
    level-triggered engine sends nothing twice. Held until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('apivigil:tick'))"))


def target_labels(session: Session) -> dict[str, dict[str, str]]:
    """Every known target's labels, by name."""
    return {row.name: json.loads(row.labels) for row in session.exec(select(TargetRow)).all()}


def announceable_findings(session: Session) -> list[FindingRow]:
    """Open findings, resolved ones still counted (missing_streak below the cap), and
    resolved ones some alert group last announced as firing."""
    notified = {
        fingerprint
        for (text,) in session.execute(sa.select(col(AlertGroupRow.notified))).all()
        for fingerprint in json.loads(text)
    }
    return list(
        session.exec(
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
    )


def failed_runs(session: Session, after: int, targets: Collection[str]) -> list[FailedRuns]:
    """Each (check, target in `targets`) whose last `after` runs all failed. A run skipped
    with a reason failed (the runner skips with a reason when the previous run is still
    running, a stuck check); one skipped without (at shutdown) is left out."""
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
    failing: list[FailedRuns] = []
    for (check, target), recent_runs in runs.items():
        if target not in targets or len(recent_runs) < after:
            continue
        if not all(status in _FAILED for status, _, _ in recent_runs):
            continue
        first = min(recent_runs, key=lambda run: run[1])
        newest = max(recent_runs, key=lambda run: run[1])
        failing.append(FailedRuns(check, target, after, first[1], newest[2]))
    return failing


def group_rows(session: Session) -> list[AlertGroupRow]:
    return list(session.exec(select(AlertGroupRow)).all())


def silence_rows_for_tick(session: Session, now: datetime) -> list[SilenceRow]:
    """Active silences and those that ended but whose end was not handled yet."""
    return list(
        session.exec(
            select(SilenceRow).where(
                (col(SilenceRow.ends_at) > now) | (col(SilenceRow.expiry_handled).is_(False))
            )
        ).all()
    )


def save_group(session: Session, group: AlertGroupRow) -> None:
    """Insert or update an alert group (by id)."""
    row = session.get(AlertGroupRow, group.id)
    if row is None:
        session.add(group)
        return
    row.labels = group.labels
    row.firing_since = group.firing_since
    row.last_sent_at = group.last_sent_at
    row.notified = group.notified
    session.add(row)


def delete_groups(session: Session, ids: Collection[str]) -> None:
    for gid in ids:
        stale = session.get(AlertGroupRow, gid)
        if stale is not None:
            session.delete(stale)


def add_outbox_row(
    session: Session,
    entry_id: str,
    receiver: str,
    group_id: str,
    kind: str,
    payload: str,
    now: datetime,
) -> None:
    """A notification to deliver from `now` on."""
    session.add(
        OutboxRow(
            id=entry_id,
            receiver=receiver,
            group_id=group_id,
            kind=kind,
            payload=payload,
            created_at=now,
            next_attempt_at=now,
        )
    )


def mark_silences_handled(session: Session, ids: Collection[str]) -> None:
    if ids:
        session.execute(
            sa.update(SilenceRow)
            .where(col(SilenceRow.id).in_(list(ids)))
            .values(expiry_handled=True)
        )


def due(
    session: Session, now: datetime, limit: int, exclude: Collection[str] = ()
) -> list[OutboxRow]:
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
    return list(rows)


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


def entries(session: Session, failed_only: bool, pending_only: bool, limit: int) -> list[OutboxRow]:
    statement = select(OutboxRow)
    if failed_only:
        statement = statement.where(col(OutboxRow.permanent).is_(True))
    if pending_only:
        statement = statement.where(
            col(OutboxRow.delivered_at).is_(None), col(OutboxRow.permanent).is_(False)
        )
    return list(
        session.exec(statement.order_by(col(OutboxRow.created_at).desc()).limit(limit)).all()
    )


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


def add_silence(
    session: Session, silence: SilenceRow, matchers: Mapping[str, str], now: datetime
) -> None:
    """Store a silence, and who added it in the audit log (`matchers` as given)."""
    session.add(
        AuditLogRow(
            at=now,
            actor=silence.created_by,
            action="silence.add",
            subject=silence.id,
            detail=json.dumps(
                {
                    "matchers": dict(matchers),
                    "starts_at": silence.starts_at.isoformat(),
                    "ends_at": silence.ends_at.isoformat(),
                    "comment": silence.comment,
                }
            ),
        )
    )
    session.add(silence)


def silence_rows(session: Session, now: datetime, include_expired: bool) -> list[SilenceRow]:
    statement = select(SilenceRow).order_by(col(SilenceRow.ends_at))
    if not include_expired:
        statement = statement.where(col(SilenceRow.ends_at) > now)
    return list(session.exec(statement).all())


def expire_silence(session: Session, silence_id: str, actor: str, now: datetime) -> bool:
    row = session.get(SilenceRow, silence_id)
    if row is None or row.ends_at <= now:
        return False
    row.ends_at = now
    session.add(row)
    session.add(AuditLogRow(at=now, actor=actor, action="silence.expire", subject=silence_id))
    return True
