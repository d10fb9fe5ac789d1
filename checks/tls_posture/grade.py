"""A letter grade after the published SSL Labs Server Rating Guide.

Implemented: score = protocol 30 % + key exchange 30 % + cipher strength 40 %, each the
average of best and worst; A >= 80, B >= 65, C >= 50, D >= 35, E >= 20, else F.
Caps: no TLS 1.2+ -> C; RC4, 3DES or DES with TLS 1.1+ -> C; TLS compression -> C;
SSL 3.0, TLS 1.0 or 1.1 -> B; no forward secrecy -> B; no AEAD -> B; DH < 2048 -> B;
SSL 2, NULL, EXPORT or anonymous suites, Heartbleed, ROBOT, CCS injection, insecure
renegotiation, DH < 1024, a certificate key below RSA 2048 / EC 256 bits -> F.
T replaces the letter for an untrusted chain or a revoked certificate, M for a name
mismatch. A+ needs an A, HSTS of at least the policy's minimum age and no finding above
info.

Unknown is never "no": a protocol whose support could not be determined counts as
supported, and a vulnerability test that could not run counts as vulnerable, so a
partial scan never grades better than a complete one would.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.tls_posture.ciphers import Weakness, forward_secret, is_aead, weaknesses
from checks.tls_posture.facts import MODERN_PROTOCOLS, Protocol, Suite, TlsFacts

PROTOCOL_SCORES = {
    Protocol.SSL_2_0: 0,
    Protocol.SSL_3_0: 80,
    Protocol.TLS_1_0: 90,
    Protocol.TLS_1_1: 95,
    Protocol.TLS_1_2: 100,
    Protocol.TLS_1_3: 100,
}
_LETTERS = ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"))
_ORDER = "ABCDEF"


@dataclass(frozen=True, slots=True)
class Grade:
    letter: str  # A+, A, B, C, D, E, F, T, M
    score: int
    capped_by: tuple[str, ...]


def grade(facts: TlsFacts, hsts_min_age_seconds: int, has_findings_above_info: bool) -> Grade:
    assumed = [p.protocol for p in facts.protocols if p.supported is not False]
    suites = facts.accepted_suites()
    if not assumed or not suites:
        return Grade("F", 0, ("no cipher suite could be negotiated or determined",))
    protocol_score = (
        max(PROTOCOL_SCORES[p] for p in assumed) + min(PROTOCOL_SCORES[p] for p in assumed)
    ) / 2
    kex_score = min(_key_exchange_score(facts, protocol, suite) for protocol, suite in suites)
    strengths = [_cipher_score(suite.key_size) for _, suite in suites]
    cipher_score = (max(strengths) + min(strengths)) / 2
    score = round(0.3 * protocol_score + 0.3 * kex_score + 0.4 * cipher_score)
    letter = next((letter for floor, letter in _LETTERS if score >= floor), "F")
    caps = _caps(facts, assumed, suites)
    for cap_letter, _ in caps:
        if _ORDER.index(cap_letter) > _ORDER.index(letter):
            letter = cap_letter
    certificate = facts.certificate
    if certificate is not None and (
        certificate.trusted is False or certificate.ocsp_status == "revoked"
    ):
        letter = "T"
    elif certificate is not None and certificate.hostname_matches is False:
        letter = "M"
    elif (
        letter == "A"
        and facts.hsts_max_age is not None
        and facts.hsts_max_age >= hsts_min_age_seconds
        and not has_findings_above_info
        and not facts.incomplete
    ):
        letter = "A+"
    return Grade(letter, score, tuple(reason for _, reason in caps))


def _caps(
    facts: TlsFacts, assumed: list[Protocol], suites: list[tuple[Protocol, Suite]]
) -> list[tuple[str, str]]:
    caps: list[tuple[str, str]] = []
    found = {weakness for _, suite in suites for weakness in weaknesses(suite)}
    if not any(p in assumed for p in MODERN_PROTOCOLS):
        caps.append(("C", "no TLS 1.2 or 1.3"))
    modern_weak = any(
        weaknesses(suite) & {Weakness.RC4, Weakness.TRIPLE_DES, Weakness.DES}
        for protocol, suite in suites
        if protocol not in (Protocol.SSL_2_0, Protocol.SSL_3_0, Protocol.TLS_1_0)
    )
    if modern_weak:
        caps.append(("C", "RC4 or a 64-bit block cipher (3DES, DES) with TLS 1.1 or newer"))
    if facts.compression:
        caps.append(("C", "TLS compression (CRIME)"))
    if any(p in assumed for p in (Protocol.SSL_3_0, Protocol.TLS_1_0, Protocol.TLS_1_1)):
        caps.append(("B", "SSL 3.0, TLS 1.0 or TLS 1.1 enabled"))
    if not any(forward_secret(protocol, suite) for protocol, suite in suites):
        caps.append(("B", "no forward secrecy"))
    if not any(is_aead(suite) for _, suite in suites):
        caps.append(("B", "no AEAD cipher suite"))
    if Protocol.SSL_2_0 in assumed:
        caps.append(("F", "SSL 2.0 enabled"))
    if found & {Weakness.NULL, Weakness.EXPORT, Weakness.ANONYMOUS}:
        caps.append(("F", "NULL, EXPORT or anonymous cipher suites"))
    if facts.heartbleed is not False:
        caps.append(("F", "Heartbleed" if facts.heartbleed else "Heartbleed not tested"))
    if facts.robot in ("vulnerable_strong", "vulnerable_weak") or facts.robot is None:
        caps.append(("F", "ROBOT" if facts.robot else "ROBOT not tested"))
    if facts.ccs_injection is not False:
        caps.append(("F", "CCS injection" if facts.ccs_injection else "CCS injection not tested"))
    if facts.secure_renegotiation is False:
        caps.append(("F", "insecure renegotiation"))
    dh_sizes = [s.ephemeral_size or 0 for _, s in suites if s.ephemeral_kind == "DH"]
    if dh_sizes and min(dh_sizes) < 1024:
        caps.append(("F", "DH parameters below 1024 bits"))
    elif dh_sizes and min(dh_sizes) < 2048:
        caps.append(("B", "DH parameters below 2048 bits"))
    leaf = facts.certificate.chain[0] if facts.certificate and facts.certificate.chain else None
    if leaf is not None and (
        (leaf.key_type == "RSA" and leaf.key_size < 2048)
        or (leaf.key_type == "EC" and leaf.key_size < 256)
    ):
        caps.append(("F", f"{leaf.key_type} certificate key of {leaf.key_size} bits"))
    return caps


def _key_exchange_score(facts: TlsFacts, protocol: Protocol, suite: Suite) -> int:
    if suite.anonymous:
        return 0
    if suite.ephemeral_kind == "DH" and suite.ephemeral_size:
        bits = suite.ephemeral_size
    elif suite.ephemeral_kind == "ECDH" and suite.ephemeral_size:
        bits = _ec_rsa_equivalent(suite.ephemeral_size)
    elif forward_secret(protocol, suite):
        bits = 3072  # (EC)DHE whose parameters were not reported: a 256-bit curve
    else:
        leaf = facts.certificate.chain[0] if facts.certificate and facts.certificate.chain else None
        bits = leaf.key_size if leaf and leaf.key_type == "RSA" else 2048
    for limit, score in ((512, 20), (1024, 40), (2048, 80), (4096, 90)):
        if bits < limit:
            return score
    return 100


def _ec_rsa_equivalent(curve_bits: int) -> int:
    for limit, rsa_bits in ((160, 512), (224, 1024), (256, 2048), (384, 3072), (512, 7680)):
        if curve_bits < limit:
            return rsa_bits
    return 15360


def _cipher_score(key_size: int) -> int:
    if key_size == 0:
        return 0
    if key_size < 128:
        return 20
    if key_size < 256:
        return 80
    return 100
