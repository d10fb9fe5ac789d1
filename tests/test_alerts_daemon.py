"""Alerting in the real daemon: nothing is lost to a kill -9 with a backlog."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.chains import Chain
from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

TARGETS = 5


class WebhookSink:
    """Records webhook deliveries; fails with 500 until told to accept."""

    def __init__(self, server: ScriptedHttpServer) -> None:
        self.accepting = False
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.refused = 0
        server.post_handlers["/hook"] = self.receive

    def receive(self, body: bytes) -> Reply:
        if not self.accepting:
            self.refused += 1
            return Reply(500, {}, b"down for maintenance")
        document = json.loads(body)
        self.received.append((document["dedup_key"], document))
        return Reply(200, {}, b"ok")


def outbox(path: Path) -> list[dict[str, Any]]:
    listed = run_cli("alerts", "outbox", "--config", str(path), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_backlog_survives_kill_9_and_every_notification_arrives(
    tmp_path: Path, chain: Chain
) -> None:
    targets = []
    for index in range(TARGETS):
        pem = tmp_path / f"expiring-{index}.pem"
        pem.write_bytes(chain.leaf(f"api{index}.test", days_left=3).pem)
        targets.append(
            {
                "name": f"api{index}",
                "checks": {"cert_expiry": {"files": [str(pem)], "interval": "2s"}},
            }
        )
    port = free_port()
    with ScriptedHttpServer() as web:
        sink = WebhookSink(web)
        path = write_config(
            tmp_path / "apivigil.yaml",
            {
                "store": f"sqlite:///{tmp_path / 'apivigil.db'}",
                "listen": f"127.0.0.1:{port}",
                "defaults": {"interval": "1h", "timeout": "10s", "jitter": "0s"},
                "scheduler": {"initial_spread": "1s"},
                "targets": targets,
                "alerts": {
                    "receivers": [
                        {"name": "hook", "webhook": {"url": f"{web.url}/hook", "secret": "s3"}}
                    ],
                    "routes": [{"receivers": ["hook"], "group_wait": "0s"}],
                    "dispatcher": {"initial_backoff": "1s", "max_backoff": "2s"},
                },
            },
        )
        daemon = DaemonProcess(path, port, tmp_path)
        daemon.wait_healthy()
        wait_until(lambda: sink.refused >= TARGETS, 60, "the receiver to refuse every group")
        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait(timeout=10)
        backlog = outbox(path)
        assert len(backlog) == TARGETS
        assert all(entry["state"] == "pending" for entry in backlog)

        sink.accepting = True
        with DaemonProcess(path, port, tmp_path) as restarted:
            restarted.wait_healthy()
            wait_until(
                lambda: {key for key, _ in sink.received} >= {e["dedup_key"] for e in backlog},
                60,
                "every notification of the backlog",
            )
            assert restarted.stop() == 0

    delivered = outbox(path)
    assert all(entry["state"] == "delivered" for entry in delivered)
    groups = Counter(
        document["group_labels"]["target"]
        for _, document in sink.received
        if document["kind"] == "firing"
    )
    assert set(groups) == {f"api{index}" for index in range(TARGETS)}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for key, document in sink.received:
        by_key.setdefault(key, []).append(document)
    for documents in by_key.values():  # a duplicate is the same notification, same key
        assert all(d["group_key"] == documents[0]["group_key"] for d in documents)
    assert (
        len({d["group_key"] for docs in by_key.values() for d in docs if d["kind"] == "firing"})
        == TARGETS
    )
