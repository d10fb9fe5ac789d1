"""Runs the store could not take (an outage), held in order in memory, bounded, and written
when the store answers again."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from monitor.model import CheckRun
from monitor.store.interface import StoreError, StoreUnavailable

DEFAULT_LIMIT = 10_000


class PendingRuns:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._runs: deque[CheckRun] = deque()
        self._limit = limit
        self._lock = threading.Lock()
        self.dropped = 0  # oldest runs given up because the outage outlasted the limit

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    def hold(self, run: CheckRun) -> None:
        with self._lock:
            self._runs.append(run)
            while len(self._runs) > self._limit:
                self._runs.popleft()
                self.dropped += 1

    def write(
        self,
        record: Callable[[CheckRun], None],
        rejected: Callable[[CheckRun, StoreError], None],
    ) -> list[CheckRun]:
        """Record held runs oldest first; stop while the store is unavailable (the rest stay
        held). A run the store refuses for another reason (e.g. it was written after all and
        only the answer was lost) is passed to `rejected` and dropped, so it cannot block the
        runs behind it. The caller serialises writes, so runs of one check stay in order."""
        written: list[CheckRun] = []
        while True:
            with self._lock:
                if not self._runs:
                    return written
                run = self._runs[0]
            try:
                record(run)
            except StoreUnavailable:
                return written
            except StoreError as error:
                with self._lock:
                    self._runs.popleft()
                rejected(run, error)
                continue
            with self._lock:
                self._runs.popleft()
            written.append(run)
