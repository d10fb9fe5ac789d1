"""RunRecorder: how the daemon and the worker write check runs to the store and log them.

Both write with `record` paths that time every store call (so a call stuck on a half-open
connection shows in /healthz) and log each run (the store logs the findings it opens or
resolves).
What happens when the store does not answer differs by who owns the retry:
- the daemon `submit`s: while the store does not answer (an outage, or a write stuck on a
  half-open connection), runs are held in memory and a background thread (`start`) writes
  them, oldest first, once it answers again;
- the worker `record`s and lets StoreError through: the broker redelivers the message.
`stalled()` tells /healthz when recording itself is stuck: a store call under way for
longer than its bound, or held runs nobody has retried for that long.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from monitor.clock import Clock
from monitor.model import CheckRun
from monitor.pending import PendingRuns
from monitor.store.interface import (
    HysteresisPolicy,
    RunSlot,
    Store,
    StoreError,
    StoreUnavailable,
)

log = structlog.get_logger("apivigil.daemon")

RETRY_SECONDS = 2.0
# how long a finished check waits for the write before it is held instead
WAIT_FOR_WRITER_SECONDS = 2.0


class RunRecorder:
    def __init__(
        self,
        store: Store,
        policy: Callable[[], HysteresisPolicy],
        clock: Clock,
        stalled_after_seconds: float,
        logger: Any = log,
    ) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._stalled_after = stalled_after_seconds
        self._log = logger
        self._held = PendingRuns()
        self._writing = threading.Lock()  # held runs are written before newer ones
        self._stop = threading.Event()
        self._calls_lock = threading.Lock()
        self._calls: dict[int, float] = {}  # thread id -> monotonic start of its store call
        self._progress_at = clock.monotonic()  # a write or a retry pass last ended
        self._retrier = threading.Thread(
            target=self._retry_held, name="apivigil-held-runs", daemon=True
        )

    def start(self) -> None:
        self._retrier.start()

    def held(self) -> int:
        return len(self._held)

    def record(self, run: CheckRun, slot: RunSlot | None = None, /, **log_fields: Any) -> None:
        """Record `run` now and log it (with `log_fields`); nothing is held. Raises
        StoreUnavailable or StoreError (the caller's retry: the worker's broker)."""
        self._record(run, slot)
        self._log_run(run, **log_fields)

    @contextlib.contextmanager
    def store_call(self) -> Iterator[None]:
        """Count the store call made inside as waiting, for `stalled()` and `waiting()`."""
        with self._calls_lock:
            self._calls[threading.get_ident()] = self._clock.monotonic()
        try:
            yield
        finally:
            with self._calls_lock:
                self._calls.pop(threading.get_ident(), None)

    def waiting(self) -> float | None:
        """Seconds the oldest store call under way has been waiting; None when none is."""
        with self._calls_lock:
            oldest = min(self._calls.values(), default=None)
        return None if oldest is None else self._clock.monotonic() - oldest

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
        waited = self.waiting()
        if waited is not None and waited > self._stalled_after:
            return f"recorder: a store write has been waiting {waited:.0f} s"
        idle = self._clock.monotonic() - self._progress_at
        if len(self._held) and idle > self._stalled_after + RETRY_SECONDS:
            return f"recorder: held runs not retried for {idle:.0f} s"
        return None

    def _record(self, run: CheckRun, slot: RunSlot | None = None) -> None:
        try:
            with self.store_call():
                self._store.record(run, self._policy(), slot)
        finally:
            self._progress_at = self._clock.monotonic()

    def _hold(self, run: CheckRun, error: str | None = None) -> None:
        """Keep `run` until the store answers (the outage must not lose results)."""
        self._held.hold(run)
        self._log.warning(
            "store unavailable; run held in memory until it answers",
            check=str(run.check),
            target=run.target,
            run_id=run.id,
            held=len(self._held),
            dropped=self._held.dropped,
            error=error,
        )

    def _rejected(self, run: CheckRun, error: StoreError) -> None:
        self._log.error(
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
            self._log.info(
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
                self._log.exception("writing held runs failed")
                continue
            self._progress_at = self._clock.monotonic()

    def _log_run(self, run: CheckRun, **fields: Any) -> None:
        """The run; the store logs the findings it opened or resolved."""
        self._log.info(
            "check run",
            check=str(run.check),
            target=run.target,
            run_id=run.id,
            status=run.status.value,
            reason=run.error_reason.value if run.error_reason else None,
            error=run.error_message,
            duration_seconds=round(run.duration.total_seconds(), 3),
            findings=len(run.output.findings) if run.output else None,
            **fields,
        )
