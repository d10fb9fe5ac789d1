"""sslyze result objects -> plain facts. No I/O; kept apart so collect stays readable."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.ocsp import OCSPCertStatus, OCSPResponseStatus
from cryptography.x509.oid import AuthorityInformationAccessOID

from checks.network import is_ip_literal
from checks.tls_posture.facts import CertFacts, ChainFacts, ProtocolSupport, Suite, TlsVersion

_TIMEOUT_WORDS = ("timed out", "timeout")


def protocol_support(protocol: TlsVersion, result: Any) -> ProtocolSupport:
    """Accepted suites of one protocol; a timeout-only rejection means "could not determine"."""
    if result is None:
        return ProtocolSupport(protocol, None, error="scan command failed")
    suites = tuple(_suite(accepted) for accepted in result.accepted_cipher_suites)
    if suites:
        return ProtocolSupport(protocol, True, suites=suites)
    timeouts = [
        rejected.error_message
        for rejected in result.rejected_cipher_suites
        if any(word in rejected.error_message.lower() for word in _TIMEOUT_WORDS)
    ]
    if timeouts:
        return ProtocolSupport(
            protocol, None, error=f"{len(timeouts)} handshake(s) timed out: {timeouts[0]}"
        )
    return ProtocolSupport(protocol, False)


def _suite(accepted: Any) -> Suite:
    suite = accepted.cipher_suite
    key = accepted.ephemeral_key
    kind = None
    size = None
    curve = None
    if key is not None:
        type_name = str(getattr(key, "type_name", "")).upper()
        kind = "DH" if type_name == "DH" else "ECDH"
        size = int(key.size)
        curve = getattr(key, "curve_name", None)
    return Suite(
        name=suite.name,
        key_size=int(suite.key_size),
        anonymous=bool(suite.is_anonymous),
        ephemeral_kind=kind,
        ephemeral_size=size,
        curve=curve,
    )


def chain_facts(
    result: Any, server_name: str, trust_store: Path | None, now: datetime | None = None
) -> ChainFacts | None:
    if result is None or not result.certificate_deployments:
        return None
    deployment = result.certificate_deployments[0]
    received = list(deployment.received_certificate_chain)
    chain = tuple(cert_facts(certificate) for certificate in received)
    validations = list(deployment.path_validation_results)
    leaf = received[0] if received else None
    matches = hostname_matches(leaf, server_name) if leaf is not None else None
    if leaf is not None and matches is False:
        # sslyze validates trust and name in one step: judge trust again under the name the
        # certificate was issued for, so a wrong name does not hide an untrusted chain
        validations = [_without_name(v, received, leaf) for v in validations]
    if trust_store is not None:  # the user's store speaks first
        validations.sort(key=lambda v: Path(v.trust_store.path) != trust_store)
    trusted = any(v.was_validation_successful for v in validations) if validations else None
    errors = [v.validation_error for v in validations if v.validation_error]
    sha1 = deployment.verified_chain_has_sha1_signature
    if sha1 is None:  # no verified chain: judge what was sent, roots excluded
        sha1 = any(c.signature_hash == "sha1" for c in chain if not c.self_signed)
    incomplete = _issuer_missing(received) if trusted is False else False
    return ChainFacts(
        chain=chain,
        trusted=trusted,
        validation_error=errors[0] if errors and not trusted else None,
        hostname_matches=matches,
        sha1_in_chain=sha1,
        ocsp_status=_ocsp_status(deployment.ocsp_response),
        trust_stores=tuple(v.trust_store.name for v in validations)
        + ((str(trust_store),) if trust_store and not validations else ()),
        untrusted_because=(
            _untrusted_because(chain, errors, now or datetime.now(UTC))
            if trusted is False
            else None
        ),
        chain_incomplete=incomplete,
    )


def _without_name(validation: Any, received: list[x509.Certificate], leaf: x509.Certificate) -> Any:
    if validation.was_validation_successful or not _name_error(validation.validation_error or ""):
        return validation
    subject = _own_name(leaf)
    if subject is None:
        return validation
    pems = [c.public_bytes(Encoding.PEM).decode("ascii") for c in received]
    return validation.trust_store.verify_certificate_chain(pems, subject)


def _own_name(certificate: x509.Certificate) -> x509.DNSName | x509.IPAddress | None:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for name in san:
        if isinstance(name, x509.DNSName) and not name.value.startswith("*."):
            return name
        if isinstance(name, x509.IPAddress):
            return name
    return None


def _untrusted_because(chain: tuple[CertFacts, ...], errors: list[str], now: datetime) -> str:
    """The precise reason, in the order a browser would name it."""
    for position, cert in enumerate(chain):
        which = "certificate" if position == 0 else f"chain certificate {cert.subject}"
        if cert.not_after < now:
            return f"expired: {which} not valid after {cert.not_after:%Y-%m-%d %H:%M} UTC"
        if cert.not_before > now:
            return f"not yet valid: {which} not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC"
    message = " ".join(errors).lower()
    if "signature algorithm" in message or any(
        c.signature_hash in ("sha1", "md5") for c in chain if not c.self_signed
    ):
        return "forbidden signature algorithm (SHA-1)"
    if chain and len(chain) == 1 and chain[0].self_signed:
        return "self-signed"
    if chain and len(chain) == 1 and not chain[0].self_signed:
        return "incomplete chain"
    return "unknown root"


def _issuer_missing(received: list[x509.Certificate]) -> bool:
    """The last certificate sent is not a root, its issuer was not sent, and it names a URL
    (AIA caIssuers) where clients that complete chains fetch the issuer."""
    if not received:
        return False
    last = received[-1]
    if last.subject == last.issuer or any(c.subject == last.issuer for c in received):
        return False
    try:
        aia = last.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return False
    return any(d.access_method == AuthorityInformationAccessOID.CA_ISSUERS for d in aia)


def _name_error(message: str) -> bool:
    return "subjectaltname" in message.lower() or "hostname" in message.lower()


def cert_facts(certificate: x509.Certificate) -> CertFacts:
    key = certificate.public_key()
    key_type, key_size = _key_description(key)
    try:
        algorithm = certificate.signature_hash_algorithm
        signature_hash = algorithm.name if algorithm is not None else None
    except Exception:
        signature_hash = None
    return CertFacts(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial=format(certificate.serial_number, "x"),
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        key_type=key_type,
        key_size=key_size,
        signature_hash=signature_hash,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        self_signed=certificate.subject == certificate.issuer,
    )


def _key_description(key: Any) -> tuple[str, int]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, 0


def hostname_matches(certificate: x509.Certificate, name: str) -> bool:
    """RFC 6125 matching against the SAN (CN only when there is no SAN); one-label wildcards."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if is_ip_literal(name):
        wanted = ipaddress.ip_address(name)
        return san is not None and wanted in san.get_values_for_type(x509.IPAddress)
    if san is not None:
        names = san.get_values_for_type(x509.DNSName)
    else:
        names = [
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        ]
    return any(_dns_match(pattern, name) for pattern in names)


def _dns_match(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def _ocsp_status(response: Any) -> str | None:
    if response is None:
        return None
    if response.response_status is not OCSPResponseStatus.SUCCESSFUL:
        return "unknown"
    status = response.certificate_status
    return {
        OCSPCertStatus.GOOD: "good",
        OCSPCertStatus.REVOKED: "revoked",
    }.get(status, "unknown")


def robot_status(result: Any) -> str | None:
    if result is None:
        return None
    value = str(result.robot_result.value)
    return {
        "VULNERABLE_STRONG_ORACLE": "vulnerable_strong",
        "VULNERABLE_WEAK_ORACLE": "vulnerable_weak",
        "NOT_VULNERABLE_NO_ORACLE": "not_vulnerable",
        "NOT_VULNERABLE_RSA_NOT_SUPPORTED": "not_vulnerable",
    }.get(value, "unknown")


def curves(result: Any) -> tuple[str, ...] | None:
    if result is None:
        return None
    return tuple(curve.name for curve in (result.supported_curves or ()))


def hsts_max_age(result: Any) -> int | None:
    header = result.strict_transport_security_header
    if header is None:
        return None
    return int(header.max_age or 0)
