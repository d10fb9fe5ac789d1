"""What `apivigil worker` does with one check message: run it once, record it once.

A message may arrive twice (a redelivery after a worker died, a slot re-enqueued by a new
leader). A slot already stored is dropped before running; a slot already running in this
process is dropped too; and the store itself records a slot key at most once, so findings
and transitions are never applied twice.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum

import structlog

from monitor.clock import Clock
from monitor.cluster.broker import TIME_LIMIT_MARGIN, CheckMessage
from monitor.cluster.leader import cluster_checks
from monitor.cluster.politeness import HostLimiter, HostPlace
from monitor.model import CheckKind, parse_endpoint
from monitor.recorder import RunRecorder
from monitor.runner import CheckJob, Runner
from monitor.settings import Settings
from monitor.store.interface import HysteresisPolicy, Store

log = structlog.get_logger("apivigil.worker")

POLITENESS_WAIT_SECONDS = 1.0
POLITENESS_POLL_SECONDS = 0.1
DEFER_SECONDS = (1.0, 3.0)  # a message for a busy host comes back after this long


class Outcome(StrEnum):
    RECORDED = "recorded"
    ALREADY_RECORDED = "already recorded"  # a redelivery of a finished slot
    ALREADY_RUNNING = "already running"  # the same slot runs in this process right now
    DEFERRED = "deferred"  # its host is at its limit, or an earlier slot of the same
    # (check, target) runs in this process: sent again with a delay
    UNKNOWN_JOB = "unknown job"  # not in this worker's config


Defer = Callable[[CheckMessage, CheckJob, timedelta], None]


class CheckExecutor:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        runner: Runner,
        limiter: HostLimiter,
        defer: Defer,
        clock: Clock,
    ) -> None:
        self._store = store
        self._runner = runner
        self._limiter = limiter
        self._defer = defer
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[tuple[CheckKind, str], str] = {}  # job -> slot key running here
        self._settings = settings
        self._jobs: dict[tuple[CheckKind, str], CheckJob] = {}
        self._recorder = RunRecorder(
            store,
            self._policy,
            clock,
            settings.health.recorder_stalled_after.total_seconds(),
            logger=log,
        )
        self.reconfigure(settings)

    def _policy(self) -> HysteresisPolicy:
        with self._lock:
            hysteresis = self._settings.hysteresis
        return HysteresisPolicy(
            open_after=hysteresis.open_after, resolve_after=hysteresis.resolve_after
        )

    def reconfigure(self, settings: Settings) -> None:
        """The jobs, limits and egress policy of `settings` (at start and on SIGHUP)."""
        jobs = {check.job.key: check.job for check in cluster_checks(settings)}
        self._runner.replace_egress(settings.egress.policy())
        with self._lock:
            self._settings = settings
            self._jobs = jobs

    def handle(self, message: CheckMessage) -> Outcome:
        """Run and record one slot. Raises StoreError (the broker retries the message) or
        redis.RedisError from the politeness limit."""
        slot = message.slot
        bound = log.bind(check=str(message.check), target=message.target, slot=slot.key)
        with self._lock:
            job = self._jobs.get((message.check, message.target))
            settings = self._settings
            running = self._running.get((message.check, message.target))
            if job is not None and running is None:
                self._running[job.key] = slot.key
        if job is None:
            bound.warning("no such check in this worker's config; message dropped")
            return Outcome.UNKNOWN_JOB
        if running == slot.key:
            return Outcome.ALREADY_RUNNING
        if running is not None:  # a backlog: one slot of a (check, target) at a time
            self._defer(message, job, timedelta(seconds=random.uniform(*DEFER_SECONDS)))  # noqa: S311
            return Outcome.DEFERRED
        try:
            with self._recorder.store_call():
                recorded = self._store.slot_recorded(slot.key)
            if recorded:
                bound.info("slot already recorded; redelivery dropped")
                return Outcome.ALREADY_RECORDED
            lease = settings.cluster.limits(job.check).time_limit or job.timeout
            place = self._take_place(job, lease + TIME_LIMIT_MARGIN)
            if place is None:
                self._defer(message, job, timedelta(seconds=random.uniform(*DEFER_SECONDS)))  # noqa: S311
                return Outcome.DEFERRED
            bound.info("check started", pid=os.getpid())
            try:
                run = self._runner.run(job)
            finally:
                self._give_back(place)
            self._recorder.record(
                run,
                slot,
                slot=slot.key,
                lag_seconds=round((run.started_at - message.slot_at).total_seconds(), 3),
            )
        finally:
            with self._lock:
                del self._running[job.key]
        return Outcome.RECORDED

    def stalled(self) -> str | None:
        """Why this worker is stuck (for /healthz), or None: a store call under way for
        longer than `health.recorder_stalled_after` (a store that refuses quickly is an
        outage: the broker retries the message, and /readyz says so)."""
        with self._lock:
            limit = self._settings.health.recorder_stalled_after.total_seconds()
        waited = self._recorder.waiting()
        if waited is not None and waited > limit:
            return f"worker: a store call has been waiting {waited:.0f} s"
        return None

    def _give_back(self, place: HostPlace) -> None:
        if not place.token:
            return
        try:
            self._limiter.release(place)
        except Exception as error:  # the lease ends by itself; the run still counts
            log.warning("could not release a politeness place", host=place.host, error=str(error))

    def _take_place(self, job: CheckJob, lease: timedelta) -> HostPlace | None:
        host = parse_endpoint(job.target.url).host if job.target.url else None
        if host is None:
            return HostPlace("", "")
        deadline = time.monotonic() + POLITENESS_WAIT_SECONDS
        while True:
            place = self._limiter.try_acquire(host, lease)
            if place is not None or time.monotonic() >= deadline:
                return place
            time.sleep(POLITENESS_POLL_SECONDS)
