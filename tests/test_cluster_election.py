"""Leader election on a PostgreSQL advisory lock: one leader, fast takeover, self-fencing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from monitor.clock import SystemClock
from monitor.cluster.config import ElectionConfig
from monitor.cluster.election import LeaderElection, connection_params, default_lock_id
from tests.support.cluster_processes import wait_until
from tests.support.postgres import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres

FAST = ElectionConfig(
    heartbeat=timedelta(seconds=0.2), fence_after=timedelta(seconds=1), retry=timedelta(seconds=0.2)
)


class Candidate:
    """One election with callbacks that record what happened."""

    def __init__(self, lock_id: int, config: ElectionConfig = FAST, clock: Any = None) -> None:
        self.events: list[str] = []
        self.pids: list[int] = []
        params = connection_params(POSTGRES_ADMIN_URL, config)

        def connect() -> psycopg.Connection[Any]:
            connection = psycopg.connect(autocommit=True, **params)
            self.pids.append(connection.info.backend_pid)
            return connection

        self.election = LeaderElection(
            connect,
            lock_id,
            config,
            on_elected=lambda: self.events.append("elected"),
            on_deposed=lambda: self.events.append("deposed"),
            clock=clock,
        )


@pytest.fixture
def lock_id() -> int:
    return default_lock_id(f"test-{uuid.uuid4().hex}")


@pytest.fixture
def candidates(lock_id: int) -> Iterator[list[Candidate]]:
    started: list[Candidate] = []
    yield started
    for candidate in started:
        candidate.election.stop()


def terminate(pid: int) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.e2e
def test_of_two_candidates_exactly_one_leads(lock_id: int, candidates: list[Candidate]) -> None:
    candidates += [Candidate(lock_id), Candidate(lock_id)]
    for candidate in candidates:
        candidate.election.start()
    wait_until(lambda: any(c.election.is_leader() for c in candidates), 10, "a leader")
    time.sleep(1)
    assert sorted(c.election.is_leader() for c in candidates) == [False, True]
    assert sorted(c.events for c in candidates) == [[], ["elected"]]


@pytest.mark.e2e
def test_when_the_leaders_session_dies_it_steps_down_and_the_other_takes_over_in_seconds(
    lock_id: int, candidates: list[Candidate]
) -> None:
    first, second = Candidate(lock_id), Candidate(lock_id)
    candidates += [first, second]
    first.election.start()
    wait_until(first.election.is_leader, 10, "the first leads")
    second.election.start()
    time.sleep(0.5)
    # When the leader's lock session is killed (as when its host or network dies)
    terminate(first.pids[-1])
    # Then it stops leading and the second takes over
    took = wait_until(second.election.is_leader, 10, "the second leads")
    assert took < 5
    wait_until(lambda: first.events == ["elected", "deposed"], 5, "the first stepped down")
    assert not first.election.is_leader()


@pytest.mark.e2e
def test_a_leader_that_cannot_confirm_its_lock_for_fence_after_stops_at_once(
    lock_id: int, candidates: list[Candidate]
) -> None:
    class FrozenHeartbeat(SystemClock):
        """Monotonic time that jumps ahead: as if every heartbeat hung."""

        offset = 0.0

        def monotonic(self) -> float:
            return time.monotonic() + self.offset

    clock = FrozenHeartbeat()
    slow = ElectionConfig(
        heartbeat=timedelta(seconds=30),
        fence_after=timedelta(seconds=60),
        retry=timedelta(seconds=30),
    )
    candidate = Candidate(lock_id, slow, clock)
    candidates.append(candidate)
    candidate.election.start()
    wait_until(candidate.election.is_leader, 10, "it leads")
    clock.offset = 61  # no confirmation for longer than fence_after
    assert not candidate.election.is_leader()  # no enqueue from this instant on
    wait_until(lambda: candidate.events == ["elected", "deposed"], 20, "it stepped down")


@pytest.mark.e2e
def test_stopping_the_leader_hands_over_without_waiting(
    lock_id: int, candidates: list[Candidate]
) -> None:
    first, second = Candidate(lock_id), Candidate(lock_id)
    candidates.append(second)
    first.election.start()
    wait_until(first.election.is_leader, 10, "the first leads")
    second.election.start()
    stopping = threading.Thread(target=first.election.stop)
    stopping.start()
    took = wait_until(second.election.is_leader, 10, "the second leads")
    stopping.join(10)
    assert took < 3
    assert first.events == ["elected", "deposed"]


@pytest.mark.integration
def test_the_election_connection_carries_keepalives_and_the_stores_options() -> None:
    params = connection_params(
        "postgresql+psycopg://u:p@db.example:5433/apivigil?options=-csearch_path%3Dx", FAST
    )
    assert (params["host"], params["port"], params["dbname"]) == ("db.example", 5433, "apivigil")
    assert params["keepalives"] == 1
    assert params["options"].startswith("-csearch_path=x -c tcp_keepalives_idle=1")
    assert "statement_timeout=1000" in params["options"]
