"""The store's side of the cluster, on SQLite and PostgreSQL: a slot is recorded once,
however often (or however concurrently) its run arrives."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from monitor.cluster.slots import run_slot
from monitor.model import FindingStatus, TransitionKind
from monitor.store.interface import FindingQuery
from monitor.store.sql import SqlStore
from tests.support.check_runs import ALL, CERT, POLICY, T0, error_run, finding, ok_run
from tests.support.finding_events import record_transitions

pytestmark = pytest.mark.integration

SLOT = run_slot(CERT, "api", T0)


def run_rows(store: SqlStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM check_run")).scalar_one())


def test_a_second_record_of_the_same_slot_writes_nothing_and_applies_no_findings(
    store: SqlStore,
) -> None:
    first = record_transitions(store, ok_run("api", T0, finding()), POLICY, SLOT)
    again = record_transitions(
        store, ok_run("api", T0 + timedelta(seconds=5), finding()), POLICY, SLOT
    )
    assert [t.kind for t in first] == [TransitionKind.OPENED]
    assert again == []
    assert run_rows(store) == 1
    (stored,) = store.findings(FindingQuery(statuses=ALL))
    assert stored.last_seen == T0  # the duplicate's sighting was not applied


def test_a_duplicate_cannot_resolve_a_finding_by_counting_an_absence_twice(
    store: SqlStore,
) -> None:
    store.record(ok_run("api", T0, finding()), POLICY, run_slot(CERT, "api", T0))
    absent = run_slot(CERT, "api", T0 + timedelta(hours=1))
    store.record(ok_run("api", T0 + timedelta(hours=1)), POLICY, absent)
    assert record_transitions(store, ok_run("api", T0 + timedelta(hours=1)), POLICY, absent) == []
    assert store.findings(FindingQuery())[0].status is FindingStatus.OPEN


def test_slot_recorded_answers_for_the_key_only(store: SqlStore) -> None:
    store.record(ok_run("api", T0), POLICY, SLOT)
    assert store.slot_recorded(SLOT.key)
    assert not store.slot_recorded(run_slot(CERT, "api", T0 + timedelta(hours=1)).key)


def test_runs_without_a_slot_are_recorded_as_before(store: SqlStore) -> None:
    store.record(ok_run("api", T0), POLICY)
    store.record(ok_run("api", T0 + timedelta(hours=1)), POLICY)
    assert run_rows(store) == 2


def test_last_slots_are_the_latest_slot_or_the_start_of_slotless_runs(store: SqlStore) -> None:
    store.record(ok_run("api", T0 + timedelta(minutes=1)), POLICY, run_slot(CERT, "api", T0))
    store.record(ok_run("old", T0 + timedelta(minutes=7)), POLICY)
    store.record(
        error_run("api", T0 + timedelta(hours=2)),
        POLICY,
        run_slot(CERT, "api", T0 + timedelta(hours=2)),
    )
    assert store.last_slots() == {
        (CERT, "api"): T0 + timedelta(hours=2),
        (CERT, "old"): T0 + timedelta(minutes=7),
    }


@pytest.mark.postgres
def test_two_workers_recording_one_slot_at_once_store_it_exactly_once(postgres_url: str) -> None:
    store = SqlStore(postgres_url)
    store.upgrade_schema()
    barrier = threading.Barrier(8)
    results: list[int] = []

    def record() -> None:
        barrier.wait()
        results.append(len(record_transitions(store, ok_run("api", T0, finding()), POLICY, SLOT)))

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [0] * 7 + [1]  # one run opened the finding; the others no-ops
    assert run_rows(store) == 1
    store.close()


@pytest.mark.postgres
def test_concurrent_runs_of_different_slots_keep_the_finding_counters_exact(
    postgres_url: str,
) -> None:
    store = SqlStore(postgres_url)
    store.upgrade_schema()
    store.record(ok_run("api", T0, finding()), POLICY, SLOT)
    barrier = threading.Barrier(6)

    def record(index: int) -> None:
        barrier.wait()
        at = T0 + timedelta(minutes=index + 1)
        store.record(ok_run("api", at, finding()), POLICY, run_slot(CERT, "api", at))

    threads = [threading.Thread(target=record, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with store.engine.connect() as connection:
        streak = connection.execute(sa.text("SELECT seen_streak FROM finding")).scalar_one()
    assert streak == 7  # no lost update between the workers
    store.close()
