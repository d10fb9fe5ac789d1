"""Pure judgement of a cert_expiry run: observations, findings and a snapshot.

Rules (ids are stable):
- CERT-EXPIRED (critical): any certificate, served or on disk, past its not-after.
- CERT-NOT-YET-VALID (high): any certificate before its not-before.
- CERT-EXPIRES-SOON: a leaf within a threshold; severity by the nearest threshold passed
  (default 30 d medium, 14 d high, 7 d critical), one finding whose severity rises.
- CERT-CHAIN-EXPIRES-SOON: the same for intermediates and roots in the served chain.
- CERT-ADDRESS-MISMATCH (high): the addresses behind one name serve different leaves.
- CERT-ADDRESS-UNREACHABLE (medium): some, not all, addresses behind the name failed.
- TLS-NOT-OFFERED (critical): the target URL is plain http:// (checks.plaintext).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from checks.cert_expiry.facts import (
    CertExpiryRaw,
    CertificateFacts,
    CertificateSource,
    ChainPosition,
)
from checks.cert_expiry.params import CertExpiryParams
from checks.plaintext import no_tls_output
from monitor.model import CheckOutput, Finding, Observation, Severity

RENEW = (
    "Renew the certificate and deploy it with its full chain on every address serving this name."
)
RENEW_CHAIN = (
    "Serve the issuer's current intermediate, or move to a chain that does not expire soon."
)


def evaluate(raw: CertExpiryRaw, params: CertExpiryParams, now: datetime) -> CheckOutput:
    sources = raw.served + raw.files
    observations = tuple(observation for source in sources for observation in _observations(source))
    findings: list[Finding] = []
    for certificate, where in _unique_certificates(sources).values():
        finding = _lifetime_finding(certificate, where, params, now)
        if finding is not None:
            findings.append(finding)
    findings.extend(_address_findings(raw))
    if raw.no_tls is not None:
        findings.extend(no_tls_output(raw.no_tls).findings)
    return CheckOutput(
        observations=observations,
        findings=tuple(sorted(findings, key=lambda f: (f.rule_id, f.subject))),
        snapshot=_snapshot(raw),
    )


def _observations(source: CertificateSource) -> list[Observation]:
    result = []
    for certificate in source.certificates:
        labels = {
            "address": source.address,
            "subject": certificate.subject,
            "issuer": certificate.issuer,
            "serial": certificate.serial,
            "position": str(certificate.position),
        }
        result.append(
            Observation(
                "cert_not_after_timestamp_seconds", certificate.not_after.timestamp(), labels
            )
        )
        result.append(
            Observation(
                "cert_not_before_timestamp_seconds", certificate.not_before.timestamp(), labels
            )
        )
    return result


def _unique_certificates(
    sources: tuple[CertificateSource, ...],
) -> dict[str, tuple[CertificateFacts, list[str]]]:
    """Each distinct certificate once, with every place it was seen."""
    unique: dict[str, tuple[CertificateFacts, list[str]]] = {}
    for source in sources:
        for certificate in source.certificates:
            _, where = unique.setdefault(certificate.sha256, (certificate, []))
            if source.address not in where:
                where.append(source.address)
    return unique


def _lifetime_finding(
    certificate: CertificateFacts, where: list[str], params: CertExpiryParams, now: datetime
) -> Finding | None:
    seen_at = ", ".join(where)
    dates = (
        f"not before {certificate.not_before.isoformat()}, "
        f"not after {certificate.not_after.isoformat()}"
    )
    described = (
        f"{certificate.position} certificate {certificate.subject} "
        f"(issuer {certificate.issuer}, serial {certificate.serial})"
    )
    if now >= certificate.not_after:
        days = (now - certificate.not_after).days
        return Finding(
            rule_id="CERT-EXPIRED",
            severity=Severity.CRITICAL,
            title=f"Certificate expired {days} day(s) ago",
            subject=certificate.label,
            evidence=f"{described} seen at {seen_at}; {dates}",
            remediation=RENEW,
        )
    if now < certificate.not_before:
        return Finding(
            rule_id="CERT-NOT-YET-VALID",
            severity=Severity.HIGH,
            title="Certificate is not valid yet",
            subject=certificate.label,
            evidence=f"{described} seen at {seen_at}; {dates}",
            remediation="Check the issuing system's clock and deploy a certificate valid now.",
        )
    time_left = certificate.not_after - now
    severity = params.thresholds.severity_for(time_left)
    if severity is None:
        return None
    leaf = certificate.position is ChainPosition.LEAF
    days_left = time_left.total_seconds() / 86400
    return Finding(
        rule_id="CERT-EXPIRES-SOON" if leaf else "CERT-CHAIN-EXPIRES-SOON",
        severity=severity,
        title=(
            f"Certificate expires in {days_left:.1f} days"
            if leaf
            else f"Chain certificate ({certificate.position}) expires in {days_left:.1f} days"
        ),
        subject=certificate.label,
        evidence=f"{described} seen at {seen_at}; {dates}",
        remediation=RENEW if leaf else RENEW_CHAIN,
    )


def _address_findings(raw: CertExpiryRaw) -> list[Finding]:
    findings = []
    leaves = {source.address: source.leaf for source in raw.served if source.leaf is not None}
    if len({leaf.sha256 for leaf in leaves.values()}) > 1:
        served = "; ".join(f"{address}: {leaf.label}" for address, leaf in leaves.items())
        findings.append(
            Finding(
                rule_id="CERT-ADDRESS-MISMATCH",
                severity=Severity.HIGH,
                title="Addresses behind one name serve different certificates",
                subject=raw.endpoint or "",
                evidence=f"name {raw.server_name}: {served}",
                remediation="Deploy the same certificate to every address (load balancer node, "
                "IPv4 and IPv6) behind the name; a stale node keeps serving an old certificate.",
            )
        )
    for failure in raw.unreachable:
        findings.append(
            Finding(
                rule_id="CERT-ADDRESS-UNREACHABLE",
                severity=Severity.MEDIUM,
                title="An address behind the name did not serve a certificate",
                subject=failure.address,
                evidence=f"{raw.endpoint} at {failure.address}: {failure.reason}",
                remediation="Fix or remove the address from DNS; clients that reach it fail.",
            )
        )
    return findings


def _snapshot(raw: CertExpiryRaw) -> dict[str, Any]:
    def describe(source: CertificateSource) -> list[dict[str, str]]:
        return [
            {
                "position": str(c.position),
                "subject": c.subject,
                "issuer": c.issuer,
                "serial": c.serial,
                "sha256": c.sha256,
                "not_before": c.not_before.isoformat(),
                "not_after": c.not_after.isoformat(),
            }
            for c in source.certificates
        ]

    return {
        "endpoint": raw.endpoint,
        "server_name": raw.server_name,
        "served": {source.address: describe(source) for source in raw.served},
        "unreachable": {failure.address: failure.reason for failure in raw.unreachable},
        "files": {source.address: describe(source) for source in raw.files},
    }
