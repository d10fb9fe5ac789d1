"""Configurations auth_posture refuses before sending anything: credentials that would go in
clear text over a network (no socket is opened here: the run's deadline has passed, so a
request would fail as unreachable instead of being refused), a burst without a target URL."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from checks.auth_posture.params import AuthPostureParams
from checks.auth_posture.transport import in_clear
from checks.egress import EgressPolicy
from checks.interface import CheckContext, CheckMisconfigured
from checks.registry import create_check
from monitor.model import CheckKind, Target

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "clear"),
    [
        ("http://api.example.test/openapi.json", True),
        ("http://10.0.0.5:8080/", True),
        ("HTTP://[2001:db8::1]/", True),
        ("https://api.example.test/", False),
        ("http://127.0.0.1:8080/", False),
        ("http://[::1]/", False),
        ("http://localhost/", False),
    ],
)
def test_only_plain_http_to_a_non_loopback_host_is_clear_text(url: str, clear: bool) -> None:
    assert in_clear(url) is clear


def run(tmp_path: Path, target_url: str, **params: Any) -> None:
    header = tmp_path / "auth-header"
    header.write_text("Bearer production-secret\n")
    header.chmod(0o600)
    model = AuthPostureParams.model_validate({"auth_header_file": str(header), **params})
    context = CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() - 1, egress=EgressPolicy()
    )
    create_check(CheckKind.AUTH_POSTURE).run(Target("shop", url=target_url), model, context)


def test_credentials_for_a_plain_http_target_are_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        CheckMisconfigured, match=re.escape("would be sent in clear text to http://api")
    ):
        run(tmp_path, "http://api.example.test", spec_path="/openapi.json")


def test_credentials_for_a_plain_http_spec_url_are_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        CheckMisconfigured, match=re.escape("clear text to http://specs.example.test")
    ):
        run(
            tmp_path,
            "https://api.example.test",
            spec="http://specs.example.test/shop.json",
        )


def test_a_burst_for_a_target_without_a_url_is_refused_not_skipped_silently(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text('{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}')
    model = AuthPostureParams.model_validate(
        {"spec": str(spec), "probe_operations": False, "rate_limit_burst": {"path": "/s"}}
    )
    context = CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() + 30, egress=EgressPolicy()
    )

    with pytest.raises(CheckMisconfigured, match="rate_limit_burst needs a target with a url"):
        create_check(CheckKind.AUTH_POSTURE).run(Target("shop"), model, context)
