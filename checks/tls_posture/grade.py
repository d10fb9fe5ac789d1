"""A letter grade after the SSL Labs Server Rating Guide (2009r) and its announced changes.

Score = protocol 30 % + key exchange 30 % + cipher strength 40 %, each the average of the
best and the worst; A >= 80, B >= 65, C >= 50, D >= 35, E >= 20, else F. Then caps
(README "TLS grade" lists each with its source): the letter is the worst of the score's
letter and every cap. Warnings are caps at A-: an A with warnings is A-. A+ is an A
(so: no warnings) with HSTS of at least the policy's minimum age, from a complete scan.
T replaces the letter for a chain that cannot be trusted (unknown root, self-signed,
expired, not yet valid, SHA-1, revoked), M for a name mismatch; `trust_letter` keeps the
letter the server would have without that.

What could not be determined is left out, never counted as "no": the grade is then
`provisional` and `undetermined` says what it could not take into account. A provisional
grade is computed from what was determined; the check keeps reporting the last complete
grade until a complete scan replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checks.tls_posture.ciphers import Weakness, forward_secret, is_aead, weaknesses
from checks.tls_posture.facts import (
    LEGACY_PROTOCOLS,
    MODERN_PROTOCOLS,
    CertFacts,
    Suite,
    TlsPostureRaw,
    TlsVersion,
    untrusted_reason,
)

PROTOCOL_SCORES = {
    TlsVersion.SSL_2_0: 0,
    TlsVersion.SSL_3_0: 80,
    TlsVersion.TLS_1_0: 90,
    TlsVersion.TLS_1_1: 95,
    TlsVersion.TLS_1_2: 100,
    TlsVersion.TLS_1_3: 100,
}
_LETTERS = ((80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"))
ORDER = ("A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M")


@dataclass(frozen=True, slots=True)
class Cap:
    """The best letter a server can get while `reason` holds (A- for a warning)."""

    letter: str
    reason: str


@dataclass(frozen=True, slots=True)
class Grade:
    letter: str  # A+, A, A-, B, C, D, E, F, T, M
    score: int
    protocol_score: int
    key_exchange_score: int
    cipher_score: int
    caps: tuple[Cap, ...]
    provisional: bool = False
    undetermined: tuple[str, ...] = ()
    trust_letter: str | None = None  # the letter without the T / M replacement

    def to_json(self) -> dict[str, Any]:
        return {
            "letter": self.letter,
            "score": self.score,
            "components": {
                "protocol": self.protocol_score,
                "key_exchange": self.key_exchange_score,
                "cipher": self.cipher_score,
            },
            "caps": [{"letter": cap.letter, "reason": cap.reason} for cap in self.caps],
            "provisional": self.provisional,
            "undetermined": list(self.undetermined),
            "trust_letter": self.trust_letter,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grade:
        components = data["components"]
        return cls(
            letter=data["letter"],
            score=int(data["score"]),
            protocol_score=int(components["protocol"]),
            key_exchange_score=int(components["key_exchange"]),
            cipher_score=int(components["cipher"]),
            caps=tuple(Cap(c["letter"], c["reason"]) for c in data["caps"]),
            provisional=bool(data["provisional"]),
            undetermined=tuple(data.get("undetermined", ())),
            trust_letter=data.get("trust_letter"),
        )

    def explain(self) -> str:
        """One line: letter, score and its parts, every cap."""
        parts = (
            f"{self.letter}{' (provisional)' if self.provisional else ''}: score {self.score} "
            f"(protocol {self.protocol_score}, key exchange {self.key_exchange_score}, "
            f"cipher {self.cipher_score})"
        )
        if self.caps:
            parts += "; caps: " + "; ".join(f"{c.letter} {c.reason}" for c in self.caps)
        if self.undetermined:
            parts += "; not determined: " + ", ".join(self.undetermined)
        return parts


def worse(first: str, second: str) -> str:
    return first if ORDER.index(first) >= ORDER.index(second) else second


def grade(facts: TlsPostureRaw, hsts_min_age_seconds: int) -> Grade:
    undetermined = _undetermined(facts)
    offered = [p.protocol for p in facts.protocols if p.supported]
    suites = facts.accepted_suites()
    if not offered or not suites:
        cap = Cap("F", "no cipher suite could be negotiated")
        return Grade("F", 0, 0, 0, 0, (cap,), bool(undetermined), undetermined)
    protocol_score = round(
        (max(PROTOCOL_SCORES[p] for p in offered) + min(PROTOCOL_SCORES[p] for p in offered)) / 2
    )
    kex_score = min(_key_exchange_score(facts, protocol, suite) for protocol, suite in suites)
    strengths = [_cipher_score(suite.key_size) for _, suite in suites]
    cipher_score = round((max(strengths) + min(strengths)) / 2)
    score = round(0.3 * protocol_score + 0.3 * kex_score + 0.4 * cipher_score)
    letter = next((letter for floor, letter in _LETTERS if score >= floor), "F")
    caps = [*_protocol_caps(facts, offered, suites), *_cipher_caps(facts, suites)]
    caps += [*_certificate_caps(facts), *_implementation_caps(facts), *_warnings(facts, suites)]
    for cap in caps:
        if cap.letter not in ("T", "M"):
            letter = worse(letter, cap.letter)
    provisional = bool(undetermined)
    hsts_long = facts.hsts_max_age is not None and facts.hsts_max_age >= hsts_min_age_seconds
    if letter == "A" and hsts_long and not provisional:
        letter = "A+"
    trust = [cap.letter for cap in caps if cap.letter in ("T", "M")]
    if trust:
        final = "T" if "T" in trust else "M"
        return Grade(
            final, score, protocol_score, kex_score, cipher_score, tuple(caps),
            provisional, undetermined, letter,
        )  # fmt: skip
    return Grade(
        letter, score, protocol_score, kex_score, cipher_score, tuple(caps),
        provisional, undetermined,
    )  # fmt: skip


def _undetermined(facts: TlsPostureRaw) -> tuple[str, ...]:
    missing = [str(p.protocol) for p in facts.protocols if p.supported is None]
    missing += [str(p) for p in TlsVersion if p not in {s.protocol for s in facts.protocols}]
    if facts.certificate is None:
        missing.append("certificate")
    elif facts.certificate.trusted is None:
        missing.append("certificate trust")
    for name, value in (
        ("Heartbleed", facts.heartbleed),
        ("ROBOT", None if facts.robot in (None, "unknown") else facts.robot),
        ("CCS injection", facts.ccs_injection),
        ("compression", facts.compression),
        ("secure renegotiation", facts.secure_renegotiation),
        ("client renegotiation", facts.client_renegotiation),
    ):
        if value is None:
            missing.append(name)
    return tuple(missing)


def _protocol_caps(
    facts: TlsPostureRaw, offered: list[TlsVersion], suites: list[tuple[TlsVersion, Suite]]
) -> list[Cap]:
    caps = []
    if TlsVersion.SSL_2_0 in offered:
        caps.append(Cap("F", "SSL 2.0 offered"))
    if TlsVersion.SSL_3_0 in offered:
        if all(
            facts.protocol(p).supported is False for p in (*LEGACY_PROTOCOLS[2:], *MODERN_PROTOCOLS)
        ):
            caps.append(Cap("F", "SSL 3.0 is the best protocol offered (POODLE)"))
        elif any(Weakness.CBC in weaknesses(s) for p, s in suites if p is TlsVersion.SSL_3_0):
            caps.append(Cap("C", "SSL 3.0 with CBC suites (POODLE)"))
        else:
            caps.append(Cap("B", "SSL 3.0 offered"))
    if all(facts.protocol(p).supported is False for p in MODERN_PROTOCOLS):
        caps.append(Cap("C", "no TLS 1.2 or 1.3"))
    for protocol in (TlsVersion.TLS_1_0, TlsVersion.TLS_1_1):
        if protocol in offered:
            caps.append(Cap("B", f"{protocol} offered"))
    if facts.fallback_scsv is False and any(p in offered for p in LEGACY_PROTOCOLS):
        caps.append(Cap("A-", "no TLS_FALLBACK_SCSV while older protocols are offered"))
    return caps


def _cipher_caps(facts: TlsPostureRaw, suites: list[tuple[TlsVersion, Suite]]) -> list[Cap]:
    caps = []
    found = {weakness for _, suite in suites for weakness in weaknesses(suite)}
    if found & {Weakness.NULL, Weakness.ANONYMOUS}:
        caps.append(Cap("F", "NULL or anonymous cipher suites"))
    if Weakness.EXPORT in found:
        caps.append(Cap("F", "EXPORT cipher suites"))
    if Weakness.DES in found:
        caps.append(Cap("F", "cipher suites weaker than 112 bits (DES)"))
    modern = [s for p, s in suites if p in (TlsVersion.TLS_1_1, *MODERN_PROTOCOLS)]
    if any(Weakness.RC4 in weaknesses(s) for s in modern):
        caps.append(Cap("C", "RC4 with TLS 1.1 or newer"))
    elif Weakness.RC4 in found:
        caps.append(Cap("B", "RC4 offered"))
    if any(Weakness.TRIPLE_DES in weaknesses(s) for s in modern):
        caps.append(Cap("C", "3DES (64-bit block, Sweet32) with TLS 1.1 or newer"))
    if not any(forward_secret(protocol, suite) for protocol, suite in suites):
        caps.append(Cap("B", "no forward secrecy"))
    if not any(is_aead(suite) for _, suite in suites):
        caps.append(Cap("A-", "no AEAD cipher suite"))
    dh_sizes = [s.ephemeral_size or 0 for _, s in suites if s.ephemeral_kind == "DH"]
    if dh_sizes and min(dh_sizes) < 1024:
        caps.append(Cap("F", f"DH parameters of {min(dh_sizes)} bits (below 1024)"))
    elif dh_sizes and min(dh_sizes) < 2048:
        caps.append(Cap("B", f"DH parameters of {min(dh_sizes)} bits (below 2048)"))
    return caps


def _certificate_caps(facts: TlsPostureRaw) -> list[Cap]:
    certificate = facts.certificate
    if certificate is None and not facts.fallback_probe:
        # an unread certificate must not let an untrusted one escape T
        return [Cap("T", "certificate could not be read: trust not determined")]
    if certificate is None or not certificate.chain:
        return []
    caps = []
    leaf = certificate.chain[0]
    caps += _key_caps(leaf)
    if certificate.trusted is False and not certificate.chain_incomplete:
        caps.append(Cap("T", f"certificate not trusted ({untrusted_reason(certificate)})"))
    elif certificate.trusted is None:
        # read but not judged: as with an unread one, an untrusted chain must not escape T
        caps.append(Cap("T", "certificate trust not determined"))
    if certificate.ocsp_status == "revoked":
        caps.append(Cap("T", "certificate revoked"))
    if certificate.chain_incomplete:
        caps.append(Cap("B", "incomplete chain (the server does not send its intermediate)"))
    if certificate.hostname_matches is False:
        caps.append(Cap("M", f"certificate does not match {facts.server_name}"))
    return caps


def _key_caps(leaf: CertFacts) -> list[Cap]:
    key = f"{leaf.key_type} certificate key of {leaf.key_size} bits"
    if leaf.key_type in ("RSA", "DSA", "DH") and leaf.key_size < 1024:
        return [Cap("F", key)]
    if leaf.key_type == "EC" and leaf.key_size < 160:
        return [Cap("F", key)]
    if leaf.key_type in ("RSA", "DSA", "DH") and leaf.key_size < 2048:
        return [Cap("B", key + " (below 2048)")]
    return []


def _implementation_caps(facts: TlsPostureRaw) -> list[Cap]:
    caps = []
    if facts.heartbleed:
        caps.append(Cap("F", "Heartbleed"))
    if facts.robot == "vulnerable_strong":
        caps.append(Cap("F", "ROBOT (strong oracle)"))
    elif facts.robot == "vulnerable_weak":
        caps.append(Cap("F", "ROBOT (weak oracle)"))
    if facts.ccs_injection:
        caps.append(Cap("F", "OpenSSL CCS injection"))
    if facts.secure_renegotiation is False:
        caps.append(Cap("F", "insecure renegotiation"))
    if facts.compression:
        caps.append(Cap("C", "TLS compression (CRIME)"))
    if facts.client_renegotiation:
        caps.append(Cap("A-", "client-initiated renegotiation accepted"))
    return caps


def _warnings(facts: TlsPostureRaw, suites: list[tuple[TlsVersion, Suite]]) -> list[Cap]:
    caps = []
    if facts.protocol(TlsVersion.TLS_1_3).supported is False:
        caps.append(Cap("A-", "no TLS 1.3"))
    certificate = facts.certificate
    if certificate is not None and certificate.sha1_in_chain and certificate.trusted:
        caps.append(Cap("A-", "SHA-1 signature in the sent chain"))
    return caps


def _key_exchange_score(facts: TlsPostureRaw, protocol: TlsVersion, suite: Suite) -> int:
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
