"""A cluster on loopback for tests: scheduler candidates and workers as real processes,
a slow TLS server, a Redis namespace per test, and readers of the shared store."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa

from monitor.cluster.slots import slot_key
from monitor.model import CheckKind
from monitor.store.run_length import slots_of
from tests.support.daemon_process import APIVIGIL, DaemonProcess

REDIS_URL = os.environ.get("APIVIGIL_TEST_REDIS", "redis://127.0.0.1:6379/0")


def cluster_config(
    store: str,
    namespace: str,
    port: int,
    targets: list[dict[str, Any]],
    interval: str = "2s",
    timeout: str = "20s",
) -> dict[str, Any]:
    """Quick failover and redelivery: a 0.5 s heartbeat, fencing after 2 s, dead workers
    noticed after 3 s."""
    return {
        "store": store,
        "listen": f"127.0.0.1:{port}",
        "log_level": "info",
        "defaults": {"interval": interval, "timeout": timeout},
        "scheduler": {"initial_spread": "1s", "misfire_grace": "5m"},
        "shutdown_grace": "5s",
        "cluster": {
            "broker": REDIS_URL,
            "namespace": namespace,
            "election": {"heartbeat": "0.5s", "fence_after": "2s", "retry": "0.5s"},
            "worker": {"threads": 4, "heartbeat_timeout": "3s", "dead_worker_sweep": 0.2},
            "politeness": {"per_host": 16},
        },
        "targets": targets,
    }


def redis_namespace() -> Iterator[str]:
    """A fresh Redis key prefix; its keys are deleted afterwards."""
    namespace = f"apivigil_test_{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class _ClusterProcess(DaemonProcess):
    def log_text(self) -> str:
        if not self._log.closed:  # still readable after stop()
            self._log.flush()
        return self.log_path.read_text()


class CandidateProcess(_ClusterProcess):
    """`apivigil run` in a cluster: reports its role on /readyz."""

    def role(self) -> str | None:
        try:
            return str(httpx.get(f"{self.base}/readyz", timeout=2).json().get("role"))
        except (httpx.HTTPError, ValueError):
            return None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


class WorkerProcess(_ClusterProcess):
    """`apivigil worker`: no HTTP port; read through its JSON log lines."""

    def __init__(self, config: Path, cwd: Path, *extra: str) -> None:
        self.config = config
        self.base = ""
        self.log_path = cwd / f"worker-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*APIVIGIL, "worker", "--config", str(config), *extra],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_started(self, timeout: float = 30) -> None:
        self.wait_for_event(lambda e: e.get("event") == "apivigil worker started", timeout)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def executed(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == "check run"]


def wait_until(predicate: Any, timeout: float, what: str, poll: float = 0.1) -> float:
    """Poll `predicate` until true; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(poll)
    raise AssertionError(f"not within {timeout}s: {what}")


@dataclass(frozen=True)
class StoredRun:
    check: str
    target: str
    slot_key: str | None
    slot_at: datetime | None
    status: str


def stored_runs(store_url: str) -> list[StoredRun]:
    """Every recorded run, one per slot: a run-length row (monitor.store.run_length) stands
    for its first slot and each slot it was extended by."""
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    'SELECT "check", target, slot_key, slot_at, status, slot_steps, run_count'
                    " FROM check_run ORDER BY slot_at"
                )
            ).all()
    finally:
        engine.dispose()
    runs = []
    for check, target, key, at, status, steps, count in rows:
        if at is None or not steps:
            runs.extend(StoredRun(check, target, key, at, status) for _ in range(count))
            continue
        first = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        for slot in sorted(slots_of(first, steps)):
            slot_at = slot if at.tzinfo is not None else slot.replace(tzinfo=None)
            runs.append(
                StoredRun(check, target, slot_key(CheckKind(check), target, slot), slot_at, status)
            )
    return sorted(runs, key=lambda run: (run.slot_at is None, run.slot_at or 0))
