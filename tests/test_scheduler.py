"""Scheduling: first runs from the store, spreading, and one run per (check, target) at a time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from checks.egress import EgressPolicy
from monitor.jobs import ScheduledCheck
from monitor.model import CheckKind, Target
from monitor.runner import CheckJob, Runner
from monitor.scheduler import CheckScheduler, first_runs
from tests.support.checks_for_tests import Behaviour, ScriptedCheck

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def planned(name: str, interval: timedelta = HOUR, **behaviour: object) -> ScheduledCheck:
    job = CheckJob(
        CheckKind.CERT_EXPIRY, Target(name), Behaviour(**behaviour), timedelta(seconds=10)
    )
    return ScheduledCheck(job=job, interval=interval, jitter=timedelta(0))


@pytest.mark.unit
def test_a_check_that_ran_before_runs_again_one_interval_after_its_last_start() -> None:
    last = {(CheckKind.CERT_EXPIRY, "api"): NOW - timedelta(minutes=20)}
    starts = first_runs([planned("api")], last, NOW, spread=timedelta(minutes=5))
    assert starts == {"cert_expiry:api": NOW + timedelta(minutes=40)}


@pytest.mark.unit
def test_checks_that_never_ran_are_spread_over_the_window_not_started_together() -> None:
    checks = [planned(f"t{i}") for i in range(10)]
    starts = sorted(first_runs(checks, {}, NOW, spread=timedelta(minutes=5)).values())
    assert starts[0] == NOW
    assert starts[-1] == NOW + timedelta(minutes=4, seconds=30)
    assert len(set(starts)) == 10


@pytest.mark.unit
def test_overdue_checks_are_spread_too_so_a_long_outage_does_not_cause_a_burst() -> None:
    last = {(CheckKind.CERT_EXPIRY, f"t{i}"): NOW - timedelta(days=2) for i in range(4)}
    starts = first_runs(
        [planned(f"t{i}") for i in range(4)], last, NOW, spread=timedelta(minutes=4)
    )
    assert sorted(starts.values()) == [NOW + timedelta(minutes=m) for m in range(4)]


@pytest.mark.unit
def test_spread_window_never_exceeds_the_interval() -> None:
    checks = [planned(f"t{i}", interval=timedelta(seconds=20)) for i in range(2)]
    starts = sorted(first_runs(checks, {}, NOW, spread=timedelta(minutes=5)).values())
    assert starts == [NOW, NOW + timedelta(seconds=10)]


@pytest.mark.integration
def test_scheduler_never_overlaps_runs_of_one_check_on_one_target() -> None:
    check = ScriptedCheck()
    runner = Runner(checks={CheckKind.CERT_EXPIRY: check}, egress=EgressPolicy())
    scheduler = CheckScheduler(
        runner.run,
        workers=8,
        misfire_grace=timedelta(seconds=30),
        initial_spread=timedelta(seconds=0.1),
    )
    # each run takes 0.7 s but is due every 0.2 s
    jobs = [
        planned(name, interval=timedelta(seconds=0.2), sleep_seconds=0.7) for name in ("a", "b")
    ]
    scheduler.start(jobs, {})
    time.sleep(2.5)
    scheduler.shutdown()
    time.sleep(0.8)
    assert check.calls["a"] >= 2
    assert check.calls["b"] >= 2
    assert check.max_running == {"a": 1, "b": 1}
    assert check.max_running_overall == 2  # different targets did run side by side


@pytest.mark.unit
def test_reconcile_keeps_unchanged_jobs_and_removes_dropped_ones() -> None:
    scheduler = CheckScheduler(
        lambda job: None,
        workers=1,
        misfire_grace=timedelta(seconds=30),
        initial_spread=timedelta(minutes=5),
    )
    scheduler.start([planned("a"), planned("b")], {})
    before = scheduler.next_run_times()
    scheduler.reconcile([planned("a"), planned("c")], {})
    after = scheduler.next_run_times()
    scheduler.shutdown()
    assert set(after) == {"cert_expiry:a", "cert_expiry:c"}
    assert after["cert_expiry:a"] == before["cert_expiry:a"]


@pytest.mark.unit
def test_heartbeat_reports_the_scheduler_alive_until_shutdown() -> None:
    scheduler = CheckScheduler(
        lambda job: None,
        workers=1,
        misfire_grace=timedelta(seconds=30),
        initial_spread=timedelta(minutes=5),
    )
    scheduler.start([], {})
    assert scheduler.alive()
    scheduler.shutdown()
    assert not scheduler.alive()
