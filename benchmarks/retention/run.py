"""Retention at scale, on SQLite: N targets x one check every 5 minutes x D days of history
written directly (bulk inserts, as benchmarks/report does), then pruned and rolled up with the
default policy (raw 30 d, evidence 400 d).

Prints the store size before and after (and the steady state extrapolated to 5,000 targets and
400 days of evidence), the prune time per simulated day (and extrapolated to 5,000 targets),
/metrics p50/p95 over 100 scrapes taken while the prune runs, and the report time over 365 days.
Asserts nothing about speed.

Usage: run.py [--targets 50] [--days 90] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import generate_latest

from monitor.metrics import build_registry
from monitor.model import CheckKind
from monitor.report.build import build_report_data
from monitor.report.model import Expectation, ReportPeriod
from monitor.store.counters import seed_from_runs
from monitor.store.retention import RetentionPolicy
from monitor.store.sql import SqlStore

FULL_TARGETS = 5000
EVIDENCE_DAYS = 400
STEP = timedelta(minutes=5)
GIB = 1024**3


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def generate(path: Path, targets: int, days: int, now: datetime) -> int:
    store = SqlStore(f"sqlite:///{path}")
    store.upgrade_schema()  # a new file: incremental auto-vacuum, as a new install gets
    store.close()
    start = now - timedelta(days=days)
    names = [f"api-{n:04d}" for n in range(targets)]
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    indexes = connection.execute(
        "select name, sql from sqlite_master where type='index' and sql is not null"
    ).fetchall()
    for name, _sql in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    connection.executemany(
        "insert into target (name, url, labels, active, updated_at) values (?, ?, '{}', 1, ?)",
        [(n, f"https://{n}.example:443", stamp(start)) for n in names],
    )
    random.seed(7)
    number = 0
    runs: list[tuple[object, ...]] = []
    samples: list[tuple[object, ...]] = []
    labels = json.dumps({"position": "leaf", "serial": "01"}, sort_keys=True)

    def flush() -> None:
        connection.executemany(
            'insert into check_run (id, "check", target, started_at, finished_at,'
            " duration_seconds, status, error_reason, error_message, finding_count)"
            " values (?,?,?,?,?,?,?,?,?,0)",
            runs,
        )
        connection.executemany(
            'insert into sample (run_id, time, "check", target, name, labels, value)'
            " values (?,?,?,?,?,?,?)",
            samples,
        )
        runs.clear()
        samples.clear()

    at = start
    while at < now:
        text, finished = stamp(at), stamp(at + timedelta(seconds=1))
        for target in names:
            number += 1
            run_id = f"00000000-0000-4000-8000-{number:012d}"
            failed = random.random() < 0.02
            seconds = round(random.uniform(0.05, 3.0), 3)
            runs.append(
                (
                    run_id,
                    "cert_expiry",
                    target,
                    text,
                    finished,
                    seconds,
                    "error" if failed else "ok",
                    "unreachable" if failed else None,
                    "connection refused" if failed else None,
                )
            )
            if not failed:
                value = (now + timedelta(days=90)).timestamp()
                samples.append(
                    (run_id, text, "cert_expiry", target, "cert_days_left", labels, value)
                )
        if len(runs) >= 50_000:
            flush()
        at += STEP
    flush()
    for _name, sql in indexes:
        connection.execute(sql)
    connection.commit()
    connection.close()
    store = SqlStore(f"sqlite:///{path}")
    with store.engine.begin() as bound:
        seed_from_runs(bound)  # the stored totals and newest runs record() keeps up to date
    store.close()
    return number


def size(store: SqlStore) -> int:
    with store.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
    return int(pages or 0) * int(page_size or 0)


def rollup_bytes(store: SqlStore) -> int:
    """Bytes of the rollup tables with their primary-key indexes (SQLite's dbstat)."""
    with store.engine.connect() as connection:
        found = connection.exec_driver_sql(
            "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%rollup%'"
        ).scalar()
    return int(found or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=50, help="5000 is the goal's scale")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--dir", type=Path, default=None)
    options = parser.parse_args()
    directory = options.dir or Path(tempfile.mkdtemp(prefix="apivigil-retention-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "apivigil.db"
    path.unlink(missing_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    targets, days = options.targets, options.days

    began = time.perf_counter()
    runs = generate(path, targets, days, now)
    print(f"history: {targets} targets x 5 min x {days} days = {runs:,} runs", end=" ")
    print(f"(+ a sample each), written in {time.perf_counter() - began:.0f} s")
    store = SqlStore(f"sqlite:///{path}")
    before = size(store)
    print(f"store size before: {before / 2**20:,.0f} MiB")

    policy = RetentionPolicy()
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
    with store.engine.connect() as connection:
        connection.connection.driver_connection.executescript(  # type: ignore[union-attr]
            "PRAGMA incremental_vacuum;"
        )
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
        f"of rollups: {steady / GIB:.1f} GiB (raw {raw_per_target_day / 1024:.0f} KiB and "
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


if __name__ == "__main__":
    sys.exit(main())
