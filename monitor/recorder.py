"""Writes check runs to the store, in order, without ever making a check wait on it.

While the store does not answer (an outage, or a write stuck on a half-open connection),
runs are held in memory and a background thread writes them, oldest first, once it answers
again. `stalled()` tells /healthz when recording itself is stuck: a write under way for
longer than its bound, or held runs nobody has retried for that long.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from monitor.clock import Clock
from monitor.model import CheckRun
from monitor.pending import PendingRuns
from monitor.store.interface import HysteresisPolicy, Store, StoreError, StoreUnavailable

log = structlog.get_logger("apivigil.daemon")

RETRY_SECONDS = 2.0
# how long a finished check waits for the write before it is held instead
WAIT_FOR_WRITER_SECONDS = 2.0


class Recorder:
    def __init__(
        self,
        store: Store,
        policy: Callable[[], HysteresisPolicy],
        clock: Clock,
        stalled_after_seconds: float,
    ) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._stalled_after = stalled_after_seconds
        self._held = PendingRuns()
        self._writing = threading.Lock()  # held runs are written before newer ones
        self._stop = threading.Event()
        self._write_started: float | None = None  # monotonic; set while a write is under way
        self._progress_at = clock.monotonic()  # a write or a retry pass last ended
        self._retrier = threading.Thread(
            target=self._retry_held, name="apivigil-held-runs", daemon=True
        )

    def start(self) -> None:
        self._retrier.start()

    def held(self) -> int:
        return len(self._held)

    def submit(self, run: CheckRun) -> None:
        """Record `run`, or hold it while older runs wait or the writer is stuck."""
        if len(self._held):
            self._hold(run)  # older runs first: the retry thread writes them, in order
            return
        if not self._writing.acquire(timeout=WAIT_FOR_WRITER_SECONDS):
            self._hold(run, "the store has not answered the previous write yet")
            return
        try:
            if len(self._held):
                self._hold(run)
                return
            try:
                self._record(run)
            except StoreUnavailable as error:
                self._hold(run, str(error))
                return
            except StoreError as error:
                self._rejected(run, error)
                return
        finally:
            self._writing.release()
        self._log_run(run)

    def flush(self) -> int:
        """Write what is held (at shutdown); the number of runs still held afterwards."""
        with self._writing:
            self._write_held()
        return len(self._held)

    def stop(self) -> None:
        self._stop.set()

    def stalled(self) -> str | None:
        """Why recording is stuck, or None. A store that refuses writes quickly is an outage
        (held runs, /readyz), not a stall."""
        now = self._clock.monotonic()
        started = self._write_started
        if started is not None and now - started > self._stalled_after:
            return f"recorder: a store write has been waiting {now - started:.0f} s"
        idle = now - self._progress_at
        if len(self._held) and idle > self._stalled_after + RETRY_SECONDS:
            return f"recorder: held runs not retried for {idle:.0f} s"
        return None

    def _record(self, run: CheckRun) -> None:
        self._write_started = self._clock.monotonic()
        try:
            self._store.record(run, self._policy())
        finally:
            self._write_started = None
            self._progress_at = self._clock.monotonic()

    def _hold(self, run: CheckRun, error: str | None = None) -> None:
        """Keep `run` until the store answers (the outage must not lose results)."""
        self._held.hold(run)
        log.warning(
            "store unavailable; run held in memory until it answers",
            check=str(run.check),
            target=run.target,
            run_id=run.id,
            held=len(self._held),
            dropped=self._held.dropped,
            error=error,
        )

    def _rejected(self, run: CheckRun, error: StoreError) -> None:
        log.error(
            "run could not be stored",
            check=str(run.check),
            target=run.target,
            run_id=run.id,
            status=run.status.value,
            error=str(error),
        )

    def _write_held(self) -> None:
        """Write runs held during an outage, oldest first (callers hold `_writing`)."""
        if not len(self._held):
            return
        written = self._held.write(self._record, self._rejected)
        if written:
            log.info(
                "held runs written after the outage", written=len(written), left=len(self._held)
            )
        for run in written:
            self._log_run(run)

    def _retry_held(self) -> None:
        while not self._stop.wait(RETRY_SECONDS):
            try:
                with self._writing:
                    self._write_held()
            except Exception:  # a bug must not end the retries; stalled() reports it
                log.exception("writing held runs failed")
                continue
            self._progress_at = self._clock.monotonic()

    def _log_run(self, run: CheckRun) -> None:
        """The run; the store logs the findings it opened or resolved."""
        log.info(
            "check run",
            check=str(run.check),
            target=run.target,
            run_id=run.id,
            status=run.status.value,
            reason=run.error_reason.value if run.error_reason else None,
            error=run.error_message,
            duration_seconds=round(run.duration.total_seconds(), 3),
            findings=len(run.output.findings) if run.output else None,
        )
