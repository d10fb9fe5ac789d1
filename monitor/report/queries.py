"""The report's reads: a handful of aggregate queries, each returning a few rows per target,
day or rule however long the history is (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.model import CheckKind, FindingStatus, RunStatus, TransitionKind
from monitor.report.model import ReportPeriod
from monitor.store.retention import raw_rolled_up_before
from monitor.store.run_length import last_started
from monitor.store.sql_metrics import as_utc
from monitor.store.tables import (
    AuditLogRow,
    CheckRunRow,
    FindingEventRow,
    FindingRow,
    RunRollupRow,
    SampleRow,
    TargetRow,
    UtcDateTime,
)

BEFORE = "before"  # the day of runs older than the period (see run_activity)
_COUNTED = (RunStatus.OK.value, RunStatus.ERROR.value, RunStatus.TIMEOUT.value)
_STATE_EVENTS = (
    TransitionKind.OPENED.value,
    TransitionKind.RESOLVED.value,
    TransitionKind.SEVERITY_CHANGED.value,
)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where the queries look: the database dialect, the period and the selected targets."""

    dialect: str
    period: ReportPeriod
    targets: frozenset[str] | None = None  # None: every target

    def only_targets(self, column: Any) -> sa.ColumnElement[bool]:
        if self.targets is None:
            return sa.true()
        return col(column).in_(sorted(self.targets))

    def day_of(self, column: Any) -> sa.ColumnElement[str]:
        """The UTC day of a timestamp column as YYYY-MM-DD text."""
        if self.dialect == "sqlite":  # stored as naive UTC text
            return sa.func.date(column)
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")

    def epoch_of(self, column: Any) -> sa.ColumnElement[float]:
        """Seconds since 1970 of a timestamp column."""
        if self.dialect == "sqlite":
            return (sa.func.julianday(column) - 2440587.5) * 86400.0
        return sa.cast(sa.extract("epoch", column), sa.Float())

    def in_period(self, column: Any) -> sa.ColumnElement[bool]:
        return sa.and_(col(column) >= self.period.start, col(column) < self.period.end)


def targets(session: Session, scope: Scope) -> list[TargetRow]:
    """The active (configured) targets, by name."""
    statement = (
        sa.select(TargetRow)
        .where(col(TargetRow.active).is_(True), scope.only_targets(TargetRow.name))
        .order_by(TargetRow.name)
    )
    return list(session.scalars(statement).all())


def run_activity(session: Session, scope: Scope, since: datetime) -> list[Any]:
    """(check, target, day, status, count, first started, last started) of the runs from
    `since` to the period end; runs before the period start have the day BEFORE (they only
    tell coverage whether a check ran recently). Days retention rolled up are read from
    run_rollup, later ones from check_run: one pass over each, a few rows per day."""
    rolled_up_before = raw_rolled_up_before(session)
    start = min(since, scope.period.start)
    # a run-length row (run_length) holds runs of one UTC day from started_at to last: like a
    # rolled-up day, one that straddles the period start counts as inside the period
    last = last_started()
    day = sa.case(
        (last < scope.period.start, sa.literal(BEFORE)),
        else_=scope.day_of(CheckRunRow.started_at),
    )
    # rows never span a midnight: the first bound lets the started_at index find them
    raw_from = start - timedelta(days=1)
    if rolled_up_before is not None:
        raw_from = max(raw_from, rolled_up_before)
    rows: list[Any] = list(
        session.execute(
            sa.select(
                col(CheckRunRow.check),
                col(CheckRunRow.target),
                day,
                col(CheckRunRow.status),
                sa.func.sum(CheckRunRow.run_count),
                sa.func.min(CheckRunRow.started_at),
                sa.func.max(last),
            )
            .where(
                col(CheckRunRow.started_at) >= raw_from,
                last >= start,
                col(CheckRunRow.started_at) < scope.period.end,
                col(CheckRunRow.status).in_(_COUNTED),
                scope.only_targets(CheckRunRow.target),
            )
            .group_by(CheckRunRow.check, CheckRunRow.target, day, CheckRunRow.status)
        ).all()
    )
    if rolled_up_before is None or rolled_up_before <= start:
        return rows
    # a rolled-up day that straddles the period start counts as inside the period; its ok
    # runs have their own first and last start, its failed runs the day's
    rollup = RunRollupRow
    rolled_day = sa.case(
        (col(rollup.last_started) < scope.period.start, sa.literal(BEFORE)),
        else_=col(rollup.day),
    )
    rolled = session.execute(
        sa.select(
            col(rollup.check),
            col(rollup.target),
            rolled_day,
            sa.func.sum(rollup.runs_ok),
            sa.func.sum(rollup.runs_error),
            sa.func.sum(rollup.runs_timeout),
            sa.func.min(rollup.first_started),
            sa.func.max(rollup.last_started),
            sa.func.min(rollup.ok_first_started),
            sa.func.max(rollup.ok_last_started),
        )
        .where(
            col(rollup.day) < rolled_up_before.date().isoformat(),
            col(rollup.last_started) >= start,
            col(rollup.first_started) < scope.period.end,
            col(rollup.runs_ok) + col(rollup.runs_error) + col(rollup.runs_timeout) > 0,
            scope.only_targets(rollup.target),
        )
        .group_by(rollup.check, rollup.target, rolled_day)
    ).all()
    for check, target, day_, ok, error, timeout, first, last, ok_first, ok_last in rolled:
        for status, count in (
            (RunStatus.OK.value, ok),
            (RunStatus.ERROR.value, error),
            (RunStatus.TIMEOUT.value, timeout),
        ):
            if count:
                ok_span = status == RunStatus.OK.value
                rows.append(
                    (
                        check,
                        target,
                        day_,
                        status,
                        int(count),
                        ok_first if ok_span else first,
                        ok_last if ok_span else last,
                    )
                )
    return rows


