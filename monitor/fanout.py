"""Large one-off scans on every core: shards of jobs in forked worker processes.

TLS handshakes cost CPU in the client too, and one CPython process uses one core. A scan
of hundreds of endpoints therefore forks workers, each running its shard with its own
threads, and streams finished runs back so progress and results arrive as they happen.
Workers are forked before the parent starts any thread; a worker that dies leaves its
unfinished jobs as `bug` error runs, never as missing ones.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

from monitor.model import CheckRun, ErrorReason, RunStatus
from monitor.runner import CheckJob

MIN_JOBS_PER_PROCESS = 100
_DONE = "done"


def auto_processes(job_count: int) -> int:
    """One process per core, but only when each gets enough jobs to pay for its start."""
    return max(1, min(os.cpu_count() or 1, job_count // MIN_JOBS_PER_PROCESS))


def run_in_processes(
    jobs: Sequence[CheckJob],
    processes: int,
    concurrency: int,
    run_shard: Callable[[Sequence[CheckJob], int, Callable[[CheckRun], None]], object],
    on_done: Callable[[CheckRun], None],
) -> list[CheckRun]:
    """Split `jobs` over forked workers, each calling run_shard(shard, threads, emit)."""
    context = multiprocessing.get_context("fork")
    results: Queue[tuple[int, CheckRun | str]] = context.Queue()
    shards = [list(jobs[index::processes]) for index in range(processes)]
    threads = max(1, math.ceil(concurrency / processes))
    workers: list[BaseProcess] = []
    for index, shard in enumerate(shards):

        def work(number: int = index, shard: list[CheckJob] = shard) -> None:
            run_shard(shard, threads, lambda run: results.put((number, run)))
            results.put((number, _DONE))

        worker = context.Process(target=work, name=f"apivigil-scan-{index}", daemon=True)
        worker.start()
        workers.append(worker)

    runs: list[CheckRun] = []
    finished_keys: list[set[tuple[str, str]]] = [set() for _ in shards]
    open_workers = set(range(processes))
    while open_workers:
        try:
            number, item = results.get(timeout=0.5)
        except queue.Empty:
            for number in list(open_workers):
                if not workers[number].is_alive() and results.empty():
                    open_workers.discard(number)
                    runs.extend(
                        _lost(shards[number], finished_keys[number], workers[number], on_done)
                    )
            continue
        if isinstance(item, str):
            open_workers.discard(number)
            continue
        finished_keys[number].add((item.check.value, item.target))
        runs.append(item)
        on_done(item)
    for process in workers:
        process.join(timeout=5)
    return runs


def _lost(
    shard: list[CheckJob],
    finished: set[tuple[str, str]],
    worker: BaseProcess,
    on_done: Callable[[CheckRun], None],
) -> list[CheckRun]:
    now = datetime.now(UTC)
    lost = []
    for job in shard:
        if (job.check.value, job.target.name) in finished:
            continue
        run = CheckRun(
            id=f"lost-{job.check.value}-{job.target.name}",
            check=job.check,
            target=job.target.name,
            started_at=now,
            finished_at=now,
            status=RunStatus.ERROR,
            error_reason=ErrorReason.BUG,
            error_message=f"the scan worker process died (exit code {worker.exitcode})",
        )
        lost.append(run)
        on_done(run)
    return lost
