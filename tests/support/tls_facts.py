"""TlsPostureRaw for tests of tls_posture's judgement: `clean()` is a Mozilla-intermediate server
with HSTS, the baseline a test bends one way (`clean(hsts_max_age=None)`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from checks.tls_posture.facts import (
    CertFacts,
    ChainFacts,
    ProtocolSupport,
    Suite,
    TlsPostureRaw,
    TlsVersion,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
GCM = Suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 128, ephemeral_kind="ECDH", ephemeral_size=253)
GCM256 = Suite(
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 256, ephemeral_kind="ECDH", ephemeral_size=253
)
TLS13 = Suite("TLS_AES_256_GCM_SHA384", 256, ephemeral_kind="ECDH", ephemeral_size=253)
LEAF = CertFacts(
    subject="CN=api.test",
    issuer="CN=CA",
    serial="1",
    sha256="ab" * 32,
    key_type="RSA",
    key_size=2048,
    signature_hash="sha256",
    not_before=NOW - timedelta(days=10),
    not_after=NOW + timedelta(days=80),
    self_signed=False,
)


def clean(**changes: object) -> TlsPostureRaw:
    """A Mozilla-intermediate server with HSTS: the baseline every test bends one way."""
    facts = TlsPostureRaw(
        endpoint="api.test:443",
        server_name="api.test",
        address="127.0.0.1",
        protocols=(
            ProtocolSupport(TlsVersion.SSL_2_0, False),
            ProtocolSupport(TlsVersion.SSL_3_0, False),
            ProtocolSupport(TlsVersion.TLS_1_0, False),
            ProtocolSupport(TlsVersion.TLS_1_1, False),
            ProtocolSupport(TlsVersion.TLS_1_2, True, suites=(GCM, GCM256)),
            ProtocolSupport(TlsVersion.TLS_1_3, True, suites=(TLS13,)),
        ),
        certificate=ChainFacts(
            chain=(LEAF,),
            trusted=True,
            validation_error=None,
            hostname_matches=True,
            sha1_in_chain=False,
            ocsp_status=None,
        ),
        compression=False,
        secure_renegotiation=True,
        client_renegotiation=False,
        fallback_scsv=True,
        heartbleed=False,
        robot="not_vulnerable",
        ccs_injection=False,
        early_data=False,
        extended_master_secret=True,
        curves=("X25519", "secp256r1"),
        hsts_max_age=31536000,
        hsts_checked=True,
        mozilla_profile="intermediate",
        mozilla_deviations=(),
    )
    return replace(facts, **changes)  # type: ignore[arg-type]
