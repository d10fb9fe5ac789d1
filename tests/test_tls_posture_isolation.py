"""tls_posture batches with hostile servers next to a healthy one (all on loopback): the
healthy server is judged in its usual time, every hostile one ends at its cap, and the
scanners' threads end with them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest

from checks.egress import EgressPolicy
from checks.tls_posture.params import TlsPostureParams
from monitor.model import CheckKind, CheckRun, ErrorReason, RunStatus, Target
from monitor.runner import CheckJob, Runner
from monitor.scan import run_scan
from tests.support.hostile_servers import DribblingTlsServer, GarbageServer, Tarpit
from tests.support.ports import free_port
from tests.support.tls_certs import TestPki
from tests.support.tls_servers import MODERN_CIPHERS, NginxBlock, NginxTls

pytestmark = [pytest.mark.integration, pytest.mark.hostile_peer]

BATCHES = 20
THREAD_SLACK = 8  # the runner's idle workers (one per job of a batch), servers' connection threads


@dataclass(frozen=True)
class Servers:
    pki: TestPki
    healthy: int
    tarpit: int
    dribbler: int
    garbage: int
    dribbling: DribblingTlsServer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    directory = tmp_path_factory.mktemp("tls-isolation")
    pki = TestPki(directory / "pki")
    good = pki.good()
    block = NginxBlock(
        "healthy", good.chain, good.key, ciphers=MODERN_CIPHERS, hsts_max_age=63072000
    )
    with (
        NginxTls([block], directory / "nginx") as nginx,
        Tarpit() as tarpit,
        DribblingTlsServer(good.chain, good.key) as dribbler,
        GarbageServer() as garbage,
    ):
        yield Servers(
            pki, nginx.port("healthy"), tarpit.port, dribbler.port, garbage.port, dribbler
        )


def params(servers: Servers, **update: object) -> TlsPostureParams:
    return TlsPostureParams.model_validate(
        {"server_name": servers.pki.host, "trust_store": servers.pki.root_pem, **update}
    )


def job(name: str, port: int, settings: TlsPostureParams, timeout: float) -> CheckJob:
    return CheckJob(
        CheckKind.TLS_POSTURE,
        Target(name, f"127.0.0.1:{port}"),
        settings,
        timedelta(seconds=timeout),
    )


def rules(run: CheckRun) -> set[str]:
    assert run.output is not None
    return {finding.rule_id for finding in run.output.findings}


def seconds(run: CheckRun) -> float:
    return (run.finished_at - run.started_at).total_seconds()


def wait_for_threads(at_most: int, within: float) -> int:
    deadline = time.monotonic() + within
    while threading.active_count() > at_most and time.monotonic() < deadline:
        time.sleep(0.2)
    return threading.active_count()


def test_threads_return_to_their_start_after_20_hostile_tls_batches(servers: Servers) -> None:
    # Given one runner (as in the daemon) and a batch of a healthy server, a tarpit, a
    # dribbler and a garbage server, each run with a 3 s timeout
    runner = Runner(egress=EgressPolicy())
    settings = params(servers)
    jobs = [
        job(name, port, settings, 3)
        for name, port in {
            "healthy": servers.healthy,
            "tarpit": servers.tarpit,
            "dribbler": servers.dribbler,
            "garbage": servers.garbage,
        }.items()
    ]
    started = threading.active_count()

    # When 20 such batches run one after the other
    counts = []
    for _ in range(BATCHES):
        with ThreadPoolExecutor(len(jobs)) as pool:
            runs = {run.target: run for run in pool.map(runner.run, jobs)}
        assert all(runs[name].status is not RunStatus.OK for name in runs if name != "healthy")
        counts.append(threading.active_count())

    # Then the scanners' threads ended: the count is back near where it started
    after = wait_for_threads(started + THREAD_SLACK, within=30)
    print(f"threads after {BATCHES} hostile TLS batches: {after} (started with {started})")
    assert after <= started + THREAD_SLACK, f"thread counts after each batch: {counts}"


def test_a_healthy_server_is_judged_in_its_usual_time_next_to_four_hostile_ones(
    servers: Servers,
) -> None:
    # Given a healthy server's usual scan time, alone
    timeout = 40.0
    settings = params(servers, scan_timeout="8s")
    (alone,) = run_scan(
        [job("healthy", servers.healthy, settings, timeout)], concurrency=1, egress=EgressPolicy()
    )
    assert alone.status is RunStatus.OK, alone

    # When it is scanned in one batch with a tarpit, a dribbler, a garbage server and a
    # closed port
    hostile = {
        "tarpit": servers.tarpit,
        "dribbler": servers.dribbler,
        "garbage": servers.garbage,
        "closed": free_port(),
    }
    jobs = [
        job("healthy", servers.healthy, settings, timeout),
        *(job(name, port, settings, timeout) for name, port in hostile.items()),
    ]
    runs = {run.target: run for run in run_scan(jobs, concurrency=len(jobs), egress=EgressPolicy())}

    # Then it is judged as alone, in about its usual time (well inside the run's timeout)
    healthy = runs["healthy"]
    print(
        f"healthy TLS scan next to {len(hostile)} hostile servers: {seconds(healthy):.1f} s "
        f"(alone {seconds(alone):.1f} s)"
    )
    assert healthy.status is RunStatus.OK, healthy
    assert rules(healthy) == rules(alone)
    assert seconds(healthy) < seconds(alone) + timeout / 4
    # and every hostile one ended with a reason naming it, at its scan_timeout at the latest
    for name, port in hostile.items():
        run = runs[name]
        assert run.status is RunStatus.ERROR, run
        assert f"127.0.0.1:{port}" in (run.error_message or ""), run
        assert seconds(run) < 8 + 5, run
    assert runs["garbage"].error_reason is ErrorReason.BAD_INPUT
    for name in ("tarpit", "dribbler", "closed"):
        assert runs[name].error_reason is ErrorReason.UNREACHABLE, runs[name]
    for name in ("tarpit", "dribbler"):  # neither ever completes a handshake
        assert "did not finish within scan_timeout 8s" in (runs[name].error_message or "")


@pytest.mark.parametrize("server", ["tarpit", "dribbler"])
def test_a_server_that_completes_no_handshake_ends_at_three_network_timeouts(
    servers: Servers, server: str
) -> None:
    # sslyze alone tries eleven handshakes against a tarpit, each until the network timeout
    port = getattr(servers, server)
    settings = params(servers, network_timeout="1s")
    (run,) = run_scan([job(server, port, settings, 30)], concurrency=1, egress=EgressPolicy())
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.UNREACHABLE), run
    assert f"127.0.0.1:{port}: no TLS handshake completed within 3s" in (run.error_message or "")
    assert seconds(run) < 3 + 4, run


def test_a_scan_stopped_at_the_runs_deadline_says_so(servers: Servers) -> None:
    (run,) = run_scan(
        [job("dribbler", servers.dribbler, params(servers), 3)],
        concurrency=1,
        egress=EgressPolicy(),
    )
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.UNREACHABLE), run
    assert "within the run's timeout" in (run.error_message or "")
    assert seconds(run) < 3


def test_servers_at_once_bounds_the_scans_of_the_process_and_a_wait_past_the_cap_says_so(
    servers: Servers,
) -> None:
    # Given one scan slot, held by a dribbler for its scan_timeout of 4 s
    runner = Runner(egress=EgressPolicy())
    holder = job(
        "dribbler", servers.dribbler, params(servers, servers_at_once=1, scan_timeout="4s"), 20
    )
    waiter = job(
        "healthy", servers.healthy, params(servers, servers_at_once=1, scan_timeout="1s"), 20
    )
    with ThreadPoolExecutor(2) as pool:
        connected = servers.dribbling.connections
        held = pool.submit(runner.run, holder)
        while servers.dribbling.connections == connected and not held.done():
            time.sleep(0.05)
        # When the healthy server's scan may wait 1 s for it
        waited = runner.run(waiter)
    # Then it says that it could not start, and why
    assert (waited.status, waited.error_reason) == (RunStatus.ERROR, ErrorReason.UNREACHABLE)
    assert "could not start within scan_timeout 1s" in (waited.error_message or ""), waited
    assert "servers_at_once" in (waited.error_message or "")
    assert "scan_timeout 4s" in (held.result().error_message or "")
