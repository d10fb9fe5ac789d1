"""auth_posture against real local APIs that behave like ordinary production ones: gateways
answering 200 with their own error envelopes, an API that starts throttling mid-run, a spec
that (after a refactor) marks nothing secured. The server's log proves what was sent."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from checks.auth_posture.params import AuthPostureParams
from checks.egress import EgressPolicy
from checks.interface import BadInput, CheckContext, TargetUnreachable
from checks.registry import create_check
from monitor.model import CheckKind, CheckOutput, Target
from tests.support.auth_servers import Answer, RecordingServer, Seen

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


def spec(paths: list[str], secured: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "Shop", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {p: {"get": {"responses": {"200": {"description": "ok"}}}} for p in paths},
    }
    if secured:
        document["security"] = [{"bearer": []}]
    return document


def serve(document: dict[str, Any], answers: Callable[[Seen], Answer]) -> RecordingServer:
    def route(seen: Seen) -> Answer:
        if seen.path == "/openapi.json":
            return Answer(200, JSON, json.dumps(document).encode())
        return answers(seen)

    return RecordingServer(route)


def scan(server: RecordingServer) -> CheckOutput:
    params = AuthPostureParams.model_validate({"spec_path": "/openapi.json"})
    context = CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() + 60, egress=EgressPolicy()
    )
    return create_check(CheckKind.AUTH_POSTURE).run(Target("shop", url=server.url), params, context)


ENVELOPES = {
    "/kong": {"status": 401, "message": "Request blocked by policy"},
    "/aws": {"message": "Missing Authentication Token"},
    "/azure": {"statusCode": "403", "message": "Subscription key not valid"},
    "/jsend": {"status": "fail", "data": None},
    "/drf": {"detail": "Authentication credentials were not provided."},
    "/github": {"message": "Requires authentication", "documentation_url": "https://x.test/"},
    "/s3": {"Code": "AccessDenied", "Message": "Anonymous access is not allowed"},
}
# real data that happens to carry status and code fields: still an open operation
DATA = {"id": 7, "status": "shipped", "code": 200, "total": 40, "lines": [1, 2]}


def test_gateway_error_envelopes_answered_with_200_are_refusals_not_open_operations() -> None:
    def answers(seen: Seen) -> Answer:
        body = ENVELOPES.get(seen.path, DATA)
        return Answer(200, JSON, json.dumps(body).encode())

    with serve(spec([*ENVELOPES, "/orders/7"]), answers) as api:
        output = scan(api)

    assert [(f.rule_id, f.subject) for f in output.findings if f.rule_id.startswith("AUTH-")] == [
        ("AUTH-NOT-ENFORCED", "GET /orders/7")
    ]
    states = {o.labels["state"]: o.value for o in output.observations}
    assert states == {"enforced": len(ENVELOPES), "not_enforced": 1, "skipped": 0}


def test_a_429_stops_the_runs_probing_and_the_rest_is_reported_unverified() -> None:
    paths = ["/a", "/b", "/c", "/d", "/e", "/f"]

    def answers(seen: Seen) -> Answer:
        if seen.path == "/c":
            return Answer(429, {"Retry-After": "60", **JSON}, b'{"error": "slow down"}')
        return Answer(401, {"WWW-Authenticate": "Bearer", **JSON}, b'{"error": "invalid_token"}')

    with serve(spec(paths), answers) as api:
        output = scan(api)
        probed = [seen.path for seen in api.requests if seen.probe == "auth-enforced"]

    assert probed == ["/a", "/a", "/b", "/b", "/c"]  # nothing after the 429, not even a retry
    (unverified,) = [f for f in output.findings if f.rule_id == "AUTH-OPERATIONS-UNVERIFIED"]
    assert unverified.subject == "rate_limited"
    assert unverified.evidence.startswith("4 secured GET/HEAD operation(s) not judged")
    assert "GET /f (after GET /c answered 429)" in unverified.evidence
    assert output.snapshot is not None
    assert output.snapshot["last_probed"] == "GET /c"  # the next run resumes after it


def test_a_spec_that_marks_nothing_secured_is_told_not_passed_silently() -> None:
    with serve(spec(["/orders", "/users"], secured=False), lambda _: Answer(200, JSON)) as api:
        output = scan(api)
        probes = [seen for seen in api.requests if seen.probe is not None]

    assert probes == []
    (told,) = [f for f in output.findings if f.rule_id.startswith("AUTH-")]
    assert (told.rule_id, told.severity.value) == ("AUTH-NO-SECURED-OPERATIONS", "low")
    assert "none of the spec's 2 operation(s)" in told.evidence


def test_an_operation_whose_security_cannot_be_read_is_told_not_quietly_treated_as_public() -> None:
    document = spec(["/orders", "/admin"])
    document["paths"]["/admin"]["get"]["security"] = {"bearer": []}  # a mapping, not a list

    def answers(seen: Seen) -> Answer:
        return Answer(401, {"WWW-Authenticate": "Bearer", **JSON}, b'{"error": "invalid_token"}')

    with serve(document, answers) as api:
        output = scan(api)
        probed = {seen.path for seen in api.requests if seen.probe == "auth-enforced"}

    assert probed == {"/orders"}
    (told,) = [f for f in output.findings if f.rule_id.startswith("AUTH-")]
    assert told.rule_id == "AUTH-SPEC-SECURITY-INVALID"
    assert "paths./admin.get.security is not a list" in told.evidence


def test_a_refusal_problem_seen_on_both_probes_of_an_operation_is_one_finding() -> None:
    trace = b'Traceback (most recent call last):\n  File "/srv/auth.py", line 9\n'

    with serve(spec(["/profile"]), lambda _: Answer(401, {}, trace)) as api:
        output = scan(api)
        probed = [seen.path for seen in api.requests if seen.probe == "auth-enforced"]

    assert probed == ["/profile", "/profile"]  # anonymous, then the invalid token
    assert sorted(
        (f.rule_id, f.subject) for f in output.findings if f.rule_id != "RATELIMIT-HEADERS-ABSENT"
    ) == [
        ("AUTH-CHALLENGE-MISSING", "GET /profile"),
        ("AUTH-ERROR-LEAKS", "GET /profile"),
    ]


LOGIN_PAGE = (
    b"<!doctype html><html><head><title>Acme SSO</title></head><body>"
    b'<form method="post" action="/u/continue"><input name="username">'
    b'<input type="password" name="password"><button>Continue</button></form></body></html>'
)


def test_a_login_form_served_with_200_in_place_of_an_operation_is_a_refusal() -> None:
    def answers(seen: Seen) -> Answer:
        if seen.path == "/reports":  # an open page that is no login form: still found
            return Answer(200, {"Content-Type": "text/html"}, b"<table><tr><td>Q3</td></tr>")
        return Answer(200, {"Content-Type": "text/html; charset=utf-8"}, LOGIN_PAGE)

    with serve(spec(["/dashboard", "/reports"]), answers) as api:  # no media types documented
        output = scan(api)

    assert [(f.rule_id, f.subject) for f in output.findings if f.rule_id.startswith("AUTH-")] == [
        ("AUTH-NOT-ENFORCED", "GET /reports")
    ]
    states = {o.labels["state"]: o.value for o in output.observations}
    assert states == {"enforced": 1, "not_enforced": 1, "skipped": 0}


def test_a_429_without_retry_after_is_a_finding() -> None:
    with serve(spec(["/a"]), lambda _: Answer(429, JSON, b'{"error": "slow down"}')) as api:
        output = scan(api)

    told = [(f.rule_id, f.severity.value) for f in output.findings if f.subject == "429"]
    assert told == [("RATELIMIT-429-WITHOUT-RETRY-AFTER", "info")]


def test_a_least_privilege_monitor_refused_with_403_is_not_told_to_renew_its_token(
    tmp_path: Path,
) -> None:
    def answers(seen: Seen) -> Answer:
        valid = seen.headers.get("Authorization") == "Bearer monitor"
        if not valid:
            return Answer(200, JSON, b'{"items": [], "total": 0}')
        if seen.path == "/admin/users":  # the monitor may not see it: right
            return Answer(403, JSON, b'{"error": "insufficient_scope"}')
        return Answer(401, {"WWW-Authenticate": "Bearer", **JSON}, b'{"error": "invalid_token"}')

    header = tmp_path / "auth-header"
    header.write_text("Bearer monitor\n")
    header.chmod(0o600)
    params = AuthPostureParams.model_validate(
        {"spec_path": "/openapi.json", "auth_header_file": str(header)}
    )
    context = CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() + 60, egress=EgressPolicy()
    )
    with serve(spec(["/admin/users", "/orders"]), answers) as api:
        output = create_check(CheckKind.AUTH_POSTURE).run(
            Target("shop", url=api.url), params, context
        )

    (rejected,) = [f for f in output.findings if f.rule_id == "AUTH-CREDENTIALS-REJECTED"]
    assert rejected.evidence.startswith("1 operation(s) refused")
    assert "GET /orders" in rejected.evidence
    assert "GET /admin/users" not in rejected.evidence


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (Answer(404, JSON, b'{"error": "not found"}'), "404"),
        (Answer(200, JSON, b'{"openapi": "3.0.3", "paths": {'), "openapi.json"),
    ],
)
def test_a_spec_that_cannot_be_loaded_fails_the_run_with_the_reason(
    answer: Answer, said: str
) -> None:
    with RecordingServer(lambda _: answer) as api:
        with pytest.raises((BadInput, TargetUnreachable)) as failed:
            scan(api)
        probes = [seen for seen in api.requests if seen.probe is not None]

    assert probes == []
    assert said in str(failed.value)


def test_open_data_that_merely_mentions_errors_or_denials_is_still_an_open_operation() -> None:
    audit_log = [
        {"at": f"2026-12-0{i % 9 + 1}", "event": "access denied", "user": i} for i in range(5)
    ]
    job = {f"field{i}": i for i in range(10)} | {"errors": ["row 3: unauthorized currency"]}

    def answers(seen: Seen) -> Answer:
        body = audit_log if seen.path == "/audit" else job
        return Answer(200, JSON, json.dumps(body).encode())

    with serve(spec(["/audit", "/jobs/7"]), answers) as api:
        output = scan(api)

    assert sorted(f.subject for f in output.findings if f.rule_id == "AUTH-NOT-ENFORCED") == [
        "GET /audit",
        "GET /jobs/7",
    ]


def test_an_open_operation_judged_without_a_comparison_says_why_when_credentials_exist(
    tmp_path: Path,
) -> None:
    def answers(seen: Seen) -> Answer:  # checks that a token is there, not that it is valid
        if seen.headers.get("Authorization", "").startswith("Bearer "):
            return Answer(200, JSON, b'{"balance": 1200}')
        return Answer(401, {"WWW-Authenticate": "Bearer", **JSON}, b'{"error": "invalid_token"}')

    header = tmp_path / "auth-header"
    header.write_text("Bearer monitor\n")
    header.chmod(0o600)
    params = AuthPostureParams.model_validate(
        {"spec_path": "/openapi.json", "auth_header_file": str(header), "max_requests": 2}
    )
    context = CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() + 60, egress=EgressPolicy()
    )
    with serve(spec(["/balance"]), answers) as api:
        output = create_check(CheckKind.AUTH_POSTURE).run(
            Target("shop", url=api.url), params, context
        )
        sent = [seen for seen in api.requests if seen.probe == "auth-enforced"]

    assert len(sent) == 2  # the budget held: no third request with the credentials
    (open_operation,) = [f for f in output.findings if f.rule_id == "AUTH-NOT-ENFORCED"]
    assert "budget (max_requests) left no request to compare" in open_operation.evidence
    assert "no credentials are configured" not in open_operation.evidence


def test_an_invalid_token_that_gets_a_5xx_or_no_answer_is_unverified_not_enforced() -> None:
    def answers(seen: Seen) -> Answer:
        if "Authorization" not in seen.headers:
            return Answer(401, {"WWW-Authenticate": "Bearer", **JSON}, b'{"error": "invalid"}')
        if seen.path == "/bad-request":
            return Answer(400, JSON, b'{"error": "malformed token"}')
        return Answer(502, JSON, b'{"error": "upstream auth service down"}')

    with serve(spec(["/bad-gateway", "/bad-request"]), answers) as api:
        output = scan(api)

    states = {o.labels["state"]: o.value for o in output.observations}
    assert states == {"enforced": 1, "not_enforced": 0, "skipped": 1}
    (unverified,) = [f for f in output.findings if f.rule_id == "AUTH-OPERATIONS-UNVERIFIED"]
    assert unverified.subject == "inconclusive"
    assert "GET /bad-gateway (GET with an invalid bearer token answered 502" in unverified.evidence


def test_a_spec_whose_paths_all_miss_the_api_is_told_not_counted_as_verified() -> None:
    document = spec(["/orders", "/users"]) | {"servers": [{"url": "/v2"}]}  # the API is at /v1

    def answers(seen: Seen) -> Answer:
        if seen.path.startswith("/v1/"):
            return Answer(401, {"WWW-Authenticate": "Bearer", **JSON}, b'{"error": "invalid"}')
        return Answer(404, JSON, b'{"error": "no route"}')

    with serve(document, answers) as api:
        output = scan(api)
        probed = sorted({seen.path for seen in api.requests if seen.probe == "auth-enforced"})

    assert probed == ["/v2/orders", "/v2/users"]
    (told,) = [f for f in output.findings if f.rule_id == "AUTH-ALL-NOT-FOUND"]
    assert "all 2 operation(s) judged enforced answered 404" in told.evidence


def test_an_api_that_answers_some_operations_404_is_no_path_mismatch() -> None:
    def answers(seen: Seen) -> Answer:  # hides what the caller may not see, 401s the rest
        if seen.path == "/admin":
            return Answer(404, JSON, b'{"error": "no route"}')
        return Answer(401, {"WWW-Authenticate": "Bearer", **JSON}, b'{"error": "invalid"}')

    with serve(spec(["/admin", "/orders", "/users"]), answers) as api:
        output = scan(api)

    assert not [f for f in output.findings if f.rule_id == "AUTH-ALL-NOT-FOUND"]
