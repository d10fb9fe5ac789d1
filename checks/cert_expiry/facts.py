"""Raw data of a cert_expiry run: what was served where, as plain facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from checks.plaintext import NoTls


class ChainPosition(StrEnum):
    LEAF = "leaf"
    INTERMEDIATE = "intermediate"
    ROOT = "root"


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    sha256: str
    position: ChainPosition

    @property
    def label(self) -> str:
        """Stable, readable identity: subject plus the start of the SHA-256 fingerprint."""
        return f"{self.subject} sha256:{self.sha256[:16]}"


@dataclass(frozen=True, slots=True)
class CertificateSource:
    """Certificates served at one address (`address` is an IP) or read from one file."""

    address: str
    certificates: tuple[CertificateFacts, ...]

    @property
    def leaf(self) -> CertificateFacts | None:
        return self.certificates[0] if self.certificates else None


@dataclass(frozen=True, slots=True)
class AddressFailure:
    address: str
    reason: str


@dataclass(frozen=True, slots=True)
class CertExpiryRaw:
    endpoint: str | None
    server_name: str | None
    served: tuple[CertificateSource, ...]
    unreachable: tuple[AddressFailure, ...]
    files: tuple[CertificateSource, ...]
    no_tls: NoTls | None = None  # the target URL is plain http://: nothing served to read


def certificate_facts(certificate: x509.Certificate, index: int) -> CertificateFacts:
    """Facts of the certificate at `index` of a chain (0 is the leaf)."""
    subject_name, issuer_name = certificate.subject, certificate.issuer  # each call parses
    subject = subject_name.rfc4514_string() or "(empty subject)"
    issuer = issuer_name.rfc4514_string() or "(empty issuer)"
    if index == 0:
        position = ChainPosition.LEAF
    elif subject_name == issuer_name:
        position = ChainPosition.ROOT
    else:
        position = ChainPosition.INTERMEDIATE
    return CertificateFacts(
        subject=subject,
        issuer=issuer,
        serial=format(certificate.serial_number, "x"),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        position=position,
    )
