"""http_posture when requests fail or answers are unusual, against real local servers: what
got no answer is said and kept undetermined (never a better or worse grade), bodies over the
cap are judged on their headers, ordinary API bodies are not mistaken for leaks, and secrets
in URLs or headers never reach findings or the snapshot."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.interface import CheckMisconfigured, TargetUnreachable
from monitor.model import CheckOutput
from tests.support.ports import free_port
from tests.support.posture_scans import rules, run
from tests.support.posture_servers import API_HEADERS, JSON, PostureApp, Route
from tests.support.tls_certs import TestPki

pytestmark = pytest.mark.integration

HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("posture-failures-pki"), host="127.0.0.1")


def graded(output: CheckOutput, profile: str) -> bool:
    return any(
        o.name == "http_posture_score" and o.labels["profile"] == profile
        for o in output.observations
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_a_page_larger_than_the_body_cap_is_judged_on_its_headers_not_called_unavailable(
    pki: TestPki,
) -> None:
    big = b'{"items": [' + b'"x",' * 400_000 + b'"x"]}'  # 1.6 MB of valid JSON
    cert = pki.good()
    routes = {"/": Route(200, [*API_HEADERS, HSTS], big)}
    with (
        PostureApp(routes, cert=cert.chain, key=cert.key) as app,
        PostureApp({"/": Route(200, API_HEADERS, big)}) as plain,
    ):
        output = run(app.url, trust_store=pki.root_pem, http_url=plain.url)

    found = rules(output)
    assert "HTTP-HTTPS-UNAVAILABLE" not in found
    assert "HTTP-CONTENT-TYPE-INCORRECT" not in found  # a cut body is not invalid JSON
    # the plain-HTTP port serves the API: a big body must not make that look like a refusal
    assert "HTTP-PLAINTEXT-SERVED" in found
    assert output.snapshot is not None
    assert output.snapshot["plain_http"] == "answers 200"
    assert "bonus: plain HTTP refused" not in output.snapshot["api_profile"]["modifiers"]


def test_an_https_target_whose_https_times_out_is_unreachable_not_graded_on_plain_http(
    silent_port: int,
) -> None:
    with (
        PostureApp({"/": Route(200, API_HEADERS)}) as plain,
        pytest.raises(TargetUnreachable, match="HTTPS did not answer"),
    ):
        run(f"https://127.0.0.1:{silent_port}/", http_url=plain.url, request_timeout="1s")


def test_a_429_is_not_judged_as_the_apis_answer_and_the_run_says_it_is_partial() -> None:
    limited = Route(429, [("Retry-After", "30")], b"slow down")
    with PostureApp({"/": Route(200, API_HEADERS)}, fallback=limited) as app:
        output = run(app.url)

    subjects = {f.subject for f in output.findings}
    assert not any("(429)" in subject for subject in subjects)
    failed = rules(output)["HTTP-PROBE-FAILED"]
    assert "answered 429 (Retry-After: 30)" in failed[0].evidence
    assert "error page: unknown path (" in output.undetermined
    # no snapshot: config_drift keeps comparing the last complete one, not a partial one
    assert output.snapshot is None
    grades = [f.title for f in rules(output)["HTTP-POSTURE-GRADE"]]
    assert any("partial" in title for title in grades)


def test_a_rate_limited_cors_preflight_leaves_the_observatory_grade_unset_not_better() -> None:
    # reflecting any origin with credentials costs 50 points; a 429 must not hide that
    route = Route(200, API_HEADERS, reflect_origin=True, credentials=True, options_status=429)
    with PostureApp({"/": route}) as app:
        output = run(app.url)

    assert not graded(output, "observatory")
    evidence = {f.subject: f.evidence for f in rules(output)["HTTP-POSTURE-GRADE"]}
    assert "CORS preflight got no answer" in evidence["observatory"]
    assert "an unrelated origin (preflight)" in output.undetermined


def test_a_redirect_loop_is_reported_not_judged_as_the_page() -> None:
    loop = Route(302, [("Location", "/loop")], b"")
    with PostureApp({"/": Route(200, API_HEADERS), "/loop": loop}) as app:
        output = run(app.url, paths=("/loop",), request_budget=40)

    found = rules(output)
    looping = found["HTTP-REDIRECT-NOT-FOLLOWED"]
    assert [f.subject for f in looping] == ["/loop"]
    assert "more than 10 redirects" in looping[0].evidence
    assert len([e for e in app.log if e.path == "/loop"]) == 11


def test_links_to_routes_in_a_json_body_are_not_a_disclosed_server_path() -> None:
    body = b'{"links": ["/home/feed", "/opt/out", "https://cdn.example/srv/app.js"]}'
    with PostureApp({"/": Route(200, API_HEADERS, body)}) as app:
        found = rules(run(app.url))

    assert "HTTP-ERROR-INTERNAL-PATH" not in found


def test_a_default_vhost_404_on_plain_http_is_not_the_api_served_in_the_clear(
    pki: TestPki,
) -> None:
    cert = pki.good()
    with (
        PostureApp({"/": Route(200, [*API_HEADERS, HSTS])}, cert=cert.chain, key=cert.key) as app,
        PostureApp({}, fallback=Route(404, [("Content-Type", "text/html")], b"nginx")) as vhost,
    ):
        output = run(app.url, trust_store=pki.root_pem, http_url=vhost.url)

    assert "HTTP-PLAINTEXT-SERVED" not in rules(output)


def test_tokens_in_urls_and_debug_tokens_never_reach_findings_or_the_snapshot() -> None:
    routes = {
        "/": Route(200, [*API_HEADERS, ("X-Debug-Token", "d3bug70ken")]),
        "/items": Route(200, [JSON]),
        "/moved": Route(302, [("Location", "/items?token=l0cati0n5ecret")], b""),
    }
    with PostureApp(routes) as app:
        output = run(app.url, paths=("/items?api_key=qu3rys3cret", "/moved"))

    shown = " ".join(f"{f.subject} {f.evidence}" for f in output.findings) + str(output.snapshot)
    assert "/items (200)" in {f.subject for f in rules(output)["HTTP-NOSNIFF-MISSING"]}
    assert "x-debug-token" in {f.subject for f in rules(output)["HTTP-SOFTWARE-DISCLOSED"]}
    for secret in ("qu3rys3cret", "l0cati0n5ecret", "d3bug70ken"):
        assert secret not in shown


def test_a_closed_plain_http_port_is_a_refusal_not_a_failed_probe(pki: TestPki) -> None:
    cert = pki.good()
    with PostureApp({"/": Route(200, API_HEADERS)}, cert=cert.chain, key=cert.key) as app:
        output = run(app.url, trust_store=pki.root_pem, http_url=f"http://127.0.0.1:{free_port()}/")

    assert "HTTP-PROBE-FAILED" not in rules(output)
    assert output.snapshot is not None
    assert output.snapshot["plain_http"] == "refused"


def test_a_load_balancer_cookie_on_a_public_answer_does_not_demand_no_store() -> None:
    public = [JSON, *API_HEADERS[1:3], ("Cache-Control", "public, max-age=60")]
    balancer = ("Set-Cookie", "AWSALB=abc; Path=/; Secure; HttpOnly")
    session = ("Set-Cookie", "sessionid=abc; Path=/; Secure; HttpOnly")
    routes = {"/": Route(200, [*public, balancer]), "/login": Route(200, [*public, session])}
    with PostureApp(routes) as app:
        found = rules(run(app.url, paths=("/login",)))

    assert {f.subject for f in found["HTTP-CACHE-NOT-NO-STORE"]} == {"/login (200)"}


def test_an_origin_check_that_only_compares_the_ending_is_caught_by_the_prefix_probe() -> None:
    naive = Route(200, API_HEADERS, credentials=True, reflect_ending="127.0.0.1")
    with PostureApp({"/": naive}) as app:
        found = rules(run(app.url))

    reflected = found["CORS-ORIGIN-REFLECTED-WITH-CREDENTIALS"]
    assert [(f.subject, f.severity.value) for f in reflected] == [
        ("the target's host with a prefix", "critical")
    ]
    assert "apivigil-probe127.0.0.1" in reflected[0].evidence


def test_a_gateway_answering_503_for_the_page_is_unreachable_not_a_new_set_of_findings(
    pki: TestPki,
) -> None:
    cert = pki.good()
    down = Route(503, [("Content-Type", "text/html"), ("Retry-After", "120")], b"<h1>down</h1>")
    with (
        PostureApp({"/": down}, cert=cert.chain, key=cert.key) as app,
        pytest.raises(TargetUnreachable, match="HTTPS answered 503"),
    ):
        run(app.url, trust_store=pki.root_pem)


def test_a_cookie_being_deleted_is_not_judged_as_a_cookie_set() -> None:
    headers = [
        *API_HEADERS,
        ("Set-Cookie", "sessionid=; Max-Age=0; Path=/"),
        ("Set-Cookie", "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"),
        ("Set-Cookie", "loginhint=x; Path=/"),
    ]
    with PostureApp({"/": Route(200, headers)}) as app:
        output = run(app.url)

    cookie_subjects = {f.subject for f in output.findings if f.rule_id.startswith("COOKIE-")}
    assert cookie_subjects == {"loginhint"}
    assert output.snapshot is not None  # the Observatory counts deletions, as npm 1.4.8 does
    assert output.snapshot["observatory"]["tests"]["cookies"]["modifier"] == -40


def test_redirect_hops_count_against_the_budget_and_the_grade_says_the_run_is_partial() -> None:
    loop = Route(302, [("Location", "/loop")], b"")
    with PostureApp({"/": Route(200, API_HEADERS), "/loop": loop}) as app:
        output = run(app.url, paths=("/loop",))  # the default budget: 20

    assert len(app.log) + 1 <= 20  # + the HTTPS attempt this plain-HTTP port could not answer
    assert {e.method for e in app.log} <= {"GET", "HEAD", "OPTIONS"}
    found = rules(output)
    assert "HTTP-PROBE-BUDGET-EXHAUSTED" in found
    api_grade = next(f for f in found["HTTP-POSTURE-GRADE"] if f.subject == "api")
    assert "partial" in api_grade.title
    assert "budget" in api_grade.title


def test_https_refused_on_a_plain_http_target_is_a_finding_not_a_failed_probe() -> None:
    with PostureApp({"/": Route(200, API_HEADERS)}) as app:
        output = run(app.url)

    found = rules(output)
    assert "HTTP-HTTPS-UNAVAILABLE" in found
    assert "HTTP-PROBE-FAILED" not in found
    assert output.snapshot is not None


def test_a_401_only_api_that_also_answers_401_over_plain_http_is_served_in_the_clear(
    pki: TestPki,
) -> None:
    challenge = [*API_HEADERS, HSTS, ("WWW-Authenticate", 'Bearer realm="api"')]
    cert = pki.good()
    with (
        PostureApp({"/": Route(401, challenge)}, cert=cert.chain, key=cert.key) as app,
        PostureApp({"/": Route(401, challenge)}) as plain,
    ):
        output = run(app.url, trust_store=pki.root_pem, http_url=plain.url)

    served = rules(output)["HTTP-PLAINTEXT-SERVED"]
    assert [f.severity.value for f in served] == ["high"]


def test_the_body_of_an_answer_to_a_credentialed_request_is_not_quoted_in_evidence(
    pki: TestPki, tmp_path: Path
) -> None:
    auth = tmp_path / "auth"
    auth.write_text("Authorization: Bearer t0ken\n")
    cert = pki.good()
    routes = {
        "/": Route(200, [*API_HEADERS, HSTS]),
        "/me": Route(200, API_HEADERS, b"email=alice@example.com&ssn=078-05-1120"),
    }
    with PostureApp(routes, cert=cert.chain, key=cert.key) as app:
        output = run(app.url, trust_store=pki.root_pem, auth_header_file=auth, paths=("/me",))

    incorrect = rules(output)["HTTP-CONTENT-TYPE-INCORRECT"]
    assert [f.subject for f in incorrect] == ["/me (200)"]
    assert "078-05-1120" not in incorrect[0].evidence
    assert [e.headers.get("Authorization") for e in app.log if e.path == "/me"] == ["Bearer t0ken"]


def test_a_redirect_the_budget_could_not_follow_is_undetermined_not_judged_as_the_page() -> None:
    routes = {
        "/": Route(200, API_HEADERS),
        "/moved": Route(302, [("Location", "/items")], b""),  # no nosniff on the redirect
        "/items": Route(200, API_HEADERS),
    }
    with PostureApp(routes) as app:
        # 2 page fetches + 9 probes + the path's first hop: the redirect is not followed
        output = run(app.url, paths=("/moved",), request_budget=12)

    assert "/items" not in {e.path for e in app.log}
    subjects = {f.subject for f in output.findings}
    assert not any(subject.startswith("/moved (") for subject in subjects)
    assert "HTTP-REDIRECT-NOT-FOLLOWED" not in rules(output)
    assert "/moved (" in output.undetermined
    budget = rules(output)["HTTP-PROBE-BUDGET-EXHAUSTED"][0]
    assert "/items" in budget.evidence


def test_a_trust_store_that_is_not_a_ca_bundle_is_a_misconfiguration_before_any_request(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("not PEM at all\n")
    with PostureApp({"/": Route(200, API_HEADERS)}) as app:
        with pytest.raises(CheckMisconfigured, match="cannot load the CA bundle"):
            run(app.url, trust_store=bundle)
        assert app.log == []
