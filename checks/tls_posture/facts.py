"""Raw data of a TLS posture scan, as plain facts: what sslyze (or the fallback probe) saw.

`None` always means "could not determine", never "no". These types are what `evaluate`
judges and what tests record as fixtures (`to_json` / `from_json`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class TlsVersion(StrEnum):
    SSL_2_0 = "SSLv2"
    SSL_3_0 = "SSLv3"
    TLS_1_0 = "TLSv1.0"
    TLS_1_1 = "TLSv1.1"
    TLS_1_2 = "TLSv1.2"
    TLS_1_3 = "TLSv1.3"


LEGACY_PROTOCOLS = (TlsVersion.SSL_2_0, TlsVersion.SSL_3_0, TlsVersion.TLS_1_0, TlsVersion.TLS_1_1)
MODERN_PROTOCOLS = (TlsVersion.TLS_1_2, TlsVersion.TLS_1_3)


@dataclass(frozen=True, slots=True)
class Suite:
    """An accepted cipher suite (IANA name) and the key exchange it negotiated."""

    name: str
    key_size: int  # symmetric key bits (0 for NULL)
    anonymous: bool = False
    ephemeral_kind: str | None = None  # "DH", "ECDH" or None (static RSA, TLS 1.3 unknown)
    ephemeral_size: int | None = None  # DH prime bits or EC curve bits
    curve: str | None = None


@dataclass(frozen=True, slots=True)
class ProtocolSupport:
    """`supported` None = could not determine; `suites` are the accepted ones."""

    protocol: TlsVersion
    supported: bool | None
    suites: tuple[Suite, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CertFacts:
    """One certificate of a `ChainFacts` chain."""

    subject: str
    issuer: str
    serial: str
    sha256: str
    key_type: str  # RSA, EC, Ed25519, DSA ...
    key_size: int
    signature_hash: str | None  # sha256, sha1 ... (None for Ed25519)
    not_before: datetime
    not_after: datetime
    self_signed: bool


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """The chain served, and the validator's word on it (trust, hostname, OCSP)."""

    chain: tuple[CertFacts, ...]  # as received, leaf first
    trusted: bool | None  # validates against the trust stores in use
    validation_error: str | None
    hostname_matches: bool | None
    sha1_in_chain: bool | None  # a SHA-1 signature in the verified (or received) chain
    ocsp_status: str | None  # "good", "revoked", "unknown", None when nothing stapled
    trust_stores: tuple[str, ...] = ()
    # the validator's reason in words (expired, self-signed, unknown root ...), with dates
    untrusted_because: str | None = None
    # the leaf's issuer is missing from the sent chain, and the leaf says where to fetch it
    chain_incomplete: bool | None = None


def untrusted_reason(certificate: ChainFacts) -> str:
    """Why the chain is not trusted: the validator's words, else the shape of the chain."""
    if certificate.untrusted_because:
        return certificate.untrusted_because
    error = (certificate.validation_error or "").lower()
    chain = certificate.chain
    if "not valid at validation time" in error or "expired" in error:
        return "expired or not yet valid"
    if "signature algorithm" in error:
        return "forbidden signature algorithm"
    if not chain:
        return "no certificate"
    if len(chain) == 1 and chain[0].self_signed:
        return "self-signed"
    if chain[-1].self_signed:
        return "unknown root"
    if certificate.chain_incomplete or len(chain) == 1:
        return "incomplete chain"
    return "unknown root"


@dataclass(frozen=True, slots=True)
class TlsPostureRaw:
    """Everything one scan learned. Empty `incomplete` means every question was answered."""

    endpoint: str
    server_name: str
    address: str
    protocols: tuple[ProtocolSupport, ...]
    certificate: ChainFacts | None = None
    compression: bool | None = None
    secure_renegotiation: bool | None = None
    client_renegotiation: bool | None = None
    fallback_scsv: bool | None = None
    heartbleed: bool | None = None
    robot: str | None = None  # "vulnerable_strong", "vulnerable_weak", "not_vulnerable", "unknown"
    ccs_injection: bool | None = None
    early_data: bool | None = None
    extended_master_secret: bool | None = None
    curves: tuple[str, ...] | None = None
    hsts_max_age: int | None = None
    hsts_checked: bool = False  # False: the HTTP headers could not be read
    mozilla_profile: str | None = None
    mozilla_deviations: tuple[str, ...] | None = None  # None: could not be judged
    incomplete: tuple[str, ...] = ()  # "what could not be determined: why"
    fallback_probe: bool = False  # sslyze could not connect; a bare handshake probe filled in
    # the grade of the newest complete scan before this one (Grade.to_json()), from the store
    last_complete_grade: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def protocol(self, protocol: TlsVersion) -> ProtocolSupport:
        for support in self.protocols:
            if support.protocol is protocol:
                return support
        return ProtocolSupport(protocol, None, error="not tested")

    def accepted_suites(self) -> list[tuple[TlsVersion, Suite]]:
        return [(p.protocol, suite) for p in self.protocols for suite in p.suites]

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = _jsonable(asdict(self))
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TlsPostureRaw:
        certificate = data.get("certificate")
        return cls(
            **{
                **data,
                "protocols": tuple(
                    ProtocolSupport(
                        protocol=TlsVersion(p["protocol"]),
                        supported=p["supported"],
                        suites=tuple(Suite(**s) for s in p["suites"]),
                        error=p["error"],
                    )
                    for p in data["protocols"]
                ),
                "certificate": (
                    ChainFacts(
                        **{
                            **certificate,
                            "chain": tuple(
                                CertFacts(
                                    **{
                                        **c,
                                        "not_before": datetime.fromisoformat(c["not_before"]),
                                        "not_after": datetime.fromisoformat(c["not_after"]),
                                    }
                                )
                                for c in certificate["chain"]
                            ),
                            "trust_stores": tuple(certificate["trust_stores"]),
                        }
                    )
                    if certificate
                    else None
                ),
                "curves": tuple(data["curves"]) if data.get("curves") is not None else None,
                "mozilla_deviations": (
                    tuple(data["mozilla_deviations"])
                    if data.get("mozilla_deviations") is not None
                    else None
                ),
                "incomplete": tuple(data.get("incomplete", ())),
            }
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value
