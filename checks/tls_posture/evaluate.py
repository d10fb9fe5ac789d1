"""Pure judgement of a TLS posture scan: findings, grade, observations and a snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from checks.tls_posture.ciphers import Strength, strength
from checks.tls_posture.facts import Protocol, TlsFacts
from checks.tls_posture.grade import grade
from checks.tls_posture.params import TlsPostureParams
from checks.tls_posture.rules import findings as rule_findings
from monitor.model import CheckOutput, Observation, Severity


def evaluate(facts: TlsFacts, params: TlsPostureParams, now: datetime) -> CheckOutput:
    minimum = int(params.hsts_min_age.total_seconds())
    found = rule_findings(facts, minimum)
    above_info = any(f.severity is not Severity.INFO for f in found)
    result = grade(facts, minimum, above_info)
    observations = [
        Observation("tls_grade_score", float(result.score)),
        Observation("tls_grade_info", 1.0, {"grade": result.letter}),
        Observation("tls_scan_complete", 0.0 if facts.incomplete else 1.0),
    ]
    for protocol in Protocol:
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
        snapshot=snapshot(facts, result.letter, result.score, result.capped_by),
    )


def snapshot(facts: TlsFacts, letter: str, score: int, caps: tuple[str, ...]) -> dict[str, Any]:
    """The normalised TLS configuration: evidence, and input for config drift."""
    certificate = facts.certificate
    return {
        "endpoint": facts.endpoint,
        "server_name": facts.server_name,
        "grade": letter,
        "score": score,
        "grade_caps": list(caps),
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
