"""One-off scans: many endpoints at once, in threads or forked workers, with bad ones mixed in."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from checks.cert_expiry.params import CertExpiryParams
from checks.egress import EgressPolicy
from monitor.fanout import auto_processes, run_in_processes
from monitor.model import (
    CheckKind,
    CheckOutput,
    CheckRun,
    ErrorReason,
    Finding,
    RunStatus,
    Severity,
    Target,
)
from monitor.runner import CheckJob
from monitor.scan import exit_code, run_scan
from tests.support.chains import Chain, ServeFactory
from tests.support.hostile_servers import GarbageServer, Tarpit


def cert_job(name: str, url: str, **params: object) -> CheckJob:
    return CheckJob(
        CheckKind.CERT_EXPIRY, Target(name, url), CertExpiryParams(**params), timedelta(seconds=10)
    )


@pytest.mark.integration
def test_many_endpoints_with_hostile_ones_mixed_in_are_each_judged(
    serve: ServeFactory, chain: Chain, tarpit: Tarpit, garbage_server: GarbageServer
) -> None:
    leaves = {f"ep{i:02d}": chain.leaf(f"ep{i:02d}.test", days_left=10 + i) for i in range(30)}
    jobs = [cert_job(name, serve(leaf).url) for name, leaf in leaves.items()]
    jobs.append(cert_job("pit", f"127.0.0.1:{tarpit.port}", connect_timeout=timedelta(seconds=1)))
    jobs.append(cert_job("junk", f"127.0.0.1:{garbage_server.port}"))

    runs = {run.target: run for run in run_scan(jobs, concurrency=16, egress=EgressPolicy())}

    assert (runs["pit"].status, runs["pit"].error_reason) == (
        RunStatus.ERROR,
        ErrorReason.UNREACHABLE,
    )
    assert runs["junk"].error_reason is ErrorReason.BAD_INPUT
    for name, leaf in leaves.items():
        run = runs[name]
        assert run.status is RunStatus.OK, run.error_message
        leaf_not_after = [
            o.value
            for o in run.output.observations
            if o.name == "cert_not_after_timestamp_seconds" and o.labels["position"] == "leaf"
        ]
        assert leaf_not_after == [leaf.certificate.not_valid_after_utc.timestamp()]


@pytest.mark.integration
def test_forked_workers_give_the_same_runs_as_threads(serve: ServeFactory, chain: Chain) -> None:
    jobs = [
        cert_job(f"t{i}", serve(chain.leaf(f"t{i}.test", days_left=5 + i)).url) for i in range(12)
    ]

    def summary(runs: list[CheckRun]) -> list[tuple[str, str, list[str]]]:
        return [
            (
                r.target,
                r.status.value,
                [f.fingerprint(r.check, r.target) for f in r.output.findings],
            )
            for r in runs
        ]

    threaded = run_scan(jobs, concurrency=4, egress=EgressPolicy())
    seen: list[str] = []
    forked = run_scan(
        jobs,
        concurrency=4,
        processes=3,
        on_done=lambda run: seen.append(run.target),
        egress=EgressPolicy(),
    )
    assert summary(forked) == summary(threaded)
    assert sorted(seen) == sorted(job.target.name for job in jobs)


@pytest.mark.integration
def test_a_dead_worker_leaves_its_unfinished_jobs_as_bug_runs() -> None:
    jobs = [cert_job(f"t{i}", f"127.0.0.1:{i + 1}") for i in range(6)]

    def crash_after_one(
        shard: Sequence[CheckJob], _threads: int, emit: Callable[[CheckRun], None]
    ) -> None:
        job = shard[0]
        emit(CheckRun("x", job.check, job.target.name, *_now_pair(), RunStatus.SKIPPED))
        time.sleep(0.5)  # let the queue's feeder thread send it
        os._exit(3)

    runs = run_in_processes(jobs, 2, 4, crash_after_one, lambda _run: None)
    assert len(runs) == 6
    lost = [r for r in runs if r.status is RunStatus.ERROR]
    assert len(lost) == 4
    assert {r.error_reason for r in lost} == {ErrorReason.BUG}
    assert all("exit code 3" in (r.error_message or "") for r in lost)


def _now_pair() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now, now


@pytest.mark.unit
def test_small_scans_stay_in_one_process() -> None:
    assert auto_processes(50) == 1
    assert auto_processes(10_000) == (os.cpu_count() or 1)


@pytest.mark.unit
def test_exit_code_prefers_findings_over_errors() -> None:
    now = datetime.now(UTC)
    ok = CheckRun(
        "a",
        CheckKind.CERT_EXPIRY,
        "a",
        now,
        now,
        RunStatus.OK,
        output=CheckOutput(findings=(Finding("R", Severity.HIGH, "t", "s", "e", "r"),)),
    )
    failed = CheckRun(
        "b", CheckKind.CERT_EXPIRY, "b", now, now, RunStatus.ERROR, ErrorReason.UNREACHABLE, "x"
    )
    assert exit_code([ok, failed], Severity.HIGH) == 1
    assert exit_code([ok, failed], Severity.CRITICAL) == 3
    assert exit_code([ok], Severity.CRITICAL) == 0
