"""Retention on SQLite and PostgreSQL: rollups give the report the same figures as raw runs,
pruning never lowers a counter, snapshots are stored once per distinct content, and pruning
runs alongside checks being recorded."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from prometheus_client import generate_latest
from sqlmodel import Session

from monitor.metrics import build_registry
from monitor.model import (
    CheckKind,
    CheckOutput,
    CheckRun,
    Finding,
    Observation,
    RunStatus,
    Severity,
    Target,
)
from monitor.pruner import Pruner
from monitor.report.build import build_report_data
from monitor.report.model import Expectation, ReportPeriod
from monitor.settings import RetentionSettings
from monitor.store.interface import HysteresisPolicy
from monitor.store.retention import RetentionPolicy
from monitor.store.run_rollup import parse_series, quantile
from monitor.store.schema import alembic_config
from monitor.store.sql import SqlStore
from monitor.store.tables import OutboxRow
from tests.support.check_runs import a_run
from tests.support.clocks import ManualClock
from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.ports import free_port

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CERT = CheckKind.CERT_EXPIRY
DRIFT = CheckKind.CONFIG_DRIFT
POLICY = HysteresisPolicy(open_after=1, resolve_after=1)
RETAIN = RetentionPolicy(raw=timedelta(days=30), evidence=timedelta(days=400), batch_rows=50)
DAYS = 60
NOW = T0 + timedelta(days=DAYS)


def run(
    check: CheckKind,
    target: str,
    at: datetime,
    status: RunStatus = RunStatus.OK,
    findings: tuple[Finding, ...] = (),
    snapshot: dict[str, Any] | None = None,
    seconds: float = 1.5,
) -> CheckRun:
    return a_run(
        target,
        at,
        status,
        check=check,
        findings=findings,
        observations=(Observation("cert_days_left", 90 - at.day, {"position": "leaf"}),),
        snapshot=snapshot,
        seconds=seconds,
    )


def weak(severity: Severity = Severity.HIGH) -> Finding:
    return Finding("CERT-WEAK-KEY", severity, "weak key", "leaf", "1024 bits", "reissue")


def record_history(store: SqlStore) -> None:
    """60 days, every 6 hours: 'shop' fails on some days and has a finding that opens and
    resolves twice; 'old' stops answering after day 5 (its newest ok run is old)."""
    store.sync_targets([Target("shop"), Target("old"), Target("ledger")], T0)
    for slot in range(DAYS * 4):
        at = T0 + timedelta(hours=6 * slot, minutes=7)
        day = slot // 4
        failing = day % 9 == 4 and slot % 4 == 1
        open_finding = 10 <= day < 20 or 40 <= day < 45
        store.record(
            run(
                CERT,
                "shop",
                at,
                RunStatus.ERROR if failing else RunStatus.OK,
                (weak(),) if open_finding else (),
                seconds=0.2 + slot % 7,
            ),
            POLICY,
        )
        store.record(run(CERT, "old", at, RunStatus.OK if day < 5 else RunStatus.TIMEOUT), POLICY)
        if slot % 4 == 0:
            document = {"db": {"host": "db2" if 20 <= day < 25 else "db1"}}
            store.record(run(DRIFT, "ledger", at, snapshot=document), POLICY)


def add_outbox(store: SqlStore) -> None:
    with Session(store.engine) as session:
        for n in range(30):
            at = T0 + timedelta(days=n * 2)
            session.add(
                OutboxRow(
                    id=f"n{n}",
                    receiver="ops" if n % 3 else "pager",
                    group_id="g",
                    kind="firing",
                    payload="{}",
                    created_at=at,
                    attempts=1,
                    next_attempt_at=at,
                    delivered_at=at if n % 5 else None,
                    permanent=n % 5 == 0,
                )
            )
        session.commit()


def scrape(store: SqlStore) -> dict[str, float]:
    """Every series of /metrics except the store's own size and retention counters."""
    text = generate_latest(build_registry(store)).decode()
    series = {}
    for line in text.splitlines():
        if line.startswith("#") or line.startswith(("apivigil_store_", "apivigil_retention_")):
            continue
        name, _, value = line.rpartition(" ")
        series[name] = float(value)
    return series


def count(store: SqlStore, table: str) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0)


