"""One-off scans (`apivigil scan`): run jobs concurrently, then report as JSON or a table."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any

from checks.controls import controls_document
from checks.egress import EgressPolicy
from monitor import __version__
from monitor.fanout import run_in_processes
from monitor.model import CheckKind, CheckRun, RunStatus, Severity
from monitor.runner import CheckJob, Runner

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_COULD_NOT_RUN = 3
EXIT_PUSH_FAILED = 4  # `scan --push-required` and the Pushgateway push failed


class ScanFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


def run_scan(
    jobs: Sequence[CheckJob],
    concurrency: int,
    on_done: Callable[[CheckRun], None] | None = None,
    processes: int = 1,
    *,
    egress: EgressPolicy,
) -> list[CheckRun]:
    """Run every job, at most `concurrency` at once over `processes` processes, with the
    `egress` policy (from the config; the default policy for ad-hoc URLs).

    Runs come back sorted by target, then check. With processes > 1 the caller must not
    have started threads of its own (the workers are forked).
    """
    notify = on_done or (lambda _run: None)
    run_threads = partial(_run_threads, egress=egress)
    if processes > 1 and len(jobs) > 1:
        runs = run_in_processes(jobs, min(processes, len(jobs)), concurrency, run_threads, notify)
    else:
        runs = run_threads(jobs, concurrency, notify)
    return sorted(runs, key=lambda run: (run.target, run.check))


def _run_threads(
    jobs: Sequence[CheckJob],
    concurrency: int,
    on_done: Callable[[CheckRun], None],
    *,
    egress: EgressPolicy,
) -> list[CheckRun]:
    runner = Runner(egress=egress)
    runs: list[CheckRun] = []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs) or 1))) as pool:
        futures = [pool.submit(runner.run, job) for job in jobs]
        for future in as_completed(futures):
            run = future.result()
            runs.append(run)
            on_done(run)
    return runs


def exit_code(runs: Sequence[CheckRun], fail_on: Severity) -> int:
    """1 for a finding at or above `fail_on`; else 3 when a check could not run; else 0."""
    if any(
        finding.severity.at_least(fail_on)
        for run in runs
        if run.output is not None
        for finding in run.output.findings
    ):
        return EXIT_FINDINGS
    if any(run.status is not RunStatus.OK for run in runs):
        return EXIT_COULD_NOT_RUN
    return EXIT_CLEAN


def scan_document(runs: Sequence[CheckRun], now: datetime | None = None) -> dict[str, Any]:
    """The JSON shape of `apivigil scan --format json` (DESIGN §8)."""
    return {
        "apivigil_version": __version__,
        "generated_at": (now or datetime.now(UTC)).isoformat(),
        "runs": [_run_document(run) for run in runs],
    }


def scan_sarif(
    runs: Sequence[CheckRun], urls: Mapping[str, str | None], now: datetime | None = None
) -> dict[str, Any]:
    """`apivigil scan --format sarif`: SARIF 2.1.0, each target's URL as the location."""
    from monitor.report.sarif import sarif_from_scan  # noqa: PLC0415 - only when asked

    return sarif_from_scan(runs, urls, now)


def _verdicts(run: CheckRun) -> dict[str, Any]:
    """tls_posture's grade (the reported one, this scan's, the last complete) and profile
    compliance, from the run's snapshot."""
    snapshot = run.output.snapshot if run.output else None
    if run.check is not CheckKind.TLS_POSTURE or not snapshot or "scan_grade" not in snapshot:
        return {}
    return {
        "grade": snapshot["grade"],
        "scan_grade": snapshot["scan_grade"],
        "last_complete_grade": snapshot["last_complete_grade"],
        "profile_compliant": snapshot["profile_compliant"],
    }


def _run_document(run: CheckRun) -> dict[str, Any]:
    output = run.output
    return _verdicts(run) | {
        "check": run.check.value,
        "target": run.target,
        "status": run.status.value,
        "started_at": run.started_at.isoformat(),
        "duration_seconds": round(run.duration.total_seconds(), 3),
        "error": (
            {
                "reason": run.error_reason.value if run.error_reason else None,
                "message": run.error_message,
            }
            if run.status is not RunStatus.OK
            else None
        ),
        "observations": [
            {"name": o.name, "value": o.value, "labels": dict(o.labels)}
            for o in (output.observations if output else ())
        ],
        "findings": [
            {
                "rule_id": f.rule_id,
                "severity": f.severity.value,
                "title": f.title,
                "subject": f.subject,
                "evidence": f.evidence,
                "remediation": f.remediation,
                "controls": controls_document(f.rule_id),
                "fingerprint": f.fingerprint(run.check, run.target),
            }
            for f in sorted(output.findings if output else (), key=lambda f: -f.severity.rank)
        ],
    }
