"""The engine on the real store, and the outbox dispatcher: at-least-once delivery,
backoff, Retry-After, maximum age, permanent failures, compare-and-set claims."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.interface import NotifierError
from alerts.model import Notification, NotificationKind
from alerts.outbox import Dispatcher
from monitor.alert_records import AlertRecords
from monitor.alerting import run_tick
from monitor.metrics import build_registry
from monitor.model import (
    RunStatus,
    Target,
)
from monitor.store.sql import SqlStore
from tests.support.clocks import ManualClock
from tests.support.outbox_records import CONFIG, T0, RecordingNotifier, record, tls10

pytestmark = pytest.mark.integration


@pytest.fixture
def targets(store: SqlStore) -> SqlStore:
    store.sync_targets([Target("payments", labels={"env": "prod"}), Target("billing")], T0)
    return store


def test_findings_become_one_outbox_row_per_group_and_are_delivered_once(targets: SqlStore) -> None:
    clock, notifier = ManualClock(T0), RecordingNotifier()
    record(targets, clock, "payments", tls10("a"), tls10("b"))
    record(targets, clock, "billing", tls10("c"))

    first = run_tick(targets, CONFIG, clock)
    second = run_tick(targets, CONFIG, clock)
    report = Dispatcher(
        AlertRecords(targets), {"hook": notifier}, CONFIG.dispatcher, clock
    ).deliver_due()

    assert len(first.notifications) == 2
    assert second.notifications == ()
    assert report.delivered == 2
    assert sorted(len(n.firing) for n in notifier.received) == [1, 2]
    assert {n.dedup_key for n in notifier.received} == {n.dedup_key for n in first.notifications}
    assert all(e.delivered_at is not None for e in AlertRecords(targets).outbox_entries())
    payments = next(n for n in notifier.received if n.group_labels == {"target": "payments"})
    assert payments.firing[0].labels == {"env": "prod"}
    assert "RFC 7525 3.1.1" in payments.firing[0].controls


def test_a_failing_receiver_is_retried_with_backoff_then_delivered(targets: SqlStore) -> None:
    clock, notifier = ManualClock(T0), RecordingNotifier()
    dispatcher = Dispatcher(AlertRecords(targets), {"hook": notifier}, CONFIG.dispatcher, clock)
    record(targets, clock, "payments", tls10())
    run_tick(targets, CONFIG, clock)
    notifier.failure = NotifierError("HTTP 503")

    assert dispatcher.deliver_due().retried == 1
    (entry,) = AlertRecords(targets).outbox_entries()
    assert entry.attempts == 1
    assert entry.last_error == "HTTP 503"
    delay = entry.next_attempt_at - clock.now()
    assert timedelta(seconds=8) <= delay <= timedelta(seconds=12)
    assert dispatcher.deliver_due().retried == 0  # not due yet

    notifier.failure = None
    clock.current += timedelta(seconds=13)
    assert dispatcher.deliver_due().delivered == 1
    assert len(notifier.received) == 1


def test_retry_after_is_honoured(targets: SqlStore) -> None:
    clock, notifier = ManualClock(T0), RecordingNotifier()
    dispatcher = Dispatcher(AlertRecords(targets), {"hook": notifier}, CONFIG.dispatcher, clock)
    record(targets, clock, "payments", tls10())
    run_tick(targets, CONFIG, clock)
    notifier.failure = NotifierError("HTTP 429", retry_after=120)

    dispatcher.deliver_due()

    (entry,) = AlertRecords(targets).outbox_entries()
    assert entry.next_attempt_at == clock.now() + timedelta(seconds=120)


def test_permanent_and_too_old_failures_are_kept_listed_and_counted(targets: SqlStore) -> None:
    clock, notifier = ManualClock(T0), RecordingNotifier()
    dispatcher = Dispatcher(AlertRecords(targets), {"hook": notifier}, CONFIG.dispatcher, clock)
    record(targets, clock, "payments", tls10())
    record(targets, clock, "billing", tls10())
    run_tick(targets, CONFIG, clock)
    notifier.failure = NotifierError("HTTP 404 no_service", permanent=True)
    assert dispatcher.deliver_due().failed == 2

    record(targets, clock, "payments", tls10(), tls10("new"))
    clock.current += timedelta(minutes=2)
    run_tick(targets, CONFIG, clock)
    notifier.failure = NotifierError("timeout")
    dispatcher.deliver_due()
    clock.current += timedelta(hours=2)
    assert dispatcher.deliver_due().failed == 1

    failed = AlertRecords(targets).outbox_entries(failed_only=True)
    assert len(failed) == 3
    assert any("older than max_age" in (e.last_error or "") for e in failed)
    registry = build_registry(targets)
    assert (
        registry.get_sample_value("apivigil_notifications_failed_total", {"receiver": "hook"}) == 3
    )


def test_only_one_dispatcher_claims_a_row(targets: SqlStore) -> None:
    clock = ManualClock(T0)
    record(targets, clock, "payments", tls10())
    run_tick(targets, CONFIG, clock)
    (entry,) = AlertRecords(targets).outbox_due(clock.now(), 10)

    claims = [
        AlertRecords(targets).outbox_claim(entry.id, clock.now(), timedelta(minutes=5))
        for _ in range(3)
    ]

    assert claims == [True, False, False]
    assert AlertRecords(targets).outbox_due(clock.now(), 10) == []
    clock.current += timedelta(minutes=6)  # the lease ran out: a crashed sender's row is retried
    assert [e.id for e in AlertRecords(targets).outbox_due(clock.now(), 10)] == [entry.id]


def test_a_slow_receiver_does_not_let_later_rows_lose_their_claim_and_be_sent_twice(
    store: SqlStore,
) -> None:
    names = ["payments", "billing", "orders"]
    store.sync_targets([Target(name) for name in names], T0)
    clock = ManualClock(T0)
    for name in names:
        record(store, clock, name, tls10())
    run_tick(store, CONFIG, clock)
    one_at_a_time = CONFIG.dispatcher.model_copy(update={"workers": 1})
    other_instance = RecordingNotifier()
    other = Dispatcher(AlertRecords(store), {"hook": other_instance}, one_at_a_time, clock)

    class SlowReceiver(RecordingNotifier):
        def send(self, notification: Notification) -> None:
            super().send(notification)
            clock.current += timedelta(minutes=3)  # each send is within the 5-minute lease
            if len(self.received) == 2:  # the batch as a whole has outlived a lease
                other.deliver_due()

    slow = SlowReceiver()
    Dispatcher(AlertRecords(store), {"hook": slow}, one_at_a_time, clock).deliver_due()

    sent = [n.group_labels["target"] for n in slow.received + other_instance.received]
    assert sorted(sent) == sorted(names)
    assert all(e.delivered_at is not None for e in AlertRecords(store).outbox_entries())


def test_a_check_failing_three_times_alerts_and_recovers(targets: SqlStore) -> None:
    clock = ManualClock(T0)
    record(targets, clock, "payments")
    for _ in range(2):
        record(targets, clock, "payments", status=RunStatus.ERROR)
    assert run_tick(targets, CONFIG, clock).notifications == ()

    record(targets, clock, "payments", status=RunStatus.ERROR)
    (failing,) = run_tick(targets, CONFIG, clock).notifications
    assert failing.firing[0].rule_id == "CHECK-FAILING"
    assert "connection refused" in failing.firing[0].evidence

    record(targets, clock, "payments")
    clock.current += timedelta(minutes=2)
    (recovered,) = run_tick(targets, CONFIG, clock).notifications
    assert recovered.kind is NotificationKind.RESOLVED


def test_a_resolved_finding_sends_a_resolved_notice(targets: SqlStore) -> None:
    clock = ManualClock(T0)
    record(targets, clock, "payments", tls10())
    run_tick(targets, CONFIG, clock)
    record(targets, clock, "payments")
    clock.current += timedelta(minutes=2)

    (notice,) = run_tick(targets, CONFIG, clock).notifications

    assert notice.kind is NotificationKind.RESOLVED
    assert notice.resolved[0].title == "TLS 1.0 enabled"


def test_a_huge_retry_after_is_capped_at_the_longest_backoff(targets: SqlStore) -> None:
    clock, notifier = ManualClock(T0), RecordingNotifier()
    dispatcher = Dispatcher(AlertRecords(targets), {"hook": notifier}, CONFIG.dispatcher, clock)
    record(targets, clock, "payments", tls10())
    run_tick(targets, CONFIG, clock)
    notifier.failure = NotifierError("HTTP 429", retry_after=99_999_999_999_999)

    assert dispatcher.deliver_due().retried == 1

    (entry,) = AlertRecords(targets).outbox_entries()
    assert entry.next_attempt_at == clock.now() + timedelta(minutes=5)
