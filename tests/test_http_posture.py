"""http_posture against real local HTTP(S) apps: every rule family, both grades, and the
safety limits (budget, safe methods only, no credentials across origins), asserted on what
the servers logged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.posture_scans import grade, rules, run, score
from tests.support.posture_servers import API_HEADERS, JSON, PostureApp, Route
from tests.support.tls_certs import TestPki
from tests.support.tls_servers import NginxBlock, NginxTls

pytestmark = pytest.mark.integration

SAFE = {"GET", "HEAD", "OPTIONS"}
ELSEWHERE = "https://elsewhere.example/.well-known/security.txt"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("posture-pki"), host="127.0.0.1")


def security_txt(expires: datetime, extra: str = "") -> Route:
    text = f"Contact: mailto:security@example.com\nExpires: {expires.isoformat()}\n{extra}"
    return Route(200, [("Content-Type", "text/plain; charset=utf-8")], text.encode())


@pytest.fixture
def https_app(pki: TestPki) -> Iterator[PostureApp]:
    cert = pki.good()
    hsts = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    routes = {
        "/": Route(200, [*API_HEADERS, hsts]),
        "/.well-known/security.txt": security_txt(datetime.now(UTC) + timedelta(days=200)),
    }
    fallback = Route(404, [*API_HEADERS, hsts], b'{"error": "not found"}')
    with PostureApp(routes, fallback=fallback, cert=cert.chain, key=cert.key) as app:
        yield app


def test_an_https_api_with_the_api_header_set_that_refuses_plain_http_grades_a_plus_twice(
    https_app: PostureApp, pki: TestPki
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"

    output = run(https_app.url, trust_store=pki.root_pem, http_url=closed)

    assert (grade(output, "observatory"), score(output, "observatory")) == ("A+", 115.0)
    assert (grade(output, "api"), score(output, "api")) == ("A+", 115.0)
    serious = [f for f in output.findings if f.rule_id != "HTTP-POSTURE-GRADE"]
    assert serious == []
    assert output.snapshot is not None
    assert output.snapshot["observatory"]["algorithm_version"] == 5
    assert output.snapshot["plain_http"] == "refused"
    present = {
        o.labels["header"]: o.value for o in output.observations if o.name == "http_header_present"
    }
    assert present["strict-transport-security"] == 1.0
    assert present["x-frame-options"] == 0.0


def test_a_bare_json_api_on_plain_http_grades_f_and_names_every_missing_protection() -> None:
    routes = {"/": Route(200, [JSON, ("Server", "nginx/1.22.1"), ("X-Powered-By", "Express")])}
    with PostureApp(routes) as app:
        output = run(app.url)

    found = rules(output)
    assert grade(output, "observatory") == "F"
    assert grade(output, "api") == "F"
    assert {
        "HTTP-PLAINTEXT-SERVED",
        "HTTP-HTTPS-UNAVAILABLE",
        "HTTP-NOSNIFF-MISSING",
        "HTTP-FRAMING-UNPROTECTED",
        "SECTXT-MISSING",
    } <= set(found)
    assert {f.subject for f in found["HTTP-SOFTWARE-DISCLOSED"]} == {"server", "x-powered-by"}
    # error pages are judged too: the 404 of an unknown path lacks nosniff as well
    assert "error page: unknown path (404)" in {f.subject for f in found["HTTP-NOSNIFF-MISSING"]}


def test_the_observatory_algorithm_version_changes_only_what_it_published() -> None:
    routes = {"/": Route(200, [JSON, ("X-Frame-Options", "DENY"), *API_HEADERS[2:]])}
    with PostureApp(routes) as app:
        v4 = run(app.url, observatory_algorithm=4)
        v5 = run(app.url, observatory_algorithm=5)

    assert v4.snapshot is not None
    assert v5.snapshot is not None
    xfo4 = v4.snapshot["observatory"]["tests"]["x-frame-options"]
    xfo5 = v5.snapshot["observatory"]["tests"]["x-frame-options"]
    assert xfo4 == {"result": "x-frame-options-sameorigin-or-deny", "modifier": 0}
    assert xfo5 == {"result": "x-frame-options-sameorigin-or-deny", "modifier": 5}


def test_plain_http_redirecting_to_https_is_a_low_finding_not_a_served_api(
    https_app: PostureApp, pki: TestPki
) -> None:
    redirect = Route(301, [("Location", https_app.url)], b"")
    with PostureApp({"/": redirect}) as plain:
        output = run(https_app.url, trust_store=pki.root_pem, http_url=plain.url)

    found = rules(output)
    assert [f.severity.value for f in found["HTTP-PLAINTEXT-REDIRECTS"]] == ["low"]
    assert "HTTP-PLAINTEXT-SERVED" not in found
    assert output.snapshot is not None
    assert output.snapshot["observatory"]["tests"]["redirection"]["result"] == (
        "redirection-to-https"
    )


@pytest.mark.parametrize(
    ("hsts", "rule"),
    [
        (None, "HTTP-HSTS-MISSING"),
        ("max-age=300", "HTTP-HSTS-SHORT"),
        ("includeSubDomains", "HTTP-HSTS-INVALID"),
    ],
)
def test_hsts_missing_short_or_invalid_is_reported(
    pki: TestPki, hsts: str | None, rule: str
) -> None:
    cert = pki.good()
    headers = [*API_HEADERS] + ([("Strict-Transport-Security", hsts)] if hsts else [])
    with PostureApp({"/": Route(200, headers)}, cert=cert.chain, key=cert.key) as app:
        output = run(app.url, trust_store=pki.root_pem)

    assert rule in rules(output)


def test_cors_reflecting_any_origin_with_credentials_is_critical_and_costs_50_points() -> None:
    routes = {"/": Route(200, API_HEADERS, reflect_origin=True, credentials=True)}
    with PostureApp(routes) as app:
        output = run(app.url)

    found = rules(output)
    reflected = found["CORS-ORIGIN-REFLECTED-WITH-CREDENTIALS"]
    assert {f.severity.value for f in reflected} == {"critical"}
    assert {f.subject for f in reflected} >= {
        "an unrelated origin",
        "the target's host with a suffix",
    }
    assert [f.severity.value for f in found["CORS-NULL-ORIGIN-ALLOWED"]] == ["high"]
    assert output.snapshot is not None
    cors = output.snapshot["observatory"]["tests"]["cross-origin-resource-sharing"]
    assert cors == {
        "result": "cross-origin-resource-sharing-implemented-with-universal-access",
        "modifier": -50,
    }


def test_cors_wildcard_with_credentials_and_broad_preflight_methods_are_reported() -> None:
    headers = [
        *API_HEADERS,
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "GET, TRACE, *"),
    ]
    with PostureApp({"/": Route(200, headers)}) as app:
        found = rules(run(app.url))

    assert "CORS-WILDCARD-WITH-CREDENTIALS" in found
    assert "CORS-ALLOW-METHODS-BROAD" in found
    assert "CORS-ORIGIN-REFLECTED-WITH-CREDENTIALS" not in found


def test_cookie_rules_flag_each_broken_attribute() -> None:
    headers = [
        *API_HEADERS,
        ("Set-Cookie", "sessionid=abc; Path=/"),
        ("Set-Cookie", "pref=1; Secure; SameSite=Sideways"),
        ("Set-Cookie", "track=1; SameSite=None"),
        ("Set-Cookie", "__Host-id=1; Secure; Path=/; Domain=127.0.0.1"),
    ]
    with PostureApp({"/": Route(200, headers)}) as app:
        output = run(app.url)

    found = rules(output)
    assert {f.subject: f.severity.value for f in found["COOKIE-NO-SECURE"]} == {
        "sessionid": "high",
        "track": "medium",
    }
    assert [f.subject for f in found["COOKIE-NO-HTTPONLY"]] == ["sessionid"]
    assert [f.subject for f in found["COOKIE-SAMESITE-INVALID"]] == ["pref"]
    assert [f.subject for f in found["COOKIE-SAMESITE-NONE-INSECURE"]] == ["track"]
    assert [f.subject for f in found["COOKIE-PREFIX-VIOLATION"]] == ["__Host-id"]
    assert "sessionid" in {f.subject for f in found["COOKIE-OVER-PLAIN-HTTP"]}
    assert "HTTP-CACHE-NOT-NO-STORE" not in found  # no-store is sent
    assert output.snapshot is not None
    assert output.snapshot["observatory"]["tests"]["cookies"]["modifier"] == -40


def test_error_pages_that_leak_traces_sql_or_paths_are_reported_with_a_snippet_only() -> None:
    trace = (
        b'Traceback (most recent call last):\n  File "/srv/app/views.py", line 3\n' + b"x" * 5000
    )
    sql = b"<h1>Error</h1> You have an error in your SQL syntax near '\"' at line 1"
    routes = {"/": Route(200, API_HEADERS, sql)}
    fallback = Route(500, [("Content-Type", "text/plain"), *API_HEADERS[1:]], trace)
    with PostureApp(routes, fallback=fallback) as app:
        found = rules(run(app.url))

    stack = found["HTTP-ERROR-STACK-TRACE"]
    assert "error page: unknown path (500)" in {f.subject for f in stack}
    assert all(len(f.evidence) < 400 for f in stack)  # a snippet, not the 5 kB body
    assert "HTTP-ERROR-INTERNAL-PATH" in found
    assert "HTTP-ERROR-5XX" in found
    assert "HTTP-ERROR-SQL" in found
    assert "HTTP-CONTENT-TYPE-INCORRECT" in found  # the SQL page claims to be JSON


def test_a_debug_page_and_a_body_without_content_type_are_reported() -> None:
    page = b"<html>Werkzeug Debugger</html>"
    with PostureApp({"/": Route(200, API_HEADERS[1:], page)}) as app:
        found = rules(run(app.url))

    assert "HTTP-ERROR-DEBUG-PAGE" in found
    assert "HTTP-CONTENT-TYPE-MISSING" in found


def test_options_advertising_trace_is_reported() -> None:
    headers = [*API_HEADERS, ("Allow", "GET, HEAD, OPTIONS, TRACE")]
    with PostureApp({"/": Route(200, headers)}) as app:
        found = rules(run(app.url))

    assert [f.subject for f in found["HTTP-TRACE-ADVERTISED"]] == ["TRACE"]


@pytest.mark.parametrize(
    ("days", "extra", "rule"),
    [
        (-3, "", "SECTXT-EXPIRED"),
        (10, "", "SECTXT-EXPIRING"),
        (200, f"Canonical: {ELSEWHERE}\n", "SECTXT-CANONICAL-MISMATCH"),
        (200, "", "SECTXT-NOT-HTTPS"),
    ],
)  # fmt: skip
def test_security_txt_problems_are_reported_before_and_after_expiry(
    days: int, extra: str, rule: str
) -> None:
    routes = {
        "/": Route(200, API_HEADERS),
        "/.well-known/security.txt": security_txt(datetime.now(UTC) + timedelta(days=days), extra),
    }
    with PostureApp(routes) as app:
        found = rules(run(app.url))

    assert rule in found


def test_security_txt_without_contact_or_expires_is_reported() -> None:
    text = Route(200, [("Content-Type", "text/plain")], b"Policy: https://example.com/p\n")
    with PostureApp({"/": Route(200, API_HEADERS), "/.well-known/security.txt": text}) as app:
        found = rules(run(app.url))

    assert {"SECTXT-NO-CONTACT", "SECTXT-NO-EXPIRES"} <= set(found)


def test_the_request_budget_is_never_exceeded_and_what_it_cut_is_reported() -> None:
    with PostureApp({"/": Route(200, API_HEADERS)}) as app:
        output = run(app.url, request_budget=5, paths=("/a", "/b", "/c"))

    assert len(app.log) <= 5  # the HTTPS attempt to this plain port is one of the five
    budget = rules(output)["HTTP-PROBE-BUDGET-EXHAUSTED"]
    assert "left out" in budget[0].evidence
    assert output.undetermined


def test_only_get_head_and_options_arrive_with_an_identifiable_user_agent() -> None:
    with PostureApp({"/": Route(200, API_HEADERS)}) as app:
        run(app.url, paths=("/v1/items",))

    assert app.log
    assert {entry.method for entry in app.log} <= SAFE
    assert all(entry.headers["User-Agent"].startswith("apivigil/") for entry in app.log)
    assert all("http_posture/" in entry.headers["X-Apivigil-Probe"] for entry in app.log)


def test_credentials_go_only_to_the_targets_https_origin_never_across_a_redirect(
    pki: TestPki, tmp_path: Path
) -> None:
    secret = "Bearer s3cret-token"
    auth = tmp_path / "auth"
    auth.write_text(f"Authorization: {secret}\n")
    cert = pki.good()
    with PostureApp({"/": Route(200, API_HEADERS)}) as elsewhere:
        routes = {
            "/": Route(200, API_HEADERS),
            "/me": Route(200, [JSON]),
            "/moved": Route(302, [("Location", f"{elsewhere.url}stolen")], b""),
        }
        with PostureApp(routes, cert=cert.chain, key=cert.key) as app:
            output = run(
                app.url,
                trust_store=pki.root_pem,
                auth_header_file=auth,
                paths=("/me", "/moved"),
                http_url=elsewhere.url,
            )

    with_secret = [e for e in app.log if e.headers.get("Authorization") == secret]
    assert {e.path for e in with_secret} == {"/me", "/moved"}  # configured paths only
    assert [e.path for e in elsewhere.log if e.path == "/stolen"] == ["/stolen"]  # followed
    assert all("Authorization" not in e.headers for e in elsewhere.log)
    assert {e.method for e in app.log + elsewhere.log} <= SAFE
    # an authenticated answer without no-store is a finding
    assert "/me (200)" in {f.subject for f in rules(output)["HTTP-CACHE-NOT-NO-STORE"]}
    assert secret not in str(output.snapshot)
    assert all(secret not in f.evidence for f in output.findings)


def test_a_target_that_answers_neither_http_nor_https_is_unreachable_not_graded() -> None:
    from checks.interface import TargetUnreachable  # noqa: PLC0415

    with pytest.raises(TargetUnreachable):
        run(f"https://127.0.0.1:{free_port()}/")


def test_trace_is_sent_only_when_the_target_opts_in_and_an_echo_is_reported() -> None:
    with PostureApp({"/": Route(200, API_HEADERS, echo_trace=True)}) as app:
        default = rules(run(app.url))
        default_methods = {entry.method for entry in app.log}
        opted = rules(run(app.url, trace=True))

    assert default_methods <= SAFE
    assert "HTTP-TRACE-ENABLED" not in default
    assert [e.method for e in app.log].count("TRACE") == 1
    assert [f.severity.value for f in opted["HTTP-TRACE-ENABLED"]] == ["medium"]


def test_sampling_documented_operations_in_a_one_off_scan_says_why_it_cannot() -> None:
    with PostureApp({"/": Route(200, API_HEADERS)}) as app:
        found = rules(run(app.url, inventory_sample=3))

    assert "needs the store" in found["HTTP-INVENTORY-UNAVAILABLE"][0].evidence


def test_a_redirect_to_a_metadata_address_is_refused_by_the_egress_policy() -> None:
    moved = Route(302, [("Location", "http://169.254.169.254/latest/meta-data/")], b"")
    with PostureApp({"/": Route(200, API_HEADERS), "/moved": moved}) as app:
        output = run(app.url, paths=("/moved",))

    refused = rules(output)["HTTP-REDIRECT-NOT-FOLLOWED"]
    assert [f.subject for f in refused] == ["/moved"]
    assert "denied by policy: link-local/cloud metadata" in refused[0].evidence


def test_nginx_with_the_api_header_set_grades_b_plus_on_the_observatory_and_a_plus_as_an_api(
    pki: TestPki,
) -> None:
    cert = pki.good()
    headers = (
        ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
        ("X-Content-Type-Options", "nosniff"),
        ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
        ("Cache-Control", "no-store"),
    )
    extra = ("server_tokens off;", *(f'add_header {n} "{v}" always;' for n, v in headers))
    with NginxTls([NginxBlock("api", cert.chain, cert.key, extra=extra)]) as nginx:
        output = run(f"https://127.0.0.1:{nginx.port('api')}/", trust_store=pki.root_pem)

    # plain HTTP to the TLS port: nginx answers 400, which the Observatory counts as "no
    # redirect" (-20, so no extra credit) and the API profile as refusing (+5)
    assert (grade(output, "observatory"), score(output, "observatory")) == ("B+", 80.0)
    assert grade(output, "api") == "A+"
    found = rules(output)
    assert not {"HTTP-PLAINTEXT-SERVED", "HTTP-SOFTWARE-DISCLOSED", "HTTP-NOSNIFF-MISSING"} & set(
        found
    )


def test_permissive_csp_reflection_without_credentials_and_any_header_are_reported() -> None:
    headers = [
        JSON,
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
        ("Access-Control-Allow-Headers", "*"),
    ]
    with PostureApp({"/": Route(200, headers, reflect_origin=True)}) as reflecting:
        plain = rules(run(reflecting.url))
    routes = {
        "/": Route(
            200,
            [*headers[:3], ("Access-Control-Allow-Headers", "*")],
            reflect_origin=True,
            credentials=True,
        )
    }
    with PostureApp(routes) as with_credentials:
        credentialed = rules(run(with_credentials.url))

    assert "HTTP-CSP-PERMISSIVE" in plain
    assert {f.severity.value for f in plain["CORS-ORIGIN-REFLECTED"]} == {"low"}
    assert "CORS-ALLOW-HEADERS-BROAD" not in plain  # any header matters with credentials only
    assert "CORS-ALLOW-HEADERS-BROAD" in credentialed
