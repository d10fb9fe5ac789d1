"""Delivering the outbox at least once: claim a due row (compare-and-set) just before sending
it, send it, record the outcome; retry with exponential backoff or the receiver's
Retry-After, up to a maximum age; permanent failures are kept for `apivigil alerts outbox`.

Each receiver has a lane of its own (threads of its own): a receiver that answers slowly
delays only its own rows. While a lane is busy its receiver's rows are not fetched again, so
the other receivers' rows are never crowded out of a batch."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import structlog

from alerts.codec import notification_from_json
from alerts.config import DispatcherConfig
from alerts.interface import Notifier, NotifierError, OutboxStore, TemplateFailed
from alerts.model import OutboxEntry, SkipKind, Skipped
from monitor.clock import Clock

log = structlog.get_logger("apivigil.alerts")

CLAIM_LEASE = timedelta(minutes=5)  # longer than any receiver's timeout


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class _Lane:
    """One receiver's threads, and how many of its rows are under way."""

    def __init__(self, receiver: str, workers: int) -> None:
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix=f"apivigil-notify-{receiver}")
        self.pending = 0


class Dispatcher:
    def __init__(
        self,
        store: OutboxStore,
        notifiers: Mapping[str, Notifier],
        config: DispatcherConfig,
        clock: Clock,
        on_skip: Callable[[Skipped], None] | None = None,
    ) -> None:
        self._store = store
        self._notifiers = dict(notifiers)
        self._config = config
        self._clock = clock
        self._on_skip = on_skip or (lambda skipped: None)
        self._lanes: dict[str, _Lane] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Wait for the rows under way (each bounded by its receiver's timeout), then
        release the receivers."""
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.pool.shutdown(wait=True)
        for notifier in self._notifiers.values():
            notifier.close()

    def deliver_due(self) -> DeliveryReport:
        """Send every due row once and wait for the outcomes."""
        outcomes = [future.result() for future in self.start_due()]
        return DeliveryReport(
            delivered=outcomes.count("delivered"),
            retried=outcomes.count("retried"),
            failed=outcomes.count("failed"),
        )

    def start_due(self) -> list[Future[str]]:
        """Hand every due row of a receiver whose lane is idle to that lane; returns at once."""
        with self._lock:
            busy = [name for name, lane in self._lanes.items() if lane.pending]
        due = self._store.outbox_due(self._clock.now(), self._config.batch_size, exclude=busy)
        futures: list[Future[str]] = []
        with self._lock:
            for entry in due:
                lane = self._lanes.get(entry.receiver)
                if lane is None:
                    lane = self._lanes[entry.receiver] = _Lane(entry.receiver, self._config.workers)
                lane.pending += 1
                futures.append(lane.pool.submit(self._in_lane, lane, entry))
        return futures

    def _in_lane(self, lane: _Lane, entry: OutboxEntry) -> str:
        try:
            return self._claim_and_deliver(entry)
        finally:
            with self._lock:
                lane.pending -= 1

    def _claim_and_deliver(self, entry: OutboxEntry) -> str:
        # Claimed at its turn, not with the batch: a slow receiver ahead of it in the queue
        # must not let its lease run out before it is even sent (another instance would then
        # send it too). A row another instance took, or delivered, since `due` is skipped.
        if not self._store.outbox_claim(entry.id, self._clock.now(), CLAIM_LEASE):
            return "skipped"
        return self._deliver(entry)

    def _deliver(self, entry: OutboxEntry) -> str:
        notifier = self._notifiers.get(entry.receiver)
        bound = log.bind(receiver=entry.receiver, dedup_key=entry.id, kind=entry.kind)
        if notifier is None:
            return self._fail(entry, f"receiver {entry.receiver!r} is no longer configured", True)
        try:
            notifier.send(notification_from_json(entry.payload))
        except NotifierError as error:
            if isinstance(error, TemplateFailed):
                bound.error("template failed: notification skipped", error=str(error))
                self._on_skip(Skipped(SkipKind.TEMPLATE, error.template, str(error)))
            bound.warning("notification not delivered", error=str(error), permanent=error.permanent)
            return self._fail(entry, str(error), error.permanent, error.retry_after)
        except Exception as error:  # a receiver bug must not stop the dispatcher
            bound.exception("receiver crashed")
            return self._fail(entry, f"{type(error).__name__}: {error}", False)
        self._store.outbox_delivered(entry.id, self._clock.now())
        bound.info("notification delivered", attempts=entry.attempts + 1)
        return "delivered"

    def _fail(
        self, entry: OutboxEntry, error: str, permanent: bool, retry_after: float | None = None
    ) -> str:
        now = self._clock.now()
        expired = now - entry.created_at >= self._config.max_age
        if expired and not permanent:
            error = f"{error} (gave up after {entry.attempts + 1} attempts: older than max_age)"
        final = permanent or expired
        delay = (
            # a receiver may ask for any delay; never longer than our own longest backoff
            timedelta(seconds=min(retry_after, self._config.max_backoff.total_seconds()))
            if retry_after is not None
            else self.backoff(entry.attempts)
        )
        self._store.outbox_failed(entry.id, error, final, now + delay)
        if final:
            log.error(
                "notification failed for good",
                receiver=entry.receiver,
                dedup_key=entry.id,
                error=error,
            )
        return "failed" if final else "retried"

    def backoff(self, attempts: int) -> timedelta:
        """initial * 2^attempts, capped, with ±20 % jitter so a backlog does not retry in step."""
        base = self._config.initial_backoff.total_seconds() * (2 ** min(attempts, 30))
        capped = min(base, self._config.max_backoff.total_seconds())
        return timedelta(seconds=capped * random.uniform(0.8, 1.2))  # noqa: S311 - not crypto
