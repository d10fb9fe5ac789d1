"""Run-length rows on SQLite and PostgreSQL: an ok run with the same outcome as the one before
extends its row, anything that changed starts a new one, and every reader (report, /metrics,
rollups, totals, staleness, slots) sees the same runs as with a row per run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

from monitor.cluster.slots import run_slot
from monitor.metrics import build_registry
from monitor.model import (
    CheckKind,
    CheckRun,
    Finding,
    Observation,
    RunStatus,
    Severity,
    Target,
)
from monitor.report.build import build_report_data
from monitor.report.model import Expectation, ReportData, ReportPeriod
from monitor.store.interface import HysteresisPolicy
from monitor.store.retention import RetentionPolicy
from monitor.store.run_rollup import parse_series
from monitor.store.sql import SqlStore
from tests.support.check_runs import a_run

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CERT = CheckKind.CERT_EXPIRY
DRIFT = CheckKind.CONFIG_DRIFT
IMMEDIATE = HysteresisPolicy(open_after=1, resolve_after=1)
DAYS = 40
NOW = T0 + timedelta(days=DAYS)
RETAIN = RetentionPolicy(raw=timedelta(days=30), evidence=timedelta(days=400), batch_rows=50)


def weak(severity: Severity = Severity.HIGH) -> Finding:
    return Finding("CERT-WEAK-KEY", severity, "weak key", "leaf", "1024 bits", "reissue")


def run(
    target: str,
    at: datetime,
    status: RunStatus = RunStatus.OK,
    findings: tuple[Finding, ...] = (),
    value: float = 90.0,
    series: str = "cert_days_left",
    snapshot: dict[str, str] | None = None,
    check: CheckKind = CERT,
    seconds: float = 1.0,
) -> CheckRun:
    return a_run(
        target,
        at,
        status,
        check=check,
        findings=findings,
        observations=(Observation(series, value, {"position": "leaf"}),),
        snapshot=snapshot,
        seconds=seconds,
    )


def rows(store: SqlStore, target: str) -> list[tuple[str, int]]:
    """(status, run_count) of the target's rows, oldest first."""
    with store.engine.connect() as connection:
        found = connection.execute(
            sa.text(
                "SELECT status, run_count FROM check_run WHERE target = :t ORDER BY started_at"
            ),
            {"t": target},
        ).all()
    return [(status, count) for status, count in found]


def scrape(store: SqlStore) -> str:
    return generate_latest(build_registry(store)).decode()


def history(store: SqlStore, target: str, ledger: str) -> int:
    """40 days every hour at :07 of a target that mostly does not change: a finding opens
    and resolves, the check fails some hours, the observed value changes some days, a
    drift check changes its snapshot. Returns how many runs were recorded."""
    recorded = 0
    for hour in range(DAYS * 24):
        at = T0 + timedelta(hours=hour, minutes=7)
        day = hour // 24
        failing = day % 7 == 3 and hour % 24 in (5, 6, 13)
        findings = (weak(),) if 8 <= day < 12 or (22 <= day < 24 and hour % 24 > 12) else ()
        status = RunStatus.ERROR if failing else RunStatus.OK
        value = 90.0 - day // 5
        store.record(
            run(target, at, status, findings, value=value, seconds=0.2 + hour % 5), IMMEDIATE
        )
        recorded += 1
        if hour % 6 == 0:
            document = {"host": "db2" if 15 <= day < 18 else "db1"}
            store.record(run(ledger, at, check=DRIFT, snapshot=document), IMMEDIATE)
            recorded += 1
    return recorded


def expectations(target: str, ledger: str) -> list[Expectation]:
    return [
        Expectation(CERT, target, timedelta(hours=1), timedelta(minutes=30)),
        Expectation(DRIFT, ledger, timedelta(hours=6), timedelta(minutes=30)),
    ]


def figures(data: ReportData) -> tuple[object, ...]:
    """What a report says, without the target names."""
    checks = [
        (c.check, c.interval, c.last_evaluated, c.within_interval, c.runs, c.failed_runs)
        for target in data.targets
        for c in target.checks
    ]
    return (data.summary, data.days, data.weeks, checks)


