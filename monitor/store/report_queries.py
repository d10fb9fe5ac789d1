"""The report's reads: a handful of aggregate queries, each returning a few rows per target,
day or rule however long the history is (SQLite and PostgreSQL alike). `read` runs them all
in one session for `SqlStore.report_rows`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.model import CheckKind, FindingStatus, RunStatus, TransitionKind
from monitor.store.interface import BEFORE_PERIOD, ReportQuery, ReportRows
from monitor.store.retention import raw_rolled_up_before
from monitor.store.rows import audit_entry_from_row, finding_from_row, target_from_row
from monitor.store.run_length import last_started
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

_COUNTED = (RunStatus.OK.value, RunStatus.ERROR.value, RunStatus.TIMEOUT.value)
_STATE_EVENTS = (
    TransitionKind.OPENED.value,
    TransitionKind.RESOLVED.value,
    TransitionKind.SEVERITY_CHANGED.value,
)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where the queries look: the database dialect, the period [start, end) and the
    selected targets."""

    dialect: str
    start: datetime
    end: datetime
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
        return sa.and_(col(column) >= self.start, col(column) < self.end)


def read(session: Session, dialect: str, query: ReportQuery) -> ReportRows:
    """Every read of a report, as plain values (see `ReportRows`)."""
    scope = Scope(dialect, query.start, query.end, query.targets)
    return ReportRows(
        targets=tuple(target_from_row(row) for row in targets(session, scope)),
        run_activity=_tuples(run_activity(session, scope, query.runs_since)),
        last_evaluated=_tuples(last_evaluated(session, scope)),
        first_evaluated=_tuples(first_evaluated(session, scope)),
        open_findings=tuple(
            f for f in map(finding_from_row, open_findings(session, scope)) if f is not None
        ),
        event_counts=_tuples(event_counts(session, scope)),
        open_at_day_ends=_tuples(open_at_day_ends(session, scope, query.day_ends)),
        remediation_times=_tuples(remediation_times(session, scope)),
        known_rules=_tuples(known_rules(session, scope)),
        samples={
            check: _tuples(latest_samples(session, scope, check, names))
            for check, names in query.samples.items()
        },
        audit=tuple(audit_entry_from_row(row) for row in audit_entries(session, scope)),
    )


def _tuples(rows: Sequence[Any]) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(row) for row in rows)


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
    `since` to the period end; runs before the period start have the day BEFORE_PERIOD (they only
    tell coverage whether a check ran recently). Days retention rolled up are read from
    run_rollup, later ones from check_run: one pass over each, a few rows per day."""
    rolled_up_before = raw_rolled_up_before(session)
    start = min(since, scope.start)
    # a run-length row (run_length) holds runs of one UTC day from started_at to last: like a
    # rolled-up day, one that straddles the period start counts as inside the period
    last = last_started()
    day = sa.case(
        (last < scope.start, sa.literal(BEFORE_PERIOD)),
        else_=scope.day_of(CheckRunRow.started_at),
    )
    # rows never span a midnight: the first bound lets the started_at index find them
    raw_from = start - timedelta(days=1)
    if rolled_up_before is not None:
        raw_from = max(raw_from, rolled_up_before)
    raw = _counted_runs(
        scope,
        CheckRunRow,
        day,
        (sa.func.sum(CheckRunRow.run_count), CheckRunRow.started_at, last),
        col(CheckRunRow.started_at) >= raw_from,
        last >= start,
        col(CheckRunRow.started_at) < scope.end,
    )
    rows: list[Any] = list(session.execute(raw).all())
    if rolled_up_before is None or rolled_up_before <= start:
        return rows
    # a rolled-up day that straddles the period start counts as inside the period; its ok
    # runs have their own first and last start, its failed runs the day's
    rollup = RunRollupRow
    rolled_day = sa.case(
        (col(rollup.last_started) < scope.start, sa.literal(BEFORE_PERIOD)),
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
            col(rollup.first_started) < scope.end,
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


def _counted_runs(
    scope: Scope, table: Any, day: Any, runs: tuple[Any, Any, Any], *where: Any
) -> sa.Select[Any]:
    """(check, target, `day`, status, count, first started, last started) of `table`'s
    counted runs of the selected targets; `runs` is (count, first started, last started)."""
    count, first, last = runs
    return (
        sa.select(
            col(table.check),
            col(table.target),
            day,
            col(table.status),
            count,
            sa.func.min(first),
            sa.func.max(last),
        )
        .where(*where, col(table.status).in_(_COUNTED), scope.only_targets(table.target))
        .group_by(table.check, table.target, day, table.status)
    )


def last_evaluated(session: Session, scope: Scope) -> Sequence[Any]:
    """(check, target, start of the last ok run before the period end), ever: raw runs and
    rolled-up days alike."""
    return session.execute(
        _ok_runs_before_end(
            scope, ("check", "target"), sa.func.max, last_started(), RunRollupRow.ok_last_started
        )
    ).all()


def first_evaluated(session: Session, scope: Scope) -> Sequence[Any]:
    """(target, start of its first ok run of any check before the period end), ever: from
    then on the target's posture rests on evidence. Runs rolled up by retention count too."""
    return session.execute(
        _ok_runs_before_end(
            scope, ("target",), sa.func.min, CheckRunRow.started_at, RunRollupRow.ok_first_started
        )
    ).all()


def _ok_runs_before_end(
    scope: Scope, keys: Sequence[str], pick: Any, raw_started: Any, rolled_started: Any
) -> sa.Select[Any]:
    """`keys` and the `pick` (min or max) of the start of ok runs before the period end,
    from raw runs (`raw_started` of a run-length row: its first or its newest run) and from
    the days retention rolled up (`rolled_started`: a day's first or last ok run)."""

    def ok_runs(table: Any, started: Any, *ok: Any) -> Any:
        columns: list[Any] = [col(getattr(table, key)).label(key) for key in keys]
        return (
            sa.select(*columns, pick(started).label("started"))
            .where(*ok, scope.only_targets(table.target))
            .group_by(*columns)
        )

    both = sa.union_all(
        ok_runs(
            CheckRunRow,
            raw_started,
            col(CheckRunRow.started_at) < scope.end,
            col(CheckRunRow.status) == RunStatus.OK.value,
        ),
        # a rolled-up day keeps the first and last start of its ok runs (None: it had none)
        ok_runs(RunRollupRow, rolled_started, col(rolled_started) < scope.end),
    ).subquery()
    grouped = [both.c[key] for key in keys]
    return sa.select(*grouped, pick(both.c.started)).group_by(*grouped)


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
            col(FindingEventRow.at) < scope.end,
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
            col(CheckRunRow.started_at) < scope.end,
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
            col(SampleRow.time) < scope.end,
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
