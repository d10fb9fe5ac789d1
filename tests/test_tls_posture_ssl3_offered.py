"""SSL 3.0 offered beside TLS 1.2 on real servers (tlslite-ng): capped at C when SSL 3.0 has CBC
suites (POODLE), at B when it has none, never F (that is for SSL 3.0 as the best protocol,
tests/test_tls_posture_scan.py's `ssl3` server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from checks.egress import EgressPolicy
from checks.tls_posture.grade import Grade
from checks.tls_posture.params import TlsPostureParams
from monitor.model import CheckKind, CheckRun, RunStatus, Target
from monitor.runner import CheckJob
from monitor.scan import run_scan
from tests.support.tls_certs import TestPki
from tests.support.tls_servers import TlsliteConfig, TlsliteServer

pytestmark = pytest.mark.integration

# versions run from SSL 3.0 to TLS 1.2, so TLS 1.0 and 1.1 are offered too
SERVERS = {
    "ssl3_cbc": TlsliteConfig(versions=((3, 0), (3, 3)), cipher_names=("aes128gcm", "aes128")),
    "ssl3_rc4": TlsliteConfig(versions=((3, 0), (3, 3)), cipher_names=("aes128gcm", "rc4")),
}
OLDER = {("B", "TLSv1.0 offered"), ("B", "TLSv1.1 offered"), ("A-", "no TLS 1.3")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CheckRun]]:
    pki = TestPki(tmp_path_factory.mktemp("ssl3-offered") / "pki")
    good = pki.good()
    servers = {
        name: TlsliteServer(good.chain, good.key, config) for name, config in SERVERS.items()
    }
    params = TlsPostureParams(server_name=pki.host, trust_store=pki.root_pem)
    with servers["ssl3_cbc"] as cbc, servers["ssl3_rc4"] as rc4:
        jobs = [
            CheckJob(
                CheckKind.TLS_POSTURE,
                Target(name, f"127.0.0.1:{server.port}"),
                params,
                timedelta(seconds=120),
            )
            for name, server in (("ssl3_cbc", cbc), ("ssl3_rc4", rc4))
        ]
        yield {run.target: run for run in run_scan(jobs, concurrency=2, egress=EgressPolicy())}


def graded(run: CheckRun) -> tuple[str, set[tuple[str, str]], set[str]]:
    assert run.status is RunStatus.OK, f"{run.target}: {run.error_reason} {run.error_message}"
    assert run.output is not None
    assert run.output.snapshot is not None
    grade = Grade.from_json(run.output.snapshot["scan_grade"])
    assert not grade.provisional, grade.explain()
    rules = {finding.rule_id for finding in run.output.findings}
    return grade.letter, {(cap.letter, cap.reason) for cap in grade.caps}, rules


def test_ssl3_with_cbc_suites_beside_tls12_caps_the_grade_at_c(
    runs: dict[str, CheckRun],
) -> None:
    letter, caps, rules = graded(runs["ssl3_cbc"])
    assert letter == "C"
    assert caps == {("C", "SSL 3.0 with CBC suites (POODLE)"), *OLDER}
    assert "TLS-PROTOCOL-SSL3" in rules


def test_ssl3_without_cbc_suites_beside_tls12_caps_the_grade_at_b_not_c(
    runs: dict[str, CheckRun],
) -> None:
    letter, caps, rules = graded(runs["ssl3_rc4"])
    # C here comes from RC4 in TLS 1.1+, not from SSL 3.0, which alone caps at B
    assert letter == "C"
    assert caps == {("B", "SSL 3.0 offered"), ("C", "RC4 with TLS 1.1 or newer"), *OLDER}
    assert "TLS-PROTOCOL-SSL3" in rules
