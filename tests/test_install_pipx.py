"""The first hour from a pipx install: `pipx install .` from a copy of the repository into
an empty pipx home (nothing of the test venv or the source tree on the path), then what a new
operator does first, in an empty directory: --help, the demo with its findings, a scan, the
report and the dashboards. Proves the wheel carries what the commands need (templates,
migrations, dashboards) and the entry point works outside the checkout.

The install resolves the dependencies from the package index pip is configured with, like
`tests/setup-and-run.sh` does."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parent.parent
_NOT_SHIPPED = shutil.ignore_patterns(
    ".git", ".venv*", ".sbom-tools", "__pycache__", "*.egg-info", "build", ".*_cache", "*.db*"
)
_REPR = re.compile(r"\{'|\['|set\(\)")


class Installed:
    def __init__(self, home: Path) -> None:
        self.bin = home / "bin" / "apivigil"
        # nothing of the checkout: no PYTHONPATH, COLUMNS for readable tables
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
        } | {"COLUMNS": "200"}

    def run(self, *args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin), *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=self.env,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("pipx")
    source = root / "apivigil"
    shutil.copytree(REPOSITORY, source, ignore=_NOT_SHIPPED)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "PIPX_HOME": str(root / "home"),
        "PIPX_BIN_DIR": str(root / "home" / "bin"),
        "PIPX_MAN_DIR": str(root / "home" / "man"),
    }
    # README: "pipx install ." from a clone
    done = subprocess.run(
        [sys.executable, "-m", "pipx", "install", "."],
        capture_output=True,
        text=True,
        cwd=source,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = Installed(root / "home")
    assert result.bin.exists(), done.stdout
    return result


@pytest.fixture
def demo(installed: Installed, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [str(installed.bin), "demo", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=installed.env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "demo.log").open("w"),
        text=True,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_pipx_install_then_help_demo_findings_scan_report_and_dashboards(
    installed: Installed, demo: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    process, port = demo
    helped = installed.run("--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    commands = [c for c in ("run", "scan", "findings", "report") if f" {c} " in helped.stdout]
    assert commands == ["run", "scan", "findings", "report"], helped.stdout
    assert helped.stdout.index(" run ") < helped.stdout.index(" findings ")
    scan_help = installed.run("scan", "--help", cwd=tmp_path)
    assert "default:" in scan_help.stdout, scan_help.stdout

    # the demo: critical certificate findings within a minute, as README says
    deadline = time.monotonic() + 90
    listed: list[dict[str, str]] = []
    while time.monotonic() < deadline and process.poll() is None:
        try:
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            metrics = ""
        if "apivigil_cert_not_after_timestamp_seconds{" in metrics:
            found = installed.run("findings", "--format", "json", cwd=tmp_path)
            listed = json.loads(found.stdout) if found.returncode == 0 else []
            if {"CERT-EXPIRES-SOON", "CERT-EXPIRED"} <= {f["rule_id"] for f in listed}:
                break
        time.sleep(1)
    log = (tmp_path / "demo.log").read_text()
    assert process.poll() is None, log
    certs = {
        (f["target"], f["rule_id"], f["severity"]) for f in listed if f["check"] == "cert_expiry"
    }
    assert certs == {
        ("demo-expiring", "CERT-EXPIRES-SOON", "critical"),
        ("demo-expired", "CERT-EXPIRED", "critical"),
    }, log
    table = installed.run("findings", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "CERT-EXPIRES-SOON" in table.stdout
    assert "CERT-EXPIRED" in table.stdout

    # a one-off scan of the expired demo target: a bare URL runs the URL-only checks
    expired_url = re.search(r"demo-expired\s+(https://127\.0\.0\.1:\d+)", log)
    assert expired_url, log
    scanned = installed.run("scan", expired_url.group(1), "--format", "json", cwd=tmp_path)
    assert scanned.returncode != 0, scanned.stdout  # exit code by the worst finding
    scan = json.loads(scanned.stdout)
    rules = {f["rule_id"] for run in scan["runs"] for f in run["findings"]}
    assert {"CERT-EXPIRED", "TLS-CERT-UNTRUSTED"} <= rules, rules

    # the report (its templates are package data), and dashboards into ./dashboards/json
    reported = installed.run("report", "--format", "html", "--output", "report.html", cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    html = (tmp_path / "report.html").read_text()
    assert "demo-expired" in html
    assert "CERT-EXPIRED" in html
    built = installed.run("dashboards", "build", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert list((tmp_path / "dashboards" / "json").glob("*.json")), built.stdout

    # what people read carries no Python reprs
    for text in (table.stdout, html, json.dumps([f["evidence"] for f in listed])):
        assert not _REPR.search(text.replace("&#39;", "'")), _REPR.search(text)

    process.send_signal(signal.SIGINT)  # "Stop with Ctrl-C."
    assert process.wait(timeout=60) == 0, (tmp_path / "demo.log").read_text()
