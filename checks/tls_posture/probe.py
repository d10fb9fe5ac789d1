"""A bare handshake probe for servers sslyze cannot connect to (NULL-only, DH < 1024 only).

It tries each protocol with cipher families that modern OpenSSL only offers at security
level 0, and records what the server accepts, or the exact refusal.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass, field

from checks.interface import CheckContext
from checks.tls_posture.facts import Suite, TlsVersion

_VERSIONS = {
    TlsVersion.TLS_1_0: ssl.TLSVersion.TLSv1,
    TlsVersion.TLS_1_1: ssl.TLSVersion.TLSv1_1,
    TlsVersion.TLS_1_2: ssl.TLSVersion.TLSv1_2,
}
_FAMILIES = {
    "NULL": "eNULL:NULL:@SECLEVEL=0",
    "DHE": "kDHE:kEDH:@SECLEVEL=0",
    "any": "ALL:COMPLEMENTOFALL:@SECLEVEL=0",
}
# OpenSSL names -> IANA names for what the probe can negotiate
_IANA_PREFIX = {"NULL-": "TLS_RSA_WITH_NULL_", "ECDHE-RSA-NULL-": "TLS_ECDHE_RSA_WITH_NULL_"}


@dataclass
class ProbeResult:
    accepted: dict[TlsVersion, tuple[Suite, ...]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)


def probe_handshakes(
    address: str, port: int, server_name: str, context: CheckContext, timeout: float
) -> ProbeResult:
    """Try each protocol and cipher family; stop at once if the server does not answer."""
    result = ProbeResult()
    for protocol, version in _VERSIONS.items():
        found: list[Suite] = []
        for family, ciphers in _FAMILIES.items():
            outcome = _handshake(address, port, server_name, version, ciphers, context, timeout)
            if isinstance(outcome, Suite):
                if outcome not in found:
                    found.append(outcome)
            elif outcome and no_answer(outcome):
                result.refusals.append(f"{protocol} {family}: {outcome}")
                return result
            elif outcome and family != "any":
                result.refusals.append(f"{protocol} {family}: {outcome}")
        if found:
            result.accepted[protocol] = tuple(found)
    return result


def _handshake(
    address: str,
    port: int,
    server_name: str,
    version: ssl.TLSVersion,
    ciphers: str,
    context: CheckContext,
    timeout: float,
) -> Suite | str | None:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # legacy versions are deprecated: probing them is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            tls.minimum_version = version
            tls.maximum_version = version
        tls.set_ciphers(ciphers)
    except (ssl.SSLError, ValueError):
        return None  # this OpenSSL cannot offer that combination at all
    try:
        with (
            socket.create_connection((address, port), timeout=context.io_timeout(timeout)) as raw,
            tls.wrap_socket(raw, server_hostname=server_name) as conn,
        ):
            negotiated = conn.cipher()
    except ssl.SSLError as error:
        return error.reason or str(error)
    except OSError as error:
        return f"connection failed: {error.strerror or error}"
    if negotiated is None:
        return None
    name, _, bits = negotiated
    return Suite(
        name=_iana(name), key_size=int(bits or 0), anonymous="ADH" in name or "AECDH" in name
    )


def _iana(openssl_name: str) -> str:
    for prefix, iana in _IANA_PREFIX.items():
        if openssl_name.startswith(prefix):
            return iana + openssl_name[len(prefix) :].replace("-", "_")
    return openssl_name


def dh_too_small(refusal: str) -> bool:
    """The server chose a DH group this client refuses as too small (< 1024 bits here)."""
    return "dh key too small" in refusal.lower().replace("_", " ")


def no_answer(refusal: str) -> bool:
    """The server never answered (timeout, refused connection), as opposed to a TLS refusal."""
    text = refusal.lower()
    return "timed out" in text or "connection failed" in text
