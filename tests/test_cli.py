"""The apivigil command: scan (table, JSON, exit codes), config check, targets, findings, demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.support.chains import Chain, ServeFactory
from tests.support.daemon_process import APIVIGIL, run_cli, write_config
from tests.support.hostile_servers import Tarpit
from tests.support.http_servers import ScriptedHttpServer
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def test_scan_of_urls_prints_findings_as_json_and_fails_on_high(
    serve: ServeFactory, chain: Chain
) -> None:
    expiring = serve(chain.leaf("soon.test", days_left=10))
    healthy = serve(chain.leaf("fine.test", days_left=100))
    completed = run_cli(
        "scan", expiring.url, healthy.url, "--check", "cert_expiry", "--format", "json"
    )
    assert completed.returncode == 1, completed.stderr
    document = json.loads(completed.stdout)
    runs = {run["target"]: run for run in document["runs"]}
    soon = runs[f"127.0.0.1:{expiring.port}"]
    assert set(soon) >= {"check", "target", "status", "error", "observations", "findings"}
    assert (soon["check"], soon["status"], soon["error"]) == ("cert_expiry", "ok", None)
    (finding,) = soon["findings"]
    assert set(finding) == {
        "rule_id",
        "severity",
        "title",
        "subject",
        "evidence",
        "remediation",
        "controls",
        "fingerprint",
    }
    assert (finding["rule_id"], finding["severity"]) == ("CERT-EXPIRES-SOON", "high")
    assert {
        "framework": "NIST SP 800-53",
        "control": "SC-17",
        "title": "public key infrastructure certificates",
    } in finding["controls"]
    assert runs[f"127.0.0.1:{healthy.port}"]["findings"] == []


def test_a_bare_url_scan_runs_every_check_that_needs_only_a_url(
    serve: ServeFactory, chain: Chain
) -> None:
    server = serve(chain.leaf("fine.test", days_left=100))
    completed = run_cli("scan", server.url, "--format", "json", "--timeout", "90s")
    checks = sorted(run["check"] for run in json.loads(completed.stdout)["runs"])
    assert checks == ["cert_expiry", "tls_posture"], completed.stdout + completed.stderr
    help_text = " ".join(run_cli("scan", "--help").stdout.split())
    assert "every check that needs only a URL (cert_expiry, tls_posture)" in help_text


def test_scan_exit_code_follows_fail_on(serve: ServeFactory, chain: Chain) -> None:
    server = serve(chain.leaf("soon.test", days_left=20))  # medium
    assert run_cli("scan", server.url, "--check", "cert_expiry").returncode == 0
    assert (
        run_cli("scan", server.url, "--check", "cert_expiry", "--fail-on", "medium").returncode == 1
    )


def test_scan_exits_3_when_a_check_could_not_run(tarpit: Tarpit) -> None:
    completed = run_cli(
        "scan", f"127.0.0.1:{tarpit.port}", "--check", "cert_expiry", "--timeout", "1s"
    )
    assert completed.returncode == 3
    assert f"127.0.0.1:{tarpit.port}" in completed.stdout
    assert "could not run (unreachable)" in completed.stdout


def test_scan_table_lists_findings(serve: ServeFactory, chain: Chain) -> None:
    server = serve(chain.leaf("soon.test", days_left=2))
    completed = subprocess.run(
        [*APIVIGIL, "scan", server.url, "--check", "cert_expiry"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert completed.returncode == 1
    assert "CERT-EXPIRES-SOON" in completed.stdout
    assert "critical" in completed.stdout
    assert "1 run(s), 1 finding(s), 0 could not run" in completed.stdout


def test_scan_from_config_with_target_filter(
    tmp_path: Path, serve: ServeFactory, chain: Chain
) -> None:
    server = serve(chain.leaf("one.test", days_left=100))
    path = write_config(
        tmp_path / "c.yaml",
        {
            "targets": [
                {"name": "one", "url": server.url, "checks": {"cert_expiry": {}}},
                {"name": "two", "url": "127.0.0.1:1", "checks": {"cert_expiry": {}}},
            ]
        },
    )
    completed = run_cli("scan", "--config", str(path), "--target", "one", "--format", "json")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert [run["target"] for run in json.loads(completed.stdout)["runs"]] == ["one"]
    unknown = run_cli("scan", "--config", str(path), "--target", "three")
    assert unknown.returncode == 2
    assert "three" in unknown.stderr


def test_scan_rejects_a_bad_url_with_usage_exit() -> None:
    completed = run_cli("scan", "ftp://nope")
    assert completed.returncode == 2
    assert "unsupported URL scheme" in completed.stderr


def test_config_check_names_the_bad_key_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "apivigil.yaml"
    path.write_text(
        "targets:\n"
        "  - name: api\n"
        "    url: https://api.test\n"
        "    checks:\n"
        "      cert_expiry:\n"
        "        thresholds: {medium: 30d, hihg: 14d}\n"
    )
    completed = run_cli("config", "check", str(path))
    assert completed.returncode == 2
    assert "line 6: targets[0].checks.cert_expiry.thresholds.hihg: unknown key" in completed.stderr


def test_run_refuses_a_deep_or_overflowing_config_with_exit_2_and_no_trace(
    tmp_path: Path,
) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("targets: " + "[" * 990 + "]" * 990 + "\n")
    overflowing = tmp_path / "overflowing.yaml"
    overflowing.write_text("defaults:\n  interval: 999999999999d\n")

    for path, named in ((deep, "line 1: "), (overflowing, "line 2: defaults.interval: ")):
        for command in (["run"], ["config", "check"]):
            completed = run_cli(*command, "--config", str(path), cwd=tmp_path)
            assert completed.returncode == 2, completed.stdout + completed.stderr
            assert f"{path}: {named}" in completed.stderr
            assert "Traceback" not in completed.stderr


def test_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "ok.yaml",
        {"targets": [{"name": "api", "url": "https://api.test", "checks": {"cert_expiry": {}}}]},
    )
    completed = run_cli("config", "check", str(path))
    assert completed.returncode == 0
    assert "1 target(s), 1 scheduled check(s)" in completed.stdout


def test_targets_lists_effective_schedules(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "ok.yaml",
        {
            "defaults": {"interval": "2h"},
            "targets": [
                {
                    "name": "api",
                    "url": "https://api.test",
                    "checks": {"cert_expiry": {"interval": "15m"}},
                },
            ],
        },
    )
    completed = subprocess.run(
        [*APIVIGIL, "targets", "--config", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0
    assert "cert_expiry" in completed.stdout
    assert "15m" in completed.stdout


def test_version_prints_the_version() -> None:
    completed = run_cli("version")
    assert completed.returncode == 0
    assert completed.stdout.startswith("apivigil ")


def test_demo_serves_true_certificate_dates_and_findings_within_60_seconds(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*APIVIGIL, "demo", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        metrics = ""
        while time.monotonic() < deadline:
            try:
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                metrics = ""
            if metrics.count("apivigil_cert_not_after_timestamp_seconds{") >= 6:
                break
            time.sleep(0.5)
        served = _served_not_after(tmp_path / ".apivigil-demo" / "certs")
        exposed = {
            (line.split('subject="')[1].split('"')[0], float(line.rsplit(" ", 1)[1]))
            for line in metrics.splitlines()
            if line.startswith("apivigil_cert_not_after_timestamp_seconds{")
        }
        assert exposed == served
        listed = run_cli("findings", "--format", "json", cwd=tmp_path)
        findings = json.loads(listed.stdout)
        rules = {
            (f["target"], f["rule_id"], f["severity"])
            for f in findings
            if f["check"] == "cert_expiry"
        }
        assert rules == {
            ("demo-expiring", "CERT-EXPIRES-SOON", "critical"),
            ("demo-expired", "CERT-EXPIRED", "critical"),
        }
        reported = run_cli("report", "--format", "json", cwd=tmp_path)
        assert reported.returncode == 0, reported.stderr
        report = json.loads(reported.stdout)
        targets = {t["name"]: t for t in report["targets"]}
        assert {"demo-healthy", "demo-expiring", "demo-expired"} <= set(targets)
        assert targets["demo-healthy"]["posture_score"] == 100  # evaluated, nothing open
        assert targets["demo-expired"]["posture_score"] < 100
        assert report["summary"]["posture_score"] is not None
        assert report["trends"]["days"][0]["posture_score"] is None  # before the demo began
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


def _served_not_after(cert_dir: Path) -> set[tuple[str, float]]:
    served = set()
    for path in cert_dir.glob("demo-*.crt"):
        for certificate in x509.load_pem_x509_certificates(path.read_bytes()):
            served.add(
                (certificate.subject.rfc4514_string(), certificate.not_valid_after_utc.timestamp())
            )
    return served


def test_an_api_offering_no_tls_is_a_critical_finding_not_an_error() -> None:
    with ScriptedHttpServer() as server:
        assert server.url.startswith("http://")
        completed = run_cli("scan", server.url, "--format", "json", "--timeout", "60s")
    assert completed.returncode == 1, completed.stdout + completed.stderr  # a finding, not exit 3
    runs = json.loads(completed.stdout)["runs"]
    assert sorted(run["check"] for run in runs) == ["cert_expiry", "tls_posture"]
    for run in runs:
        assert (run["status"], run["error"]) == ("ok", None), run
        (finding,) = run["findings"]
        assert (finding["rule_id"], finding["severity"]) == ("TLS-NOT-OFFERED", "critical")
        assert {c["control"] for c in finding["controls"]} >= {"SC-8"}


def test_a_tls_posture_scan_prints_no_library_warnings(serve: ServeFactory, chain: Chain) -> None:
    server = serve(chain.leaf("fine.test", days_left=100))
    completed = run_cli("scan", server.url, "--check", "tls_posture", "--format", "json")
    assert json.loads(completed.stdout)["runs"][0]["status"] == "ok", completed.stderr
    assert "Warning" not in completed.stderr, completed.stderr
