"""The cluster as real processes on loopback: two scheduler candidates and two workers,
PostgreSQL and Redis. Slots run exactly once; killing the leader or a worker loses none."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.certmaker import write_server_files
from tests.support.chains import Chain, ServeFactory
from tests.support.cluster_processes import (
    CandidateProcess,
    StoredRun,
    WorkerProcess,
    cluster_config,
    redis_namespace,
    stored_runs,
    wait_until,
)
from tests.support.daemon_process import write_config
from tests.support.hostile_servers import SlowTlsServer
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

INTERVAL = timedelta(seconds=2)


@pytest.fixture
def namespace() -> Iterator[str]:
    yield from redis_namespace()


def cert_targets(serve: ServeFactory, chain: Chain, count: int) -> list[dict[str, Any]]:
    targets = []
    for index in range(count):
        name = f"api{index}"
        server = serve(chain.leaf(f"{name}.test", days_left=90))
        targets.append(
            {
                "name": name,
                "url": server.url,
                "checks": {"cert_expiry": {"server_name": f"{name}.test"}},
            }
        )
    return targets


class Cluster:
    """Two candidates (ports differ; same config otherwise) and two workers."""

    def __init__(self, tmp_path: Path, config: dict[str, Any], workers: int = 2) -> None:
        self.candidates: list[CandidateProcess] = []
        self.workers: list[WorkerProcess] = []
        self.store_url = config["store"]
        for index in range(2):
            port = free_port()
            path = write_config(
                tmp_path / f"candidate{index}.yaml", {**config, "listen": f"127.0.0.1:{port}"}
            )
            self.candidates.append(CandidateProcess(path, port, tmp_path))
            if index == 0:
                self.candidates[0].wait_healthy()  # the first one migrates the schema
        self.candidates[1].wait_healthy()
        worker_config = write_config(tmp_path / "worker.yaml", config)
        self.worker_port = free_port()  # the first worker also serves the API
        listen = ("--listen", f"127.0.0.1:{self.worker_port}")
        self.workers = [
            WorkerProcess(worker_config, tmp_path, *(listen if index == 0 else ()))
            for index in range(workers)
        ]
        for worker in self.workers:
            worker.wait_started()

    def leader(self) -> CandidateProcess:
        leaders: list[CandidateProcess] = []

        def one_leader() -> bool:
            leaders[:] = [
                c for c in self.candidates if c.process.poll() is None and c.role() == "leader"
            ]
            return len(leaders) == 1

        wait_until(one_leader, 15, "exactly one leader")
        return leaders[0]

    def stop(self) -> None:
        """Followers first (no takeover while stopping), then the leader, then workers."""
        leaders = [c for c in self.candidates if c.role() == "leader"]
        others = [c for c in self.candidates if c not in leaders]
        for process in [*others, *leaders, *self.workers]:
            if process.process.poll() is None:
                process.stop()

    def kill_all(self) -> None:
        for process in [*self.candidates, *self.workers]:
            if process.process.poll() is None:
                process.process.kill()
                process.process.wait(timeout=10)


@pytest.fixture
def cluster_of(tmp_path: Path) -> Iterator[Any]:
    started: list[Cluster] = []

    def start(config: dict[str, Any], workers: int = 2) -> Cluster:
        cluster = Cluster(tmp_path, config, workers)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.kill_all()


def runs_by_job(runs: list[StoredRun]) -> dict[tuple[str, str], list[StoredRun]]:
    grouped: dict[tuple[str, str], list[StoredRun]] = defaultdict(list)
    for run in runs:
        grouped[(run.check, run.target)].append(run)
    return grouped


def assert_no_slot_lost_or_repeated(runs: list[StoredRun], targets: int) -> None:
    """Per (check, target): slots one interval apart, none missing, none twice."""
    grouped = runs_by_job(runs)
    assert len(grouped) == targets
    for job, job_runs in grouped.items():
        slots = [run.slot_at for run in job_runs]
        assert all(slot is not None for slot in slots), job
        assert len(set(slots)) == len(slots), f"{job}: a slot recorded twice"
        ordered = sorted(s for s in slots if s is not None)
        gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
        assert all(gap == INTERVAL for gap in gaps), f"{job}: slots lost: {ordered}"


def test_in_normal_operation_every_slot_runs_exactly_once_on_one_of_the_workers(
    tmp_path: Path,
    serve: ServeFactory,
    chain: Chain,
    postgres_url: str,
    namespace: str,
    cluster_of: Any,
) -> None:
    # Given two candidates and two workers checking 6 targets every 2 s
    targets = cert_targets(serve, chain, 6)
    cluster = cluster_of(cluster_config(postgres_url, namespace, 0, targets, interval="2s"))
    # When they run for a while
    leader = cluster.leader()
    follower = next(c for c in cluster.candidates if c is not leader)
    assert follower.role() == "follower"
    worker_ready = httpx.get(f"http://127.0.0.1:{cluster.worker_port}/readyz", timeout=5)
    assert worker_ready.json() == {"store": "ok", "schema": "current", "role": "worker"}
    time.sleep(12)
    cluster.stop()
    # Then every slot was recorded once, none lost, all ok
    runs = stored_runs(cluster.store_url)
    assert_no_slot_lost_or_repeated(runs, targets=6)
    assert {run.status for run in runs} == {"ok"}
    assert min(len(job_runs) for job_runs in runs_by_job(runs).values()) >= 5
    # and each was executed exactly once, by one worker or the other
    executions = Counter(e["slot"] for w in cluster.workers for e in w.executed())
    assert executions == Counter({run.slot_key: 1 for run in runs})
    assert all(w.executed() for w in cluster.workers), "both workers took a share"


def test_when_the_leader_is_killed_the_follower_leads_within_15_s_and_no_slot_is_lost(
    tmp_path: Path,
    serve: ServeFactory,
    chain: Chain,
    postgres_url: str,
    namespace: str,
    cluster_of: Any,
) -> None:
    targets = cert_targets(serve, chain, 4)
    cluster = cluster_of(cluster_config(postgres_url, namespace, 0, targets, interval="2s"))
    old = cluster.leader()
    time.sleep(5)
    # When the leader dies without a word
    old.kill()
    killed_at = time.monotonic()
    # Then the other candidate leads within 15 s
    new = next(c for c in cluster.candidates if c is not old)
    wait_until(lambda: new.role() == "leader", 15, "the follower took over")
    takeover = time.monotonic() - killed_at
    print(f"the follower led {takeover:.1f} s after the leader was killed")
    assert takeover < 15
    time.sleep(6)
    cluster.stop()
    # and every slot from before, during and after the failover was recorded once
    runs = stored_runs(cluster.store_url)
    assert_no_slot_lost_or_repeated(runs, targets=4)
    assert {run.status for run in runs} == {"ok"}
    slot_span = max(r.slot_at for r in runs) - min(r.slot_at for r in runs)  # type: ignore[operator]
    assert slot_span >= timedelta(seconds=10)


def test_a_worker_killed_mid_check_has_its_message_redelivered_completed_and_recorded_once(
    tmp_path: Path, chain: Chain, postgres_url: str, namespace: str, cluster_of: Any
) -> None:
    # Given one target whose TLS handshake takes 4 s, checked hourly (one slot in the test)
    cert, key = write_server_files(
        tmp_path / "tls", "slow", chain.leaf("slow.test"), chain.intermediate
    )
    with SlowTlsServer(cert, key, delay=4) as slow:
        target = {
            "name": "slow",
            "url": slow.url,
            "checks": {"cert_expiry": {"server_name": "slow.test"}},
        }
        cluster = cluster_of(cluster_config(postgres_url, namespace, 0, [target], interval="1h"))
        # When the worker running it is killed mid-check
        started: dict[str, Any] = {}

        def someone_started() -> bool:
            for worker in cluster.workers:
                for event in worker.events():
                    if event.get("event") == "check started":
                        started.update(worker=worker, slot=event["slot"])
                        return True
            return False

        wait_until(someone_started, 30, "a worker started the check")
        victim: WorkerProcess = started["worker"]
        victim.kill()
        survivor = next(w for w in cluster.workers if w is not victim)
        # Then the other worker gets the message again and completes it
        wait_until(
            lambda: any(e["slot"] == started["slot"] for e in survivor.executed()),
            40,
            "the survivor completed the redelivered check",
        )
        cluster.stop()
    runs = stored_runs(cluster.store_url)
    assert [(run.slot_key, run.status) for run in runs] == [(started["slot"], "ok")]
    assert not victim.executed()