@pytest.mark.integration
def test_a_prune_leaves_every_counter_and_gauge_of_metrics_unchanged(store: SqlStore) -> None:
    record_history(store)
    add_outbox(store)
    before = scrape(store)
    runs_before, samples_before = count(store, "check_run"), count(store, "sample")

    result = store.prune(RETAIN, NOW, budget_seconds=600)

    assert result.complete
    assert result.removed["check_run"] > 0
    assert result.removed["sample"] > 0
    assert result.removed["outbox"] > 0
    assert count(store, "check_run") < runs_before
    assert count(store, "sample") < samples_before
    after = scrape(store)
    assert after == before
    total = 'apivigil_check_runs_total{check="cert_expiry",status="ok",target="shop"}'
    assert before[total] > 200
    # the target that stopped answering still shows the observation of its last ok run
    assert 'apivigil_cert_days_left{position="leaf",target="old"}' in after
    text = generate_latest(build_registry(store)).decode()
    assert 'apivigil_retention_pruned_rows_total{table="check_run"} ' in text
    assert 'apivigil_store_rows{table="check_run"} ' in text
    assert "apivigil_store_bytes " in text


@pytest.mark.integration
def test_counters_stay_monotonic_through_repeated_prunes_and_new_runs(store: SqlStore) -> None:
    record_history(store)
    key = 'apivigil_check_runs_total{check="cert_expiry",status="ok",target="shop"}'
    seen = [scrape(store)[key]]
    for day in range(3):
        now = NOW + timedelta(days=day)
        store.record(run(CERT, "shop", now), POLICY)
        store.prune(RETAIN, now + timedelta(minutes=1), budget_seconds=600)
        seen.append(scrape(store)[key])
    assert seen == [seen[0] + n for n in range(4)]


def expectations() -> list[Expectation]:
    return [
        Expectation(CERT, "shop", timedelta(hours=6), timedelta(hours=1)),
        Expectation(CERT, "old", timedelta(hours=6), timedelta(hours=1)),
        Expectation(DRIFT, "ledger", timedelta(days=1), timedelta(hours=1)),
    ]


@pytest.mark.integration
def test_report_figures_are_identical_across_the_raw_rollup_boundary(store: SqlStore) -> None:
    record_history(store)
    periods = [
        ReportPeriod(T0 + timedelta(days=2), NOW),  # the boundary (day 30) inside
        ReportPeriod(T0 + timedelta(days=10), T0 + timedelta(days=25)),  # all rolled up
        ReportPeriod(T0 + timedelta(days=28), T0 + timedelta(days=40)),  # straddling
    ]
    before = [build_report_data(store, period, expectations()) for period in periods]

    result = store.prune(RETAIN, NOW, budget_seconds=600)

    assert len(result.rolled_up_days) == DAYS - 30
    assert result.removed["check_run"] > 0
    after = [build_report_data(store, period, expectations()) for period in periods]
    for old, new in zip(before, after, strict=True):
        assert new.summary == old.summary
        assert new.days == old.days
        assert new.checks == old.checks
        assert new.targets == old.targets
        assert new == old
    assert before[0].summary.failed_runs > 0
    assert before[0].summary.remediation


@pytest.mark.integration
def test_snapshots_are_stored_once_per_distinct_content_and_the_current_one_is_kept(
    store: SqlStore,
) -> None:
    store.sync_targets([Target("ledger")], T0)
    documents = [{"v": 1}, {"v": 1}, {"v": 2}, {"v": 2}, {"v": 1}, {"v": 3}, {"v": 3}]
    for day, document in enumerate(documents):
        store.record(run(DRIFT, "ledger", T0 + timedelta(days=day), snapshot=document), POLICY)
    assert count(store, "snapshot") == 3

    later = T0 + timedelta(days=500)
    result = store.prune(RetentionPolicy(raw=timedelta(days=30)), later, budget_seconds=600)

    assert result.removed["snapshot"] == 2  # beyond the evidence period, no kept run uses them
    assert store.latest_snapshot(DRIFT, "ledger") == {"v": 3}


@pytest.mark.integration
def test_a_dry_run_reports_what_a_prune_would_remove_and_removes_nothing(
    store: SqlStore,
) -> None:
    record_history(store)
    add_outbox(store)
    runs = count(store, "check_run")

    dry = store.prune(RETAIN, NOW, budget_seconds=600, dry_run=True)

    assert count(store, "check_run") == runs
    assert count(store, "run_rollup") == 0
    real = store.prune(RETAIN, NOW, budget_seconds=600)
    assert dry.removed == real.removed
    assert dry.rolled_up_days == real.rolled_up_days


@pytest.mark.integration
def test_a_pass_out_of_time_stops_and_the_next_one_finishes(store: SqlStore) -> None:
    record_history(store)
    partial = store.prune(RETAIN, NOW, budget_seconds=0)
    assert not partial.complete
    rest = store.prune(RETAIN, NOW, budget_seconds=600)
    assert rest.complete
    assert store.prune(RETAIN, NOW, budget_seconds=600).removed == {}


