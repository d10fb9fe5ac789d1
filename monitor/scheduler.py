"""APScheduler 3 wiring: one job per (check, target), with first runs derived from the store.

A restart neither rescans everything at once nor forgets when things last ran: a job's
first run is its last run plus its interval; jobs that never ran, or are overdue, are
spread evenly over a short window instead of all starting together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.clock import Clock, SystemClock
from monitor.jobs import ScheduledCheck
from monitor.model import CheckKind
from monitor.runner import CheckJob

log = structlog.get_logger("apivigil.scheduler")

HEARTBEAT_SECONDS = 5.0

# (checks, last start per (check, target), now, spread) -> first run per job id
FirstRunPlanner = Callable[
    [Sequence[ScheduledCheck], Mapping[tuple[CheckKind, str], datetime], datetime, timedelta],
    dict[str, datetime],
]


def first_runs(
    checks: Sequence[ScheduledCheck],
    last_started: Mapping[tuple[CheckKind, str], datetime],
    now: datetime,
    spread: timedelta,
) -> dict[str, datetime]:
    """When each check should first run after (re)start. Pure.

    A check that ran before runs again at last start + interval. One that never ran, or
    whose next run is already past, is placed evenly over min(spread, interval) from now.
    """
    result: dict[str, datetime] = {}
    waiting: list[ScheduledCheck] = []
    for check in checks:
        last = last_started.get(check.job.key)
        due = last + check.interval if last is not None else None
        if due is not None and due > now:
            result[check.job_id] = due
        else:
            waiting.append(check)
    waiting.sort(key=lambda c: c.job_id)
    for index, check in enumerate(waiting):
        window = min(spread, check.interval)
        result[check.job_id] = now + window * (index / max(len(waiting), 1))
    return result


class CheckScheduler:
    """Owns the APScheduler instance; `on_due` is called in a bounded worker pool."""

    def __init__(
        self,
        on_due: Callable[[CheckJob], None],
        workers: int,
        misfire_grace: timedelta,
        initial_spread: timedelta,
        clock: Clock | None = None,
        first_run_planner: FirstRunPlanner = first_runs,
        overdue_after: timedelta = timedelta(minutes=1),
    ) -> None:
        self._on_due = on_due
        self._misfire_grace = misfire_grace
        self._overdue_after = overdue_after
        # job id -> monotonic time by which it must have started; jobs under way are exempt
        self._due_by: dict[str, float] = {}
        self._running: set[str] = set()
        self._plan_first_runs = first_run_planner
        self._clock = clock or SystemClock()
        self._initial_spread = initial_spread
        self._lock = threading.Lock()
        self._planned: dict[str, ScheduledCheck] = {}
        self._last_heartbeat = self._clock.monotonic()
        self._scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(max_workers=workers),
                "heartbeat": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(misfire_grace.total_seconds()),
            },
            timezone=UTC,
        )

    def start(
        self,
        checks: Sequence[ScheduledCheck],
        last_started: Mapping[tuple[CheckKind, str], datetime],
    ) -> None:
        self._scheduler.add_job(
            self._beat,
            IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=UTC),
            id="apivigil:heartbeat",
            executor="heartbeat",
        )
        self.reconcile(checks, last_started)
        self._scheduler.start()

    def _beat(self) -> None:
        self._last_heartbeat = self._clock.monotonic()

    def alive(self) -> bool:
        """True while the scheduler loop runs and its heartbeat is fresh."""
        fresh = self._clock.monotonic() - self._last_heartbeat < HEARTBEAT_SECONDS * 4
        return bool(self._scheduler.running) and fresh

    def stalled(self) -> str | None:
        """Why runs are not starting, or None: a check that is not running and has not
        started within its interval, jitter, misfire grace and `overdue_after` (APScheduler
        has skipped it, e.g. because every worker is stuck). A run under way is bounded by
        its own timeout and is not a scheduler stall."""
        now = self._clock.monotonic()
        with self._lock:
            late = [
                now - due
                for job_id, due in self._due_by.items()
                if due < now and job_id not in self._running
            ]
        if not late:
            return None
        return f"scheduler: {len(late)} check(s) overdue, the longest by {max(late):.0f} s"

    def _slack(self, check: ScheduledCheck) -> float:
        return (check.jitter + self._misfire_grace + self._overdue_after).total_seconds()

    def _run(self, check: ScheduledCheck) -> None:
        started = self._clock.monotonic()
        with self._lock:
            self._running.add(check.job_id)
        try:
            self._on_due(check.job)
        finally:
            ended = self._clock.monotonic()
            with self._lock:
                self._running.discard(check.job_id)
                if check.job_id in self._due_by:  # not removed by a reload meanwhile
                    # the next start is on the interval grid, after this run has ended
                    interval = check.interval.total_seconds()
                    late = ended > started + interval
                    next_start = (ended if late else started) + interval
                    self._due_by[check.job_id] = next_start + self._slack(check)

    def reconcile(
        self,
        checks: Sequence[ScheduledCheck],
        last_started: Mapping[tuple[CheckKind, str], datetime],
    ) -> None:
        """Make the scheduled jobs exactly `checks`; unchanged jobs keep their timing."""
        wanted = {check.job_id: check for check in checks}
        with self._lock:
            for job_id in set(self._planned) - set(wanted):
                self._scheduler.remove_job(job_id)
                del self._planned[job_id]
                self._due_by.pop(job_id, None)
            changed = [c for job_id, c in wanted.items() if self._planned.get(job_id) != c]
            starts = self._plan_first_runs(
                changed, last_started, self._clock.now(), self._initial_spread
            )
            now, monotonic = self._clock.now(), self._clock.monotonic()
            for check in changed:
                first = (starts[check.job_id] - now).total_seconds()
                self._due_by[check.job_id] = monotonic + max(first, 0.0) + self._slack(check)
                self._scheduler.add_job(
                    self._run,
                    IntervalTrigger(
                        seconds=check.interval.total_seconds(),
                        start_date=starts[check.job_id],
                        jitter=int(check.jitter.total_seconds()) or None,
                        timezone=UTC,
                    ),
                    args=[check],
                    # explicit: a start a few ms in the past must run now, not one interval later
                    next_run_time=starts[check.job_id],
                    id=check.job_id,
                    name=check.job_id,
                    replace_existing=True,
                )
                self._planned[check.job_id] = check
        log.info("schedule updated", jobs=len(wanted), changed=len(changed))

    def next_run_times(self) -> dict[str, datetime | None]:
        return {
            job.id: job.next_run_time
            for job in self._scheduler.get_jobs()
            if job.id in self._planned
        }

    def shutdown(self) -> None:
        """Stop starting new runs; running ones continue (the daemon bounds the wait)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
