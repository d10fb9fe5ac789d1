"""`apivigil scan --push-gateway`: a CI scan's metrics reach a real Pushgateway, grouped by job
and instance, and a real Prometheus scraping it; a failed push is reported, and changes the
exit code only with --push-required."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from monitor.metric_names import FINDINGS_OPEN, SCAN_LAST_SUCCESS
from tests.support.chains import Chain, ServeFactory
from tests.support.daemon_process import run_cli
from tests.support.ports import free_port
from tests.support.prometheus_server import PrometheusServer
from tests.support.pushgateway_server import Pushgateway

pytestmark = pytest.mark.e2e


def families_of(gateway: Pushgateway, job: str, instance: str) -> dict[str, object]:
    (group,) = [
        g
        for g in gateway.groups()
        if g["labels"].get("job") == job and g["labels"].get("instance") == instance
    ]
    return {name: value for name, value in group.items() if name != "labels"}


def test_a_scan_pushes_the_daemons_families_and_prometheus_scrapes_them(
    serve: ServeFactory, chain: Chain
) -> None:
    server = serve(chain.leaf("soon.test", days_left=10))
    with Pushgateway() as gateway, PrometheusServer([f"127.0.0.1:{gateway.port}"]) as prometheus:
        before = time.time()
        completed = run_cli(
            "scan", server.url, "--check", "cert_expiry",
            "--push-gateway", gateway.url,
            "--push-job", "ci-nightly", "--push-instance", "runner-1",
        )  # fmt: skip
        assert completed.returncode == 1, completed.stdout + completed.stderr  # a high finding
        assert "pushed the scan's metrics" in completed.stderr
        # the store the push records into logs each finding it opens at info: below the
        # scan's level, and never on stdout with the scan's output
        assert "finding opened" not in completed.stdout + completed.stderr

        families = families_of(gateway, "ci-nightly", "runner-1")
        assert {FINDINGS_OPEN.name, SCAN_LAST_SUCCESS.name, "apivigil_check_up"} <= set(families)
        assert "apivigil_cert_not_after_timestamp_seconds" in families

        selector = '{exported_job="ci-nightly", exported_instance="runner-1"}'
        deadline = time.monotonic() + 60
        while not (found := prometheus.query(SCAN_LAST_SUCCESS.name + selector)):
            assert time.monotonic() < deadline, prometheus.log_text()
            time.sleep(0.5)
        assert float(found[0]["value"][1]) >= before - 1
        high = prometheus.query(
            FINDINGS_OPEN.name + selector.replace("}", ', severity="high", check="cert_expiry"}')
        )
        assert [float(s["value"][1]) for s in high] == [1.0], high


def test_basic_auth_from_a_file_and_a_failed_push_changes_the_exit_only_when_required(
    serve: ServeFactory, chain: Chain, tmp_path: Path
) -> None:
    server = serve(chain.leaf("fine.test", days_left=100))
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("ci:s3cret\n")
    wrong.write_text("ci:guess\n")
    with Pushgateway(basic_auth=("ci", "s3cret")) as gateway:
        scan = ("scan", server.url, "--check", "cert_expiry", "--push-gateway", gateway.url)

        refused = run_cli(*scan, "--push-basic-auth-file", str(wrong))
        assert refused.returncode == 0, refused.stderr  # reported, not fatal
        assert "failed" in refused.stderr
        assert "guess" not in refused.stderr + refused.stdout
        required = run_cli(*scan, "--push-basic-auth-file", str(wrong), "--push-required")
        assert required.returncode == 4, required.stderr

        accepted = run_cli(*scan, "--push-basic-auth-file", str(right), "--push-required")
        assert accepted.returncode == 0, accepted.stderr
        assert SCAN_LAST_SUCCESS.name in families_of(gateway, "apivigil-scan", socket.gethostname())


def test_an_unreachable_gateway_is_reported_and_the_scan_result_stands(
    serve: ServeFactory, chain: Chain
) -> None:
    server = serve(chain.leaf("fine.test", days_left=100))
    nowhere = f"http://127.0.0.1:{free_port()}"
    completed = run_cli("scan", server.url, "--check", "cert_expiry", "--push-gateway", nowhere)
    assert completed.returncode == 0, completed.stderr
    assert f"push to {nowhere}" in completed.stderr
    assert "failed" in completed.stderr


def test_a_pushed_json_scan_prints_its_document_alone_and_logs_no_finding_transitions(
    serve: ServeFactory, chain: Chain
) -> None:
    """The push records the runs into a throw-away store: what that store opens is no news,
    and nothing of it may reach stdout, where the JSON document goes (`> report.json`)."""
    server = serve(chain.leaf("soon.test", days_left=10))
    nowhere = f"http://127.0.0.1:{free_port()}"  # the store is filled before the push fails
    completed = run_cli(
        "scan", server.url, "--check", "cert_expiry", "--format", "json",
        "--push-gateway", nowhere,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout + completed.stderr  # a high finding

    document = json.loads(completed.stdout)  # the whole of stdout: nothing after it

    assert document
    assert "finding opened" not in completed.stdout + completed.stderr
