"""monitor/worker_threads.py: threads are reused, a hung task never blocks the next one,
and idle threads end."""

from __future__ import annotations

import threading

import pytest

from monitor.worker_threads import WorkerThreads

pytestmark = pytest.mark.unit


def run_and_wait(threads: WorkerThreads, task_thread: list[str]) -> None:
    done = threading.Event()

    def task() -> None:
        task_thread.append(threading.current_thread().name)
        done.set()

    threads.submit(task)
    assert done.wait(5)


def test_tasks_one_after_another_reuse_one_thread() -> None:
    threads = WorkerThreads("reuse")
    names: list[str] = []
    for _ in range(20):
        run_and_wait(threads, names)
        # the thread counts itself idle just after the task: wait until it has
        for _ in range(500):
            if threads.idle:
                break
            threading.Event().wait(0.01)

    assert set(names) == {"reuse-1"}


def test_a_hung_task_does_not_hold_up_the_next_one() -> None:
    threads = WorkerThreads("hung")
    release = threading.Event()

    def hang() -> None:
        release.wait(30)

    threads.submit(hang)
    names: list[str] = []

    run_and_wait(threads, names)

    assert names == ["hung-2"]
    release.set()


def test_idle_threads_end_and_new_work_still_runs() -> None:
    threads = WorkerThreads("idle", idle_seconds=0.05)
    names: list[str] = []
    run_and_wait(threads, names)
    first = next(t for t in threading.enumerate() if t.name == "idle-1")
    first.join(timeout=5)

    run_and_wait(threads, names)

    assert not first.is_alive()
    assert names == ["idle-1", "idle-2"]


def test_many_tasks_at_once_all_run() -> None:
    threads = WorkerThreads("burst", idle_seconds=0.01)
    count = 500
    finished = threading.Semaphore(0)
    for _ in range(count):
        threads.submit(finished.release)

    assert all(finished.acquire(timeout=5) for _ in range(count))