@pytest.mark.integration
def test_pruning_alongside_checks_being_recorded_loses_no_run(store: SqlStore) -> None:
    record_history(store)
    recorded, failures = 0, []
    stop = threading.Event()

    def record_now() -> None:
        nonlocal recorded
        at = NOW
        while not stop.is_set() and recorded < 400:
            at += timedelta(seconds=30)
            try:
                store.record(run(CERT, "shop", at), POLICY)
                recorded += 1
            except Exception as error:
                failures.append(error)
                return

    key = 'apivigil_check_runs_total{check="cert_expiry",status="ok",target="shop"}'
    start = scrape(store)[key]
    recorder = threading.Thread(target=record_now)
    recorder.start()
    passes = 0
    small = RetentionPolicy(raw=RETAIN.raw, batch_rows=20)
    while passes < 50:
        passes += 1
        if store.prune(small, NOW, budget_seconds=0.05).complete:
            break
    stop.set()
    recorder.join(timeout=120)
    assert failures == []
    assert store.prune(small, NOW, budget_seconds=600).complete
    assert scrape(store)[key] == start + recorded
    with store.engine.connect() as connection:
        recent = connection.execute(
            sa.text("SELECT sum(run_count) FROM check_run WHERE started_at > :at"),
            {"at": NOW.replace(tzinfo=None) if store.engine.dialect.name == "sqlite" else NOW},
        ).scalar()
    assert recent == recorded


@pytest.mark.e2e
def test_db_prune_prints_what_it_removed_and_the_sqlite_file_shrinks(tmp_path: Path) -> None:
    database = tmp_path / "apivigil.db"
    config = tmp_path / "apivigil.yaml"
    config.write_text(f"store: sqlite:///{database}\nretention:\n  raw: 30d\n")
    store = SqlStore(f"sqlite:///{database}")
    store.upgrade_schema()
    record_history(store)  # 2026: older than 30 days whenever this runs
    for n in range(300):  # bulky rows, so what is deleted outweighs the rollups written
        failed = run(CERT, "old", T0 + timedelta(days=6, minutes=n), RunStatus.ERROR)
        store.record(replace(failed, error_message="refused " * 500), POLICY)
    pages_before = page_count(store)
    runs = count(store, "check_run")

    dry = run_cli("db", "prune", "--dry-run", "--config", str(config))

    assert dry.returncode == 0, dry.stderr
    assert "would remove" in dry.stdout
    assert count(store, "check_run") == runs
    done = run_cli("db", "prune", "--config", str(config))
    assert done.returncode == 0, done.stderr
    removed = runs - count(store, "check_run")
    assert removed > 0
    assert re.search(rf"check_run\s*│\s*{removed}\b", done.stdout), done.stdout
    assert "rolled up" in done.stdout
    assert page_count(store) < pages_before
    store.close()


def page_count(store: SqlStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA page_count").scalar() or 0)


@pytest.mark.e2e
def test_the_daemon_prunes_old_history_by_itself_and_metrics_keep_their_totals(
    tmp_path: Path,
) -> None:
    database = tmp_path / "apivigil.db"
    store = SqlStore(f"sqlite:///{database}")
    store.upgrade_schema()
    record_history(store)  # 2026: older than the 30-day raw window whenever this runs
    runs = count(store, "check_run")
    before = scrape(store)
    port = free_port()
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": f"sqlite:///{database}",
            "listen": f"127.0.0.1:{port}",
            "retention": {"interval": "1s", "budget": "2s", "batch_rows": 100},
        },
    )
    with DaemonProcess(config, port, tmp_path) as daemon:
        daemon.wait_healthy()
        daemon.wait_for_event(
            lambda event: event.get("event") == "retention pass" and event.get("complete"),
            timeout=120,
        )
        metrics = daemon.metrics()
    assert count(store, "check_run") < runs
    assert re.search(r'apivigil_retention_pruned_rows_total\{table="check_run"\} [1-9]', metrics)
    store.sync_targets(
        [Target("shop"), Target("old"), Target("ledger")], NOW
    )  # the daemon's had none
    assert scrape(store) == before
    store.close()


@pytest.mark.integration
def test_an_instance_that_does_not_lead_does_not_prune(store: SqlStore) -> None:
    record_history(store)
    runs = count(store, "check_run")
    settings = RetentionSettings()
    Pruner(store, lambda: settings, ManualClock(NOW), leading=lambda: False).step()
    assert count(store, "check_run") == runs
    Pruner(store, lambda: settings, ManualClock(NOW), leading=lambda: True).step()
    assert count(store, "check_run") < runs


