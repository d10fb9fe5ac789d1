"""auth_posture against a real local API: its spec marks every operation secured; one is
left open, one answers 403, one serves a public stub to strangers, one redirects to a login,
one accepts any bearer token. The server's log proves which requests were (never) sent."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from checks.auth_posture.params import AuthPostureParams
from checks.egress import EgressPolicy
from checks.interface import CheckContext
from checks.registry import create_check
from monitor.model import CheckKind, CheckOutput, Target
from tests.support.auth_servers import Answer, RecordingServer, Seen
from tests.support.daemon_process import run_cli, write_config

pytestmark = pytest.mark.integration

VALID = "Bearer good-token"
SECURED = [{"bearer": []}]
ORDERS = json.dumps([{"id": i, "total": 10 * i, "customer": f"c{i}"} for i in range(20)]).encode()
CATALOG_FULL = json.dumps(
    [{"sku": f"sku-{i}", "price": i * 3.5, "stock": i * 7} for i in range(40)]
).encode()
CATALOG_STUB = b'{"items": [], "total": 0}'
TRACEBACK = (
    b'Traceback (most recent call last):\n  File "/srv/app/auth.py", line 41, in check\n'
    b"jwt.exceptions.DecodeError: Not enough segments\n"
)


def op(**extra: Any) -> dict[str, Any]:
    return {"responses": {"200": {"description": "ok"}}, **extra}


def path_param(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, **extra}


SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": SECURED,
    "paths": {
        "/orders": {"get": op(), "post": op()},
        "/orders/{orderId}": {"delete": op(parameters=[path_param("orderId", example="7")])},
        "/admin/settings": {"get": op()},
        "/catalog": {"get": op()},
        "/account": {"get": op()},
        "/users/{userId}": {
            "get": op(
                parameters=[
                    path_param("userId", example=42),
                    {"name": "X-Tenant", "in": "header", "required": True, "example": "acme"},
                ]
            )
        },
        "/reports/{reportId}": {"get": op(parameters=[path_param("reportId")])},
        "/profile": {"get": op()},
        "/token-check": {"get": op()},
        "/exports": {"head": op()},
        "/health": {"get": op(security=[])},
    },
}


def route(seen: Seen) -> Answer:
    """The API: what each path answers, by the Authorization header it got."""
    auth = seen.headers.get("Authorization")
    valid = auth == VALID
    path = seen.path
    json_type = {"Content-Type": "application/json"}
    challenge = {"WWW-Authenticate": 'Bearer realm="shop"', **json_type}
    unauthorized = Answer(401, challenge, b'{"error": "invalid_token"}')
    if path == "/openapi.json":
        return Answer(200, json_type, json.dumps(SPEC).encode())
    if path == "/orders" and seen.method == "GET":
        return Answer(200, json_type, ORDERS)  # left open
    if path == "/admin/settings":
        return Answer(200, json_type, b'{"mode": "x"}') if valid else Answer(403, json_type, b"{}")
    if path == "/catalog":
        return Answer(200, json_type, CATALOG_FULL if valid else CATALOG_STUB)
    if path == "/account":
        login = Answer(302, {"Location": "/login?next=/account"})
        return Answer(200, json_type, b"{}") if valid else login
    if path == "/users/42":
        if seen.headers.get("X-Tenant") != "acme":  # a required header, from its example
            return Answer(400, json_type, b'{"error": "X-Tenant missing"}')
        return Answer(200, json_type, b'{"id": 42}') if valid else unauthorized
    if path == "/profile":
        return Answer(200, json_type, b"{}") if valid else Answer(401, {}, TRACEBACK)
    if path == "/token-check":  # checks that a token is there, not that it is valid
        if auth and auth.startswith("Bearer "):
            return Answer(200, json_type, b'{"balance": 1200}')
        return unauthorized
    if path == "/exports":
        return Answer(200, json_type) if valid else unauthorized
    return Answer(404, json_type, b'{"error": "not found"}')


@pytest.fixture
def api() -> Iterator[RecordingServer]:
    with RecordingServer(route) as server:
        yield server


def scan(api: RecordingServer, tmp_path: Path, **params: Any) -> CheckOutput:
    header = tmp_path / "auth-header"
    header.write_text(VALID + "\n")
    header.chmod(0o600)
    model = AuthPostureParams.model_validate(
        {"spec_path": "/openapi.json", "auth_header_file": str(header), **params}
    )
    context = CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() + 60, egress=EgressPolicy()
    )
    return create_check(CheckKind.AUTH_POSTURE).run(Target("shop", url=api.url), model, context)


def findings(output: CheckOutput) -> set[tuple[str, str]]:
    return {(f.rule_id, f.subject) for f in output.findings}


def states(output: CheckOutput) -> dict[str, float]:
    return {o.labels["state"]: o.value for o in output.observations if o.name == "auth_operations"}


def test_open_and_token_blind_operations_are_found_and_refusals_stubs_and_logins_are_not(
    api: RecordingServer, tmp_path: Path
) -> None:
    output = scan(api, tmp_path)

    assert findings(output) == {
        ("AUTH-NOT-ENFORCED", "GET /orders"),
        ("AUTH-NOT-ENFORCED", "GET /token-check"),
        ("AUTH-CHALLENGE-MISSING", "GET /profile"),
        ("AUTH-ERROR-LEAKS", "GET /profile"),
        ("AUTH-OPERATIONS-UNVERIFIED", "no_example"),
        ("RATELIMIT-HEADERS-ABSENT", f"127.0.0.1:{api.port}"),
    }
    by_key = {(f.rule_id, f.subject): f for f in output.findings}
    orders = by_key[("AUTH-NOT-ENFORCED", "GET /orders")].evidence
    assert f"GET without credentials answered 200 with {len(ORDERS)} bytes" in orders
    assert "with the configured credentials answered 200" in orders
    assert "100% alike" in orders
    token = by_key[("AUTH-NOT-ENFORCED", "GET /token-check")].evidence
    assert "GET with an invalid bearer token answered 200 with 17 bytes" in token
    assert "Python traceback" in by_key[("AUTH-ERROR-LEAKS", "GET /profile")].evidence
    assert "GET /reports/{}" in by_key[("AUTH-OPERATIONS-UNVERIFIED", "no_example")].evidence
    # enforced: 403, public stub, login redirect, 401 (path parameter from its example),
    # the 401 with a leaky body, HEAD; skipped: POST, DELETE (never sent), no example
    assert states(output) == {"enforced": 6, "not_enforced": 2, "skipped": 3}
    snapshot = output.snapshot or {}
    assert snapshot["operations"]["GET /catalog"]["public_stub"] is True
    assert snapshot["operations"]["GET /account"]["answers"] == {
        "anonymous": 302,
        "invalid_token": 302,
    }
    assert snapshot["skipped_by_reason"] == {"no_example": 1, "unsafe_method": 2}


def test_only_get_and_head_are_ever_sent_and_every_probe_is_counted(
    api: RecordingServer, tmp_path: Path
) -> None:
    output = scan(api, tmp_path)

    methods = {seen.method for seen in api.requests}
    assert methods == {"GET", "HEAD"}
    assert not [s for s in api.requests if s.path.startswith(("/reports", "/orders/", "/health"))]
    probes = [seen for seen in api.requests if seen.probe == "auth-enforced"]
    assert len(probes) == (output.snapshot or {})["requests_sent"]
    assert [s.path for s in probes if s.method == "HEAD"] == ["/exports", "/exports"]
    assert "/users/42" in {s.path for s in probes}
    # credentials go only where a 2xx must be compared: /orders, /catalog, /token-check
    with_valid = sorted(s.path for s in probes if s.headers.get("Authorization") == VALID)
    assert with_valid == ["/catalog", "/orders", "/token-check"]


def test_a_config_cannot_make_the_check_send_an_unsafe_method(
    api: RecordingServer, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="extra"):
        AuthPostureParams.model_validate({"spec_path": "/openapi.json", "methods": ["POST"]})

    scan(api, tmp_path, max_requests=5000)

    assert {seen.method for seen in api.requests} <= {"GET", "HEAD"}


def test_the_request_budget_holds_and_what_it_left_out_is_reported(
    api: RecordingServer, tmp_path: Path
) -> None:
    output = scan(api, tmp_path, max_requests=5)

    probes = [seen for seen in api.requests if seen.probe == "auth-enforced"]
    # two operations of two requests each; the fifth request alone cannot judge a third
    assert len(probes) == 4 == (output.snapshot or {})["requests_sent"]
    unverified = {
        f.subject: f for f in output.findings if f.rule_id == "AUTH-OPERATIONS-UNVERIFIED"
    }
    assert "budget" in unverified
    assert unverified["budget"].evidence.startswith("6 secured GET/HEAD operation(s) not judged")
    assert states(output)["skipped"] == 2 + 1 + 6


def test_scan_format_json_reports_the_open_operation_with_its_controls(
    api: RecordingServer, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "targets": [
                {
                    "name": "shop",
                    "url": api.url,
                    "checks": {"auth_posture": {"spec_path": "/openapi.json"}},
                }
            ]
        },
    )

    result = run_cli("scan", "--config", str(config), "--format", "json")

    assert result.returncode == 1, result.stderr  # critical findings
    (run,) = json.loads(result.stdout)["runs"]
    assert (run["check"], run["status"]) == ("auth_posture", "ok")
    open_operations = {
        f["subject"]: f for f in run["findings"] if f["rule_id"] == "AUTH-NOT-ENFORCED"
    }
    # without credentials to compare with, the public stub of /catalog cannot be told apart
    assert set(open_operations) == {"GET /catalog", "GET /orders", "GET /token-check"}
    assert (
        "no credentials are configured (auth_header_file)"
        in (open_operations["GET /catalog"]["evidence"])
    )
    assert {
        "framework": "NIST SP 800-53",
        "control": "IA-2",
        "title": ("identification and authentication"),
    } in open_operations["GET /orders"]["controls"]
    states = {o["labels"]["state"]: o["value"] for o in run["observations"]}
    assert states == {"enforced": 5, "not_enforced": 3, "skipped": 3}
    assert {seen.method for seen in api.requests} == {"GET", "HEAD"}
