"""One contract suite for every Store implementation: SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import Session, SQLModel, select
from structlog.testing import capture_logs

from monitor.model import (
    CheckRun,
    FindingStatus,
    Observation,
    RunStatus,
    Severity,
    Target,
    TransitionKind,
)
from monitor.store.interface import FindingQuery, HysteresisPolicy, SchemaState, StoreUnavailable
from monitor.store.sql import SqlStore
from monitor.store.tables import SnapshotRow
from tests.support.check_runs import ALL, CERT, POLICY, T0, error_run, finding, ok_run
from tests.support.finding_events import record_transitions


@pytest.mark.integration
def test_fresh_store_reports_empty_schema_then_current_after_upgrade(store_url: str) -> None:
    store = SqlStore(store_url)
    assert store.schema_state() is SchemaState.EMPTY
    store.upgrade_schema()
    assert store.schema_state() is SchemaState.CURRENT
    store.close()


@pytest.mark.integration
def test_migrations_create_exactly_the_tables_the_models_describe(store: SqlStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


@pytest.mark.integration
def test_first_sighting_opens_a_finding_with_a_transition(store: SqlStore) -> None:
    transitions = record_transitions(store, ok_run("api", T0, finding()), POLICY)
    assert [t.kind for t in transitions] == [TransitionKind.OPENED]
    (stored,) = store.findings(FindingQuery())
    assert (stored.status, stored.rule_id, stored.first_seen) == (
        FindingStatus.OPEN,
        "CERT-EXPIRES-SOON",
        T0,
    )
    assert stored.fingerprint == finding().fingerprint(CERT, "api")


@pytest.mark.integration
def test_the_store_logs_what_a_run_opened_and_resolved_once_committed(store: SqlStore) -> None:
    opening, gone, closing = (
        ok_run("api", T0, finding()),
        ok_run("api", T0 + timedelta(hours=1)),
        ok_run("api", T0 + timedelta(hours=2)),
    )
    with capture_logs() as logs:
        for run in (opening, gone, closing):
            store.record(run, POLICY)

    said = [
        (e["event"], e["run_id"], e["rule_id"]) for e in logs if e["event"].startswith("finding")
    ]
    assert said == [
        ("finding opened", opening.id, "CERT-EXPIRES-SOON"),
        ("finding resolved", closing.id, "CERT-EXPIRES-SOON"),
    ]


@pytest.mark.integration
@pytest.mark.postgres
def test_a_run_whose_commit_fails_logs_no_finding_transition(postgres_url: str) -> None:
    """The store says "finding opened" only for what it committed. PostgreSQL only: on
    SQLite a raising commit hook leaves the pooled connection inside its transaction (an
    artefact of the hook, not of the store)."""

    def refuse(_connection: sa.Connection) -> None:  # the COMMIT itself fails, after every write
        raise sa.exc.OperationalError("COMMIT", {}, Exception("connection lost"))

    store = SqlStore(postgres_url)
    store.upgrade_schema()
    sa.event.listen(store.engine, "commit", refuse)
    try:
        with capture_logs() as logs, pytest.raises(StoreUnavailable, match="connection lost"):
            store.record(ok_run("api", T0, finding()), POLICY)
        sa.event.remove(store.engine, "commit", refuse)

        assert [e["event"] for e in logs if e["event"].startswith("finding")] == []
        assert store.findings(FindingQuery(statuses=ALL)) == []
    finally:
        store.close()


@pytest.mark.integration
def test_open_after_holds_a_finding_pending_until_seen_enough_times(store: SqlStore) -> None:
    policy = HysteresisPolicy(open_after=3, resolve_after=2)
    assert record_transitions(store, ok_run("api", T0, finding()), policy) == []
    assert (
        record_transitions(store, ok_run("api", T0 + timedelta(hours=1), finding()), policy) == []
    )
    assert store.findings(FindingQuery(statuses=ALL))[0].status is FindingStatus.PENDING
    transitions = record_transitions(
        store, ok_run("api", T0 + timedelta(hours=2), finding()), policy
    )
    assert [t.kind for t in transitions] == [TransitionKind.OPENED]


@pytest.mark.integration
def test_finding_resolves_only_after_resolve_after_absences(store: SqlStore) -> None:
    store.record(ok_run("api", T0, finding()), POLICY)
    assert record_transitions(store, ok_run("api", T0 + timedelta(hours=1)), POLICY) == []
    assert store.findings(FindingQuery())[0].status is FindingStatus.OPEN
    transitions = record_transitions(store, ok_run("api", T0 + timedelta(hours=2)), POLICY)
    assert [t.kind for t in transitions] == [TransitionKind.RESOLVED]
    (resolved,) = store.findings(FindingQuery(statuses=frozenset({FindingStatus.RESOLVED})))
    assert resolved.resolved_at == T0 + timedelta(hours=2, seconds=1)


@pytest.mark.integration
def test_a_flap_back_resets_the_absence_count(store: SqlStore) -> None:
    store.record(ok_run("api", T0, finding()), POLICY)
    store.record(ok_run("api", T0 + timedelta(hours=1)), POLICY)
    store.record(ok_run("api", T0 + timedelta(hours=2), finding()), POLICY)
    assert record_transitions(store, ok_run("api", T0 + timedelta(hours=3)), POLICY) == []
    assert store.findings(FindingQuery())[0].status is FindingStatus.OPEN


@pytest.mark.integration
def test_errored_run_neither_opens_nor_resolves_findings(store: SqlStore) -> None:
    store.record(ok_run("api", T0, finding()), POLICY)
    for hour in (1, 2, 3):
        assert record_transitions(store, error_run("api", T0 + timedelta(hours=hour)), POLICY) == []
    (still_open,) = store.findings(FindingQuery())
    assert still_open.last_seen == T0
    (latest, *_) = store.runs(target="api")
    assert (latest.status, latest.error_reason) == (RunStatus.ERROR, "unreachable")


@pytest.mark.integration
def test_rising_severity_is_one_finding_with_a_severity_transition(store: SqlStore) -> None:
    store.record(ok_run("api", T0, finding(severity=Severity.MEDIUM)), POLICY)
    transitions = record_transitions(
        store, ok_run("api", T0 + timedelta(days=20), finding(severity=Severity.CRITICAL)), POLICY
    )
    assert [(t.kind, t.previous_severity, t.severity) for t in transitions] == [
        (TransitionKind.SEVERITY_CHANGED, Severity.MEDIUM, Severity.CRITICAL)
    ]
    (stored,) = store.findings(FindingQuery())
    assert stored.severity is Severity.CRITICAL


@pytest.mark.integration
def test_resolved_finding_reopens_when_seen_again(store: SqlStore) -> None:
    store.record(ok_run("api", T0, finding()), POLICY)
    store.record(ok_run("api", T0 + timedelta(hours=1)), POLICY)
    store.record(ok_run("api", T0 + timedelta(hours=2)), POLICY)
    transitions = record_transitions(
        store, ok_run("api", T0 + timedelta(hours=3), finding()), POLICY
    )
    assert [t.kind for t in transitions] == [TransitionKind.OPENED]
    assert len(store.findings(FindingQuery(statuses=ALL))) == 1


@pytest.mark.integration
def test_findings_are_per_target_and_filterable(store: SqlStore) -> None:
    store.record(ok_run("a", T0, finding(severity=Severity.LOW)), POLICY)
    store.record(
        ok_run("b", T0, finding(severity=Severity.CRITICAL), finding("CERT-EXPIRED", "x")), POLICY
    )
    assert {f.target for f in store.findings(FindingQuery())} == {"a", "b"}
    assert [f.target for f in store.findings(FindingQuery(target="a"))] == ["a"]
    severe = store.findings(FindingQuery(min_severity=Severity.HIGH))
    assert [f.severity for f in severe] == [Severity.CRITICAL]


@pytest.mark.integration
def test_last_run_started_ignores_skipped_runs(store: SqlStore) -> None:
    store.record(ok_run("api", T0), POLICY)
    store.record(error_run("api", T0 + timedelta(hours=1)), POLICY)
    skipped = CheckRun(
        str(uuid.uuid4()),
        CERT,
        "api",
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=2),
        RunStatus.SKIPPED,
    )
    store.record(skipped, POLICY)
    assert store.last_run_started() == {(CERT, "api"): T0 + timedelta(hours=1)}


@pytest.mark.integration
def test_metrics_state_shows_latest_samples_of_active_targets_only(store: SqlStore) -> None:
    store.sync_targets([Target("api", labels={"env": "prod"}), Target("gone")], T0)
    old = Observation("cert_not_after_timestamp_seconds", 1.0, {"address": "127.0.0.1"})
    new = Observation("cert_not_after_timestamp_seconds", 2.0, {"address": "127.0.0.1"})
    store.record(ok_run("api", T0, observations=(old,)), POLICY)
    store.record(ok_run("api", T0 + timedelta(hours=1), finding(), observations=(new,)), POLICY)
    store.record(error_run("api", T0 + timedelta(hours=2)), POLICY)
    store.record(ok_run("gone", T0, finding()), POLICY)
    store.sync_targets([Target("api", labels={"env": "prod"})], T0 + timedelta(hours=3))

    state = store.metrics_state([1.0, 5.0])

    assert state.targets == {"api": {"env": "prod"}}
    assert [(s.target, s.value) for s in state.latest_samples] == [("api", 2.0)]
    assert state.run_counts == {(CERT, "api", RunStatus.OK): 2, (CERT, "api", RunStatus.ERROR): 1}
    assert state.last_status == {(CERT, "api"): RunStatus.ERROR}
    assert state.open_findings == {(CERT, "api", Severity.MEDIUM): 1}
    histogram = state.durations[CERT]
    assert histogram.count == 4
    assert histogram.buckets == [(1.0, 3), (5.0, 4)]


@pytest.mark.integration
def test_identical_snapshots_are_stored_once(store: SqlStore) -> None:
    store.record(ok_run("api", T0, snapshot={"a": 1}), POLICY)
    store.record(ok_run("api", T0 + timedelta(hours=1), snapshot={"a": 1}), POLICY)
    store.record(ok_run("api", T0 + timedelta(hours=2), snapshot={"a": 2}), POLICY)
    with Session(store.engine) as session:
        assert len(session.exec(select(SnapshotRow)).all()) == 2


@pytest.mark.unit
def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CheckRun("x", CERT, "api", datetime(2026, 1, 1), datetime(2026, 1, 1), RunStatus.SKIPPED)
