"""The daemon's retention pass: every `retention.interval`, one time-boxed prune of the store
by the instance that leads (a single instance always does), on its own thread. Each batch is
its own short transaction, so checks being recorded and scrapes wait at most one batch."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from monitor.clock import Clock
from monitor.settings import RetentionSettings
from monitor.store.interface import Store, StoreError

log = structlog.get_logger("apivigil.retention")


class Pruner:
    def __init__(
        self,
        store: Store,
        settings: Callable[[], RetentionSettings],
        clock: Clock,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._leading = leading
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="apivigil-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._settings().budget.total_seconds() + 5)

    def step(self) -> None:
        """One pass, if this instance leads; a store failure is logged and retried next time."""
        if not self._leading():
            return
        retention = self._settings()
        try:
            result = self._store.prune(
                retention.policy(), self._clock.now(), retention.budget.total_seconds()
            )
        except StoreError as error:
            log.warning("retention pass failed; retrying at the next interval", error=str(error))
            return
        if result.removed or result.rolled_up_days:
            log.info(
                "retention pass",
                removed=result.removed,
                rolled_up_days=len(result.rolled_up_days),
                complete=result.complete,
            )

    def _loop(self) -> None:
        # a first pass at start: a restarted daemon neither waits an interval to prune nor
        # leaves the store's size unmeasured (apivigil_store_*) until then
        while not self._stop.is_set():
            self.step()
            if self._stop.wait(self._settings().interval.total_seconds()):
                return
