"""cert_expiry's pure evaluation, on recorded facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checks.cert_expiry.evaluate import evaluate
from checks.cert_expiry.facts import (
    AddressFailure,
    CertExpiryRaw,
    CertificateFacts,
    CertificateSource,
    ChainPosition,
)
from checks.cert_expiry.params import CertExpiryParams, ExpiryThresholds
from monitor.model import Severity

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def cert(
    sha: str = "aa" * 32,
    days_left: float = 90,
    position: ChainPosition = ChainPosition.LEAF,
    days_old: float = 10,
    subject: str = "CN=api.example.test",
) -> CertificateFacts:
    return CertificateFacts(
        subject=subject,
        issuer="CN=Test CA",
        serial="1f",
        not_before=NOW - timedelta(days=days_old),
        not_after=NOW + timedelta(days=days_left),
        sha256=sha,
        position=position,
    )


def raw(*served: CertificateSource, unreachable: tuple[AddressFailure, ...] = ()) -> CertExpiryRaw:
    return CertExpiryRaw(
        endpoint="api.example.test:443",
        server_name="api.example.test",
        served=served,
        unreachable=unreachable,
        files=(),
    )


def rules(output):  # type: ignore[no-untyped-def]
    return {(f.rule_id, f.severity) for f in output.findings}


PARAMS = CertExpiryParams()


def test_healthy_leaf_gives_observations_and_no_findings() -> None:
    leaf = cert(days_left=90)
    output = evaluate(raw(CertificateSource("10.0.0.1", (leaf,))), PARAMS, NOW)
    assert output.findings == ()
    by_name = {o.name: o for o in output.observations}
    assert by_name["cert_not_after_timestamp_seconds"].value == leaf.not_after.timestamp()
    assert by_name["cert_not_before_timestamp_seconds"].value == leaf.not_before.timestamp()
    assert by_name["cert_not_after_timestamp_seconds"].labels == {
        "address": "10.0.0.1",
        "subject": "CN=api.example.test",
        "issuer": "CN=Test CA",
        "serial": "1f",
        "position": "leaf",
    }


@pytest.mark.parametrize(
    ("days_left", "expected"),
    [
        (31, None),
        (30, Severity.MEDIUM),
        (20, Severity.MEDIUM),
        (14, Severity.HIGH),
        (8, Severity.HIGH),
        (7, Severity.CRITICAL),
        (0.5, Severity.CRITICAL),
    ],
)
def test_expiring_leaf_severity_follows_default_thresholds(
    days_left: float, expected: Severity | None
) -> None:
    output = evaluate(raw(CertificateSource("10.0.0.1", (cert(days_left=days_left),))), PARAMS, NOW)
    assert rules(output) == ({("CERT-EXPIRES-SOON", expected)} if expected else set())


def test_rising_severity_keeps_one_fingerprint_so_each_threshold_alerts_once() -> None:
    source = CertificateSource("10.0.0.1", (cert(days_left=29),))
    at_29 = evaluate(raw(source), PARAMS, NOW).findings[0]
    at_6 = evaluate(raw(source), PARAMS, NOW + timedelta(days=23)).findings[0]
    assert (at_29.severity, at_6.severity) == (Severity.MEDIUM, Severity.CRITICAL)
    assert at_29.fingerprint("cert_expiry", "api") == at_6.fingerprint("cert_expiry", "api")


def test_custom_thresholds_apply() -> None:
    params = CertExpiryParams(
        thresholds=ExpiryThresholds(
            medium=timedelta(days=60), high=timedelta(days=45), critical=timedelta(days=40)
        )
    )
    output = evaluate(raw(CertificateSource("10.0.0.1", (cert(days_left=44),))), params, NOW)
    assert rules(output) == {("CERT-EXPIRES-SOON", Severity.HIGH)}


def test_thresholds_out_of_order_are_rejected() -> None:
    with pytest.raises(ValueError, match="critical <= high <= medium"):
        ExpiryThresholds(medium=timedelta(days=5), high=timedelta(days=10))


def test_expired_certificate_is_critical_and_names_its_dates() -> None:
    output = evaluate(raw(CertificateSource("10.0.0.1", (cert(days_left=-3),))), PARAMS, NOW)
    (finding,) = output.findings
    assert (finding.rule_id, finding.severity) == ("CERT-EXPIRED", Severity.CRITICAL)
    assert "expired 3 day(s) ago" in finding.title
    assert "not after 2026-05-29" in finding.evidence
    assert "10.0.0.1" in finding.evidence


def test_not_yet_valid_certificate_is_high() -> None:
    future = cert(days_old=-2, days_left=300)
    output = evaluate(raw(CertificateSource("10.0.0.1", (future,))), PARAMS, NOW)
    assert rules(output) == {("CERT-NOT-YET-VALID", Severity.HIGH)}


def test_expiring_intermediate_is_a_chain_finding_not_a_leaf_finding() -> None:
    chain = (
        cert(days_left=300),
        cert(sha="bb" * 32, days_left=10, position=ChainPosition.INTERMEDIATE, subject="CN=Int"),
    )
    output = evaluate(raw(CertificateSource("10.0.0.1", chain)), PARAMS, NOW)
    assert rules(output) == {("CERT-CHAIN-EXPIRES-SOON", Severity.HIGH)}
    assert output.findings[0].subject.startswith("CN=Int sha256:bbbb")


def test_different_leaves_behind_one_name_are_a_mismatch() -> None:
    output = evaluate(
        raw(
            CertificateSource("10.0.0.1", (cert(sha="aa" * 32),)),
            CertificateSource("10.0.0.2", (cert(sha="cc" * 32),)),
        ),
        PARAMS,
        NOW,
    )
    assert rules(output) == {("CERT-ADDRESS-MISMATCH", Severity.HIGH)}
    evidence = output.findings[0].evidence
    assert "10.0.0.1" in evidence
    assert "10.0.0.2" in evidence
    addresses = {o.labels["address"] for o in output.observations}
    assert addresses == {"10.0.0.1", "10.0.0.2"}


def test_same_leaf_on_every_address_is_one_finding_listing_all_addresses() -> None:
    leaf = cert(days_left=5)
    output = evaluate(
        raw(CertificateSource("10.0.0.1", (leaf,)), CertificateSource("2001:db8::1", (leaf,))),
        PARAMS,
        NOW,
    )
    (finding,) = output.findings
    assert finding.rule_id == "CERT-EXPIRES-SOON"
    assert "10.0.0.1, 2001:db8::1" in finding.evidence


def test_partly_unreachable_name_reports_the_failed_address() -> None:
    output = evaluate(
        raw(
            CertificateSource("10.0.0.1", (cert(),)),
            unreachable=(AddressFailure("10.0.0.9", "TCP connection failed: refused"),),
        ),
        PARAMS,
        NOW,
    )
    (finding,) = output.findings
    assert (finding.rule_id, finding.subject) == ("CERT-ADDRESS-UNREACHABLE", "10.0.0.9")
    assert "refused" in finding.evidence


def test_snapshot_records_every_certificate_served() -> None:
    leaf = cert()
    output = evaluate(raw(CertificateSource("10.0.0.1", (leaf,))), PARAMS, NOW)
    assert output.snapshot is not None
    assert output.snapshot["served"]["10.0.0.1"][0]["sha256"] == leaf.sha256
