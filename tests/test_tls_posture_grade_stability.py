"""Acceptance (issue 17): a slow single-threaded TLS 1.2-only server gets the same grade on
every scan of a batch, and the same grade as when scanned alone; unknown is retried, never
read as worst."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from checks.egress import EgressPolicy
from checks.tls_posture.params import TlsPostureParams
from monitor.model import CheckKind, CheckRun, RunStatus, Target
from monitor.runner import CheckJob
from monitor.scan import run_scan, scan_document
from tests.support.tls_certs import TestPki
from tests.support.tls_servers import (
    MODERN_CIPHERS,
    TLS10_CIPHERS,
    NginxBlock,
    NginxTls,
    OpensslSServer,
    SlowAcceptRelay,
)

RUNS = 10  # about 30 s each
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class Servers:
    pki: TestPki
    ports: dict[str, int]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    directory = tmp_path_factory.mktemp("tls-stability")
    pki = TestPki(directory / "pki")
    good = pki.good()
    blocks = [
        NginxBlock("good", good.chain, good.key, ciphers=MODERN_CIPHERS, hsts_max_age=63072000),
        NginxBlock("tls10", good.chain, good.key, protocols="TLSv1", ciphers=TLS10_CIPHERS),
    ]
    with (
        NginxTls(blocks, directory / "nginx") as nginx,
        # -www: answers HTTP, and sleeps 1 s whenever a read would block, so sslyze's client
        # renegotiations hold it for seconds while the scan's other connections queue
        OpensslSServer(
            good.chain, good.key, options=("-tls1_2", "-client_renegotiation", "-www")
        ) as s_server,
        SlowAcceptRelay(s_server.port, delay=0.04) as slow,
    ):
        ports = {block.name: nginx.port(block.name) for block in blocks}
        yield Servers(pki, {**ports, "slow": slow.port})


def job(servers: Servers, name: str) -> CheckJob:
    params = TlsPostureParams(
        server_name=servers.pki.host,
        trust_store=servers.pki.root_pem,
        network_timeout=timedelta(seconds=1),  # before the fix: ROBOT and SSLv3 timed out -> F
        network_retries=1,
        scan_timeout=timedelta(seconds=150),
    )
    return CheckJob(
        CheckKind.TLS_POSTURE,
        Target(name, f"127.0.0.1:{servers.ports[name]}"),
        params,
        timedelta(seconds=180),
    )


def grade_of(run: CheckRun) -> dict[str, Any]:
    assert run.status is RunStatus.OK, f"{run.target}: {run.error_reason} {run.error_message}"
    (document,) = scan_document([run])["runs"]
    grade: dict[str, Any] = document["grade"]
    return grade


def test_a_slow_single_threaded_server_gets_the_same_grade_in_every_batch_and_alone(
    servers: Servers,
) -> None:
    (alone,) = run_scan([job(servers, "slow")], concurrency=1, egress=EgressPolicy())
    expected = grade_of(alone)
    letters = []
    for _ in range(RUNS):
        batch = [job(servers, name) for name in servers.ports]
        by_target = {
            run.target: run
            for run in run_scan(batch, concurrency=len(batch), egress=EgressPolicy())
        }
        got = grade_of(by_target["slow"])
        letters.append(got["letter"])
        assert (got["letter"], got["caps"], got["provisional"]) == (
            expected["letter"],
            expected["caps"],
            expected["provisional"],
        ), f"scan {len(letters)}: {got} alone: {expected}"
    print(f"slow single-threaded TLS 1.2 server, {RUNS} batch scans: grades {letters}")
    assert expected["provisional"] is False
    assert expected["letter"] == "A-"  # TLS 1.2 only: no TLS 1.3; client renegotiation
