"""What the leader does: enqueue the slots missed while no leader ran, then keep an
APScheduler whose jobs only enqueue.

APScheduler 3 must never share a job store between processes, so each term builds a fresh
in-memory one from the config. Enqueueing is gated on the election: a leader that could
not confirm its lock enqueues nothing, even before its scheduler has been shut down.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from monitor.clock import Clock
from monitor.cluster.broker import CheckMessage
from monitor.cluster.slots import SlotGrid, catch_up, next_slots
from monitor.jobs import ScheduledCheck, scheduled_checks
from monitor.model import CheckKind
from monitor.runner import CheckJob
from monitor.scheduler import CheckScheduler
from monitor.settings import Settings
from monitor.store.interface import Store

log = structlog.get_logger("apivigil.leader")

SEND_ATTEMPTS = 3
SEND_RETRY_SECONDS = 0.5
ENQUEUE_THREADS = 4


class Sender(Protocol):
    def send(self, message: CheckMessage, job: CheckJob, delay: timedelta | None = None) -> None:
        """Enqueue one execution; raises when the broker cannot be reached."""
        ...


def cluster_checks(settings: Settings) -> list[ScheduledCheck]:
    """The configured jobs, without jitter: the slot grid spreads them instead."""
    return [dataclasses.replace(check, jitter=timedelta(0)) for check in scheduled_checks(settings)]


class LeaderSchedule:
    """One term of leadership: `begin` when elected, `end` when deposed."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        sender: Sender,
        is_leader: Callable[[], bool],
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._store = store
        self._sender = sender
        self._is_leader = is_leader
        self._clock = clock
        self._grids: dict[tuple[CheckKind, str], SlotGrid] = {}
        self._grids_lock = threading.Lock()
        self._scheduler: CheckScheduler | None = None
        self._caught_up_to = self._clock.now()

    def begin(self) -> None:
        """Catch up, then start the scheduler at each job's next slot. Raises StoreError
        when the last slots cannot be read."""
        checks = cluster_checks(self._settings)
        self._set_grids(checks)
        caught_up = self._catch_up(checks)
        scheduler = self._settings.scheduler
        self._scheduler = CheckScheduler(
            self._on_due,
            workers=ENQUEUE_THREADS,
            misfire_grace=scheduler.misfire_grace,
            initial_spread=scheduler.initial_spread,
            clock=self._clock,
            first_run_planner=self._after_catch_up,
        )
        self._scheduler.start(checks, {})
        log.info("leading: scheduling", jobs=len(checks), caught_up=caught_up)

    def reconcile(self, settings: Settings) -> None:
        """Adopt a reloaded config: new jobs get their current slot now, changed ones
        continue at their next slot."""
        self._settings = settings
        checks = cluster_checks(settings)
        known = set(self._grids)
        self._set_grids(checks)
        self._catch_up([check for check in checks if check.job.key not in known])
        if self._scheduler is not None:
            self._scheduler.reconcile(checks, {})

    def _catch_up(self, checks: Sequence[ScheduledCheck]) -> int:
        now = self._clock.now()
        scheduler = self._settings.scheduler
        due = catch_up(
            checks,
            self._store.last_slots() if checks else {},
            now,
            scheduler.misfire_grace,
            scheduler.initial_spread,
        )
        for item in due:
            self._enqueue(item.check.job, item.at, item.delay)
        self._caught_up_to = now
        return len(due)

    def _after_catch_up(
        self,
        checks: Sequence[ScheduledCheck],
        last_started: Mapping[tuple[CheckKind, str], datetime],
        _now: datetime,
        spread: timedelta,
    ) -> dict[str, datetime]:
        # from the catch-up's `now`, so no slot falls between the two
        return next_slots(checks, last_started, self._caught_up_to, spread)

    def end(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown()
            self._scheduler = None

    def alive(self) -> bool:
        return self._scheduler is not None and self._scheduler.alive()

    def _set_grids(self, checks: Sequence[ScheduledCheck]) -> None:
        with self._grids_lock:
            self._grids = {check.job.key: SlotGrid.of_check(check) for check in checks}

    def _on_due(self, job: CheckJob) -> None:
        with self._grids_lock:
            grid = self._grids.get(job.key)
        if grid is not None:
            self._enqueue(job, grid.at_or_before(self._clock.now()), None)

    def _enqueue(self, job: CheckJob, slot_at: datetime, delay: timedelta | None) -> None:
        for attempt in range(1, SEND_ATTEMPTS + 1):
            if not self._is_leader():
                log.warning(
                    "not leading any more: slot left to the next leader",
                    check=str(job.check),
                    target=job.target.name,
                    slot=slot_at.isoformat(),
                )
                return
            message = CheckMessage(job.check, job.target.name, slot_at, self._clock.now())
            try:
                self._sender.send(message, job, delay)
                return
            except Exception as error:  # the broker client's errors have no common base
                log.error(
                    "could not enqueue a check",
                    check=str(job.check),
                    target=job.target.name,
                    slot=slot_at.isoformat(),
                    attempt=attempt,
                    error=str(error),
                )
                time.sleep(SEND_RETRY_SECONDS * attempt)