def last_evaluated(session: Session, scope: Scope) -> list[Any]:
    """(check, target, start of the last ok run before the period end), ever: raw runs and
    rolled-up days alike."""
    raw = session.execute(
        sa.select(col(CheckRunRow.check), col(CheckRunRow.target), sa.func.max(last_started()))
        .where(
            col(CheckRunRow.started_at) < scope.period.end,
            col(CheckRunRow.status) == RunStatus.OK.value,
            scope.only_targets(CheckRunRow.target),
        )
        .group_by(CheckRunRow.check, CheckRunRow.target)
    ).all()
    rolled = session.execute(
        sa.select(
            col(RunRollupRow.check),
            col(RunRollupRow.target),
            sa.func.max(RunRollupRow.ok_last_started),
        )
        .where(
            col(RunRollupRow.ok_last_started) < scope.period.end,
            scope.only_targets(RunRollupRow.target),
        )
        .group_by(RunRollupRow.check, RunRollupRow.target)
    ).all()
    latest: dict[tuple[str, str], Any] = {}
    for check, target, started in [*rolled, *raw]:
        if started is None:
            continue
        moment = as_utc(started)
        if (check, target) not in latest or moment > latest[(check, target)]:
            latest[(check, target)] = moment
    return [(check, target, moment) for (check, target), moment in latest.items()]


def first_evaluated(session: Session, scope: Scope) -> Sequence[Any]:
    """(target, start of its first ok run of any check before the period end), ever: from
    then on the target's posture rests on evidence. Runs rolled up by retention count too."""
    raw: Any = (
        sa.select(
            col(CheckRunRow.target).label("target"),
            sa.func.min(CheckRunRow.started_at).label("first"),
        )
        .where(
            col(CheckRunRow.started_at) < scope.period.end,
            col(CheckRunRow.status) == RunStatus.OK.value,
            scope.only_targets(CheckRunRow.target),
        )
        .group_by(CheckRunRow.target)
    )
    rolled: Any = (
        sa.select(
            col(RunRollupRow.target).label("target"),
            sa.func.min(RunRollupRow.ok_first_started).label("first"),
        )
        .where(
            col(RunRollupRow.ok_first_started) < scope.period.end,
            scope.only_targets(RunRollupRow.target),
        )
        .group_by(RunRollupRow.target)
    )
    both = sa.union_all(raw, rolled).subquery()
    return session.execute(
        sa.select(both.c.target, sa.func.min(both.c.first)).group_by(both.c.target)
    ).all()


def event_counts(session: Session, scope: Scope) -> Sequence[Any]:
    """(day, check, rule_id, kind, count) of the period's finding transitions."""
    day = scope.day_of(FindingEventRow.at)
    return session.execute(
        sa.select(
            day,
            col(FindingRow.check),
            col(FindingRow.rule_id),
            col(FindingEventRow.kind),
            sa.func.count(),
        )
        .join(FindingRow, col(FindingRow.fingerprint) == col(FindingEventRow.fingerprint))
        .where(
            scope.in_period(FindingEventRow.at),
            col(FindingEventRow.kind).in_(
                (TransitionKind.OPENED.value, TransitionKind.RESOLVED.value)
            ),
            scope.only_targets(FindingRow.target),
        )
        .group_by(day, FindingRow.check, FindingRow.rule_id, FindingEventRow.kind)
    ).all()