def test_report_figures_are_the_same_from_run_length_rows_as_from_a_row_per_run(
    store_url: str,
) -> None:
    raw = SqlStore(store_url, run_length=False)
    raw.upgrade_schema()
    folded = SqlStore(store_url)
    raw.sync_targets([Target(n) for n in ("raw", "raw-ledger", "rl", "rl-ledger")], T0)
    recorded = history(raw, "raw", "raw-ledger")
    assert history(folded, "rl", "rl-ledger") == recorded
    periods = [
        ReportPeriod(T0, NOW),
        ReportPeriod(T0 + timedelta(days=3), T0 + timedelta(days=20)),
        ReportPeriod(T0 + timedelta(days=9), NOW + timedelta(days=2)),
    ]

    def reports(store: SqlStore, prefix: str) -> list[tuple[object, ...]]:
        wanted = expectations(prefix, f"{prefix}-ledger")
        return [
            figures(build_report_data(store, p, wanted, targets=[prefix, f"{prefix}-ledger"]))
            for p in periods
        ]

    expected = reports(raw, "raw")
    assert reports(folded, "rl") == expected
    assert len(rows(folded, "rl")) < len(rows(raw, "raw")) / 5
    assert sum(count for _status, count in rows(folded, "rl")) == DAYS * 24
    text = scrape(folded)
    raw_total = 'apivigil_check_runs_total{check="cert_expiry",status="ok",target="raw"}'
    rl_total = 'apivigil_check_runs_total{check="cert_expiry",status="ok",target="rl"}'
    assert text.split(rl_total)[1].split()[0] == text.split(raw_total)[1].split()[0]

    # after the prune the rollups hold the old days: still the same figures, same totals
    assert folded.prune(RETAIN, NOW, budget_seconds=600).complete
    after = scrape(folded)
    assert after.split(rl_total)[1].split()[0] == text.split(rl_total)[1].split()[0]
    assert reports(folded, "rl") == expected
    raw.close()
    folded.close()


def test_a_changed_outcome_always_starts_a_new_row(store: SqlStore) -> None:
    policy = HysteresisPolicy(open_after=2, resolve_after=1)
    store.sync_targets([Target("shop")], T0)
    steps = [
        (RunStatus.OK, (), 90.0, "cert_days_left"),  # 1: first row
        (RunStatus.OK, (), 90.0, "cert_days_left"),  # extends 1
        (RunStatus.OK, (), 89.0, "cert_days_left"),  # extends 1: only a value changed
        (RunStatus.OK, (weak(),), 89.0, "cert_days_left"),  # 2: a finding (pending)
        (RunStatus.OK, (weak(),), 89.0, "cert_days_left"),  # 3: it opens (a transition)
        (RunStatus.OK, (weak(),), 89.0, "cert_days_left"),  # extends 3
        (RunStatus.OK, (weak(Severity.LOW),), 89.0, "cert_days_left"),  # 4: severity
        (RunStatus.ERROR, (), 0.0, ""),  # 5
        (RunStatus.ERROR, (), 0.0, ""),  # 6: failures are never folded
        (RunStatus.OK, (weak(Severity.LOW),), 89.0, "cert_days_left"),  # 7: back to ok
        (RunStatus.OK, (weak(Severity.LOW),), 89.0, "cert_days_right"),  # 8: other series
        (RunStatus.OK, (), 89.0, "cert_days_right"),  # 9: resolved (a transition)
    ]
    for n, (status, findings, value, series) in enumerate(steps):
        at = T0 + timedelta(minutes=5 * n)
        store.record(run("shop", at, status, findings, value=value, series=series), policy)
    store.record(run("shop", T0 + timedelta(minutes=61)), policy)  # 10: snapshot-free, new set
    store.record(run("shop", T0 + timedelta(minutes=66)), policy)  # extends 10
    midnight = T0 + timedelta(days=1)
    store.record(run("shop", midnight - timedelta(minutes=1)), policy)  # extends 10
    store.record(run("shop", midnight + timedelta(minutes=4)), policy)  # 11: another day

    assert rows(store, "shop") == [
        ("ok", 3),
        ("ok", 1),
        ("ok", 2),
        ("ok", 1),
        ("error", 1),
        ("error", 1),
        ("ok", 1),
        ("ok", 1),
        ("ok", 1),
        ("ok", 3),
        ("ok", 1),
    ]
    with store.engine.connect() as connection:
        events = connection.execute(
            sa.text(
                "SELECT e.kind, r.started_at, r.run_count FROM finding_event e"
                " JOIN check_run r ON r.id = e.run_id ORDER BY e.at"
            )
        ).all()
    # every transition points at a row of its own run (the row's first)
    assert [(kind, count) for kind, _at, count in events] == [
        ("opened", 2),
        ("severity_changed", 1),
        ("resolved", 1),
    ]
    summaries = store.runs(CERT, "shop")
    assert sum(s.run_count for s in summaries) == len(steps) + 4
    assert summaries[0].started_at == midnight + timedelta(minutes=4)
    assert summaries[1].last_started_at == midnight - timedelta(minutes=1)


