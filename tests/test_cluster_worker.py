"""What a worker does with one message: once per slot, polite per host (real Redis)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
from sqlalchemy.engine import make_url

from checks.egress import EgressPolicy
from checks.interface import Check, CheckContext, CheckParams
from monitor.clock import SystemClock
from monitor.cluster.broker import CheckMessage
from monitor.cluster.politeness import RedisHostLimiter, UnlimitedHosts
from monitor.cluster.worker import CheckExecutor, Outcome
from monitor.model import CheckKind, CheckOutput, Target
from monitor.runner import CheckJob, Runner
from monitor.settings import HealthSettings, Settings, load_settings
from monitor.store.interface import StoreError
from monitor.store.limits import ConnectionLimits
from monitor.store.sql import SqlStore
from tests.support.blackhole_proxy import BlackholeProxy, through
from tests.support.cluster_processes import REDIS_URL, redis_namespace
from tests.support.daemon_process import write_config

pytestmark = pytest.mark.e2e

SLOT = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def namespace() -> Iterator[str]:
    yield from redis_namespace()


@pytest.fixture
def limiter(namespace: str) -> Iterator[RedisHostLimiter]:
    limiter = RedisHostLimiter.from_url(REDIS_URL, namespace, per_host=2)
    yield limiter
    limiter.close()


class CountingCheck(Check[CheckParams, str]):
    """Counts its runs and reports nothing."""

    kind: ClassVar[CheckKind] = CheckKind.CERT_EXPIRY
    params_model: ClassVar[type[CheckParams]] = CheckParams

    def __init__(self) -> None:
        self.calls = 0

    def collect(self, target: Target, params: CheckParams, context: CheckContext) -> str:
        self.calls += 1
        return target.name

    def evaluate(self, raw: str, params: CheckParams, now: datetime) -> CheckOutput:
        return CheckOutput()


def settings(tmp_path: Path) -> Settings:
    path = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": "postgresql+psycopg://unused@127.0.0.1/unused",
            "cluster": {"broker": REDIS_URL},
            "targets": [
                {
                    "name": "api",
                    "url": "https://api.example.test",
                    "checks": {"cert_expiry": {"server_name": "api.example.test"}},
                }
            ],
        },
    )
    return load_settings(path)


class Deferred(list[tuple[CheckMessage, timedelta]]):
    def __call__(self, message: CheckMessage, _job: CheckJob, delay: timedelta) -> None:
        self.append((message, delay))


def executor(
    tmp_path: Path, store: SqlStore, limiter: Any
) -> tuple[CheckExecutor, CountingCheck, Deferred]:
    check = CountingCheck()
    deferred = Deferred()
    runner = Runner({CheckKind.CERT_EXPIRY: check}, history=store, egress=EgressPolicy())
    return (
        CheckExecutor(settings(tmp_path), store, runner, limiter, deferred, SystemClock()),
        check,
        deferred,
    )


def message(slot: datetime = SLOT) -> CheckMessage:
    return CheckMessage(CheckKind.CERT_EXPIRY, "api", slot, slot)


def test_a_redelivered_message_of_a_recorded_slot_is_dropped_without_running(
    tmp_path: Path, store: SqlStore
) -> None:
    run_once, check, _ = executor(tmp_path, store, UnlimitedHosts())
    assert run_once.handle(message()) is Outcome.RECORDED
    assert run_once.handle(message()) is Outcome.ALREADY_RECORDED
    assert check.calls == 1


def test_a_message_for_a_host_at_its_limit_is_deferred_not_run(
    tmp_path: Path, store: SqlStore, limiter: RedisHostLimiter
) -> None:
    held = [limiter.try_acquire("api.example.test", timedelta(minutes=1)) for _ in range(2)]
    assert all(held)
    polite, check, deferred = executor(tmp_path, store, limiter)
    assert polite.handle(message()) is Outcome.DEFERRED
    assert check.calls == 0
    assert [m.slot.key for m, _ in deferred] == [message().slot.key]
    assert not store.slot_recorded(message().slot.key)


def test_the_host_limit_holds_across_limiters_and_frees_places_on_release(
    namespace: str, limiter: RedisHostLimiter
) -> None:
    other_worker = RedisHostLimiter.from_url(REDIS_URL, namespace, per_host=2)
    first = limiter.try_acquire("h", timedelta(minutes=1))
    second = other_worker.try_acquire("h", timedelta(minutes=1))
    assert first is not None
    assert second is not None
    assert limiter.try_acquire("h", timedelta(minutes=1)) is None
    assert other_worker.try_acquire("another-host", timedelta(minutes=1)) is not None
    limiter.release(first)
    assert other_worker.try_acquire("h", timedelta(minutes=1)) is not None
    other_worker.close()


def test_a_place_held_by_a_dead_worker_frees_itself_when_its_lease_ends(
    limiter: RedisHostLimiter,
) -> None:
    limiter.try_acquire("h", timedelta(milliseconds=200))
    limiter.try_acquire("h", timedelta(milliseconds=200))  # both holders then "die"
    assert limiter.try_acquire("h", timedelta(minutes=1)) is None
    time.sleep(0.3)
    assert limiter.try_acquire("h", timedelta(minutes=1)) is not None


def test_limiter_keys_live_under_the_installation_namespace(
    namespace: str, limiter: RedisHostLimiter
) -> None:
    limiter.try_acquire("h", timedelta(minutes=1))
    client = redis.Redis.from_url(REDIS_URL)
    assert [key.decode() for key in client.scan_iter(match=f"{namespace}:*")] == [
        f"{namespace}:politeness:h"
    ]
    client.close()


@pytest.mark.postgres
@pytest.mark.hostile_peer
def test_a_store_call_hung_on_a_half_open_link_makes_the_worker_report_a_stall(
    tmp_path: Path, postgres_url: str
) -> None:
    # Given a worker whose store link turns into a black hole, and a 1 s stall bound
    upstream = make_url(postgres_url)
    limits = ConnectionLimits(connect_seconds=2, statement_seconds=6, lock_seconds=1)
    with BlackholeProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
        store = SqlStore(through(proxy, postgres_url), limits)
        try:
            store.upgrade_schema()
            stall_after = settings(tmp_path).model_copy(
                update={"health": HealthSettings(recorder_stalled_after=timedelta(seconds=1))}
            )
            runner = Runner({CheckKind.CERT_EXPIRY: CountingCheck()}, egress=EgressPolicy())
            worker = CheckExecutor(
                stall_after, store, runner, UnlimitedHosts(), Deferred(), SystemClock()
            )
            assert worker.stalled() is None
            proxy.blackhole()

            # When a message arrives while the link is dead
            outcome: list[object] = []
            handling = threading.Thread(
                target=lambda: outcome.append(_handled(worker)), daemon=True
            )
            handling.start()
            stalls = wait_for_value(worker.stalled, 30, "a stall reported")
            handling.join(60)  # the store's own limits end the call
            proxy.forward()
        finally:
            store.close()

    # Then /healthz's reason names the waiting store call, and it clears once the call ends
    assert stalls.startswith("worker: a store call has been waiting")
    assert not handling.is_alive()
    assert isinstance(outcome[0], StoreError)  # the broker retries the message
    assert worker.stalled() is None


def _handled(worker: CheckExecutor) -> object:
    try:
        return worker.handle(message())
    except StoreError as error:
        return error


def wait_for_value(read: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := read()) is not None:
            return value
        time.sleep(0.1)
    pytest.fail(f"not within {timeout:g} s: {what}")
