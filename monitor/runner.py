"""Run one check on one target: the deadline, the in-flight guard, and the ONE place where
exceptions become typed error reasons."""

from __future__ import annotations

import threading
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from checks.egress import EgressPolicy
from checks.interface import (
    BadInput,
    CheckContext,
    CheckError,
    CheckHistory,
    CheckMisconfigured,
    CheckParams,
    TargetUnreachable,
)
from checks.registry import AnyCheck, create_check
from monitor.clock import Clock, SystemClock
from monitor.durations import format_duration
from monitor.logs import logger
from monitor.model import CheckKind, CheckOutput, CheckRun, ErrorReason, RunStatus, Target
from monitor.worker_threads import WorkerThreads

_POLL_SECONDS = 0.2
_ABANDONED = "abandoned at shutdown"


@dataclass(frozen=True, slots=True)
class CheckJob:
    check: CheckKind
    target: Target
    params: CheckParams
    timeout: timedelta

    @property
    def key(self) -> tuple[CheckKind, str]:
        return (self.check, self.target.name)


@dataclass(slots=True)
class _Outcome:
    output: CheckOutput | None = None
    error: BaseException | None = None
    trace: str = ""


class Runner:
    """Runs check jobs; the same (check, target) never runs twice at once, even past a timeout.

    Every run's context carries `egress`, the policy built from the settings of the process
    (daemon, worker or scan): no check reaches the network without it.
    """

    def __init__(
        self,
        checks: Mapping[CheckKind, AnyCheck] | None = None,
        clock: Clock | None = None,
        history: CheckHistory | None = None,
        *,
        egress: EgressPolicy,
    ) -> None:
        self._checks = dict(checks) if checks is not None else {}
        self._clock = clock or SystemClock()
        self._history = history
        self._egress = egress
        self._lock = threading.Lock()
        self._in_flight: set[tuple[CheckKind, str]] = set()
        self._abandon = threading.Event()
        self._threads = WorkerThreads("apivigil-check")

    def replace_egress(self, egress: EgressPolicy) -> None:
        """Runs started from now on use `egress` (a reloaded config's policy)."""
        self._egress = egress

    def abandon_running(self) -> None:
        """Make every waiting run return at once as skipped, and every later one without
        starting (used when shutting down)."""
        self._abandon.set()

    def _check(self, kind: CheckKind) -> AnyCheck:
        if kind not in self._checks:
            self._checks[kind] = create_check(kind)
        return self._checks[kind]

    def run(self, job: CheckJob) -> CheckRun:
        run_id = str(uuid.uuid4())
        started_at = self._clock.now()
        with self._lock:
            if self._abandon.is_set():
                return self._finish(job, run_id, started_at, RunStatus.SKIPPED, None, _ABANDONED)
            if job.key in self._in_flight:
                # a reason, unlike a skip at shutdown: the target still holds the last run,
                # so this one counts as failing (check_failing_after)
                return self._finish(
                    job,
                    run_id,
                    started_at,
                    RunStatus.SKIPPED,
                    ErrorReason.UNREACHABLE,
                    "still running from before",
                )
            self._in_flight.add(job.key)
        outcome = _Outcome()
        done = threading.Event()
        timeout = job.timeout.total_seconds()
        context = CheckContext(
            started_at=started_at,
            deadline=self._clock.monotonic() + timeout,
            egress=self._egress,
            history=self._history,
        )
        check = self._check(job.check)

        def execute() -> None:
            threading.current_thread().name = f"{job.check}:{job.target.name}"
            try:
                outcome.output = check.run(job.target, job.params, context)
            except BaseException as error:
                outcome.error = error
                outcome.trace = traceback.format_exc()
            finally:
                with self._lock:
                    self._in_flight.discard(job.key)
                done.set()

        self._threads.submit(execute)
        while not done.wait(min(_POLL_SECONDS, max(context.remaining(), 0.001))):
            if self._abandon.is_set():
                return self._finish(job, run_id, started_at, RunStatus.SKIPPED, None, _ABANDONED)
            if context.remaining() <= 0:
                message = f"did not finish within its timeout of {format_duration(job.timeout)}"
                return self._finish(
                    job, run_id, started_at, RunStatus.TIMEOUT, ErrorReason.UNREACHABLE, message
                )
        if outcome.error is None:
            return self._finish(job, run_id, started_at, RunStatus.OK, None, None, outcome.output)
        reason, message = self._classify(outcome.error)
        if reason is ErrorReason.BUG:
            logger("apivigil.runner").error(
                "check crashed",
                check=str(job.check),
                target=job.target.name,
                run_id=run_id,
                trace=outcome.trace,
            )
        return self._finish(job, run_id, started_at, RunStatus.ERROR, reason, message)

    @staticmethod
    def _classify(error: BaseException) -> tuple[ErrorReason, str]:
        match error:
            case TargetUnreachable():
                return ErrorReason.UNREACHABLE, str(error)
            case CheckMisconfigured():
                return ErrorReason.MISCONFIGURED, str(error)
            case BadInput():
                return ErrorReason.BAD_INPUT, str(error)
            case CheckError():
                return ErrorReason.BUG, f"unclassified check error: {error}"
            case _:
                return ErrorReason.BUG, f"{type(error).__name__}: {error}"

    def _finish(
        self,
        job: CheckJob,
        run_id: str,
        started_at: datetime,
        status: RunStatus,
        reason: ErrorReason | None,
        message: str | None,
        output: CheckOutput | None = None,
    ) -> CheckRun:
        return CheckRun(
            id=run_id,
            check=job.check,
            target=job.target.name,
            started_at=started_at,
            finished_at=max(self._clock.now(), started_at),
            status=status,
            error_reason=reason,
            error_message=message,
            output=output,
        )