def open_at_day_ends(
    session: Session, scope: Scope, day_ends: Sequence[tuple[date, datetime]]
) -> Sequence[Any]:
    """(day, target, rule_id, severity, count) of findings open at each day's end.

    Each opened / severity-changed / resolved event starts a segment that lasts until the
    finding's next such event; a finding is open at a moment inside a non-resolved segment.
    """
    events = (
        sa.select(
            col(FindingEventRow.fingerprint).label("fingerprint"),
            col(FindingEventRow.kind).label("kind"),
            col(FindingEventRow.severity).label("severity"),
            col(FindingEventRow.at).label("at"),
            sa.func.lead(FindingEventRow.at)
            .over(
                partition_by=col(FindingEventRow.fingerprint),
                order_by=(col(FindingEventRow.at), col(FindingEventRow.id)),
            )
            .label("until"),
        )
        .where(
            col(FindingEventRow.kind).in_(_STATE_EVENTS),
            col(FindingEventRow.at) < scope.period.end,
        )
        .subquery("segment")
    )
    ends = sa.union_all(  # portable: SQLite cannot name the columns of a VALUES list
        *(
            sa.select(
                sa.literal(day.isoformat(), sa.String()).label("day"),
                sa.literal(end, UtcDateTime()).label("day_end"),
            )
            for day, end in day_ends
        )
    ).subquery("ends")
    first_end = min(end for _, end in day_ends)
    return session.execute(
        sa.select(
            ends.c.day,
            col(FindingRow.target),
            col(FindingRow.rule_id),
            events.c.severity,
            sa.func.count(),
        )
        .select_from(events)
        .join(FindingRow, col(FindingRow.fingerprint) == events.c.fingerprint)
        .join(
            ends,
            sa.and_(
                events.c.at < ends.c.day_end,
                sa.or_(events.c.until.is_(None), events.c.until >= ends.c.day_end),
            ),
        )
        .where(
            events.c.kind != TransitionKind.RESOLVED.value,
            sa.or_(events.c.until.is_(None), events.c.until >= first_end),
            scope.only_targets(FindingRow.target),
        )
        .group_by(ends.c.day, FindingRow.target, FindingRow.rule_id, events.c.severity)
    ).all()


def remediation_times(session: Session, scope: Scope) -> Sequence[Any]:
    """(severity, count, mean seconds from first sighting to resolution) for findings
    resolved in the period."""
    seconds = scope.epoch_of(FindingRow.resolved_at) - scope.epoch_of(FindingRow.first_seen)
    return session.execute(
        sa.select(col(FindingRow.severity), sa.func.count(), sa.func.avg(seconds))
        .where(
            col(FindingRow.status) == FindingStatus.RESOLVED.value,
            scope.in_period(FindingRow.resolved_at),
            scope.only_targets(FindingRow.target),
        )
        .group_by(FindingRow.severity)
    ).all()


def open_findings(session: Session, scope: Scope) -> list[FindingRow]:
    return list(
        session.scalars(
            sa.select(FindingRow).where(
                col(FindingRow.status) == FindingStatus.OPEN.value,
                scope.only_targets(FindingRow.target),
            )
        ).all()
    )


def known_rules(session: Session, scope: Scope) -> Sequence[Any]:
    """(check, rule_id) of every rule that ever reported on the selected targets."""
    return session.execute(
        sa.select(col(FindingRow.check), col(FindingRow.rule_id))
        .where(scope.only_targets(FindingRow.target))
        .group_by(FindingRow.check, FindingRow.rule_id)
    ).all()


def latest_samples(
    session: Session, scope: Scope, check: CheckKind, names: Sequence[str]
) -> Sequence[Any]:
    """(target, name, labels JSON, value) of the newest ok run of `check` on each target."""
    newest = (
        sa.select(
            col(CheckRunRow.target).label("target"),
            sa.func.max(CheckRunRow.started_at).label("started"),
        )
        .where(
            col(CheckRunRow.check) == check.value,
            col(CheckRunRow.status) == RunStatus.OK.value,
            col(CheckRunRow.started_at) < scope.period.end,
            scope.only_targets(CheckRunRow.target),
        )
        .group_by(CheckRunRow.target)
        .subquery("newest")
    )
    rows = session.execute(
        sa.select(
            col(SampleRow.target), col(SampleRow.name), col(SampleRow.labels), col(SampleRow.value)
        )
        .select_from(CheckRunRow)
        .join(
            newest,
            sa.and_(
                col(CheckRunRow.target) == newest.c.target,
                col(CheckRunRow.started_at) == newest.c.started,
            ),
        )
        .join(SampleRow, col(SampleRow.run_id) == col(CheckRunRow.id))
        .where(
            col(CheckRunRow.check) == check.value,
            col(CheckRunRow.status) == RunStatus.OK.value,
            col(SampleRow.name).in_(list(names)),
            col(SampleRow.time) < scope.period.end,
        )
        .order_by(col(SampleRow.id))
    ).all()
    # a run-length row keeps each change of a series: the newest before the end is its value
    values = {(target, name, labels): value for target, name, labels, value in rows}
    return [(target, name, labels, value) for (target, name, labels), value in values.items()]


def audit_entries(session: Session, scope: Scope, limit: int = 1000) -> list[AuditLogRow]:
    """Who changed what in the period (baseline approvals, silences), newest first."""
    return list(
        session.scalars(
            sa.select(AuditLogRow)
            .where(scope.in_period(AuditLogRow.at))
            .order_by(col(AuditLogRow.at).desc())
            .limit(limit)
        ).all()
    )
