"""Run `apivigil` as a real process: the daemon with its HTTP port, logs and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from tests.support.waiting import wait_for_200

APIVIGIL = [sys.executable, "-m", "monitor"]


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*APIVIGIL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
        env={**os.environ, "COLUMNS": "250"},  # tables unwrapped, so tests can read them
    )


class DaemonProcess:
    def __init__(self, config: Path, port: int, cwd: Path, *extra: str) -> None:
        self.config = config
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = cwd / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [*APIVIGIL, "run", "--config", str(config), "--migrate", *extra],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
        )

    def wait_healthy(self, timeout: float = 30) -> None:
        wait_for_200(f"{self.base}/healthz", self.process, self.log_text, timeout)

    def metrics(self) -> str:
        return httpx.get(f"{self.base}/metrics", timeout=5).text

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events

    def wait_for_event(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no matching log event in {timeout}s:\n{self.log_text()}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