@pytest.mark.integration
def test_upgrading_a_store_with_history_starts_the_totals_at_its_stored_runs(
    store_url: str,
) -> None:
    old = SqlStore(store_url)
    command.upgrade(alembic_config(old.engine), "0005")
    sqlite = old.engine.dialect.name == "sqlite"
    with old.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO target (name, labels, active, updated_at) VALUES (:n, '{}', :a, :t)"
            ),
            {"n": "shop", "a": True, "t": T0.replace(tzinfo=None) if sqlite else T0},
        )
        for n in range(7):
            at = T0 + timedelta(hours=n)
            connection.execute(
                sa.text(
                    'INSERT INTO check_run (id, "check", target, started_at, finished_at, '
                    "duration_seconds, status, finding_count) "
                    "VALUES (:id, 'cert_expiry', 'shop', :s, :f, :d, :st, 0)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "s": at.replace(tzinfo=None) if sqlite else at,
                    "f": (at + timedelta(seconds=2)).replace(tzinfo=None) if sqlite else at,
                    "d": 2.0,
                    "st": "error" if n == 6 else "ok",
                },
            )
    old.upgrade_schema()

    metrics = scrape(old)
    labels = 'check="cert_expiry",status="{}",target="shop"'
    assert metrics[f"apivigil_check_runs_total{{{labels.format('ok')}}}"] == 6
    assert metrics[f"apivigil_check_runs_total{{{labels.format('error')}}}"] == 1
    assert metrics['apivigil_check_up{check="cert_expiry",target="shop"}'] == 0
    assert metrics['apivigil_check_duration_seconds_count{check="cert_expiry"}'] == 7
    old.close()


@pytest.mark.integration
def test_a_rolled_up_day_keeps_counts_durations_and_min_max_last_of_each_series(
    store: SqlStore,
) -> None:
    store.sync_targets([Target("shop")], T0)
    for hour, (value, seconds) in enumerate([(5.0, 0.2), (9.0, 1.5), (2.0, 4.0), (7.0, 40.0)]):
        at = T0 + timedelta(hours=3 + hour)
        observed = replace(
            run(CERT, "shop", at, seconds=seconds),
            output=CheckOutput(observations=(Observation("queue_depth", value, {"q": "a"}),)),
        )
        store.record(observed, POLICY)
    store.record(run(CERT, "shop", T0 + timedelta(hours=9), RunStatus.ERROR), POLICY)

    store.prune(RETAIN, T0 + timedelta(days=40), budget_seconds=600)

    with store.engine.connect() as connection:
        runs = connection.execute(
            sa.text(
                "SELECT runs_ok, runs_error, runs_timeout, runs_skipped, error_reasons,"
                " duration_sum, duration_max, duration_buckets FROM run_rollup"
            )
        ).one()
        day, series = connection.execute(sa.text("SELECT day, series FROM run_rollup")).one()
    assert tuple(runs[:5]) == (4, 1, 0, 0, "unreachable:1")  # one row for the day
    assert runs[5] == pytest.approx(45.7 + 1.5)  # and the error run's 1.5 s
    assert runs[6] == pytest.approx(40.0)
    assert 1.0 <= quantile(0.5, runs[7], runs[6]) <= 3.0  # the middle run took 1.5 s ...
    assert 30.0 <= quantile(0.95, runs[7], runs[6]) <= 40.0  # ... and the slowest 5 % 40 s
    depth = next(one for one in parse_series(series) if one.name == "queue_depth")
    assert day == "2026-01-01"
    assert (depth.labels, depth.count, depth.minimum, depth.maximum, depth.last) == (
        '{"q": "a"}',
        4,
        2.0,
        9.0,
        7.0,
    )


@pytest.mark.integration
def test_a_snapshot_seen_again_is_kept_for_the_evidence_period_from_then(
    store: SqlStore,
) -> None:
    store.sync_targets([Target("ledger")], T0)
    for day, version in ((0, 1), (1, 2), (400, 1), (401, 2), (700, 2)):
        at = T0 + timedelta(days=day)
        store.record(run(DRIFT, "ledger", at, snapshot={"v": version}), POLICY)

    result = store.prune(RetentionPolicy(), T0 + timedelta(days=701), budget_seconds=600)

    assert "snapshot" not in result.removed  # {"v": 1} was last seen on day 400
    later = store.prune(RetentionPolicy(), T0 + timedelta(days=701 + 100), budget_seconds=600)
    assert later.removed["snapshot"] == 1


