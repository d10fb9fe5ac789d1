"""The pure parts of auth_posture, on recorded answers and spec files: what counts as a
refusal, a login redirect, an error envelope or a leak; parameters from examples and
defaults; operations that cannot be probed are skipped and counted, never guessed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from checks.auth_posture.classify import Answer, answer, error_envelope, leak, login_redirect
from checks.auth_posture.discovery import audit_discovery, issuer_of
from checks.auth_posture.evaluate import evaluate
from checks.auth_posture.facts import (
    AuthPostureRaw,
    Discovery,
    Exchange,
    FetchedDocument,
    OperationProbe,
    SkipReason,
    Variant,
)
from checks.auth_posture.jwks import audit_key_set
from checks.auth_posture.params import AuthPostureParams
from checks.auth_posture.probes import Budget, ProbeSettings, probe_operations
from checks.auth_posture.spec import read_spec_path
from checks.egress import EgressPolicy
from checks.interface import CheckContext
from tests.support.jwk_keys import rsa_jwk, rsa_key, x5c

pytestmark = pytest.mark.unit

PARAMS = AuthPostureParams(jwks_url="https://idp.example/jwks")
NOW = datetime(2026, 12, 7, tzinfo=UTC)


def got(
    status: int | None, body: bytes = b"", variant: Variant = Variant.ANONYMOUS, **headers: str
) -> Exchange:
    return Exchange(variant, "GET", status, tuple(headers.items()), body)


@pytest.mark.parametrize(
    ("location", "login"),
    [
        ("/login?next=/account", True),
        ("https://sso.corp.example/start", True),
        ("/oauth2/authorize?client_id=x", True),
        ("/account/", False),
        ("/authors", False),
    ],
)
def test_a_redirect_is_a_refusal_only_when_it_goes_to_a_login(location: str, login: bool) -> None:
    exchange = got(302, Location=location)

    assert login_redirect(exchange) is login
    assert answer(exchange) is (Answer.REFUSED if login else Answer.INCONCLUSIVE)


@pytest.mark.parametrize(
    ("body", "envelope"),
    [
        (b'{"error": "unauthorized"}', True),
        (b'{"success": false, "data": null}', True),
        (b"<html>Please log in to continue</html>", True),
        (b'{"items": [], "total": 0}', False),
        (b"", False),
    ],
)
def test_a_2xx_error_envelope_is_a_refusal_and_anything_else_an_acceptance(
    body: bytes, envelope: bool
) -> None:
    assert error_envelope(body) is envelope
    assert answer(got(200, body)) is (Answer.REFUSED if envelope else Answer.ACCEPTED)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_401_403_and_404_are_refusals(status: int) -> None:
    assert answer(got(status)) is Answer.REFUSED


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(400, Answer.INCONCLUSIVE), (500, Answer.INCONCLUSIVE), (None, Answer.NO_ANSWER)],
)
def test_other_answers_prove_nothing_either_way(status: int | None, verdict: Answer) -> None:
    assert answer(got(status)) is verdict


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b"Error\n    at com.acme.auth.JwtFilter.doFilter(JwtFilter.java:88)\n", "stack trace"),
        (b'{"message": "io.jsonwebtoken.ExpiredJwtException: JWT expired"}', "exception name"),
        (b'{"error": "invalid_token", "detail": "signature verification failed"}', "token failed"),
        (b'{"error": "user not found"}', "account exists"),
    ],
)
def test_an_auth_error_body_that_says_too_much_is_a_leak(body: bytes, shown: str) -> None:
    assert shown in (leak(got(401, body)) or "")


def test_the_scheme_error_code_alone_is_no_leak() -> None:
    assert leak(got(401, b'{"error": "invalid_token", "error_description": "expired"}')) is None
    assert leak(got(200, b"Traceback (most recent call last)")) is None  # not a refusal


def raw(*probes: OperationProbe) -> AuthPostureRaw:
    return AuthPostureRaw(
        target="t", spec_probed=True, secured_operations=len(probes), probes=probes
    )


def test_an_inconclusive_answer_is_skipped_counted_and_reported_not_called_enforced() -> None:
    output = evaluate(
        raw(OperationProbe("GET /a", "http://x/a", (got(400, b"bad id"),))), PARAMS, NOW
    )

    observed = {o.labels["state"]: o.value for o in output.observations}
    assert observed == {"enforced": 0, "not_enforced": 0, "skipped": 1}
    (finding,) = [f for f in output.findings if f.rule_id == "AUTH-OPERATIONS-UNVERIFIED"]
    assert finding.subject == "inconclusive"
    assert "GET without credentials answered 400" in finding.evidence


def test_a_refusal_then_a_400_for_the_invalid_token_is_enforced() -> None:
    probe = OperationProbe(
        "GET /a",
        "http://x/a",
        (
            Exchange(Variant.ANONYMOUS, "GET", 401, (("WWW-Authenticate", "Bearer"),)),
            got(400, variant=Variant.INVALID_TOKEN),
        ),
    )

    output = evaluate(raw(probe), PARAMS, NOW)

    assert {o.labels["state"]: o.value for o in output.observations}["enforced"] == 1
    assert {f.rule_id for f in output.findings} == {"RATELIMIT-HEADERS-ABSENT"}


def test_the_similarity_threshold_decides_between_a_public_stub_and_the_real_answer() -> None:
    real = json.dumps([{"id": i, "owner": "alice"} for i in range(30)]).encode()
    stub = b'{"items": []}'

    def judged(anonymous: bytes) -> dict[str, Any]:
        probe = OperationProbe(
            "GET /a", "http://x/a", (got(200, anonymous), got(200, real, Variant.VALID))
        )
        return (evaluate(raw(probe), PARAMS, NOW).snapshot or {})["operations"]["GET /a"]

    assert judged(stub)["state"] == "enforced"
    assert judged(stub)["public_stub"] is True
    assert judged(real[:-40] + b"]")["state"] == "not_enforced"


def write_spec(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_parameters_come_from_examples_and_defaults_and_the_operations_own_definition_wins(
    tmp_path: Path,
) -> None:
    spec = write_spec(
        tmp_path / "openapi.json",
        {
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "security": [{"k": []}],
            "components": {
                "securitySchemes": {"k": {"type": "apiKey", "in": "header", "name": "X-Key"}},
                "parameters": {
                    "Tenant": {
                        "name": "tenant",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "default": "acme"},
                    }
                },
            },
            "paths": {
                "/t/{tenant}/items/{item}": {
                    "parameters": [
                        {"$ref": "#/components/parameters/Tenant"},
                        {"name": "item", "in": "path", "required": True, "example": "shared"},
                    ],
                    "get": {
                        "parameters": [
                            {
                                "name": "item",
                                "in": "path",
                                "required": True,
                                "examples": {"a": {"value": 7}},
                            },
                            {
                                "name": "q",
                                "in": "query",
                                "required": True,
                                "schema": {"examples": ["x y"]},
                            },
                            {"name": "page", "in": "query", "schema": {"type": "integer"}},
                        ],
                        "responses": {"200": {"description": "ok"}},
                    },
                },
                "/t/{tenant}/raw/{blob}": {
                    "get": {
                        "parameters": [
                            {"$ref": "#/components/parameters/Tenant"},
                            {"name": "blob", "in": "path", "required": True},
                        ],
                        "responses": {"200": {"description": "ok"}},
                    }
                },
            },
        },
    )
    facts = read_spec_path(spec, 1024 * 1024)
    context = CheckContext(started_at=NOW, deadline=time.monotonic() + 10, egress=EgressPolicy())

    probes, skipped, _ = probe_operations(
        facts, ProbeSettings("https://api.example/base", None, True, 1.0), Budget(0), context
    )

    assert facts.examples["GET /t/{}/items/{}"] == {
        ("path", "tenant"): "acme",
        ("path", "item"): "7",
        ("query", "q"): "x y",
    }
    assert probes == ()
    assert {(s.key, s.reason) for s in skipped} == {
        ("GET /t/{}/items/{}", SkipReason.BUDGET),  # it had a URL; no budget left to send it
        ("GET /t/{}/raw/{}", SkipReason.NO_EXAMPLE),
    }
    (no_example,) = [s for s in skipped if s.reason is SkipReason.NO_EXAMPLE]
    assert no_example.detail == "no example or default for path parameter blob"


def test_an_operation_path_that_leaves_the_targets_origin_is_never_requested(
    tmp_path: Path,
) -> None:
    spec = write_spec(
        tmp_path / "openapi.json",
        {
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "security": [{"k": []}],
            "components": {"securitySchemes": {"k": {"type": "http", "scheme": "bearer"}}},
            "paths": {
                "//evil.example/steal": {"get": {"responses": {"200": {"description": "ok"}}}}
            },
        },
    )
    context = CheckContext(started_at=NOW, deadline=time.monotonic() + 10, egress=EgressPolicy())

    probes, skipped, _ = probe_operations(
        read_spec_path(spec, 1024 * 1024),
        ProbeSettings("https://api.example", None, True, 1.0),
        Budget(100),
        context,
    )

    assert probes == ()
    assert [(s.key, s.reason) for s in skipped] == [
        ("GET //evil.example/steal", SkipReason.NOT_ON_TARGET)
    ]


def test_an_x5c_certificate_close_to_expiry_raises_its_severity_like_cert_expiry() -> None:
    key = rsa_key()

    def severity(days_left: float) -> str | None:
        chain = x5c(key, NOW - timedelta(days=10), NOW + timedelta(days=days_left))
        audit = audit_key_set("u", {"keys": [rsa_jwk(key, kid="k", x5c=chain)]}, PARAMS, NOW, {})
        found = [f.severity for f in audit.findings if f.rule_id.startswith("JWKS-X5C-")]
        return found[0].value if found else None

    assert severity(60) is None
    assert severity(20) == "medium"
    assert severity(3) == "high"
    assert severity(-1) == "high"  # expired: JWKS-X5C-EXPIRED


def test_a_set_mixing_signing_and_encryption_keys_needs_use_on_every_key() -> None:
    keys = [
        rsa_jwk(rsa_key(), kid="s", use="sig"),
        rsa_jwk(rsa_key(), kid="e", use="enc"),
        rsa_jwk(rsa_key(), kid="n"),
    ]

    audit = audit_key_set("u", {"keys": keys}, PARAMS, NOW, {})

    assert [(f.rule_id, f.subject) for f in audit.findings] == [("JWKS-USE-INCONSISTENT", "use")]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give a spec (spec or spec_path), jwks_url or oidc_issuer"),
        ({"spec": "a.json", "spec_path": "/a.json"}, "give spec or spec_path, not both"),
        ({"jwks_url": "https://x/j", "rate_limit_burst": {"path": "/s"}}, "needs the spec"),
        ({"spec_path": "/o", "rate_limit_burst": {"path": "/items/{id}"}}, "plain path"),
        ({"spec_path": "/o", "max_requests": 0}, "greater than or equal to 1"),
    ],
)
def test_a_config_that_cannot_work_is_refused_with_the_reason(
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AuthPostureParams.model_validate(params)


@pytest.mark.parametrize(
    ("url", "issuer"),
    [
        (
            "https://idp.example/realms/a/.well-known/openid-configuration",
            "https://idp.example/realms/a",
        ),
        (
            "https://idp.example/.well-known/oauth-authorization-server/tenant1",
            "https://idp.example/tenant1",
        ),
        ("https://idp.example/metadata.json", None),
    ],
)
def test_the_issuer_a_metadata_url_belongs_to(url: str, issuer: str | None) -> None:
    assert issuer_of(url) == issuer


def test_a_metadata_url_of_no_known_form_is_not_called_an_issuer_mismatch() -> None:
    document = {"issuer": "https://idp.example", "jwks_uri": "https://idp.example/keys"}
    fetched = FetchedDocument("https://idp.example/metadata.json", document)

    assert audit_discovery(Discovery(fetched, issuer_of(fetched.url))) == []


def test_refused_monitor_credentials_are_reported_and_the_open_operation_still_is() -> None:
    probe = OperationProbe(
        "GET /a", "http://x/a", (got(200, b"[1, 2]"), got(401, b"", Variant.VALID))
    )

    output = evaluate(raw(probe), PARAMS, NOW)

    rules = {(f.rule_id, f.subject): f for f in output.findings}
    assert ("AUTH-NOT-ENFORCED", "GET /a") in rules
    assert "so the answers cannot be compared" in rules[("AUTH-NOT-ENFORCED", "GET /a")].evidence
    rejected = rules[("AUTH-CREDENTIALS-REJECTED", "auth_header_file")]
    assert "GET /a: GET with the configured credentials answered 401" in rejected.evidence


def test_an_html_page_where_the_spec_documents_json_is_unverified_not_an_open_operation() -> None:
    page = b"<!doctype html><html><body><div id=app></div></body></html>"

    def output_for(answer_type: str, documented: tuple[str, ...]) -> Any:
        exchanges = (
            got(200, page, **{"Content-Type": answer_type}),
            got(200, page, Variant.INVALID_TOKEN, **{"Content-Type": answer_type}),
        )
        probe = OperationProbe("GET /orders", "http://x/orders", exchanges, documented)
        return evaluate(raw(probe), PARAMS, NOW)

    catch_all = output_for("text/html; charset=utf-8", ("application/json",))
    assert "AUTH-NOT-ENFORCED" not in {f.rule_id for f in catch_all.findings}
    (unverified,) = [f for f in catch_all.findings if f.rule_id == "AUTH-OPERATIONS-UNVERIFIED"]
    assert unverified.subject == "catch_all_page"
    assert "auth_header_file" in unverified.evidence
    assert "text/html" in unverified.evidence
    # the same page is an open operation where the spec says the operation answers HTML,
    # or says nothing about what it answers
    for documented in (("text/html",), ()):
        rules = {f.rule_id for f in output_for("text/html", documented).findings}
        assert "AUTH-NOT-ENFORCED" in rules


def test_the_documented_answer_media_types_are_read_from_the_spec(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "openapi.json",
        {
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "security": [{"k": []}],
            "components": {
                "securitySchemes": {"k": {"type": "http", "scheme": "bearer"}},
                "responses": {"Orders": {"content": {"application/json; charset=utf-8": {}}}},
            },
            "paths": {
                "/orders": {
                    "get": {
                        "responses": {
                            "200": {"$ref": "#/components/responses/Orders"},
                            "206": {"content": {"application/problem+json": {}}},
                            "404": {"content": {"text/html": {}}},
                        }
                    }
                },
                "/page": {"get": {"responses": {"200": {"description": "no content"}}}},
            },
        },
    )

    facts = read_spec_path(spec, 1_000_000)

    assert facts.answer_media_types == {
        "GET /orders": ("application/json", "application/problem+json"),
        "GET /page": (),
    }


@pytest.mark.parametrize(
    "fetched",
    [
        FetchedDocument("https://idp.example/jwks", error="answered HTTP 503"),
        FetchedDocument("https://idp.example/jwks", document={"keys": "not a list"}),
        FetchedDocument("https://idp.example/jwks", document=["not", "an", "object"]),
    ],
)
def test_a_key_set_that_cannot_be_read_forgets_no_key_ages(fetched: FetchedDocument) -> None:
    seen = {"thumb": NOW - timedelta(days=200)}
    raw_run = AuthPostureRaw("idp", jwks=(fetched,), key_first_seen=seen)

    snapshot = evaluate(raw_run, PARAMS, NOW).snapshot or {}

    assert snapshot["key_first_seen"] == {"thumb": (NOW - timedelta(days=200)).isoformat()}