def test_a_drift_snapshot_change_starts_a_new_row(store: SqlStore) -> None:
    store.sync_targets([Target("ledger")], T0)
    for n, host in enumerate(["db1", "db1", "db2", "db2", "db1"]):
        at = T0 + timedelta(hours=n)
        store.record(run("ledger", at, check=DRIFT, snapshot={"host": host}), IMMEDIATE)
    assert rows(store, "ledger") == [("ok", 2), ("ok", 2), ("ok", 1)]
    assert store.latest_snapshot(DRIFT, "ledger") == {"host": "db1"}


def test_samples_are_written_when_a_value_changes_and_metrics_show_the_newest(
    store: SqlStore,
) -> None:
    store.sync_targets([Target("shop")], T0)
    for n, value in enumerate([5.0, 5.0, 7.0, 7.0, 7.0, 5.0]):
        store.record(run("shop", T0 + timedelta(minutes=5 * n), value=value), IMMEDIATE)
    assert rows(store, "shop") == [("ok", 6)]
    with store.engine.connect() as connection:
        values = connection.execute(sa.text("SELECT value FROM sample ORDER BY id")).scalars()
        assert list(values) == [5.0, 7.0, 5.0]
    assert 'apivigil_cert_days_left{position="leaf",target="shop"} 5.0' in scrape(store)

    store.prune(RETAIN, T0 + timedelta(days=40), budget_seconds=600)
    with store.engine.connect() as connection:
        series = connection.execute(sa.text("SELECT series FROM run_rollup")).scalar_one()
    (days_left,) = parse_series(series)
    assert (days_left.name, days_left.minimum, days_left.maximum, days_left.last) == (
        "cert_days_left",
        5.0,
        7.0,
        5.0,
    )
    assert 'apivigil_cert_days_left{position="leaf",target="shop"} 5.0' in scrape(store)


def test_staleness_is_still_seen_when_runs_stop(store: SqlStore) -> None:
    store.sync_targets([Target("shop")], T0)
    last = T0
    for n in range(12):
        last = T0 + timedelta(minutes=5 * n)
        store.record(run("shop", last), IMMEDIATE)
    assert rows(store, "shop") == [("ok", 12)]
    assert store.last_run_started() == {(CERT, "shop"): last}
    assert store.last_slots() == {(CERT, "shop"): last}
    expected = [Expectation(CERT, "shop", timedelta(minutes=5), timedelta(minutes=1))]
    fresh = build_report_data(store, ReportPeriod(T0, last + timedelta(minutes=6)), expected)
    stale = build_report_data(store, ReportPeriod(T0, last + timedelta(hours=2)), expected)
    (fresh_check,) = fresh.targets[0].checks
    (stale_check,) = stale.targets[0].checks
    assert fresh_check.last_evaluated == stale_check.last_evaluated == last
    assert fresh_check.within_interval
    assert not stale_check.within_interval
    assert fresh_check.runs == 12


def test_slots_folded_into_a_row_are_known_as_recorded(store: SqlStore) -> None:
    store.sync_targets([Target("api")], T0)
    slots = [run_slot(CERT, "api", T0 + timedelta(minutes=5 * n)) for n in range(5)]
    for slot in (slots[0], slots[1], slots[3], slots[4]):
        store.record(run("api", slot.at), IMMEDIATE, slot)
    assert rows(store, "api") == [("ok", 4)]
    for slot in (slots[0], slots[1], slots[3], slots[4]):
        store.record(run("api", slot.at), IMMEDIATE, slot)  # a redelivery: nothing written
    assert rows(store, "api") == [("ok", 4)]
    assert store.slot_recorded(slots[0].key)
    assert store.slot_recorded(slots[4].key)
    # a slot that was never recorded, arriving late (another worker was slower): recorded
    store.record(run("api", slots[2].at), IMMEDIATE, slots[2])
    assert sorted(rows(store, "api")) == [("ok", 1), ("ok", 4)]
    assert store.last_slots() == {(CERT, "api"): slots[4].at}