@pytest.mark.integration
def test_two_prunes_at_once_roll_each_day_up_exactly_once(store: SqlStore) -> None:
    record_history(store)
    period = ReportPeriod(T0, NOW)
    before = build_report_data(store, period, expectations())
    other = SqlStore(store.url)
    small = RetentionPolicy(raw=RETAIN.raw, batch_rows=20)
    results = []
    failures: list[BaseException] = []

    def prune(with_store: SqlStore) -> None:
        try:
            results.append(with_store.prune(small, NOW, budget_seconds=600))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=prune, args=(s,)) for s in (store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    other.close()

    assert failures == []
    days = sorted(day for result in results for day in result.rolled_up_days)
    assert len(days) == len(set(days)) == DAYS - 30
    assert build_report_data(store, period, expectations()) == before


@pytest.mark.integration
def test_the_snapshot_a_check_compares_with_survives_when_later_runs_kept_none(
    store: SqlStore,
) -> None:
    store.sync_targets([Target("ledger")], T0)
    store.record(run(DRIFT, "ledger", T0, snapshot={"v": 1}), POLICY)
    for day in range(1, DAYS):
        store.record(run(DRIFT, "ledger", T0 + timedelta(days=day)), POLICY)  # no snapshot

    result = store.prune(RETAIN, NOW, budget_seconds=600)

    assert result.removed["check_run"] == DAYS - 30 - 1
    assert store.latest_snapshot(DRIFT, "ledger") == {"v": 1}


@pytest.mark.integration
def test_upgrading_rollups_of_the_old_layout_keeps_every_report_figure(store_url: str) -> None:
    """Rollups written as 0006-0008 did (a row per status and error reason) are folded by
    0009; the report reading them then gives the figures it gave from the raw runs."""
    old = SqlStore(store_url)
    command.upgrade(alembic_config(old.engine), "0008")
    record_history(old)
    mark = T0 + timedelta(days=30)
    sqlite = old.engine.dialect.name == "sqlite"
    at = {"m": mark.replace(tzinfo=None) if sqlite else mark}
    day = "date(started_at)" if sqlite else "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    with old.engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO run_rollup ("check", target, day, status, error_reason, runs,'
                " duration_sum, duration_max, duration_p50, duration_p95, first_started,"
                f' last_started) SELECT "check", target, {day}, status,'
                " COALESCE(error_reason, ''), SUM(run_count), SUM(duration_seconds),"
                " MAX(duration_seconds), 0, 0, MIN(started_at),"
                " MAX(COALESCE(last_started_at, started_at)) FROM check_run"
                f' WHERE started_at < :m GROUP BY "check", target, {day}, status,'
                " COALESCE(error_reason, '')"
            ),
            at,
        )
        connection.execute(
            sa.text(
                'INSERT INTO sample_rollup ("check", target, day, name, labels, count, minimum,'
                " maximum, last, last_at) VALUES ('cert_expiry', 'shop', '2026-01-03',"
                " 'cert_days_left', '{}', 3, 1.0, 4.0, 2.0, :m)"
            ),
            at,
        )
    old.upgrade_schema()
    with old.engine.connect() as connection:
        series = connection.execute(
            sa.text(
                "SELECT series FROM run_rollup WHERE target = 'shop' AND day = '2026-01-03'"
                " AND \"check\" = 'cert_expiry'"
            )
        ).scalar_one()
    folded = parse_series(series)
    assert [(s.name, s.count, s.minimum, s.maximum, s.last) for s in folded] == [
        ("cert_days_left", 3, 1.0, 4.0, 2.0)
    ]
    period = ReportPeriod(T0 + timedelta(days=2), NOW)
    before = build_report_data(old, period, expectations())  # no mark yet: from raw runs
    doomed = (
        "SELECT id FROM check_run WHERE started_at < :m"
        " AND id NOT IN (SELECT run_id FROM finding_event WHERE run_id IS NOT NULL)"
        " AND id NOT IN (SELECT ok_run_id FROM check_state WHERE ok_run_id IS NOT NULL)"
    )
    with old.engine.begin() as connection:  # as a prune would: raw days gone, the mark set
        connection.execute(
            sa.text("INSERT INTO retention_mark (name, at) VALUES ('raw_rolled_up_before', :m)"),
            at,
        )
        connection.execute(sa.text(f"DELETE FROM sample WHERE run_id IN ({doomed})"), at)
        connection.execute(sa.text(f"DELETE FROM check_run WHERE id IN ({doomed})"), at)

    assert count(old, "run_rollup") == 3 * 30  # a row per (check, target, day)
    after = build_report_data(old, period, expectations())
    assert after.summary == before.summary
    assert after.days == before.days
    assert after == before
    assert before.summary.failed_runs > 0
    old.close()
