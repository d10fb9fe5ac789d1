"""A real Prometheus Pushgateway (Debian `prometheus-pushgateway`) on 127.0.0.1, as a context
manager; with `basic_auth=(user, password)` it asks for them (exporter-toolkit web config)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import bcrypt
import httpx
import yaml

from tests.support.ports import free_port
from tests.support.waiting import wait_for_200

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"


class Pushgateway:
    def __init__(self, basic_auth: tuple[str, str] | None = None) -> None:
        self.basic_auth = basic_auth
        self.port = 0
        self.url = ""
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        if not Path(PUSHGATEWAY).exists():
            raise FileNotFoundError("apt-get install prometheus-pushgateway")
        self._directory = Path(tempfile.mkdtemp(prefix="apivigil-pushgateway-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        arguments = [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{self.port}"]
        if self.basic_auth is not None:
            user, password = self.basic_auth
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            web = self._directory / "web.yml"
            web.write_text(yaml.safe_dump({"basic_auth_users": {user: hashed}}))
            arguments.append(f"--web.config.file={web}")
        log = (self._directory / "pushgateway.log").open("wb")
        self._process = subprocess.Popen(
            arguments, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        # with basic auth every path asks for it: wait for the listener, then for readiness
        ready = (
            f"http://{self.basic_auth[0]}:{self.basic_auth[1]}@127.0.0.1:{self.port}/-/ready"
            if self.basic_auth
            else f"{self.url}/-/ready"
        )
        wait_for_200(ready, self._process, self.log_text, 30.0)
        return self

    def log_text(self) -> str:
        path = self._directory / "pushgateway.log" if self._directory else None
        return path.read_text(errors="replace")[-4000:] if path and path.exists() else ""

    def groups(self) -> list[dict[str, Any]]:
        """The gateway's /api/v1/metrics: one entry per pushed group."""
        response = httpx.get(f"{self.url}/api/v1/metrics", auth=self.basic_auth, timeout=10)
        response.raise_for_status()
        return list(response.json()["data"])

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
