"""Retention: roll raw runs and samples up per (check, target, UTC day), then delete what aged
out, in small batches under a time budget. Totals (counter_total) are never lowered: rows
that feed a counter are added to a stored total in the same transaction that deletes them.

Kept whatever their age: the newest ok run of each (check, target) and its samples (what
/metrics shows), the newest ok run that kept a snapshot (what drift compares against), runs
a finding event points at (evidence), snapshots a kept run points at, open findings and their
events, and the audit log."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from monitor.model import FindingStatus, RunStatus
from monitor.store import counters, run_rollup
from monitor.store.run_length import BOUNDS, last_started, parse_buckets
from monitor.store.sql_metrics import as_utc
from monitor.store.tables import (
    CheckRunRow,
    CheckStateRow,
    FindingEventRow,
    FindingRow,
    OutboxRow,
    RetentionMarkRow,
    RunRollupRow,
    SampleRow,
    SnapshotRow,
)

RAW_ROLLED_UP_BEFORE = "raw_rolled_up_before"  # runs before this midnight are in run_rollup


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    raw: timedelta = timedelta(days=30)
    evidence: timedelta = timedelta(days=400)
    outbox: timedelta = timedelta(days=30)
    batch_rows: int = 2000


@dataclass(slots=True)
class PruneResult:
    """What one pass removed (table -> rows) and rolled up; `complete` is False when the time
    budget ran out with more to do."""

    removed: dict[str, int] = field(default_factory=dict)
    rolled_up_days: list[date] = field(default_factory=list)
    complete: bool = True

    def add(self, table: str, rows: int) -> None:
        if rows:
            self.removed[table] = self.removed.get(table, 0) + rows


def midnight(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def raw_rolled_up_before(session: Session) -> datetime | None:
    """The midnight before which runs are read from run_rollup (None: nothing rolled up)."""
    at = session.execute(
        sa.select(col(RetentionMarkRow.at)).where(
            col(RetentionMarkRow.name) == RAW_ROLLED_UP_BEFORE
        )
    ).scalar()
    return None if at is None else as_utc(at)


class _Pass:
    def __init__(
        self, session: Session, policy: RetentionPolicy, budget: float, dry_run: bool
    ) -> None:
        self.session = session
        self.policy = policy
        self.deadline = time.monotonic() + budget
        self.dry_run = dry_run
        self.result = PruneResult()

    def out_of_time(self) -> bool:
        if time.monotonic() >= self.deadline:
            self.result.complete = False
            return True
        return False

    def done_batch(self, removed: Mapping[str, int]) -> None:
        for table, rows in removed.items():
            self.result.add(table, rows)
            if rows and not self.dry_run:
                counters.add(self.session, counters.PRUNED_ROWS, {"table": table}, rows)
        if self.dry_run:
            self.session.flush()
        else:
            self.session.commit()


def prune(
    session: Session,
    policy: RetentionPolicy,
    now: datetime,
    budget_seconds: float = 5.0,
    dry_run: bool = False,
) -> PruneResult:
    """Roll up and delete what `policy` lets go, committing every batch (a dry run rolls
    everything back at the end and reports what it would have removed)."""
    work = _Pass(session, policy, budget_seconds, dry_run)
    try:
        steps: Sequence[Callable[[_Pass, datetime], bool]] = (
            _roll_up_days,
            _delete_raw_runs,
            _delete_old_findings,
            _delete_old_snapshots,
            _delete_finished_outbox,
        )
        for step in steps:
            if not step(work, now):
                break
        if not dry_run and work.result.complete:
            _measure(session)
    finally:
        if dry_run:
            session.rollback()
    return work.result


# the store's own size ----------------------------------------------------------------------

MEASURED_TABLES = (
    "check_run",
    "sample",
    "snapshot",
    "finding",
    "finding_event",
    "outbox",
    "audit_log",
    "run_rollup",
)


def _measure(session: Session) -> None:
    """Store row counts and the store's bytes as gauges /metrics reads (counting rows of a
    large table is a scan: done here, after a pass, never at scrape time)."""
    postgres = _dialect(session) == "postgresql"
    for table in MEASURED_TABLES:
        if postgres:  # the planner's estimate, kept by (auto)vacuum and analyze
            rows = session.execute(
                sa.text("SELECT GREATEST(reltuples, 0) FROM pg_class WHERE oid = to_regclass(:t)"),
                {"t": table},
            ).scalar()
        else:
            rows = session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
        counters.put(session, counters.STORE_ROWS, {"table": table}, float(rows or 0))
    if postgres:
        size = session.execute(
            sa.text(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
            )
        ).scalar()
    else:
        pages = session.execute(sa.text("PRAGMA page_count")).scalar()
        page_size = session.execute(sa.text("PRAGMA page_size")).scalar()
        size = int(pages or 0) * int(page_size or 0)
    counters.put(session, counters.STORE_BYTES, {}, float(size or 0))
    session.commit()


# rollups -----------------------------------------------------------------------------------


def _roll_up_days(work: _Pass, now: datetime) -> bool:
    """Roll up whole days before the raw window, oldest first. Each day is claimed by moving
    the mark forward first (compare and set), so two prunes at once never roll up a day twice
    (the second would find its raw rows already gone)."""
    session = work.session
    before = midnight(now - work.policy.raw)
    if raw_rolled_up_before(session) is None:
        oldest = session.execute(sa.select(sa.func.min(CheckRunRow.started_at))).scalar()
        if oldest is None:
            return True
        first = {"name": RAW_ROLLED_UP_BEFORE, "at": midnight(as_utc(oldest))}
        insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
        session.execute(insert(RetentionMarkRow).values(**first).on_conflict_do_nothing())
        work.done_batch({})
    while True:
        mark = raw_rolled_up_before(session)
        if mark is None or mark >= before:
            return True
        if work.out_of_time():
            return False
        claimed = session.connection().execute(
            sa.update(RetentionMarkRow)
            .where(
                col(RetentionMarkRow.name) == RAW_ROLLED_UP_BEFORE,
                col(RetentionMarkRow.at) == mark,
            )
            .values(at=mark + timedelta(days=1))
        )
        if not claimed.rowcount:
            session.rollback()  # another prune took this day
            continue
        _roll_up_day(session, mark)
        work.result.rolled_up_days.append(mark.date())
        work.done_batch({})


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _roll_up_day(session: Session, day_start: datetime) -> None:
    """One UTC day's runs and samples as a run_rollup row per (check, target), aggregated by
    the database."""
    day_end = day_start + timedelta(days=1)
    day = day_start.date().isoformat()
    reason = sa.func.coalesce(col(CheckRunRow.error_reason), "")
    key = (col(CheckRunRow.check), col(CheckRunRow.target), col(CheckRunRow.status), reason)
    in_day = (col(CheckRunRow.started_at) >= day_start, col(CheckRunRow.started_at) < day_end)
    duration = col(CheckRunRow.duration_seconds)
    buckets = [sa.func.sum(sa.case((duration <= bound, 1), else_=0)) for bound in BOUNDS]
    single = (
        session.connection()
        .execute(  # rows of one run (all rows written before run-length rows), by the database
            sa.select(
                *key,
                sa.func.count(),
                sa.func.sum(duration),
                sa.func.max(duration),
                sa.func.min(CheckRunRow.started_at),
                sa.func.max(CheckRunRow.started_at),
                *buckets,
            )
            .where(*in_day, col(CheckRunRow.duration_buckets).is_(None))
            .group_by(*key)
        )
        .all()
    )
    extended = (
        session.connection()
        .execute(  # run-length rows: a few per (check, target) and day
            sa.select(
                *key,
                col(CheckRunRow.run_count),
                duration,
                sa.func.coalesce(col(CheckRunRow.duration_max), duration),
                col(CheckRunRow.started_at),
                last_started(),
                col(CheckRunRow.duration_buckets),
            ).where(*in_day, col(CheckRunRow.duration_buckets).is_not(None))
        )
        .all()
    )
    series = _sample_series(session, day_start, day_end)
    # reads first, writes last: on SQLite the write lock is held only while writing
    session.connection().execute(sa.delete(RunRollupRow).where(col(RunRollupRow.day) == day))
    run_rows = run_rollup.fold(
        [
            (
                check,
                target,
                day,
                run_rollup.Runs(
                    status,
                    why,
                    int(count),
                    float(total or 0.0),
                    float(longest or 0.0),
                    as_utc(first),
                    as_utc(last),
                    run_rollup.buckets_from_cumulative([int(n or 0) for n in at_most], int(count)),
                ),
            )
            for check, target, status, why, count, total, longest, first, last, *at_most in single
        ]
        + [
            (
                check,
                target,
                day,
                run_rollup.Runs(
                    status,
                    why,
                    int(count),
                    float(total),
                    float(longest),
                    as_utc(first),
                    as_utc(last),
                    parse_buckets(text or ""),
                ),
            )
            for check, target, status, why, count, total, longest, first, last, text in extended
        ]
    )
    rows = run_rollup.with_series(
        run_rows,
        (
            (
                check,
                target,
                day,
                run_rollup.Series(name, labels, int(count), low, high, last, as_utc(last_at)),
            )
            for check, target, name, labels, count, low, high, last, last_at in series
        ),
    )
    if rows:
        session.connection().execute(sa.insert(RunRollupRow), rows)


def _sample_series(session: Session, day_start: datetime, day_end: datetime) -> Sequence[Any]:
    """(check, target, name, labels, count, min, max, last value, last time) of one day."""
    group = [
        col(SampleRow.check),
        col(SampleRow.target),
        col(SampleRow.name),
        col(SampleRow.labels),
    ]
    ranked = (
        sa.select(
            *group,
            col(SampleRow.value).label("value"),
            col(SampleRow.time).label("time"),
            sa.func.row_number()
            .over(partition_by=group, order_by=col(SampleRow.time).desc())
            .label("newest"),
        )
        .where(col(SampleRow.time) >= day_start, col(SampleRow.time) < day_end)
        .subquery("ranked")
    )
    keys = [ranked.c.check, ranked.c.target, ranked.c.name, ranked.c.labels]
    return (
        session.connection()
        .execute(
            sa.select(
                *keys,
                sa.func.count(),
                sa.func.min(ranked.c.value),
                sa.func.max(ranked.c.value),
                sa.func.max(sa.case((ranked.c.newest == 1, ranked.c.value))),
                sa.func.max(ranked.c.time),
            ).group_by(*keys)
        )
        .all()
    )


# deletions ---------------------------------------------------------------------------------


def _delete_raw_runs(work: _Pass, now: datetime) -> bool:
    """Runs (and their samples) before the rolled-up mark, except the ones kept on purpose.

    Each batch is a keyset range of `batch_rows` runs by (started_at, id): its upper end is
    found by the started_at index, then the database deletes what in the range is not kept,
    with no list of ids going back and forth (that cost more than the deletes)."""
    session = work.session
    mark = raw_rolled_up_before(session)
    if mark is None:
        return True
    started, run_id = col(CheckRunRow.started_at), col(CheckRunRow.id)
    doomed = _not_kept(mark)
    after: tuple[datetime, str] | None = None  # keyset: kept runs are not scanned again
    while True:
        if work.out_of_time():
            return False
        page = [started < mark]
        if after is not None:  # the first term lets the index find the range
            page += [started >= after[0], sa.or_(started > after[0], run_id > after[1])]
        last = (
            session.connection()
            .execute(
                sa.select(run_id, started)
                .where(*page)
                .order_by(started, run_id)
                .offset(work.policy.batch_rows - 1)
                .limit(1)
            )
            .first()
        )
        if last is not None:
            upto = as_utc(last[1])
            page += [started <= upto, sa.or_(started < upto, run_id <= last[0])]
        in_batch = sa.select(run_id).where(*page, *doomed)
        samples = _deleted(session, sa.delete(SampleRow).where(col(SampleRow.run_id).in_(in_batch)))
        runs = _deleted(session, sa.delete(CheckRunRow).where(*page, *doomed))
        work.done_batch({"sample": samples, "check_run": runs})
        if last is None:
            return True
        after = (as_utc(last[1]), last[0])


def _not_kept(before: datetime) -> list[sa.ColumnElement[bool]]:
    """Conditions on a check_run row that are true when retention may delete it: not the newest
    ok run of its (check, target), no finding event points at it, and, if it is an ok run
    that kept a snapshot, a later one before `before` did too (the newest such run is what a
    check compares with next, baselines.latest_snapshot, when later runs kept none)."""
    kept_ok = sa.select(col(CheckStateRow.ok_run_id)).where(
        col(CheckStateRow.ok_run_id).is_not(None)
    )
    evidence = sa.exists().where(col(FindingEventRow.run_id) == col(CheckRunRow.id))
    later = aliased(CheckRunRow, name="later")
    ok_snapshot = RunStatus.OK.value
    newer_snapshot = sa.exists().where(
        col(later.check) == col(CheckRunRow.check),
        col(later.target) == col(CheckRunRow.target),
        col(later.started_at) > col(CheckRunRow.started_at),
        col(later.started_at) < before,
        col(later.status) == ok_snapshot,
        col(later.snapshot_sha256).is_not(None),
    )
    return [
        col(CheckRunRow.id).not_in(kept_ok),
        ~evidence,
        sa.or_(
            col(CheckRunRow.snapshot_sha256).is_(None),
            col(CheckRunRow.status) != ok_snapshot,
            newer_snapshot,
        ),
    ]


def _delete_old_findings(work: _Pass, now: datetime) -> bool:
    """Findings resolved before the evidence period, with their events."""
    session = work.session
    before = now - work.policy.evidence
    while True:
        if work.out_of_time():
            return False
        fingerprints = list(
            session.execute(
                sa.select(col(FindingRow.fingerprint))
                .where(
                    col(FindingRow.status) == FindingStatus.RESOLVED.value,
                    col(FindingRow.resolved_at) < before,
                )
                .limit(work.policy.batch_rows)
            ).scalars()
        )
        if not fingerprints:
            return True
        events = _deleted(
            session,
            sa.delete(FindingEventRow).where(col(FindingEventRow.fingerprint).in_(fingerprints)),
        )
        findings = _deleted(
            session, sa.delete(FindingRow).where(col(FindingRow.fingerprint).in_(fingerprints))
        )
        work.done_batch({"finding_event": events, "finding": findings})


def _delete_old_snapshots(work: _Pass, now: datetime) -> bool:
    """Snapshots first taken before the evidence period that no kept run points at."""
    session = work.session
    before = now - work.policy.evidence
    referenced = sa.exists().where(col(CheckRunRow.snapshot_sha256) == col(SnapshotRow.sha256))
    while True:
        if work.out_of_time():
            return False
        doomed = list(
            session.execute(
                sa.select(col(SnapshotRow.sha256))
                .where(col(SnapshotRow.taken_at) < before, ~referenced)
                .limit(work.policy.batch_rows)
            ).scalars()
        )
        if not doomed:
            return True
        removed = _deleted(
            session, sa.delete(SnapshotRow).where(col(SnapshotRow.sha256).in_(doomed))
        )
        work.done_batch({"snapshot": removed})


def _delete_finished_outbox(work: _Pass, now: datetime) -> bool:
    """Notifications delivered (or failed for good) before the outbox period; their counts
    move to stored totals in the same transaction."""
    session = work.session
    before = now - work.policy.outbox
    finished = sa.or_(
        col(OutboxRow.delivered_at) < before,
        sa.and_(col(OutboxRow.permanent).is_(True), col(OutboxRow.created_at) < before),
    )
    while True:
        if work.out_of_time():
            return False
        page = session.execute(
            sa.select(col(OutboxRow.id), col(OutboxRow.receiver), col(OutboxRow.delivered_at))
            .where(finished)
            .limit(work.policy.batch_rows)
        ).all()
        if not page:
            return True
        delivered: dict[str, int] = defaultdict(int)
        failed: dict[str, int] = defaultdict(int)
        for _id, receiver, delivered_at in page:
            (delivered if delivered_at is not None else failed)[receiver] += 1
        if not work.dry_run:
            for name, counts in (
                (counters.DELIVERED_PRUNED, delivered),
                (counters.FAILED_PRUNED, failed),
            ):
                for receiver, count in counts.items():
                    counters.add(session, name, {"receiver": receiver}, count)
        removed = _deleted(
            session, sa.delete(OutboxRow).where(col(OutboxRow.id).in_([row[0] for row in page]))
        )
        work.done_batch({"outbox": removed})


def _deleted(session: Session, statement: Any) -> int:
    return int(session.connection().execute(statement).rowcount or 0)
