"""Retention at scale, on SQLite or PostgreSQL: N targets x one check every 5 minutes x D days
of history written directly (bulk inserts, as benchmarks/report does), then pruned and rolled
up with the default policy (raw 30 d, evidence 400 d).

Prints the store size before and after (and the steady state extrapolated to 5,000 targets and
400 days of evidence), the prune time per simulated day (and extrapolated to 5,000 targets),
/metrics p50/p95 over 100 scrapes taken while the prune runs, and the report time over 365 days.
Asserts nothing about speed.

Usage: run.py [--targets 50] [--days 90] [--dir DIR | --postgres URL]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import generate_latest

from monitor.metrics import build_registry
from monitor.model import CheckKind, Target
from monitor.report.build import build_report_data
from monitor.report.model import Expectation, ReportPeriod
from monitor.store.counters import seed_from_runs
from monitor.store.retention import RetentionPolicy
from monitor.store.run_length import OUTCOME_CHARS, bucket_of, buckets_text
from monitor.store.sql import SqlStore

FULL_TARGETS = 5000
EVIDENCE_DAYS = 400
STEP = timedelta(minutes=5)
GIB = 1024**3
Row = tuple[object, ...]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


RUN_COLUMNS = (
    'id, "check", target, started_at, finished_at, duration_seconds, status, error_reason,'
    " error_message, finding_count, run_count, last_started_at, duration_max, duration_buckets,"
    " outcome"
)
SAMPLE_COLUMNS = 'run_id, time, "check", target, name, labels, value'
RENEWAL = timedelta(days=60)  # each target's certificate is renewed this often (staggered)


def history(
    names: list[str], days: int, now: datetime, run_length: bool = True
) -> Iterator[tuple[Row, list[Row]]]:
    """(run row, its samples) rows: one cert_expiry run per target every 5 minutes, 2 % of
    them failed at random; the certificate (a new serial and not-after) changes every 60 days.

    As SqlStore.record writes them: an ok run with the same outcome as the one before (same
    day, no failure in between, same certificate) extends the previous row, and its sample
    (unchanged) is not written again; `run_length` False writes a row and a sample per run
    (what record did before run-length rows)."""
    random.seed(7)
    start = now - timedelta(days=days)
    number = 0
    open_rows: dict[str, _OpenRow] = {}
    at = start
    while at < now:
        finished = at + timedelta(seconds=1)
        for index, target in enumerate(names):
            number += 1
            run_id = f"00000000-0000-4000-8000-{number:012d}"
            failed = random.random() < 0.02
            seconds = round(random.uniform(0.05, 3.0), 3)
            renewals = int((at - start + index * RENEWAL / len(names)) / RENEWAL)
            labels = json.dumps({"position": "leaf", "serial": f"{renewals:04x}"}, sort_keys=True)
            value = (start + (renewals + 2) * RENEWAL).timestamp()
            outcome = hashlib.sha256(f"{target}:{renewals}".encode()).hexdigest()[:OUTCOME_CHARS]
            current = open_rows.get(target)
            extends = (
                run_length
                and not failed
                and current is not None
                and current.outcome == outcome
                and current.first.date() == at.date()
            )
            if current is not None and not extends:
                yield current.row(), []
                del open_rows[target]
            if failed:
                error = ("error", "unreachable", "connection refused", 0, 1, None, None, None, None)
                yield (run_id, "cert_expiry", target, at, finished, seconds, *error), []
                continue
            if extends and current is not None:
                current.add(at, finished, seconds)
                continue
            open_rows[target] = _OpenRow(run_id, target, at, finished, seconds, outcome)
            sample: Row = (run_id, at, "cert_expiry", target, "cert_not_after", labels, value)
            if run_length:
                yield (), [sample]  # its row is written when it ends
            else:
                yield open_rows.pop(target).row(), [sample]
        at += STEP
    for current in open_rows.values():
        yield current.row(), []


class _OpenRow:
    """A run-length row being extended."""

    def __init__(
        self,
        run_id: str,
        target: str,
        at: datetime,
        finished: datetime,
        seconds: float,
        outcome: str,
    ) -> None:
        self.run_id, self.target, self.outcome = run_id, target, outcome
        self.first, self.last, self.finished = at, at, finished
        self.count, self.total, self.longest = 1, seconds, seconds
        self.buckets = {bucket_of(seconds): 1}

    def add(self, at: datetime, finished: datetime, seconds: float) -> None:
        self.last, self.finished = at, finished
        self.count += 1
        self.total += seconds
        self.longest = max(self.longest, seconds)
        self.buckets[bucket_of(seconds)] = self.buckets.get(bucket_of(seconds), 0) + 1

    def row(self) -> Row:
        several = self.count > 1
        return (
            self.run_id,
            "cert_expiry",
            self.target,
            self.first,
            self.finished,
            round(self.total, 3),
            "ok",
            None,
            None,
            0,
            self.count,
            self.last if several else None,
            self.longest if several else None,
            buckets_text(self.buckets) if several else None,
            self.outcome,
        )


def generate(url: str, targets: int, days: int, now: datetime, run_length: bool) -> int:
    store = SqlStore(url)
    store.upgrade_schema()  # a new SQLite file gets incremental auto-vacuum, as installs do
    names = [f"api-{n:04d}" for n in range(targets)]
    store.sync_targets([Target(name, f"https://{name}.example:443") for name in names], now)
    rows = history(names, days, now, run_length)
    if store.engine.dialect.name == "postgresql":
        count = _copy_postgres(store, rows)
    else:
        count = _insert_sqlite(store, rows)
    with store.engine.begin() as bound:
        seed_from_runs(bound)  # the stored totals and newest runs record() keeps up to date
        if store.engine.dialect.name == "postgresql":
            bound.exec_driver_sql("ANALYZE")
    store.close()
    return count


def _text_times(row: Row) -> Row:
    return tuple(stamp(v) if isinstance(v, datetime) else v for v in row)


def _insert_sqlite(store: SqlStore, rows: Iterator[tuple[Row, list[Row]]]) -> int:
    path = store.engine.url.database
    assert path is not None
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    indexes = connection.execute(
        "select name, sql from sqlite_master where type='index' and sql is not null"
    ).fetchall()
    for name, _sql in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    runs: list[Row] = []
    samples: list[Row] = []
    count = 0
    insert_run = f"insert into check_run ({RUN_COLUMNS}) values ({'?,' * 14}?)"
    insert_sample = f"insert into sample ({SAMPLE_COLUMNS}) values ({'?,' * 6}?)"
    for run, written in rows:
        if run:
            count += int(run[10])  # type: ignore[call-overload]
            runs.append(_text_times(run))
        samples.extend(_text_times(sample) for sample in written)
        if len(runs) >= 50_000 or len(samples) >= 50_000:
            connection.executemany(insert_run, runs)
            connection.executemany(insert_sample, samples)
            runs.clear()
            samples.clear()
    connection.executemany(insert_run, runs)
    connection.executemany(insert_sample, samples)
    for _name, sql in indexes:
        connection.execute(sql)
    connection.commit()
    connection.close()
    return count


def _copy_postgres(store: SqlStore, rows: Iterator[tuple[Row, list[Row]]]) -> int:
    raw = store.engine.raw_connection()
    connection: Any = raw.driver_connection
    count = 0
    runs: list[Row] = []
    samples: list[Row] = []
    for run, written in rows:  # first: a COPY must not wait on the generator (statement timeout)
        if run:
            count += int(run[10])  # type: ignore[call-overload]
            runs.append(run)
        samples.extend(written)
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY check_run ({RUN_COLUMNS}) FROM STDIN") as copy:
            for run in runs:
                copy.write_row(run)
        with cursor.copy(f"COPY sample ({SAMPLE_COLUMNS}) FROM STDIN") as copy:
            for sample in samples:
                copy.write_row(sample)
    connection.commit()
    raw.close()
    return count


_PG_TABLES = (
    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
)


def table_rows(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        counts = {
            table: connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            for table in ("check_run", "sample")
        }
    engine.dispose()
    return ", ".join(f"{table} {count:,} rows" for table, count in counts.items())


def size(store: SqlStore) -> int:
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "postgresql":
            return int(connection.exec_driver_sql(_PG_TABLES).scalar() or 0)
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
    return int(pages or 0) * int(page_size or 0)


def rollup_bytes(store: SqlStore) -> int:
    """Bytes of the rollup tables with their indexes."""
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "postgresql":
            query = _PG_TABLES + " AND c.relname LIKE :rollups"
        else:
            query = "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE :rollups"
        return int(connection.execute(sa.text(query), {"rollups": "%rollup%"}).scalar() or 0)


def reclaim(store: SqlStore) -> None:
    """SQLite: give every free page back (the daemon does 4,096 per pass). PostgreSQL: VACUUM
    makes the space reusable (the files keep their size; later rows fill them)."""
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM")
            return
        connection.connection.driver_connection.executescript(  # type: ignore[union-attr]
            "PRAGMA incremental_vacuum;"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=50, help="5000 is the goal's scale")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes")
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=RetentionPolicy().batch_rows,
        help="runs deleted per transaction (retention.batch_rows)",
    )
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="run on this PostgreSQL database instead (in a schema made and dropped here)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="a row and a sample per run, as before run-length rows (for comparison)",
    )
    options = parser.parse_args()
    schema = "apivigil_retention_bench"
    admin = sa.create_engine(options.postgres) if options.postgres else None
    if admin is not None:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = f"{options.postgres}?options=-csearch_path%3D{schema}"
    else:
        directory = options.dir or Path(tempfile.mkdtemp(prefix="apivigil-retention-"))
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "apivigil.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    now = datetime.now(UTC).replace(microsecond=0)
    targets, days = options.targets, options.days

    began = time.perf_counter()
    runs = generate(url, targets, days, now, not options.raw)
    print(f"history: {targets} targets x 5 min x {days} days = {runs:,} runs", end=" ")
    print(f"({'a row' if options.raw else 'run-length rows'}),", end=" ")
    print(f"written in {time.perf_counter() - began:.0f} s; {table_rows(url)}")
    store = SqlStore(url)
    print(f"store: {store.describe()}")
    start = time.perf_counter()
    generate_latest(build_registry(store))  # a fresh engine: no connection, nothing cached
    print(f"first /metrics scrape after a start: {(time.perf_counter() - start) * 1000:.0f} ms")
    before = size(store)
    print(f"store size before: {before / 2**20:,.0f} MiB")

    policy = RetentionPolicy(batch_rows=options.batch_rows)
    print(f"batch: {policy.batch_rows} runs per transaction")
    scrapes: list[float] = []
    done = threading.Event()
    outcome: dict[str, object] = {}

    def prune() -> None:
        start = time.perf_counter()
        passes = 0
        while True:  # as the daemon does: time-boxed passes, one after the other
            passes += 1
            result = store.prune(policy, now, budget_seconds=5.0)
            if result.complete:
                break
        outcome["seconds"] = time.perf_counter() - start
        outcome["passes"] = passes
        done.set()

    pruner = threading.Thread(target=prune)
    pruner.start()
    registry = build_registry(store)
    during = 0
    while len(scrapes) < 100:
        start = time.perf_counter()
        generate_latest(registry)
        scrapes.append(time.perf_counter() - start)
        during += 0 if done.is_set() else 1
        time.sleep(0.05)
    pruner.join()
    seconds = float(outcome["seconds"])  # type: ignore[arg-type]
    rolled_days = max(days - 30, 1)
    reclaim(store)
    after = size(store)
    per_day = seconds / rolled_days
    print(
        f"prune: {seconds:.1f} s in {outcome['passes']} passes for {rolled_days} days "
        f"-> {per_day:.2f} s per simulated day at {targets} targets, "
        f"~{per_day * FULL_TARGETS / targets:.0f} s at {FULL_TARGETS} (goal < 60 s)"
    )
    quantiles = statistics.quantiles(scrapes, n=100)
    print(
        f"/metrics during pruning: p50 {quantiles[49] * 1000:.1f} ms, "
        f"p95 {quantiles[94] * 1000:.1f} ms over {len(scrapes)} scrapes, {during} of them "
        "while the prune ran (goal p95 < 300 ms)"
    )
    print(f"store size after: {after / 2**20:,.0f} MiB")
    raw_per_target_day = before / (targets * days)
    rollup_per_target_day = rollup_bytes(store) / (targets * rolled_days)
    steady = FULL_TARGETS * (30 * raw_per_target_day + (EVIDENCE_DAYS - 30) * rollup_per_target_day)
    print(
        f"steady state extrapolated to {FULL_TARGETS} targets, 30 d raw + {EVIDENCE_DAYS} d "
        f"of rollups: {steady / GIB:.2f} GiB (raw {raw_per_target_day / 1024:.1f} KiB and "
        f"rollups {rollup_per_target_day:.0f} B per target-day; goal < 2 GiB)"
    )
    expectations = [
        Expectation(CheckKind.CERT_EXPIRY, f"api-{n:04d}", STEP, timedelta(minutes=1))
        for n in range(targets)
    ]
    start = time.perf_counter()
    data = build_report_data(store, ReportPeriod.ending(now, timedelta(days=365)), expectations)
    print(
        f"report over 365 days: {time.perf_counter() - start:.1f} s "
        f"({data.summary.runs:,} runs, coverage {data.summary.coverage}) (goal < 15 s)"
    )
    store.close()
    if admin is not None:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
