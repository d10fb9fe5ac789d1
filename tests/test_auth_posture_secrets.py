"""What auth_posture keeps (findings, observations, the snapshot that is stored) never
carries the configured credentials, nor more of a response body than a short snippet, even
from an API that echoes the Authorization header everywhere it can."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checks.auth_posture.params import AuthPostureParams
from checks.egress import EgressPolicy
from checks.interface import CheckContext
from checks.registry import create_check
from monitor.model import CheckKind, Target
from tests.support.auth_servers import Answer, RecordingServer, Seen

pytestmark = pytest.mark.integration

SECRET = "Bearer prod-7f3a9c-monitor-token"  # the credential that must not leak
MARKER = "BODY-MARKER-PAST-THE-SNIPPET"
JSON = {"Content-Type": "application/json"}
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        p: {"get": {"responses": {"200": {"description": "ok"}}}}
        for p in ("/orders", "/account", "/profile", "/exports")
    },
}


def echoing(seen: Seen) -> Answer:
    """Every answer repeats the request's Authorization header, in bodies and Locations."""
    auth = seen.headers.get("Authorization", "")
    valid = auth == SECRET
    padding = "x" * 300
    if seen.path == "/openapi.json":
        return Answer(200, JSON, json.dumps(SPEC).encode())
    if seen.path == "/orders":  # open: a 2xx to everyone
        body = json.dumps({"rows": [padding], "marker": MARKER, "you": auth})
        return Answer(200, JSON, body.encode())
    if seen.path == "/account":  # open, but sends the monitor to a login, token in tow
        if not valid:
            return Answer(200, JSON, b'{"name": "guest"}')
        return Answer(302, {"Location": f"/login?next=/account&echo={auth}"})
    if seen.path == "/profile":
        trace = f"Traceback (most recent call last):\n{padding}\n{MARKER} {auth}\n"
        return Answer(200, JSON, b"{}") if valid else Answer(401, {}, trace.encode())
    body = json.dumps({"error": "forbidden", "pad": padding, "marker": MARKER, "you": auth})
    return Answer(403, JSON, body.encode())


@pytest.fixture
def api() -> Iterator[RecordingServer]:
    with RecordingServer(echoing) as server:
        yield server


def test_no_finding_observation_or_snapshot_carries_the_credentials_or_a_whole_body(
    api: RecordingServer, tmp_path: Path
) -> None:
    header = tmp_path / "auth-header"
    header.write_text(SECRET + "\n")
    header.chmod(0o600)
    params = AuthPostureParams.model_validate(
        {"spec_path": "/openapi.json", "auth_header_file": str(header)}
    )
    context = CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() + 60, egress=EgressPolicy()
    )

    output = create_check(CheckKind.AUTH_POSTURE).run(Target("shop", url=api.url), params, context)

    kept = json.dumps(
        {
            "findings": [dataclasses.asdict(f) for f in output.findings],
            "observations": [dataclasses.asdict(o) for o in output.observations],
            "snapshot": output.snapshot,
        },
        default=str,
    )
    assert any(seen.headers.get("Authorization") == SECRET for seen in api.requests)
    rules = {f.rule_id for f in output.findings}
    assert {"AUTH-NOT-ENFORCED", "AUTH-CREDENTIALS-REJECTED", "AUTH-ERROR-LEAKS"} <= rules
    assert "prod-7f3a9c" not in kept
    assert MARKER not in kept
    assert "x" * 100 not in kept
