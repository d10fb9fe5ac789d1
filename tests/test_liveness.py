"""/healthz is about this process being stuck: a scheduler whose checks are far overdue, or a
recorder whose store write hangs, turns it 503 with a short reason; a store that is simply
down does not (that is /readyz's business, and the runs are held meanwhile)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from monitor.api import ApiServer, Probes, create_app
from monitor.clock import SystemClock
from monitor.jobs import ScheduledCheck
from monitor.metrics import build_registry
from monitor.model import CheckKind, CheckRun, Target
from monitor.recorder import RunRecorder
from monitor.runner import CheckJob
from monitor.scheduler import CheckScheduler
from monitor.store.interface import HysteresisPolicy
from monitor.store.limits import ConnectionLimits
from monitor.store.sql import SqlStore
from tests.support.blackhole_proxy import BlackholeProxy
from tests.support.check_runs import finding, ok_run
from tests.support.checks_for_tests import Behaviour
from tests.support.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.hostile_peer]

LIMITS = ConnectionLimits(connect_seconds=3, statement_seconds=3, lock_seconds=1)


def every_second(name: str) -> ScheduledCheck:
    job = CheckJob(CheckKind.CERT_EXPIRY, Target(name), Behaviour(), timedelta(seconds=10))
    return ScheduledCheck(job=job, interval=timedelta(seconds=1), jitter=timedelta(0))


@contextmanager
def serving(store: SqlStore, stalls: Callable[[], list[str]]) -> Iterator[str]:
    app = create_app(
        build_registry(store),
        Probes(scheduler_alive=lambda: True, store=lambda: store, stalls=stalls),
    )
    port = free_port()
    server = ApiServer(app, "127.0.0.1", port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_checks_far_overdue_because_every_worker_is_stuck_make_healthz_unhealthy(
    sqlite_url: str,
) -> None:
    store = SqlStore(sqlite_url)
    release = threading.Event()

    def on_due(job: CheckJob) -> None:
        if job.target.name == "stuck":
            release.wait(60)

    scheduler = CheckScheduler(
        on_due,
        workers=1,  # the stuck check takes the only worker: the other one cannot start
        misfire_grace=timedelta(seconds=1),
        initial_spread=timedelta(0),
        overdue_after=timedelta(seconds=1),
    )
    scheduler.start([every_second("stuck"), every_second("healthy")], {})
    try:
        with serving(store, lambda: [r for r in [scheduler.stalled()] if r]) as base:
            assert wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 503)
            body = httpx.get(f"{base}/healthz").json()
            release.set()
            assert wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200)
    finally:
        release.set()
        scheduler.shutdown()
    assert body["stalled"][0].startswith("scheduler: 1 check(s) overdue")


def recording(store: SqlStore) -> RunRecorder:
    recorder = RunRecorder(store, HysteresisPolicy, SystemClock(), stalled_after_seconds=1)
    recorder.start()
    return recorder


def run() -> CheckRun:
    return ok_run("api", datetime.now(UTC), finding())


def test_a_store_outage_holds_runs_and_leaves_healthz_healthy(postgres_url: str) -> None:
    nothing_listens = make_url(postgres_url).set(port=free_port()).render_as_string(False)
    store = SqlStore(nothing_listens, LIMITS)
    recorder = recording(store)
    try:
        with serving(store, lambda: [r for r in [recorder.stalled()] if r]) as base:
            for _ in range(3):
                recorder.submit(run())
            answers = set()
            for _ in range(20):  # several retry rounds, each refused at once
                answers.add(httpx.get(f"{base}/healthz").status_code)
                time.sleep(0.25)
            ready = httpx.get(f"{base}/readyz").status_code
    finally:
        recorder.stop()
        store.close()
    assert recorder.held() == 3
    assert answers == {200}, "a plain store outage made /healthz unhealthy"
    assert ready == 503


def test_a_store_write_hung_on_a_half_open_link_makes_healthz_unhealthy_until_it_gives_up(
    postgres_url: str,
) -> None:
    SqlStore(postgres_url).upgrade_schema()
    upstream = make_url(postgres_url)
    with BlackholeProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
        linked = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
        store = SqlStore(linked.render_as_string(False), LIMITS)
        recorder = recording(store)
        try:
            with serving(store, lambda: [r for r in [recorder.stalled()] if r]) as base:
                recorder.submit(run())
                proxy.blackhole()
                writer = threading.Thread(target=recorder.submit, args=(run(),), daemon=True)
                writer.start()
                assert wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 503)
                reasons = httpx.get(f"{base}/healthz").json()["stalled"]
                recorder.submit(run())  # a check finishing meanwhile is held, not blocked
                held_meanwhile = recorder.held()
                writer.join(60)  # the stuck write gives up within the store's bounds
                proxy.forward()
                assert wait_for(lambda: recorder.held() == 0)
                assert wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200)
            with store.engine.connect() as connection:
                runs = sa.text("SELECT sum(run_count) FROM check_run")
                stored = connection.execute(runs).scalar()
        finally:
            recorder.stop()
            store.close()
    assert not writer.is_alive(), "the write stuck on the half-open link never gave up"
    assert reasons[0].startswith("recorder: a store write has been waiting")
    assert held_meanwhile >= 1
    assert stored == 3
