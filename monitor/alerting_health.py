"""What this process's alerting did lately, for /metrics. Kept in memory, not in the store,
so it is reported while the store is down: that is when alerting cannot work."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from alerts.model import SkipKind


@dataclass(frozen=True, slots=True)
class AlertingSnapshot:
    ticking: bool  # this process ticks the engine (a leader, or a single instance, with routes)
    tick_failures: int
    last_tick_at: datetime | None  # last good tick, or when ticking began; None if not ticking
    skipped: Mapping[SkipKind, int]
    configured_routes: int | None  # routes in the config, whether this process ticks or not


class AlertingHealth:
    """Thread-safe counters the alert loop and its dispatcher update."""

    def __init__(self, configured_routes: Callable[[], int] | None = None) -> None:
        self._configured_routes = configured_routes
        self._lock = threading.Lock()
        self._ticking = False
        self._tick_failures = 0
        self._last_tick_at: datetime | None = None
        self._skipped = dict.fromkeys(SkipKind, 0)

    def set_ticking(self, ticking: bool, now: datetime) -> None:
        """Whether this process is meant to tick from now on. Starting to tick starts the
        clock, so a process that never completes a tick looks as stale as one that stopped;
        a process that does not tick (a follower, no routes) reports no last tick at all."""
        with self._lock:
            if ticking and not self._ticking:
                self._last_tick_at = now
            self._ticking = ticking

    def tick_succeeded(self, now: datetime) -> None:
        with self._lock:
            self._last_tick_at = now

    def tick_failed(self) -> None:
        with self._lock:
            self._tick_failures += 1

    def skipped(self, kind: SkipKind) -> None:
        with self._lock:
            self._skipped[kind] += 1

    def snapshot(self) -> AlertingSnapshot:
        routes = self._configured_routes() if self._configured_routes is not None else None
        with self._lock:
            return AlertingSnapshot(
                ticking=self._ticking,
                tick_failures=self._tick_failures,
                last_tick_at=self._last_tick_at if self._ticking else None,
                skipped=dict(self._skipped),
                configured_routes=routes,
            )
