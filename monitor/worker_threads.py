"""Daemon threads kept for reuse: starting a thread per check run cost about a quarter of a
millisecond of CPU each, as much as a tenth of a whole certificate check.

Unlike ThreadPoolExecutor there is no upper bound and no join at exit: a check that hangs
past its timeout keeps its thread, the next call gets an idle thread or a new one, and a
hung thread never holds up the process's exit. Threads idle for `idle_seconds` end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Task = Callable[[], None]  # must not raise: it would end its thread


class WorkerThreads:
    def __init__(self, name: str, idle_seconds: float = 60.0) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._tasks: queue.SimpleQueue[Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a task and not yet promised one
        self._started = 0

    @property
    def idle(self) -> int:
        """Threads waiting for work."""
        with self._lock:
            return self._idle

    def submit(self, task: Task) -> None:
        """Run `task` in an idle thread, or in a new one when none is idle."""
        with self._lock:
            reuse = self._idle > 0
            if reuse:
                self._idle -= 1  # promised this task: no other submit counts that thread
            else:
                self._started += 1
                number = self._started
        if reuse:
            self._tasks.put(task)
        else:
            name = f"{self._name}-{number}"
            threading.Thread(target=self._work, args=(task,), name=name, daemon=True).start()

    def _work(self, task: Task) -> None:
        while True:
            task()
            with self._lock:
                self._idle += 1
            try:
                task = self._tasks.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:
                        self._idle -= 1
                        return
                # a submit promised a task to an idle thread just as this one timed out
                task = self._tasks.get()
