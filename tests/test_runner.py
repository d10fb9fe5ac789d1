"""The runner: deadlines, the in-flight guard, and exceptions turned into typed reasons."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from checks.egress import EgressPolicy
from monitor.model import CheckKind, ErrorReason, RunStatus, Target
from monitor.runner import CheckJob, Runner
from tests.support.checks_for_tests import Behaviour, ScriptedCheck

pytestmark = pytest.mark.unit


def job(target: str = "api", timeout: float = 5, **behaviour: object) -> CheckJob:
    return CheckJob(
        CheckKind.CERT_EXPIRY, Target(target), Behaviour(**behaviour), timedelta(seconds=timeout)
    )


def runner_with(check: ScriptedCheck) -> Runner:
    return Runner(checks={CheckKind.CERT_EXPIRY: check}, egress=EgressPolicy())


def test_successful_run_carries_the_output() -> None:
    run = runner_with(ScriptedCheck()).run(job())
    assert run.status is RunStatus.OK
    assert run.error_reason is None
    assert [f.rule_id for f in run.output.findings] == ["TEST-RULE"]


@pytest.mark.parametrize(
    ("fail_with", "reason", "text"),
    [
        ("unreachable", ErrorReason.UNREACHABLE, "api: nobody home"),
        ("misconfigured", ErrorReason.MISCONFIGURED, "cannot work like this"),
        ("bad_input", ErrorReason.BAD_INPUT, "file.pem: garbage"),
        ("crash", ErrorReason.BUG, "ZeroDivisionError: division by zero"),
    ],
)
def test_exceptions_become_typed_reasons(fail_with: str, reason: ErrorReason, text: str) -> None:
    run = runner_with(ScriptedCheck()).run(job(fail_with=fail_with))
    assert (run.status, run.error_reason, run.error_message) == (RunStatus.ERROR, reason, text)
    assert run.output is None


def test_a_run_past_its_deadline_times_out_without_waiting_for_the_check() -> None:
    run = runner_with(ScriptedCheck()).run(job(timeout=0.3, sleep_seconds=3))
    assert (run.status, run.error_reason) == (RunStatus.TIMEOUT, ErrorReason.UNREACHABLE)
    assert run.duration < timedelta(seconds=2)
    assert run.error_message == "did not finish within its timeout of 0.3s"


def test_same_check_and_target_never_run_twice_at_once() -> None:
    check = ScriptedCheck()
    runner = runner_with(check)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(runner.run(job(sleep_seconds=0.5))))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in results) == [RunStatus.OK] + [RunStatus.SKIPPED] * 3
    assert check.max_running["api"] == 1


def test_a_timed_out_run_still_blocks_its_successor_until_it_really_ends() -> None:
    check = ScriptedCheck()
    runner = runner_with(check)
    assert runner.run(job(timeout=0.2, sleep_seconds=1.0)).status is RunStatus.TIMEOUT
    assert runner.run(job()).status is RunStatus.SKIPPED
    assert check.max_running["api"] == 1


def test_different_targets_run_in_parallel() -> None:
    check = ScriptedCheck()
    runner = runner_with(check)
    threads = [
        threading.Thread(target=runner.run, args=(job(name, sleep_seconds=0.3),)) for name in "abc"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert check.max_running_overall == 3


def test_abandon_makes_waiting_runs_return_at_once() -> None:
    runner = runner_with(ScriptedCheck())
    results = []
    worker = threading.Thread(
        target=lambda: results.append(runner.run(job(timeout=30, sleep_seconds=10)))
    )
    worker.start()
    threading.Event().wait(0.2)
    runner.abandon_running()
    worker.join(timeout=2)
    assert not worker.is_alive()
    assert results[0].status is RunStatus.SKIPPED
