"""auth_posture's token-key audit against real HTTPS servers on 127.0.0.1: a JWK Set with
each bad key shape (keys and certificates made here with cryptography), an OpenID Provider
whose discovery document names another issuer, found through the spec's openIdConnectUrl."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, x448, x25519

from checks.auth_posture.params import AuthPostureParams
from checks.egress import EgressPolicy
from checks.interface import CheckContext
from checks.registry import create_check
from monitor.certmaker import write_server_files
from monitor.model import CheckKind, CheckOutput, Target
from tests.support.auth_servers import Answer, RecordingServer, Seen
from tests.support.chains import Chain
from tests.support.jwk_keys import b64, ec_jwk, ed_jwk, rsa_jwk, rsa_key, x5c

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def bad_key_set() -> dict[str, Any]:
    """One key per bad shape, plus two sound keys that must raise nothing."""
    signer, other = rsa_key(), rsa_key()
    old = rsa_key()
    return {
        "keys": [
            rsa_jwk(rsa_key(1024), kid="rsa-1024", alg="RS256", use="sig"),
            rsa_jwk(rsa_key(), private=True, kid="rsa-private", alg="RS256", use="sig"),
            {"kty": "oct", "k": "c2VjcmV0LXNpZ25pbmcta2V5", "kid": "hmac", "alg": "HS256"},
            ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256", kid="ec-none", alg="none"),
            ec_jwk(ec.generate_private_key(ec.SECP256K1()), "secp256k1", kid="k1", alg="ES256K"),
            ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256", kid="dup", alg="ES256"),
            ec_jwk(ec.generate_private_key(ec.SECP256R1()), "P-256", kid="dup", alg="ES256"),
            rsa_jwk(rsa_key(), kid="crossed", use="sig", key_ops=["encrypt"]),
            rsa_jwk(rsa_key(), kid="ec-alg-on-rsa", alg="ES256"),
            rsa_jwk(
                signer,
                kid="x5c-expired",
                x5c=x5c(signer, NOW - timedelta(days=90), NOW - timedelta(days=1)),
            ),
            rsa_jwk(
                signer,
                kid="x5c-soon",
                x5c=x5c(signer, NOW - timedelta(days=30), NOW + timedelta(days=10)),
            ),
            rsa_jwk(
                signer,
                kid="x5c-other",
                x5c=x5c(other, NOW - timedelta(days=1), NOW + timedelta(days=300)),
            ),
            rsa_jwk(
                old, kid="old", x5c=x5c(old, NOW - timedelta(days=400), NOW + timedelta(days=300))
            ),
            ed_jwk(ed25519.Ed25519PrivateKey.generate()),  # no kid in a multi-key set
            ed_jwk(ed25519.Ed25519PrivateKey.generate(), kid="good-ed", alg="Ed25519", use="sig"),
            ec_jwk(ec.generate_private_key(ec.SECP384R1()), "P-384", kid="good-ec", alg="ES384"),
        ]
    }


@pytest.fixture
def tls(tmp_path: Path, chain: Chain) -> tuple[tuple[Path, Path], Path]:
    """A certificate for 127.0.0.1 and the CA file that verifies it."""
    cert, key = write_server_files(
        tmp_path / "tls", "idp", chain.leaf("127.0.0.1"), chain.intermediate
    )
    ca = tmp_path / "tls" / "ca.pem"
    ca.write_bytes(chain.root.pem)
    return (cert, key), ca


Documents = dict[str, Callable[[str], Any]]  # path -> (server url -> JSON document)


@pytest.fixture
def idp(tls: tuple[tuple[Path, Path], Path]) -> Iterator[tuple[RecordingServer, Documents]]:
    documents: Documents = {}

    def route(seen: Seen) -> Answer:
        make = documents.get(seen.path)
        if make is None or seen.method != "GET":
            return Answer(404)
        body = json.dumps(make(server.url)).encode()
        return Answer(200, {"Content-Type": "application/json"}, body)

    with RecordingServer(route, tls=tls[0]) as server:
        yield server, documents


def scan(params: dict[str, Any], url: str | None = None) -> CheckOutput:
    model = AuthPostureParams.model_validate(params)
    context = CheckContext(started_at=NOW, deadline=time.monotonic() + 60, egress=EgressPolicy())
    return create_check(CheckKind.AUTH_POSTURE).run(Target("idp", url=url), model, context)


def findings(output: CheckOutput) -> set[tuple[str, str]]:
    return {(f.rule_id, f.subject) for f in output.findings}


def test_every_bad_key_shape_in_a_jwk_set_is_its_own_finding(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path]
) -> None:
    server, documents = idp
    key_set = bad_key_set()
    documents["/jwks.json"] = lambda _url: key_set

    output = scan({"jwks_url": f"{server.url}/jwks.json", "ca_file": str(tls[1])})

    assert findings(output) == {
        ("JWKS-WEAK-KEY", "kid=rsa-1024"),
        ("JWKS-PRIVATE-KEY-EXPOSED", "kid=rsa-private"),
        ("JWKS-SYMMETRIC-KEY", "kid=hmac"),
        ("JWKS-ALG-NOT-ALLOWED", "kid=hmac"),
        ("JWKS-ALG-NOT-ALLOWED", "kid=ec-none"),
        ("JWKS-CURVE-NOT-ALLOWED", "kid=k1"),
        ("JWKS-DUPLICATE-KID", "kid=dup"),
        ("JWKS-USE-INCONSISTENT", "kid=crossed"),
        ("JWKS-ALG-MISMATCH", "kid=ec-alg-on-rsa"),
        ("JWKS-X5C-EXPIRED", "kid=x5c-expired"),
        ("JWKS-X5C-EXPIRES-SOON", "kid=x5c-soon"),
        ("JWKS-X5C-KEY-MISMATCH", "kid=x5c-other"),
        ("JWKS-ROTATION-STALE", "kid=old"),
        ("JWKS-MISSING-KID", "kid"),
    }
    by_key = {(f.rule_id, f.subject): f for f in output.findings}
    assert "RSA modulus of 1024 bits" in by_key[("JWKS-WEAK-KEY", "kid=rsa-1024")].evidence
    assert "d, p, q, dp, dq, qi" in by_key[("JWKS-PRIVATE-KEY-EXPOSED", "kid=rsa-private")].evidence
    assert by_key[("JWKS-PRIVATE-KEY-EXPOSED", "kid=rsa-private")].severity == "critical"
    assert by_key[("JWKS-SYMMETRIC-KEY", "kid=hmac")].severity == "critical"
    assert "curve secp256k1" in by_key[("JWKS-CURVE-NOT-ALLOWED", "kid=k1")].evidence
    assert by_key[("JWKS-CURVE-NOT-ALLOWED", "kid=k1")].severity == "low"  # allowed, not weak
    assert by_key[("JWKS-X5C-EXPIRES-SOON", "kid=x5c-soon")].severity == "medium"  # 10 days
    ages = {
        o.labels["kid"]: o.value for o in output.observations if o.name == "jwks_key_age_seconds"
    }
    assert ages["old"] == pytest.approx(timedelta(days=400).total_seconds(), abs=5)
    assert ages["good-ed"] == 0
    algs = {o.labels["alg"]: o.value for o in output.observations if o.name == "jwks_keys"}
    assert algs == {
        "ES256": 3,  # dup, dup and the RSA key that claims ES256
        "ES256K": 1,
        "ES384": 1,
        "Ed25519": 1,
        "HS256": 1,
        "RS256": 2,
        "none": 1,
        "unspecified": 6,
    }


def test_a_sound_key_set_over_https_raises_nothing(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path]
) -> None:
    server, documents = idp
    key = rsa_key()
    documents["/jwks.json"] = lambda _url: {
        "keys": [
            rsa_jwk(
                key, kid="a", alg="RS256", use="sig", x5c=x5c(key, NOW, NOW + timedelta(days=365))
            ),
            ed_jwk(ed25519.Ed25519PrivateKey.generate(), kid="b", alg="Ed25519", use="sig"),
        ]
    }

    output = scan({"jwks_url": f"{server.url}/jwks.json", "ca_file": str(tls[1])})

    assert findings(output) == set()


def test_discovery_named_by_the_spec_with_another_issuer_plain_endpoints_and_alg_none(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path], tmp_path: Path
) -> None:
    server, documents = idp
    documents["/.well-known/openid-configuration"] = lambda url: {
        "issuer": "https://login.example.test",
        "authorization_endpoint": f"{url}/authorize",
        "token_endpoint": f"{url}/token",
        "userinfo_endpoint": f"http://127.0.0.1:{server.port}/userinfo",
        "jwks_uri": f"{url}/keys",
        "id_token_signing_alg_values_supported": ["RS256", "none"],
    }
    key = rsa_key()
    documents["/keys"] = lambda _url: {"keys": [rsa_jwk(key, kid="k", alg="RS256", use="sig")]}
    spec = tmp_path / "openapi.json"
    spec.write_text(
        json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "Shop", "version": "1"},
                "components": {
                    "securitySchemes": {
                        "oidc": {
                            "type": "openIdConnect",
                            "openIdConnectUrl": f"{server.url}/.well-known/openid-configuration",
                        }
                    }
                },
                "paths": {},
            }
        )
    )

    output = scan({"spec": str(spec), "probe_operations": False, "ca_file": str(tls[1])})

    discovery = f"{server.url}/.well-known/openid-configuration"
    assert findings(output) == {
        ("OIDC-ISSUER-MISMATCH", discovery),
        ("OIDC-ENDPOINT-NOT-HTTPS", f"{discovery} userinfo_endpoint"),
        ("OIDC-ALG-NONE-ADVERTISED", f"{discovery} id_token_signing_alg_values_supported"),
    }
    mismatch = next(f for f in output.findings if f.rule_id == "OIDC-ISSUER-MISMATCH")
    assert f"expected '{server.url}'" in mismatch.evidence
    # the keys were found through the discovery document and audited
    assert [s.path for s in server.requests] == ["/.well-known/openid-configuration", "/keys"]
    assert {o.labels["alg"]: o.value for o in output.observations if o.name == "jwks_keys"} == {
        "RS256": 1
    }


def test_an_unreachable_or_plain_http_jwk_set_is_a_finding_not_a_silent_pass() -> None:
    with RecordingServer(lambda seen: Answer(503)) as server:
        output = scan({"jwks_url": f"{server.url}/jwks.json"})

    subject = f"{server.url}/jwks.json"
    assert findings(output) == {("JWKS-NOT-HTTPS", subject), ("JWKS-UNREACHABLE", subject)}
    unreachable = next(f for f in output.findings if f.rule_id == "JWKS-UNREACHABLE")
    assert "HTTP 503" in unreachable.evidence


def test_urls_from_remote_documents_pass_the_egress_policy_and_a_denial_is_reported() -> None:
    metadata = "http://169.254.169.254/latest/keys"
    discovery = {"issuer": "ISSUER", "jwks_uri": metadata}

    def route(seen: Seen) -> Answer:
        document = {**discovery, "issuer": f"http://127.0.0.1:{server.port}"}
        return Answer(200, {"Content-Type": "application/json"}, json.dumps(document).encode())

    with RecordingServer(route) as server:
        output = scan({"oidc_issuer": server.url})

    by_rule = {f.rule_id: f for f in output.findings}
    assert by_rule["JWKS-UNREACHABLE"].subject == metadata
    assert "denied by policy: link-local/cloud metadata" in by_rule["JWKS-UNREACHABLE"].evidence
    assert [s.path for s in server.requests] == ["/.well-known/openid-configuration"]


def okp_jwk(public_raw: bytes, crv: str, **members: Any) -> dict[str, Any]:
    return {"kty": "OKP", "crv": crv, "x": b64(int.from_bytes(public_raw, "big"))} | members


def test_registered_strong_curves_are_not_weak_keys(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path]
) -> None:
    server, documents = idp
    documents["/jwks.json"] = lambda _url: {
        "keys": [
            okp_jwk(
                x448.X448PrivateKey.generate().public_key().public_bytes_raw(),
                "X448",
                kid="enc-x448",
                use="enc",
                alg="ECDH-ES",
            ),
            okp_jwk(
                x25519.X25519PrivateKey.generate().public_key().public_bytes_raw(),
                "X25519",
                kid="enc-x25519",
                use="enc",
                alg="ECDH-ES",
            ),
            okp_jwk(
                ed448.Ed448PrivateKey.generate().public_key().public_bytes_raw(),
                "Ed448",
                kid="sig-ed448",
                use="sig",
                alg="Ed448",
            ),
            ec_jwk(
                ec.generate_private_key(ec.SECP256K1()),
                "secp256k1",
                kid="k1",
                alg="ES256K",
                use="sig",
            ),
            ec_jwk(
                ec.generate_private_key(ec.SECP192R1()), "P-192", kid="p192", alg="ES256", use="sig"
            ),
        ]
    }

    output = scan({"jwks_url": f"{server.url}/jwks.json", "ca_file": str(tls[1])})

    assert findings(output) == {
        ("JWKS-CURVE-NOT-ALLOWED", "kid=k1"),  # low: a policy choice, not a weakness
        ("JWKS-WEAK-KEY", "kid=p192"),
        ("JWKS-ALG-MISMATCH", "kid=p192"),
        ("JWKS-KEY-UNREADABLE", "kid=p192"),  # joserfc reads no P-192
    }


def test_key_age_series_are_capped_unique_and_short_whatever_kids_the_server_sends(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path]
) -> None:
    server, documents = idp
    long_kid = "k" * 300
    documents["/jwks.json"] = lambda _url: {
        "keys": [
            ed_jwk(ed25519.Ed25519PrivateKey.generate(), kid=f"{i:02d}-{long_kid}", alg=f"X-{i}")
            for i in range(25)
        ]
        + [ed_jwk(ed25519.Ed25519PrivateKey.generate(), kid="twice", alg="Ed25519")] * 2
    }

    output = scan({"jwks_url": f"{server.url}/jwks.json", "ca_file": str(tls[1])})

    ages = [o.labels for o in output.observations if o.name == "jwks_key_age_seconds"]
    assert len(ages) == 20
    assert len({label["kid"] for label in ages}) == 20  # no two series share a label set
    assert max(len(label["kid"]) for label in ages) == 64
    assert output.findings  # JWKS-ALG-MISMATCH for the X-i algs: named by the cut kid too
    assert max(len(f.subject) for f in output.findings) == len("kid=") + 64
    assert all(long_kid not in f.evidence for f in output.findings)
    algs = {o.labels["alg"]: o.value for o in output.observations if o.name == "jwks_keys"}
    assert algs == {"other": 25, "Ed25519": 2}
    assert output.snapshot is not None
    assert output.snapshot["key_age_series_dropped"] == 6  # 25 long kids and "twice"


def spec_naming(tmp_path: Path, discovery: str) -> Path:
    spec = tmp_path / "openapi.json"
    schemes = {"oidc": {"type": "openIdConnect", "openIdConnectUrl": discovery}}
    spec.write_text(
        json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "Shop", "version": "1"},
                "components": {"securitySchemes": schemes},
                "paths": {},
            }
        )
    )
    return spec


def test_a_real_world_discovery_document_with_a_final_slash_issuer_and_extra_fields_is_clean(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path], tmp_path: Path
) -> None:
    server, documents = idp
    documents["/.well-known/openid-configuration"] = lambda url: {
        "issuer": f"{url}/",  # as Auth0 publishes it: the URL alone cannot say
        "authorization_endpoint": f"{url}/authorize",
        "token_endpoint": f"{url}/oauth/token",
        "jwks_uri": f"{url}/keys",
        "kerberos_endpoint": f"{url}/kerberos",
        "mtls_endpoint_aliases": {"token_endpoint": f"{url}/mtls/token"},
        "msgraph_host": "graph.example.test",
        "cloud_instance_name": "example.test",
        "claims_supported": ["sub", "iss"],
        "frontchannel_logout_supported": True,
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }
    key = rsa_key()
    documents["/keys"] = lambda _url: {"keys": [rsa_jwk(key, kid="k", alg="RS256", use="sig")]}
    spec = spec_naming(tmp_path, f"{server.url}/.well-known/openid-configuration")

    output = scan({"spec": str(spec), "probe_operations": False, "ca_file": str(tls[1])})

    assert findings(output) == set()


def test_a_configured_issuer_must_match_the_discovery_document_exactly(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path]
) -> None:
    server, documents = idp
    documents["/.well-known/openid-configuration"] = lambda url: {
        "issuer": f"{url}/",
        "jwks_uri": f"{url}/keys",
    }
    key = rsa_key()
    documents["/keys"] = lambda _url: {"keys": [rsa_jwk(key, kid="k", alg="RS256", use="sig")]}

    output = scan({"oidc_issuer": server.url, "ca_file": str(tls[1])})

    assert findings(output) == {
        ("OIDC-ISSUER-MISMATCH", f"{server.url}/.well-known/openid-configuration")
    }


def test_a_jwk_set_without_keys_is_a_finding_not_a_clean_pass(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path]
) -> None:
    server, documents = idp
    documents["/jwks.json"] = lambda _url: {"keys": []}

    output = scan({"jwks_url": f"{server.url}/jwks.json", "ca_file": str(tls[1])})

    assert {(f.rule_id, f.severity.value) for f in output.findings} == {("JWKS-EMPTY", "high")}


def test_a_jwk_set_that_is_not_a_keys_object_is_a_finding(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path]
) -> None:
    server, documents = idp
    documents["/jwks.json"] = lambda _url: [{"kty": "RSA"}]  # a bare array of keys

    output = scan({"jwks_url": f"{server.url}/jwks.json", "ca_file": str(tls[1])})

    (invalid,) = output.findings
    assert (invalid.rule_id, invalid.severity.value) == ("JWKS-INVALID", "high")
    assert "answered list, not {'keys': [...]}" in invalid.evidence


def test_a_discovery_document_that_cannot_be_read_or_names_no_keys_is_a_finding(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path]
) -> None:
    server, documents = idp
    discovery = f"{server.url}/.well-known/openid-configuration"

    missing = scan({"oidc_issuer": server.url, "ca_file": str(tls[1])})
    documents["/.well-known/openid-configuration"] = lambda url: {"issuer": url}
    keyless = scan({"oidc_issuer": server.url, "ca_file": str(tls[1])})

    assert [(f.rule_id, f.subject) for f in missing.findings] == [
        ("OIDC-DISCOVERY-UNREADABLE", discovery)
    ]
    assert "answered HTTP 404" in missing.findings[0].evidence
    assert [(f.rule_id, f.subject) for f in keyless.findings] == [
        ("OIDC-DISCOVERY-UNREADABLE", discovery)
    ]
    assert "jwks_uri is missing" in keyless.findings[0].evidence


def test_every_provider_the_spec_names_has_its_keys_audited(
    idp: tuple[RecordingServer, Documents], tls: tuple[tuple[Path, Path], Path], tmp_path: Path
) -> None:
    server, documents = idp
    staff, customers = rsa_key(), rsa_key()
    for tenant in ("staff", "customers"):
        documents[f"/{tenant}/.well-known/openid-configuration"] = lambda url, t=tenant: {
            "issuer": f"{url}/{t}",
            "jwks_uri": f"{url}/{t}/keys",
        }
    documents["/staff/keys"] = lambda _url: {"keys": [rsa_jwk(staff, kid="s", alg="RS256")]}
    documents["/customers/keys"] = lambda _url: {
        "keys": [rsa_jwk(customers, private=True, kid="c", alg="RS256")]
    }
    spec = tmp_path / "openapi.json"
    schemes = {
        tenant: {
            "type": "openIdConnect",
            "openIdConnectUrl": f"{server.url}/{tenant}/.well-known/openid-configuration",
        }
        for tenant in ("staff", "customers")
    }
    spec.write_text(
        json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "Shop", "version": "1"},
                "components": {"securitySchemes": schemes},
                "paths": {},
            }
        )
    )

    output = scan({"spec": str(spec), "probe_operations": False, "ca_file": str(tls[1])})

    assert findings(output) == {("JWKS-PRIVATE-KEY-EXPOSED", "kid=c")}
    assert output.snapshot is not None
    assert output.snapshot["jwks_urls"] == [
        f"{server.url}/staff/keys",
        f"{server.url}/customers/keys",
    ]
    ages = {o.labels["kid"] for o in output.observations if o.name == "jwks_key_age_seconds"}
    assert ages == {"s", "c"}
