"""Findings from TLS facts: RFC 7525 / NIST SP 800-52r2 rules. Pure.

Rule ids (stable): TLS-PROTOCOL-{SSL2,SSL3,TLS10,TLS11,NO-TLS12,NO-TLS13},
TLS-CIPHER-{NULL,EXPORT,ANON,RC4,DES,3DES,NO-FORWARD-SECRECY,STATIC-RSA,NO-AEAD,CBC},
TLS-DH-{INSECURE,WEAK}, TLS-KEY-{WEAK-RSA,WEAK-EC}, TLS-CERT-{SHA1,UNTRUSTED,
HOSTNAME-MISMATCH,LIFETIME,REVOKED,INCOMPLETE-CHAIN}, TLS-HSTS-{MISSING,SHORT}, TLS-COMPRESSION,
TLS-RENEGOTIATION-{INSECURE,CLIENT}, TLS-FALLBACK-SCSV-MISSING, TLS-HEARTBLEED,
TLS-ROBOT, TLS-CCS-INJECTION, TLS-EMS-MISSING, TLS-EARLY-DATA, TLS-MOZILLA-PROFILE,
TLS-SCAN-INCOMPLETE.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from checks.tls_posture.ciphers import Weakness, forward_secret, is_aead, weaknesses
from checks.tls_posture.facts import (
    LEGACY_PROTOCOLS,
    MODERN_PROTOCOLS,
    TlsPostureRaw,
    TlsVersion,
    untrusted_reason,
)
from checks.tls_posture.probe import dh_too_small
from monitor.model import Finding, Severity
from monitor.text import without_collection_reprs

MAX_LIFETIME = timedelta(days=398)

_PROTOCOL_RULES = {
    TlsVersion.SSL_2_0: ("TLS-PROTOCOL-SSL2", Severity.CRITICAL),
    TlsVersion.SSL_3_0: ("TLS-PROTOCOL-SSL3", Severity.HIGH),
    TlsVersion.TLS_1_0: ("TLS-PROTOCOL-TLS10", Severity.MEDIUM),
    TlsVersion.TLS_1_1: ("TLS-PROTOCOL-TLS11", Severity.MEDIUM),
}
_CIPHER_RULES = {
    Weakness.NULL: (
        "TLS-CIPHER-NULL",
        Severity.CRITICAL,
        "NULL cipher suites send data unencrypted",
    ),
    Weakness.EXPORT: ("TLS-CIPHER-EXPORT", Severity.CRITICAL, "EXPORT-grade cipher suites"),
    Weakness.ANONYMOUS: (
        "TLS-CIPHER-ANON",
        Severity.CRITICAL,
        "Anonymous (unauthenticated) suites",
    ),
    Weakness.RC4: ("TLS-CIPHER-RC4", Severity.HIGH, "RC4 cipher suites"),
    Weakness.DES: ("TLS-CIPHER-DES", Severity.HIGH, "Single-DES cipher suites"),
    Weakness.TRIPLE_DES: ("TLS-CIPHER-3DES", Severity.MEDIUM, "3DES cipher suites (Sweet32)"),
}
_CIPHERS_FIX = (
    "Offer only forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305) and "
    "TLS 1.3; the Mozilla intermediate profile is a good start."
)


def findings(facts: TlsPostureRaw, hsts_min_age_seconds: int) -> list[Finding]:
    return [
        *_protocols(facts),
        *_ciphers(facts),
        *_key_exchange(facts),
        *_certificate(facts),
        *_hsts(facts, hsts_min_age_seconds),
        *_implementation(facts),
        *_meta(facts),
    ]


def undetermined_subjects(facts: TlsPostureRaw) -> tuple[str, ...]:
    """Subjects (prefixes) of findings this scan could not judge either way: an open finding
    under them is unknown, not gone, so a partial scan resolves (and re-opens) nothing."""
    subjects: list[str] = []
    if any(facts.protocol(p).supported is None for p in TlsVersion):
        subjects += [str(p) for p in TlsVersion if facts.protocol(p).supported is None]
        # which suites are accepted is only known when every protocol is
        subjects += [w.value for w in Weakness] + ["forward-secrecy", "static-rsa", "aead", "dh"]
        subjects += ["TLS1.2+", "fallback-scsv"]
    for subject, value in (
        ("CVE-2014-0160", facts.heartbleed),
        ("CVE-2014-0224", facts.ccs_injection),
        ("ROBOT", None if facts.robot in (None, "unknown") else facts.robot),
        ("compression", facts.compression),
        ("renegotiation", facts.secure_renegotiation),
        ("client-renegotiation", facts.client_renegotiation),
        ("fallback-scsv", facts.fallback_scsv),
        ("ems", facts.extended_master_secret),
        ("early-data", facts.early_data),
    ):
        if value is None:
            subjects.append(subject)
    if not facts.hsts_checked:
        subjects.append("hsts")
    if facts.mozilla_deviations is None and facts.mozilla_profile:
        subjects.append(facts.mozilla_profile)
    if facts.certificate is None or not facts.certificate.chain:
        subjects += ["sha1", "incomplete-chain", facts.server_name, *_UNTRUSTED_KINDS]
        subjects += facts.extra.get("previous_certificates", [])
    elif facts.certificate.trusted is None:
        subjects += list(_UNTRUSTED_KINDS)
    return tuple(dict.fromkeys(subject for subject in subjects if subject))


_UNTRUSTED_KINDS = (
    "expired",
    "not yet valid",
    "self-signed",
    "unknown root",
    "incomplete chain",
    "forbidden signature algorithm",
)


def _finding(
    rule: str, severity: Severity, title: str, subject: str, evidence: str, fix: str
) -> Finding:
    return Finding(rule, severity, title, subject, evidence, fix)


def _protocols(facts: TlsPostureRaw) -> Iterator[Finding]:
    for protocol, (rule, severity) in _PROTOCOL_RULES.items():
        support = facts.protocol(protocol)
        if support.supported:
            suites = ", ".join(s.name for s in support.suites[:6])
            yield _finding(
                rule,
                severity,
                f"{protocol} is enabled",
                str(protocol),
                f"{facts.endpoint} accepts {protocol} ({len(support.suites)} suites: {suites})",
                f"Disable {protocol}; allow TLS 1.2 and TLS 1.3 only (RFC 8996, RFC 7525 3.1.1).",
            )
    modern = [facts.protocol(p).supported for p in MODERN_PROTOCOLS]
    if all(value is False for value in modern):
        yield _finding(
            "TLS-PROTOCOL-NO-TLS12",
            Severity.HIGH,
            "Neither TLS 1.2 nor TLS 1.3 is supported",
            "TLS1.2+",
            f"{facts.endpoint} rejected every TLS 1.2 and TLS 1.3 cipher suite",
            "Enable TLS 1.2 and TLS 1.3.",
        )
    if facts.protocol(TlsVersion.TLS_1_3).supported is False:
        yield _finding(
            "TLS-PROTOCOL-NO-TLS13",
            Severity.LOW,
            "TLS 1.3 is not supported",
            str(TlsVersion.TLS_1_3),
            f"{facts.endpoint} rejected every TLS 1.3 cipher suite",
            "Enable TLS 1.3 (OpenSSL 1.1.1 or newer).",
        )


def _ciphers(facts: TlsPostureRaw) -> Iterator[Finding]:
    suites = facts.accepted_suites()
    if not suites:
        return
    by_weakness: dict[Weakness, list[str]] = {}
    for protocol, suite in suites:
        for weakness in weaknesses(suite):
            by_weakness.setdefault(weakness, []).append(f"{protocol} {suite.name}")
    for weakness, (rule, severity, title) in _CIPHER_RULES.items():
        if weakness in by_weakness:
            yield _finding(
                rule,
                severity,
                title + " are accepted",
                weakness.value,
                "; ".join(sorted(set(by_weakness[weakness]))),
                _CIPHERS_FIX,
            )
    modern_cbc = [
        entry for entry in by_weakness.get(Weakness.CBC, []) if entry.split()[0] in MODERN_PROTOCOLS
    ]
    if modern_cbc:
        yield _finding(
            "TLS-CIPHER-CBC",
            Severity.LOW,
            "CBC-mode cipher suites are accepted",
            "CBC",
            "; ".join(sorted(set(modern_cbc))[:12]),
            _CIPHERS_FIX,
        )
    without_fs = [f"{p} {s.name}" for p, s in suites if not forward_secret(p, s)]
    if len(without_fs) == len(suites):
        yield _finding(
            "TLS-CIPHER-NO-FORWARD-SECRECY",
            Severity.MEDIUM,
            "No forward secrecy",
            "forward-secrecy",
            "every accepted suite uses static key exchange: " + "; ".join(without_fs[:12]),
            _CIPHERS_FIX,
        )
    elif without_fs:
        yield _finding(
            "TLS-CIPHER-STATIC-RSA",
            Severity.LOW,
            "Suites without forward secrecy are accepted",
            "static-rsa",
            "; ".join(without_fs[:12]),
            _CIPHERS_FIX,
        )
    if not any(is_aead(suite) for _, suite in suites):
        yield _finding(
            "TLS-CIPHER-NO-AEAD",
            Severity.MEDIUM,
            "No AEAD cipher suite",
            "aead",
            f"{len(suites)} accepted suites, none GCM, CCM or ChaCha20-Poly1305",
            _CIPHERS_FIX,
        )


def _key_exchange(facts: TlsPostureRaw) -> Iterator[Finding]:
    dh = sorted(
        {
            s.ephemeral_size
            for _, s in facts.accepted_suites()
            if s.ephemeral_kind == "DH" and s.ephemeral_size
        }
    )
    refusals = facts.extra.get("probe_refusals", [])
    too_small = [r for r in refusals if dh_too_small(r)]
    fix = "Use ECDHE, or DHE with an RFC 7919 group of 2048 bits or more (ssl_dhparam ffdhe2048)."
    if (dh and dh[0] < 1024) or too_small:
        evidence = f"DH group of {dh[0]} bits" if dh and dh[0] < 1024 else "; ".join(too_small)
        yield _finding(
            "TLS-DH-INSECURE",
            Severity.HIGH,
            "Insecure Diffie-Hellman parameters (< 1024 bits)",
            "dh",
            evidence,
            fix,
        )
    elif dh and dh[0] < 2048:
        yield _finding(
            "TLS-DH-WEAK",
            Severity.MEDIUM,
            "Weak Diffie-Hellman parameters (< 2048 bits)",
            "dh",
            f"DH group of {dh[0]} bits",
            fix,
        )
    certificate = facts.certificate
    if certificate is None or not certificate.chain:
        return
    leaf = certificate.chain[0]
    if leaf.key_type == "RSA" and leaf.key_size < 2048:
        yield _finding(
            "TLS-KEY-WEAK-RSA",
            Severity.HIGH,
            f"Weak RSA key ({leaf.key_size} bits)",
            leaf.sha256,
            f"leaf {leaf.subject} has an RSA key of {leaf.key_size} bits",
            "Reissue the certificate with an RSA key of 2048 bits or more, or an EC P-256 key.",
        )
    if leaf.key_type == "EC" and leaf.key_size < 256:
        yield _finding(
            "TLS-KEY-WEAK-EC",
            Severity.HIGH,
            f"Weak EC key ({leaf.key_size} bits)",
            leaf.sha256,
            f"leaf {leaf.subject} has an EC key of {leaf.key_size} bits",
            "Reissue the certificate with an EC key on P-256 or stronger.",
        )


def _certificate(facts: TlsPostureRaw) -> Iterator[Finding]:
    certificate = facts.certificate
    if certificate is None or not certificate.chain:
        return
    leaf = certificate.chain[0]
    if certificate.sha1_in_chain:
        signed = [
            c.subject for c in certificate.chain if c.signature_hash == "sha1" and not c.self_signed
        ]
        yield _finding(
            "TLS-CERT-SHA1",
            Severity.MEDIUM,
            "SHA-1 signature in the certificate chain",
            "sha1",
            "signed with SHA-1: " + (", ".join(signed) or "a certificate of the verified chain"),
            "Reissue the affected certificates with SHA-256 signatures.",
        )
    if certificate.trusted is False and not certificate.chain_incomplete:
        reason = untrusted_reason(certificate)
        kind = reason.split(":")[0]
        yield _finding(
            "TLS-CERT-UNTRUSTED",
            Severity.HIGH,
            f"Certificate chain is not trusted ({reason})",
            kind,
            f"validation against {', '.join(certificate.trust_stores) or 'the trust stores'}: "
            f"{certificate.validation_error or 'failed'}; chain: "
            + " <- ".join(c.subject for c in certificate.chain)
            + f"; leaf valid {leaf.not_before:%Y-%m-%d %H:%M} to "
            f"{leaf.not_after:%Y-%m-%d %H:%M} UTC",
            "Serve a certificate from a trusted CA with its full intermediate chain.",
        )
    if certificate.hostname_matches is False:
        yield _finding(
            "TLS-CERT-HOSTNAME-MISMATCH",
            Severity.HIGH,
            "Certificate does not match the server name",
            facts.server_name,
            f"leaf {leaf.subject} does not cover {facts.server_name}",
            "Reissue the certificate with the server name in its subjectAltName.",
        )
    if certificate.chain_incomplete:
        yield _finding(
            "TLS-CERT-INCOMPLETE-CHAIN",
            Severity.MEDIUM,
            "Incomplete certificate chain: the intermediate is not sent",
            "incomplete-chain",
            f"the server sends {len(certificate.chain)} certificate(s) without the issuer of "
            f"{leaf.subject} ({leaf.issuer}); clients that do not fetch it fail",
            "Configure the server to send the leaf followed by its intermediate certificates.",
        )
    lifetime = leaf.not_after - leaf.not_before
    if lifetime > MAX_LIFETIME:
        yield _finding(
            "TLS-CERT-LIFETIME",
            Severity.LOW,
            f"Certificate lifetime of {lifetime.days} days",
            leaf.sha256,
            f"leaf {leaf.subject} valid {leaf.not_before:%Y-%m-%d} to {leaf.not_after:%Y-%m-%d}",
            "Use certificates valid for at most 398 days, ideally automated (ACME).",
        )
    if certificate.ocsp_status == "revoked":
        yield _finding(
            "TLS-CERT-REVOKED",
            Severity.CRITICAL,
            "Certificate is revoked (stapled OCSP response)",
            leaf.sha256,
            f"the server staples an OCSP response saying {leaf.subject} is revoked",
            "Replace the revoked certificate now and find out why it was revoked.",
        )


def _hsts(facts: TlsPostureRaw, minimum: int) -> Iterator[Finding]:
    if not facts.hsts_checked:
        return
    header = f"Strict-Transport-Security: max-age={max(minimum, 31536000)}"
    fix = f'Send "{header}" on every HTTPS response.'
    if facts.hsts_max_age is None:
        yield _finding(
            "TLS-HSTS-MISSING",
            Severity.MEDIUM,
            "No HSTS header",
            "hsts",
            f"GET / on {facts.endpoint} has no Strict-Transport-Security header",
            fix,
        )
    elif facts.hsts_max_age < minimum:
        yield _finding(
            "TLS-HSTS-SHORT",
            Severity.LOW,
            f"HSTS max-age of {facts.hsts_max_age} s is too short",
            "hsts",
            f"max-age={facts.hsts_max_age}, policy minimum {minimum}",
            fix,
        )


def _implementation(facts: TlsPostureRaw) -> Iterator[Finding]:
    patch = "Update the TLS library of the server (RFC 7525 12) and restart it."
    if facts.compression:
        yield _finding(
            "TLS-COMPRESSION",
            Severity.HIGH,
            "TLS compression is enabled (CRIME)",
            "compression",
            "the server accepted a compressed session",
            "Disable TLS-level compression.",
        )
    if facts.secure_renegotiation is False:
        yield _finding(
            "TLS-RENEGOTIATION-INSECURE",
            Severity.HIGH,
            "Insecure renegotiation (no RFC 5746)",
            "renegotiation",
            "the server does not support secure renegotiation",
            patch,
        )
    if facts.client_renegotiation:
        yield _finding(
            "TLS-RENEGOTIATION-CLIENT",
            Severity.MEDIUM,
            "Client-initiated renegotiation is accepted (DoS)",
            "client-renegotiation",
            "the server accepted repeated client-initiated renegotiations",
            "Disable client-initiated renegotiation.",
        )
    legacy_on = any(facts.protocol(p).supported for p in LEGACY_PROTOCOLS)
    if legacy_on and facts.fallback_scsv is False:
        yield _finding(
            "TLS-FALLBACK-SCSV-MISSING",
            Severity.MEDIUM,
            "No TLS_FALLBACK_SCSV while legacy protocols are on",
            "fallback-scsv",
            "the server accepted a downgraded handshake carrying TLS_FALLBACK_SCSV",
            "Disable legacy protocols, or update the server to honour TLS_FALLBACK_SCSV.",
        )
    if facts.heartbleed:
        yield _finding(
            "TLS-HEARTBLEED",
            Severity.CRITICAL,
            "Vulnerable to Heartbleed",
            "CVE-2014-0160",
            "the server leaked memory in a heartbeat response",
            patch,
        )
    if facts.robot in ("vulnerable_strong", "vulnerable_weak"):
        severity = Severity.CRITICAL if facts.robot == "vulnerable_strong" else Severity.HIGH
        yield _finding(
            "TLS-ROBOT",
            severity,
            "Vulnerable to ROBOT",
            "ROBOT",
            f"the server acts as a {facts.robot.split('_')[1]} Bleichenbacher oracle",
            patch + " Or disable RSA key exchange suites.",
        )
    if facts.ccs_injection:
        yield _finding(
            "TLS-CCS-INJECTION",
            Severity.HIGH,
            "Vulnerable to OpenSSL CCS injection",
            "CVE-2014-0224",
            "the server accepted an early ChangeCipherSpec",
            patch,
        )
    if facts.extended_master_secret is False:
        yield _finding(
            "TLS-EMS-MISSING",
            Severity.LOW,
            "No extended master secret (RFC 7627)",
            "ems",
            "the server did not negotiate the extended_master_secret extension",
            patch,
        )
    if facts.early_data:
        yield _finding(
            "TLS-EARLY-DATA",
            Severity.MEDIUM,
            "TLS 1.3 early data (0-RTT) is accepted",
            "early-data",
            "the server accepted early data, which can be replayed",
            "Disable 0-RTT, or accept it only for idempotent requests.",
        )


def _meta(facts: TlsPostureRaw) -> Iterator[Finding]:
    if facts.mozilla_deviations:
        yield _finding(
            "TLS-MOZILLA-PROFILE",
            Severity.MEDIUM,
            f"Not compliant with the Mozilla {facts.mozilla_profile} profile "
            f"({len(facts.mozilla_deviations)} deviations)",
            str(facts.mozilla_profile),
            # facts stored before collect made them readable may still hold set reprs
            without_collection_reprs("; ".join(facts.mozilla_deviations)),
            f"Apply the Mozilla {facts.mozilla_profile} server-side TLS configuration.",
        )
    if facts.incomplete:
        title = "TLS scan incomplete: some properties could not be determined"
        if facts.fallback_probe:
            title = "sslyze could not connect; only a bare handshake probe ran"
        yield _finding(
            "TLS-SCAN-INCOMPLETE",
            Severity.LOW,
            title,
            "scan",
            "; ".join(facts.incomplete),
            "Check that the server answers every handshake promptly; rerun the scan.",
        )
