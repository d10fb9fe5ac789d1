"""Hostile targets, all on loopback: every check gives up within its timeout with a reason
and a message naming the target, and a healthy job next to them keeps its schedule."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import tracemalloc
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from checks.api_inventory.params import ApiInventoryParams
from checks.cert_expiry.params import CertExpiryParams
from checks.egress import EgressPolicy
from checks.interface import CheckParams
from checks.tls_posture.params import TlsPostureParams
from monitor.certmaker import write_server_files
from monitor.model import CheckKind, CheckRun, ErrorReason, RunStatus, Target
from monitor.runner import CheckJob, Runner
from tests.support.chains import Chain, ServeFactory
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.hostile_servers import (
    DribblingTlsServer,
    DrippingHttpServer,
    GarbageServer,
    HugeBodyServer,
    LongChainTlsServer,
    Tarpit,
    gzip_bomb,
    write_long_chain,
)
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import free_port

pytestmark = pytest.mark.hostile_peer

TIMEOUT = 3.0  # seconds: each run's deadline
SPEC_CAP = 10 * 1024 * 1024  # bytes: max_spec_bytes of the HTTP checks
CHAIN_COPIES = 10_000

Outcome = tuple[RunStatus, ErrorReason | None]
UNREACHABLE: set[Outcome] = {
    (RunStatus.ERROR, ErrorReason.UNREACHABLE),
    (RunStatus.TIMEOUT, ErrorReason.UNREACHABLE),
}
BAD_INPUT: set[Outcome] = {(RunStatus.ERROR, ErrorReason.BAD_INPUT)}


def run_job(check: CheckKind, target: Target, params: CheckParams) -> tuple[CheckRun, float]:
    began = time.monotonic()
    run = Runner(egress=EgressPolicy()).run(
        CheckJob(check, target, params, timedelta(seconds=TIMEOUT))
    )
    return run, time.monotonic() - began


def cert_expiry(address: str) -> tuple[CheckKind, Target, CheckParams]:
    params = CertExpiryParams(server_name="hostile.test", connect_timeout=timedelta(seconds=10))
    return CheckKind.CERT_EXPIRY, Target("hostile", url=f"https://{address}"), params


def tls_posture(address: str) -> tuple[CheckKind, Target, CheckParams]:
    params = TlsPostureParams.model_validate({"server_name": "hostile.test"})
    return CheckKind.TLS_POSTURE, Target("hostile", url=f"https://{address}"), params


def api_spec(url: str) -> tuple[CheckKind, Target, CheckParams]:
    params = ApiInventoryParams(spec=url, max_spec_bytes=SPEC_CAP)
    return CheckKind.API_INVENTORY, Target("hostile", url=url), params


def assert_gave_up(
    run: CheckRun, elapsed: float, outcomes: set[Outcome], names: str, *fragments: str
) -> None:
    assert (run.status, run.error_reason) in outcomes, run
    assert elapsed < TIMEOUT + 1.5, f"took {elapsed:.1f} s: {run}"
    message = run.error_message or ""
    if (run.status, run.error_reason) != (RunStatus.TIMEOUT, ErrorReason.UNREACHABLE):
        assert names in message, message
        for fragment in fragments:
            assert fragment in message, message


# TLS ------------------------------------------------------------------------


@pytest.fixture
def leaf_files(tmp_path: Path, chain: Chain) -> tuple[Path, Path]:
    return write_server_files(tmp_path / "tls", "hostile", chain.leaf("hostile.test"))


@pytest.mark.integration
@pytest.mark.parametrize("make", [cert_expiry, tls_posture], ids=["cert_expiry", "tls_posture"])
def test_a_tarpit_times_out(tarpit: Tarpit, make: Any) -> None:
    run, elapsed = run_job(*make(f"127.0.0.1:{tarpit.port}"))
    assert_gave_up(run, elapsed, UNREACHABLE, f"127.0.0.1:{tarpit.port}")


@pytest.mark.integration
@pytest.mark.parametrize("make", [cert_expiry, tls_posture], ids=["cert_expiry", "tls_posture"])
def test_a_server_hello_at_one_byte_a_second_times_out(
    leaf_files: tuple[Path, Path], make: Any
) -> None:
    with DribblingTlsServer(*leaf_files) as dribbler:
        run, elapsed = run_job(*make(dribbler.address))
        assert_gave_up(run, elapsed, UNREACHABLE, dribbler.address)
        assert 1 <= dribbler.bytes_sent <= TIMEOUT + 1


@pytest.mark.integration
def test_garbage_instead_of_tls_is_bad_input(garbage_server: GarbageServer) -> None:
    run, elapsed = run_job(*cert_expiry(f"127.0.0.1:{garbage_server.port}"))
    assert_gave_up(run, elapsed, BAD_INPUT, f"127.0.0.1:{garbage_server.port}")


@pytest.mark.integration
def test_a_chain_of_ten_thousand_certificates_is_refused(tmp_path: Path, chain: Chain) -> None:
    files = write_long_chain(
        tmp_path / "long", chain.leaf("hostile.test"), chain.intermediate, CHAIN_COPIES
    )
    with LongChainTlsServer(*files) as server:
        run, elapsed = run_job(*cert_expiry(server.address))
    assert_gave_up(run, elapsed, BAD_INPUT, server.address)


@pytest.mark.unit
def test_a_name_that_does_not_resolve_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    # `.invalid` never resolves (RFC 6761); answered here so no query leaves the machine
    real = socket.getaddrinfo

    def no_such_name(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    run, elapsed = run_job(*cert_expiry("no-such-host.invalid:443"))
    assert_gave_up(
        run, elapsed, UNREACHABLE, "no-such-host.invalid", "DNS lookup failed: Name or service"
    )


# HTTP -----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("declare", [True, False], ids=["declared", "until-close"])
def test_a_100_mb_body_is_cut_at_the_cap(declare: bool) -> None:
    with HugeBodyServer(100 * 1024 * 1024, declare=declare) as server:
        run, elapsed = run_job(*api_spec(server.url))
        assert_gave_up(run, elapsed, BAD_INPUT, server.url, f"exceeds {SPEC_CAP}")
        assert server.bytes_sent < 4 * SPEC_CAP


@pytest.mark.integration
def test_an_endless_redirect_loop_is_unreachable() -> None:
    with ScriptedHttpServer() as web:
        web.replies["/openapi.json"] = Reply(302, {"Location": "/openapi.json?again"})
        web.replies["/openapi.json?again"] = Reply(302, {"Location": "/openapi.json"})
        run, elapsed = run_job(*api_spec(f"{web.url}/openapi.json"))
    assert_gave_up(run, elapsed, UNREACHABLE, f"{web.url}/openapi.json", "more than 5 redirects")


@pytest.mark.integration
@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_dripping_spec_server_ends_the_run_by_its_timeout_and_frees_its_target(
    headers_too: bool,
) -> None:
    # Given a server that sends the spec one byte every 0.2 s (well within any read timeout)
    with DrippingHttpServer(0.2, headers_too=headers_too) as server:
        runner = Runner(egress=EgressPolicy())
        job = CheckJob(*api_spec(server.url), timedelta(seconds=TIMEOUT))
        # When the check runs twice, the second time once the first run's thread has had
        # time to see the deadline
        began = time.monotonic()
        first = runner.run(job)
        elapsed = time.monotonic() - began
        time.sleep(2)
        second = runner.run(job)
    # Then the first run ended by its timeout, and the second really ran (not skipped as
    # "still running from before"): the worker thread was released
    assert_gave_up(first, elapsed, UNREACHABLE, server.url)
    assert (second.status, second.error_reason) in UNREACHABLE, second
    assert server.connections == 2
    assert server.bytes_sent < 2 * (TIMEOUT + 2) / 0.2


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(1024**3)


@pytest.mark.integration
def test_a_gzip_bomb_spec_stops_at_the_cap_on_decoded_bytes(bomb: bytes) -> None:
    assert len(bomb) < SPEC_CAP  # the compressed size passes the Content-Length check
    with ScriptedHttpServer() as web:
        web.replies["/openapi.json"] = Reply(
            200, {"Content-Encoding": "gzip", "Content-Type": "application/json"}, bomb
        )
        tracemalloc.start()
        try:
            run, elapsed = run_job(*api_spec(f"{web.url}/openapi.json"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert_gave_up(run, elapsed, BAD_INPUT, f"{web.url}/openapi.json", f"exceeds {SPEC_CAP} bytes")
    print(f"gzip bomb of {len(bomb)} bytes (1 GiB inflated): peak {peak / 2**20:.1f} MiB")
    assert peak < 2 * SPEC_CAP  # inflated in bounded pieces, not a network read at a time


# the daemon ------------------------------------------------------------------


@pytest.mark.e2e
def test_a_healthy_job_keeps_its_schedule_next_to_every_hostile_target(
    tmp_path: Path, chain: Chain, serve: ServeFactory, tarpit: Tarpit, garbage_server: GarbageServer
) -> None:
    # Given the daemon watching every hostile kind (runs every 2 s, 3 s timeout) and one
    # healthy TLS server every second, with the default 8 workers
    leaf_cert, leaf_key = write_server_files(tmp_path / "tls", "leaf", chain.leaf("hostile.test"))
    long_chain = write_long_chain(
        tmp_path / "long", chain.leaf("hostile.test"), chain.intermediate, CHAIN_COPIES
    )
    healthy = serve(chain.leaf("healthy.test"))
    every = {"interval": "2s", "timeout": f"{TIMEOUT:g}s"}
    with contextlib.ExitStack() as stack:
        dribbler = stack.enter_context(DribblingTlsServer(leaf_cert, leaf_key))
        long_server = stack.enter_context(LongChainTlsServer(*long_chain))
        huge = stack.enter_context(HugeBodyServer(100 * 1024 * 1024))
        endless = stack.enter_context(HugeBodyServer(100 * 1024 * 1024, declare=False))
        web = stack.enter_context(ScriptedHttpServer())
        web.replies["/loop"] = Reply(302, {"Location": "/loop"})
        web.replies["/bomb"] = Reply(200, {"Content-Encoding": "gzip"}, gzip_bomb(1024**3))
        drip_body = stack.enter_context(DrippingHttpServer(0.2))
        drip_headers = stack.enter_context(DrippingHttpServer(0.2, headers_too=True))
        tls_hostile = {
            "tarpit": f"127.0.0.1:{tarpit.port}",
            "dribble": dribbler.address,
            "garbage": f"127.0.0.1:{garbage_server.port}",
            "long-chain": long_server.address,
        }
        http_hostile = {
            "huge-body": huge.url,
            "endless-body": endless.url,
            "redirect-loop": f"{web.url}/loop",
            "gzip-bomb": f"{web.url}/bomb",
            "drip-body": drip_body.url,
            "drip-headers": drip_headers.url,
        }
        fifo = tmp_path / "fifo.yaml"
        os.mkfifo(fifo)
        dev_zero = tmp_path / "zero.yaml"
        dev_zero.symlink_to("/dev/zero")
        # a source that cannot be read is a finding of an ok run, not an error of the run
        drift_hostile = {"drift-fifo": fifo, "drift-dev-zero": dev_zero}
        targets: list[dict[str, Any]] = [
            {
                "name": "healthy",
                "url": healthy.url,
                "checks": {"cert_expiry": {"server_name": "healthy.test", "interval": "1s"}},
            },
            *(
                {
                    "name": name,
                    "url": f"https://{address}",
                    "checks": {"cert_expiry": {"server_name": "hostile.test", **every}},
                }
                for name, address in tls_hostile.items()
            ),
            {
                "name": "tarpit-posture",
                "url": f"https://127.0.0.1:{tarpit.port}",
                "checks": {"tls_posture": {"server_name": "hostile.test", **every}},
            },
            *(
                {
                    "name": name,
                    "url": url,
                    "checks": {"api_inventory": {"spec": url, "max_spec_bytes": SPEC_CAP, **every}},
                }
                for name, url in http_hostile.items()
            ),
            *(
                {
                    "name": name,
                    "checks": {"config_drift": {"sources": [{"file": str(path)}], **every}},
                }
                for name, path in drift_hostile.items()
            ),
        ]
        port = free_port()
        config = {
            "store": f"sqlite:///{tmp_path / 'apivigil.db'}",
            "listen": f"127.0.0.1:{port}",
            "defaults": {"interval": "1h", "timeout": "10s", "jitter": "0s"},
            "scheduler": {"initial_spread": "1s"},
            "targets": targets,
        }
        path = write_config(tmp_path / "apivigil.yaml", config)

        # When it runs for a while
        with DaemonProcess(path, port, tmp_path) as daemon:
            daemon.wait_healthy()
            time.sleep(12)
            events = daemon.events()
            assert daemon.stop() == 0

    # Then every hostile target errored with a reason, naming itself, and the healthy job
    # ran every second with little lag
    runs = [e for e in events if e.get("event") == "check run"]
    hostile = {**tls_hostile, **http_hostile, "tarpit-posture": tls_hostile["tarpit"]}
    held = 0
    for name, where in hostile.items():
        mine = [e for e in runs if e["target"] == name]
        assert mine, f"{name} never ran"
        for event in mine:
            assert (event["status"], event["reason"]) in {
                ("error", "unreachable"),
                ("error", "bad_input"),
                ("timeout", "unreachable"),
            }, event
            assert event["status"] == "timeout" or where in event["error"], event
            assert event["duration_seconds"] < TIMEOUT + 1, event
        held += 1
    for name in drift_hostile:
        mine = [e for e in runs if e["target"] == name]
        assert mine, f"{name} never ran"
        for event in mine:
            assert (event["status"], event["findings"]) == ("ok", 1), event
            assert event["duration_seconds"] < TIMEOUT + 1, event
        held += 1
    starts = sorted(
        datetime.fromisoformat(e["timestamp"]) - timedelta(seconds=e["duration_seconds"])
        for e in runs
        if e["target"] == "healthy"
    )
    assert all(e["status"] == "ok" for e in runs if e["target"] == "healthy")
    assert len(starts) >= 8, starts
    lags = [(later - earlier).total_seconds() - 1.0 for earlier, later in pairwise(starts)]
    figures = (
        f"hostile target kinds held: {held} ({len(runs) - len(starts)} hostile runs); "
        f"healthy job lag max: {max(lags):.3f} s, mean {sum(lags) / len(lags):.3f} s "
        f"over {len(starts)} runs"
    )
    print(figures)
    assert max(lags) < 3, figures
