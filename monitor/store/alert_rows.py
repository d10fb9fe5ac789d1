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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col, select

from monitor.model import FindingStatus, RunStatus
from monitor.store import counters
from monitor.store.lifecycle import MISSING_STREAK_CAP
from monitor.store.tables import (
    AlertGroupRow,
    AuditLogRow,
    CheckRunRow,
    CheckStateRow,
    CounterRow,
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
    running, a stuck check); one skipped without (at shutdown) is left out.

    Rows, not runs, are counted, and that is exact: run-length folding (run_length) only
    ever extends a row with ok runs, so a row of several runs is an ok row and makes the
    pair not failing whatever its run_count; failed and skipped runs are a row each.

    Cost: per (check, target) pair known to the store (`_pairs`, no scan of history), the
    newest `after` counted rows by the (check, target, started_at) index."""
    if after < 1:
        return []
    rows = session.execute(newest_counted_rows(session, after)).all()
    runs: dict[tuple[str, str], list[tuple[str, datetime, str | None]]] = defaultdict(list)
    for check, target, status, started, message in rows:
        runs[(check, target)].append((status, started, message))
    failing: list[FailedRuns] = []
    for (check, target), found in runs.items():
        # newest first; a tie on started_at at the cut-off can let one more row through
        recent_runs = sorted(found, key=lambda run: run[1], reverse=True)[:after]
        if target not in targets or len(recent_runs) < after:
            continue
        if not all(status in _FAILED for status, _, _ in recent_runs):
            continue
        failing.append(FailedRuns(check, target, after, recent_runs[-1][1], recent_runs[0][2]))
    return failing


def _counted(run: sa.TableClause | sa.Alias) -> sa.ColumnElement[bool]:
    """Runs that count for failed_runs: all but those skipped without a reason."""
    return (run.c.status != RunStatus.SKIPPED.value) | run.c.error_reason.is_not(None)


def _label(session: Session, labels: sa.ColumnElement[str], key: str) -> sa.ColumnElement[str]:
    """One key of a JSON object stored as text (counter_total.labels)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(labels, postgresql.JSON), key)
    return sa.func.json_extract(labels, f"$.{key}")


def _pairs(session: Session) -> sa.Subquery:
    """Every (check, target) with runs, from current-state rows, never from check_run:
    check_state holds each pair with an ok, error or timeout run; the run totals
    (counter_total, one row per check, target and status, never lowered by pruning) add
    any pair whose only runs were skipped."""
    state = CheckStateRow.__table__.c  # type: ignore[attr-defined]
    totals = CounterRow.__table__.c  # type: ignore[attr-defined]
    skipped = counters.labels_key({"status": RunStatus.SKIPPED.value})[1:-1]  # "status":"skipped"
    return sa.union(
        sa.select(state.check.label("check"), state.target.label("target")),
        sa.select(
            _label(session, totals.labels, "check").label("check"),
            _label(session, totals.labels, "target").label("target"),
        ).where(totals.name == counters.RUNS, totals.labels.contains(skipped)),
    ).subquery("pair")


def newest_counted_rows(session: Session, after: int) -> sa.Select[Any]:
    """(check, target, status, started_at, error_message) of the newest `after` counted
    rows of each pair: on PostgreSQL by a LATERAL subquery with LIMIT; SQLite has no
    LATERAL, so there a correlated subquery finds the start of the `after`-th newest row and
    the pair's rows from that start on are read. Both by the index on (check, target,
    started_at), `after` rows per pair (rows skipped without a reason in between aside)."""
    pair = _pairs(session)
    run = CheckRunRow.__table__.alias("run")  # type: ignore[attr-defined]
    same_pair = (run.c.check == pair.c.check) & (run.c.target == pair.c.target)
    if session.get_bind().dialect.name == "postgresql":
        newest = (
            sa.select(run.c.status, run.c.started_at, run.c.error_message)
            .where(same_pair, _counted(run))
            .order_by(run.c.started_at.desc())
            .limit(after)
            .lateral("newest")
        )
        return sa.select(
            pair.c.check,
            pair.c.target,
            newest.c.status,
            newest.c.started_at,
            newest.c.error_message,
        ).select_from(pair.join(newest, sa.true()))
    other = CheckRunRow.__table__.alias("cutoff")  # type: ignore[attr-defined]
    cutoff = (
        sa.select(other.c.started_at)
        .where(other.c.check == pair.c.check, other.c.target == pair.c.target, _counted(other))
        .order_by(other.c.started_at.desc())
        .limit(1)
        .offset(after - 1)
        .scalar_subquery()
    )
    return sa.select(
        pair.c.check, pair.c.target, run.c.status, run.c.started_at, run.c.error_message
    ).select_from(pair.join(run, same_pair & _counted(run) & (run.c.started_at >= cutoff)))


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
