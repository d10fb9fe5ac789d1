"""cert_expiry reads the certificate of servers that only speak what the system OpenSSL
refuses (SSL 3.0, RC4-only, 3DES-only, DH-512-only; tlslite-ng on loopback), and reports
an expired one there."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from checks.cert_expiry.params import CertExpiryParams
from checks.egress import EgressPolicy
from monitor.model import CheckKind, RunStatus, Target
from monitor.runner import CheckJob, Runner
from tests.support.tls_certs import TestPki
from tests.support.tls_servers import (
    TLSLITE_3DES,
    TLSLITE_RC4,
    TLSLITE_SSL3,
    TlsliteConfig,
    TlsliteServer,
    dh_numbers,
    make_dh_params,
    tlslite_dh,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("legacy-pki"))


@pytest.fixture(scope="module")
def dh512() -> TlsliteConfig:
    return tlslite_dh(dh_numbers(make_dh_params().dh512))


@pytest.fixture(params=["ssl3", "rc4", "3des", "dh512"])
def legacy_server(
    request: pytest.FixtureRequest, pki: TestPki, dh512: TlsliteConfig
) -> Iterator[TlsliteServer]:
    config = {"ssl3": TLSLITE_SSL3, "rc4": TLSLITE_RC4, "3des": TLSLITE_3DES, "dh512": dh512}
    expired = pki.expired()
    with TlsliteServer(expired.chain, expired.key, config[request.param]) as server:
        yield server


def test_an_expired_certificate_on_a_legacy_only_server_is_reported(
    legacy_server: TlsliteServer, pki: TestPki
) -> None:
    job = CheckJob(
        CheckKind.CERT_EXPIRY,
        Target("legacy", f"https://127.0.0.1:{legacy_server.port}"),
        CertExpiryParams(server_name=pki.host),
        timedelta(seconds=20),
    )
    run = Runner(egress=EgressPolicy()).run(job)
    assert run.status is RunStatus.OK, f"{run.error_reason}: {run.error_message}"
    assert run.output is not None
    assert "CERT-EXPIRED" in {f.rule_id for f in run.output.findings}
    positions = {
        o.labels["position"] for o in run.output.observations if o.name.startswith("cert_not_after")
    }
    assert positions == {"leaf", "intermediate"}
