"""One sslyze Scanner for many endpoints: requests arriving together are scanned together.

sslyze's Scanner takes its requests once and yields results once, and it bounds
connections per server and servers at once. Checks submit here and wait on a Future;
requests that arrive within a short window (a one-off scan of many targets, or a burst
of due jobs) share one Scanner with the same limits.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from sslyze import Scanner, ServerScanRequest, ServerScanResult

_WINDOW_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class ScannerLimits:
    per_server_connections: int
    servers_at_once: int


@dataclass
class _Batch:
    limits: ScannerLimits
    waiting: dict[object, tuple[ServerScanRequest, Future[ServerScanResult]]] = field(
        default_factory=dict
    )


class ScanBatcher:
    def __init__(self, window_seconds: float = _WINDOW_SECONDS) -> None:
        self._window = window_seconds
        self._lock = threading.Lock()
        self._open: dict[ScannerLimits, _Batch] = {}

    def scan(self, request: ServerScanRequest, limits: ScannerLimits) -> Future[ServerScanResult]:
        """Queue `request`; the Future resolves when its server's scan is done."""
        future: Future[ServerScanResult] = Future()
        with self._lock:
            batch = self._open.get(limits)
            if batch is None:
                batch = self._open[limits] = _Batch(limits)
                timer = threading.Timer(self._window, self._run, args=(batch,))
                timer.daemon = True
                timer.start()
            batch.waiting[request.uuid] = (request, future)
        return future

    def _run(self, batch: _Batch) -> None:
        with self._lock:
            if self._open.get(batch.limits) is batch:
                del self._open[batch.limits]
        try:
            scanner = Scanner(
                per_server_concurrent_connections_limit=batch.limits.per_server_connections,
                concurrent_server_scans_limit=batch.limits.servers_at_once,
            )
            scanner.queue_scans([request for request, _ in batch.waiting.values()])
            for result in scanner.get_results():
                entry = batch.waiting.get(result.uuid)
                if entry is not None and not entry[1].done():
                    entry[1].set_result(result)
        except Exception as error:
            for _, future in batch.waiting.values():
                if not future.done():
                    future.set_exception(error)
        for _, future in batch.waiting.values():
            if not future.done():
                future.set_exception(RuntimeError("sslyze returned no result for this server"))


@functools.cache
def shared_batcher() -> ScanBatcher:
    return ScanBatcher()


os.register_at_fork(after_in_child=shared_batcher.cache_clear)
