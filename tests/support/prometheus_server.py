"""A real Prometheus (Debian `prometheus`) on 127.0.0.1, as a context manager.

    with PrometheusServer(scrape_targets=["127.0.0.1:9690"], rule_files=[...]) as prometheus:
        prometheus.wait_for_samples('apivigil_store_up')
        prometheus.query("sum(apivigil_findings_open)")   # -> the result list

It gets a free port and its own storage directory (removed on exit), scrapes every
`scrape_interval` and answers once /-/ready says so. tests/install-dashboard-test-deps.sh
installs it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import httpx
import yaml

from tests.support.ports import free_port
from tests.support.tls_servers import ManagedServer
from tests.support.waiting import wait_for_200

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class PrometheusError(AssertionError):
    """Prometheus refused a query or did not start; the message carries its answer or log."""


class PrometheusServer(ManagedServer):
    def __init__(
        self,
        scrape_targets: Sequence[str],
        *,
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
        job: str = "apivigil",
        startup_timeout: float = 30.0,
    ) -> None:
        self.scrape_targets = tuple(scrape_targets)
        self.scrape_interval = scrape_interval
        self.rule_files = tuple(rule_files)
        self.job = job
        self.startup_timeout = startup_timeout
        self.port = 0
        self.base = ""
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "scrape_interval": self.scrape_interval,
                    "scrape_timeout": self.scrape_interval,
                    "static_configs": [{"targets": list(self.scrape_targets)}],
                }
            ],
        }

    def start(self) -> Self:
        if not Path(PROMETHEUS).exists():
            raise FileNotFoundError(
                "prometheus not installed (run tests/install-dashboard-test-deps.sh)"
            )
        self._directory = Path(tempfile.mkdtemp(prefix="apivigil-prometheus-"))
        config = self._directory / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log = (self._directory / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self._directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        wait_for_200(f"{self.base}/-/ready", self._process, self.log_text, self.startup_timeout)

    def log_text(self) -> str:
        if self._directory is None:
            return ""
        path = self._directory / "prometheus.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _api(self, path: str, params: dict[str, Any]) -> Any:
        answer = httpx.get(f"{self.base}/api/v1/{path}", params=params, timeout=30)
        document = answer.json()
        if answer.status_code != 200 or document.get("status") != "success":
            raise PrometheusError(
                f"{path} {params}: HTTP {answer.status_code} "
                f"{document.get('errorType')}: {document.get('error')}"
            )
        return document["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at the current time: the result's series (vector, or a scalar
        as one series)."""
        data = self._api("query", {"query": expr})
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, seconds: float, step: str) -> list[dict[str, Any]]:
        """A range query over the last `seconds` (how Grafana runs graph and annotation
        queries)."""
        end = time.time()
        data = self._api(
            "query_range", {"query": expr, "start": end - seconds, "end": end, "step": step}
        )
        return list(data["result"])

    def series(self, selector: str) -> list[dict[str, str]]:
        return list(self._api("series", {"match[]": selector}))

    def targets_up(self) -> bool:
        data = self._api("targets", {"state": "active"})
        active = data["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)

    def wait_for(self, expr: str, timeout: float, what: str = "") -> list[dict[str, Any]]:
        """Poll `expr` until it returns a series; raise with the last state otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise PrometheusError(f"no series for {what or expr} in {timeout}s")
            time.sleep(0.5)

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=10)
            self._process = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
