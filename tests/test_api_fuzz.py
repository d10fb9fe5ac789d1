"""Fuzz the daemon's own API with schemathesis, driven by its own OpenAPI document."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.api_daemon import ADMIN_TOKEN, daemon_config
from tests.support.daemon_process import DaemonProcess
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

# schemathesis' requests transport breaks under urllib3-future (pulled in by niquests), so
# it lives in a venv of its own: tests/install-fuzz-test-deps.sh
_OWN_VENV = Path(__file__).resolve().parents[1] / ".venv-fuzz" / "bin" / "st"
SCHEMATHESIS = Path(os.environ.get("APIVIGIL_SCHEMATHESIS", _OWN_VENV))
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "ignored_auth",
    )
)


def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path: Path) -> None:
    assert SCHEMATHESIS.exists(), f"{SCHEMATHESIS} is missing: run tests/install-fuzz-test-deps.sh"
    port = free_port()
    limits = {"per_token_burst": 100_000, "per_token_rate": 10_000.0}
    path = daemon_config(tmp_path, port, api_rate_limit=limits)
    report = tmp_path / "schemathesis.json"
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        fuzzed = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{daemon.base}/api/v1/openapi.json",
                "--url",
                daemon.base,
                "--header",
                f"Authorization: Bearer {ADMIN_TOKEN}",
                "--checks",
                CHECKS,
                "--max-examples",
                "30",
                "--seed",
                "1",
                "--workers",
                "4",
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(report),
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
            cwd=tmp_path,
        )
        assert daemon.stop() == 0

    print(fuzzed.stdout[-3000:])
    assert "unhandled error" not in daemon.log_path.read_text()
    cases, failures = _count(report)
    print(f"schemathesis cases: {cases}")
    print(f"schemathesis failures: {failures}")
    assert fuzzed.returncode == 0, fuzzed.stdout[-5000:] + fuzzed.stderr[-2000:]
    assert failures == 0
    assert cases > 50


def _count(report: Path) -> tuple[int, int]:
    cases = failures = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for name, body in event.items():
            if name == "ScenarioFinished":
                recorder = body.get("recorder", {})
                cases += len(recorder.get("cases", {}))
                for checks in recorder.get("checks", {}).values():
                    failures += sum(1 for c in checks if c.get("status") == "FAILURE")
    return cases, failures
