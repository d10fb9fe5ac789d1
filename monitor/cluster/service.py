"""`apivigil worker`: a Dramatiq worker in this process that runs check messages and writes
results to the shared store; SIGTERM finishes running checks (bounded), SIGHUP reloads.

A message still unacknowledged when a worker dies (kill -9, a lost host) is delivered
again: by Redis once the worker's heartbeat is older than `worker.heartbeat_timeout`, by
RabbitMQ as soon as its connection drops.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import dramatiq
import structlog

from monitor.api import ApiServer, Probes
from monitor.clock import Clock, SystemClock
from monitor.cluster.broker import CheckMessage, CheckQueue
from monitor.cluster.politeness import HostLimiter, RedisHostLimiter, UnlimitedHosts
from monitor.cluster.role import Role
from monitor.cluster.worker import CheckExecutor
from monitor.runner import CheckJob, Runner
from monitor.serving import serve_api, serve_until_signalled, settings_for_reload
from monitor.settings import Settings
from monitor.store.interface import Store

log = structlog.get_logger("apivigil.worker")


class WorkerService:
    def __init__(
        self,
        settings: Settings,
        config_path: Path | None,
        store: Store,
        threads: int | None = None,
        listen: tuple[str, int] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.store = store
        self._threads = threads or settings.cluster.worker.threads
        self._listen = listen
        self._clock = clock or SystemClock()
        self._stop = threading.Event()
        self._limiter = _limiter(settings)
        self._queue = CheckQueue(settings.cluster, handler=self._on_message)
        self._executor = CheckExecutor(
            settings,
            store,
            Runner(clock=self._clock, history=store, egress=settings.egress.policy()),
            self._limiter,
            self._defer,
            self._clock,
        )
        self._worker: dramatiq.Worker | None = None
        self._api: ApiServer | None = None

    def start(self) -> None:
        if self._listen is not None:
            self._api = serve_api(
                self.settings,
                self.store,
                Probes(
                    scheduler_alive=self.alive,
                    store=lambda: self.store,
                    role=_worker_role,
                    stalls=self._stalls,
                ),
                address=self._listen,
                clock=self._clock,
            )
        broker = self._queue.broker
        broker.emit_after("process_boot")  # starts the time-limit watchdog
        self._worker = dramatiq.Worker(
            broker, queues={self._queue.queue_name}, worker_threads=self._threads
        )
        self._worker.start()
        log.info(
            "apivigil worker started",
            threads=self._threads,
            queue=self._queue.queue_name,
            targets=len(self.settings.targets),
        )

    def alive(self) -> bool:
        return self._worker is not None and not self._stop.is_set()

    def _stalls(self) -> list[str]:
        stalled = self._executor.stalled()
        return [] if stalled is None else [stalled]

    def _on_message(self, check: str, target: str, slot_at: str, enqueued_at: str) -> None:
        try:
            message = CheckMessage.from_args(check, target, slot_at, enqueued_at)
        except ValueError as error:
            log.error("unreadable check message dropped", error=str(error))
            return
        self._executor.handle(message)

    def _defer(self, message: CheckMessage, job: CheckJob, delay: timedelta) -> None:
        self._queue.send(message, job, delay)

    def reload(self) -> bool:
        new = settings_for_reload(self.config_path, log)
        if new is None:
            return False
        self.settings = new
        self._executor.reconfigure(new)
        log.info("config reloaded", targets=len(new.targets))
        return True

    def stop(self) -> None:
        """Let running checks finish within the grace period; unfinished messages stay
        unacknowledged and are delivered again."""
        self._stop.set()
        grace_ms = int(self.settings.shutdown_grace.total_seconds() * 1000)
        if self._worker is not None:
            self._worker.stop(timeout=grace_ms)
        self._queue.close()
        if self._api is not None:
            self._api.stop()
        self.store.close()
        log.info("apivigil worker stopped")

    def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT; SIGHUP reloads. Must be called from the main thread."""
        serve_until_signalled(self.start, self.stop, self.reload, self._stop)


def _worker_role() -> Role:
    return Role.WORKER


def _limiter(settings: Settings) -> HostLimiter:
    cluster = settings.cluster
    url = cluster.politeness_redis_url
    if cluster.politeness.per_host is None or url is None:
        return UnlimitedHosts()
    return RedisHostLimiter.from_url(url, cluster.namespace, cluster.politeness.per_host)
