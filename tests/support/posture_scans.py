"""Running http_posture in tests and reading its output: a one-off run (no store, as
`apivigil scan`), runs through the real runner into a store (the daemon's path), and the
findings, scores and grades of an output."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from checks.egress import EgressPolicy
from checks.http_posture.check import HttpPostureCheck
from checks.http_posture.params import HttpPostureParams
from checks.interface import CheckContext
from monitor.model import CheckKind, CheckOutput, CheckRun, Finding, RunStatus, Target
from monitor.runner import CheckJob, Runner
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.clocks import ManualClock

IMMEDIATE = HysteresisPolicy(open_after=1, resolve_after=1)


def run(url: str, **params: Any) -> CheckOutput:
    """One run on target "api" at `url` without a store, a minute's deadline."""
    context = CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() + 60, egress=EgressPolicy()
    )
    check = HttpPostureCheck()
    return check.run(Target(name="api", url=url), HttpPostureParams(**params), context)


def rules(output: CheckOutput) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in output.findings:
        found.setdefault(finding.rule_id, []).append(finding)
    return found


def scores(output: CheckOutput) -> dict[str, float]:
    """Profile -> exported score; a profile not graded this run is absent."""
    return {
        o.labels["profile"]: o.value for o in output.observations if o.name == "http_posture_score"
    }


def score(output: CheckOutput, profile: str) -> float:
    return scores(output)[profile]


def grade(output: CheckOutput, profile: str) -> str:
    return next(
        o.labels["grade"]
        for o in output.observations
        if o.name == "http_posture_grade_info" and o.labels["profile"] == profile
    )


class Runs:
    """Runs through the real runner, each recorded in `store` ten minutes after the last,
    with the store as the checks' history (as in the daemon)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
        self.runner = Runner(clock=self.clock, history=store, egress=EgressPolicy())

    def run(self, kind: CheckKind, target: Target, params: object) -> CheckRun:
        self.clock.current += timedelta(minutes=10)
        job = CheckJob(kind, target, params, timedelta(seconds=60))  # type: ignore[arg-type]
        run = self.runner.run(job)
        assert run.status is RunStatus.OK, run.error_message
        self.store.record(run, IMMEDIATE)
        return run
