"""Pure judgement of a TLS posture scan: findings, grade, observations and a snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from checks.tls_posture.ciphers import Strength, strength
from checks.tls_posture.facts import TlsPostureRaw, TlsVersion
from checks.tls_posture.grade import Grade, grade
from checks.tls_posture.params import TlsPostureParams
from checks.tls_posture.rules import findings as rule_findings
from checks.tls_posture.rules import undetermined_subjects
from monitor.model import CheckOutput, Finding, Observation, Severity


def evaluate(facts: TlsPostureRaw, params: TlsPostureParams, now: datetime) -> CheckOutput:
    minimum = int(params.hsts_min_age.total_seconds())
    found = rule_findings(facts, minimum)
    result = grade(facts, minimum)
    reported = reported_grade(result, facts.last_complete_grade)
    if reported.letter != "A+" or result.provisional:
        found.append(_grade_finding(result, reported))
    compliant = profile_compliant(facts)
    observations = [
        Observation("tls_grade_score", float(reported.score)),
        Observation("tls_grade_info", 1.0, {"grade": reported.letter}),
        Observation("tls_grade_provisional", 1.0 if result.provisional else 0.0),
        Observation("tls_grade_caps", float(len(reported.caps))),
        Observation("tls_grade_protocol_score", float(reported.protocol_score)),
        Observation("tls_grade_key_exchange_score", float(reported.key_exchange_score)),
        Observation("tls_grade_cipher_score", float(reported.cipher_score)),
        Observation("tls_scan_complete", 0.0 if facts.incomplete else 1.0),
    ]
    if compliant is not None:
        observations.append(Observation("tls_profile_compliant", 1.0 if compliant else 0.0))
    for protocol in TlsVersion:
        support = facts.protocol(protocol).supported
        if support is not None:
            observations.append(
                Observation("tls_protocol_enabled", 1.0 if support else 0.0, {"protocol": protocol})
            )
    counts = dict.fromkeys(Strength, 0)
    for protocol, suite in facts.accepted_suites():
        counts[strength(protocol, suite)] += 1
    observations.extend(
        Observation("tls_cipher_suites", float(count), {"strength": level.value})
        for level, count in counts.items()
    )
    return CheckOutput(
        observations=tuple(observations),
        findings=tuple(sorted(found, key=lambda f: (-f.severity.rank, f.rule_id, f.subject))),
        snapshot=snapshot(facts, result, reported, compliant),
        undetermined=undetermined_subjects(facts),
    )


def reported_grade(result: Grade, last_complete: dict[str, Any] | None) -> Grade:
    """The grade metrics and alerts see: a provisional grade never replaces a complete one."""
    if result.provisional and last_complete is not None:
        return Grade.from_json(last_complete)
    return result


def profile_compliant(facts: TlsPostureRaw) -> bool | None:
    """Whether the server meets the configured Mozilla profile (None: could not be judged)."""
    if facts.mozilla_deviations is None:
        return None
    return not facts.mozilla_deviations


def _grade_finding(result: Grade, reported: Grade) -> Finding:
    evidence = result.explain()
    if reported is not result:
        evidence = f"reported: {reported.explain()} (last complete scan); this scan: {evidence}"
    return Finding(
        "TLS-GRADE",
        Severity.INFO,
        f"TLS grade {reported.letter}"
        + (" (provisional)" if reported.provisional else "")
        + (
            ": " + "; ".join(f"{c.letter} {c.reason}" for c in reported.caps)
            if reported.caps
            else ""
        ),
        "grade",
        evidence,
        "Each cap names what keeps the grade down; fix the lowest first.",
    )


def snapshot(
    facts: TlsPostureRaw, result: Grade, reported: Grade, compliant: bool | None
) -> dict[str, Any]:
    """The normalised TLS configuration: evidence, and input for config drift.

    `grade` is the one reported (the last complete one while this scan's is provisional);
    `scan_grade` is this scan's own; `last_complete_grade` carries the newest complete grade
    forward for the next scan."""
    certificate = facts.certificate
    last_complete = result if not result.provisional else reported
    return {
        "endpoint": facts.endpoint,
        "server_name": facts.server_name,
        "grade": reported.to_json(),
        "scan_grade": result.to_json(),
        "last_complete_grade": last_complete.to_json() if not last_complete.provisional else None,
        "profile_compliant": compliant,
        "protocols": {
            str(p.protocol): (sorted(s.name for s in p.suites) if p.supported else p.supported)
            for p in facts.protocols
        },
        "curves": list(facts.curves) if facts.curves is not None else None,
        "certificates": [c.sha256 for c in certificate.chain] if certificate else None,
        "hsts_max_age": facts.hsts_max_age,
        "compression": facts.compression,
        "secure_renegotiation": facts.secure_renegotiation,
        "client_renegotiation": facts.client_renegotiation,
        "fallback_scsv": facts.fallback_scsv,
        "extended_master_secret": facts.extended_master_secret,
        "early_data": facts.early_data,
        "incomplete": list(facts.incomplete),
    }
