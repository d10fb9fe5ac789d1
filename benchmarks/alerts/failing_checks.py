"""The failing-checks read of every alert tick, old against new, on a generated SQLite store.

The store: TARGETS targets x 2 checks (cert_expiry hourly, tls_posture every 6 hours) x DAYS
days of run-length check_run rows as the store writes them (one ok row per pair and UTC day,
split by each failed run, about 2 % of runs failing, each failed run a row of its own), the
check_state row of each pair, the run totals in counter_total, and 1 % of pairs whose last 3
runs failed. Prints rows, then the old query's time (a row_number() window over the whole
check_run table, kept below as it was) and the new failed_runs' time (median of --repeat
ticks each), and checks both find the same failing pairs.

Usage: failing_checks.py [--targets 2000] [--days 30] [--after 3] [--repeat 5] [--keep PATH]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col

from monitor.model import RunStatus
from monitor.store import alert_rows, counters
from monitor.store.alert_rows import FailedRuns
from monitor.store.sql import SqlStore
from monitor.store.tables import CheckRunRow

INTERVAL_HOURS = {"cert_expiry": 1, "tls_posture": 6}
FAILURE_SHARE = 0.02
FAILING_SHARE = 0.01
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def old_failed_runs(session: Session, after: int, targets: Collection[str]) -> list[FailedRuns]:
    """failed_runs as it was before issue 21's tick rework: numbers every row of check_run."""
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
    failed = (RunStatus.ERROR.value, RunStatus.TIMEOUT.value, RunStatus.SKIPPED.value)
    failing: list[FailedRuns] = []
    for (check, target), recent_runs in runs.items():
        if target not in targets or len(recent_runs) < after:
            continue
        if not all(status in failed for status, _, _ in recent_runs):
            continue
        first = min(recent_runs, key=lambda run: run[1])
        newest = max(recent_runs, key=lambda run: run[1])
        failing.append(FailedRuns(check, target, after, first[1], newest[2]))
    return failing


def stamp(moment: datetime) -> str:
    """SQLAlchemy's SQLite DateTime text: naive UTC with microseconds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def write_store(path: Path, targets: int, days: int, after: int) -> int:
    store = SqlStore(f"sqlite:///{path}")
    store.upgrade_schema()
    store.close()
    rng = random.Random(21)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    rows: list[list[object]] = []
    states: list[tuple[object, ...]] = []
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    names = [f"api-{n:04d}" for n in range(targets)]
    db.executemany(
        "insert into target (name, labels, active, updated_at) values (?, '{}', 1, ?)",
        [(name, stamp(NOW)) for name in names],
    )
    start = NOW - timedelta(days=days)
    for check, hours in INTERVAL_HOURS.items():
        step = timedelta(hours=hours)
        for name in names:
            failing_now = rng.random() < FAILING_SHARE
            count = days * 24 // hours
            ok_row: list[object] | None = None
            ok_day: date | None = None
            last: tuple[str, str, datetime] = ("", "", start)
            last_ok: tuple[str, datetime] | None = None
            for index in range(count):
                at = start + index * step
                fail = rng.random() < FAILURE_SHARE or (failing_now and index >= count - after)
                status = "error" if fail else "ok"
                totals[(check, name, status)] += 1
                if fail:
                    run_id = str(uuid.uuid4())
                    rows.append(
                        [
                            run_id,
                            check,
                            name,
                            stamp(at),
                            stamp(at),
                            1.0,
                            status,
                            "unreachable",
                            "connection refused",
                            1,
                            None,
                        ]
                    )
                    ok_row, ok_day = None, None
                    last = (status, run_id, at)
                    continue
                if ok_row is not None and ok_day == at.date():
                    ok_row[9] = int(str(ok_row[9])) + 1
                    ok_row[10] = stamp(at)
                    last = ("ok", str(ok_row[0]), at)
                    last_ok = (str(ok_row[0]), at)
                    continue
                ok_row = [
                    str(uuid.uuid4()),
                    check,
                    name,
                    stamp(at),
                    stamp(at),
                    1.0,
                    "ok",
                    None,
                    None,
                    1,
                    None,
                ]
                rows.append(ok_row)
                ok_day = at.date()
                last = ("ok", str(ok_row[0]), at)
                last_ok = (str(ok_row[0]), at)
            states.append(
                (
                    check,
                    name,
                    last[0],
                    stamp(last[2]),
                    last_ok[0] if last_ok else None,
                    stamp(last_ok[1]) if last_ok else None,
                )
            )
    db.executemany(
        'insert into check_run (id, "check", target, started_at, finished_at,'
        " duration_seconds, status, error_reason, error_message, run_count, last_started_at,"
        " finding_count)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        [tuple(row) for row in rows],
    )
    db.executemany(
        'insert into check_state ("check", target, evaluated_status, evaluated_started_at,'
        " ok_run_id, ok_started_at) values (?, ?, ?, ?, ?, ?)",
        states,
    )
    db.executemany(
        "insert into counter_total (name, labels, value) values (?, ?, ?)",
        [
            (counters.RUNS, counters.labels_key({"check": c, "target": t, "status": s}), n)
            for (c, t, s), n in totals.items()
        ],
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return len(rows)


def median_seconds(
    store: SqlStore,
    read: Callable[[Session, int, Collection[str]], list[FailedRuns]],
    after: int,
    targets: Collection[str],
    repeat: int,
) -> tuple[float, set[FailedRuns]]:
    times, found = [], set()
    with Session(store.engine) as session:
        read(session, after, targets)  # unmeasured: connects and warms the page cache
    for _ in range(repeat):
        with Session(store.engine) as session:
            begin = time.perf_counter()
            found = set(read(session, after, targets))
            times.append(time.perf_counter() - begin)
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--after", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the store here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "failing.db"
        began = time.perf_counter()
        rows = write_store(path, args.targets, args.days, args.after)
        print(
            f"store: {args.targets} targets x {len(INTERVAL_HOURS)} checks x {args.days} days:"
            f" {rows:,} check_run rows, written in {time.perf_counter() - began:.1f} s"
        )
        store = SqlStore(f"sqlite:///{path}")
        targets = {f"api-{n:04d}" for n in range(args.targets)}
        try:
            old, old_found = median_seconds(
                store, old_failed_runs, args.after, targets, args.repeat
            )
            new, new_found = median_seconds(
                store, alert_rows.failed_runs, args.after, targets, args.repeat
            )
        finally:
            store.close()
    print(
        f"failing pairs: old {len(old_found)}, new {len(new_found)}, same: {old_found == new_found}"
    )
    print(f"old (window over check_run): median {old * 1000:.1f} ms")
    print(f"new (index per pair):        median {new * 1000:.1f} ms  ({old / new:.1f}x)")
    if old_found != new_found:
        raise SystemExit("old and new queries disagree")


if __name__ == "__main__":
    main()
