"""kill -9 at random points of a busy daemon: the store stays consistent, nothing is lost.

200 cheap checks (100 targets x cert_expiry on an expiring PEM + config_drift on a small file)
run every second against a SQLite store; the daemon is killed 20 times at seeded random
moments, the store is checked for half-written transactions after each kill, and a last run
must then deliver every notification in the outbox to the webhook sink.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.chains import Chain
from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

TARGETS = 100
KILLS = 20
SEED = 20261129

# Each query lists rows a half-written (non-atomic) write would leave behind; all must be empty.
ORPHANS = {
    "sample without its run": (
        "SELECT s.id FROM sample s LEFT JOIN check_run r ON r.id = s.run_id WHERE r.id IS NULL"
    ),
    "finding event without its finding": (
        "SELECT e.id FROM finding_event e LEFT JOIN finding f ON f.fingerprint = e.fingerprint "
        "WHERE f.fingerprint IS NULL"
    ),
    "finding event without its run": (
        "SELECT e.id FROM finding_event e LEFT JOIN check_run r ON r.id = e.run_id "
        "WHERE e.run_id IS NOT NULL AND r.id IS NULL"
    ),
    "finding without any event": (
        "SELECT f.fingerprint FROM finding f LEFT JOIN finding_event e "
        "ON e.fingerprint = f.fingerprint WHERE e.id IS NULL"
    ),
    "duplicate finding fingerprint": (
        "SELECT fingerprint FROM finding GROUP BY fingerprint HAVING count(*) > 1"
    ),
    "ok cert_expiry run without its samples": (
        "SELECT r.id FROM check_run r LEFT JOIN sample s ON s.run_id = r.id "
        "WHERE r.\"check\" = 'cert_expiry' AND r.status = 'ok' AND s.id IS NULL"
    ),
    "run pointing at a missing snapshot": (
        "SELECT r.id FROM check_run r LEFT JOIN snapshot n ON n.sha256 = r.snapshot_sha256 "
        "WHERE r.snapshot_sha256 IS NOT NULL AND n.sha256 IS NULL"
    ),
    "outbox row without its alert group": (
        "SELECT o.id FROM outbox o LEFT JOIN alert_group g ON g.id = o.group_id WHERE g.id IS NULL"
    ),
}


class WebhookSink:
    """Accepts every webhook delivery and records its dedup key."""

    def __init__(self, server: ScriptedHttpServer) -> None:
        self.keys: list[str] = []
        server.post_handlers["/hook"] = self.receive

    def receive(self, body: bytes) -> Reply:
        self.keys.append(json.loads(body)["dedup_key"])
        return Reply(200, {}, b"ok")


def _outbox(path: Path, *flags: str) -> list[dict[str, Any]]:
    listed = run_cli(
        "alerts", "outbox", "--config", str(path), "--format", "json", "--limit", "10000", *flags
    )
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def _check_consistency(database: Path, after: str) -> int:
    """Assert the store has no trace of a half-written transaction; return the run count."""
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)], after
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == [], after
        for what, query in ORPHANS.items():
            rows = connection.execute(query).fetchall()
            assert rows == [], f"{after}: {what}: {rows[:5]}"
        return int(
            connection.execute("SELECT coalesce(sum(run_count), 0) FROM check_run").fetchone()[0]
        )
    finally:
        connection.close()


def _undelivered(database: Path, *, unclaimed_only: bool) -> int:
    query = "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND NOT permanent"
    if unclaimed_only:
        query += " AND (claimed_until IS NULL OR claimed_until < datetime('now'))"
    with sqlite3.connect(database) as connection:
        return int(connection.execute(query).fetchone()[0])


def _notifications(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM outbox").fetchone()[0])


def _wait_for_drain(database: Path, timeout: float) -> None:
    """Wait until no undelivered row is free to send."""
    deadline = time.monotonic() + timeout
    while _undelivered(database, unclaimed_only=True) and time.monotonic() < deadline:
        time.sleep(0.3)


def _config(tmp_path: Path, chain: Chain, hook_url: str, port: int) -> Path:
    expiring = tmp_path / "expiring.pem"
    expiring.write_bytes(chain.leaf("api.test", days_left=3).pem)
    targets = []
    for index in range(TARGETS):
        settings = tmp_path / "drift" / f"app{index}.ini"
        settings.parent.mkdir(exist_ok=True)
        settings.write_text(f"[server]\nport = {8000 + index}\ndebug = false\n")
        targets.append(
            {
                "name": f"api{index}",
                "checks": {
                    "cert_expiry": {"files": [str(expiring)]},
                    "config_drift": {"sources": [{"name": "app", "file": str(settings)}]},
                },
            }
        )
    return write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": f"sqlite:///{tmp_path / 'apivigil.db'}",
            "listen": f"127.0.0.1:{port}",
            "defaults": {"interval": "1s", "timeout": "10s", "jitter": "0s"},
            "scheduler": {"initial_spread": "1s"},
            "targets": targets,
            "alerts": {
                "receivers": [{"name": "hook", "webhook": {"url": hook_url, "secret": "s3"}}],
                "routes": [{"receivers": ["hook"], "group_wait": "0s"}],
                "dispatcher": {"initial_backoff": "1s", "max_backoff": "2s"},
            },
        },
    )


def test_kill_9_at_random_points_leaves_a_consistent_store_and_loses_no_notification(
    tmp_path: Path, chain: Chain
) -> None:
    moments = random.Random(SEED)
    database = tmp_path / "apivigil.db"
    port = free_port()
    with ScriptedHttpServer() as web:
        sink = WebhookSink(web)
        path = _config(tmp_path, chain, f"{web.url}/hook", port)
        upgraded = run_cli("db", "upgrade", "--config", str(path))
        assert upgraded.returncode == 0, upgraded.stderr

        # Given a daemon killed -9 twenty times at random moments of its work
        for kill in range(1, KILLS + 1):
            if kill == KILLS // 2:  # half-way, the files drift: findings open mid-run too
                for settings in (tmp_path / "drift").glob("*.ini"):
                    settings.write_text(settings.read_text().replace("false", "true"))
            with DaemonProcess(path, port, tmp_path) as daemon:
                time.sleep(moments.uniform(0.5, 3.0))
                assert daemon.process.poll() is None, daemon.log_text()
                os.kill(daemon.process.pid, signal.SIGKILL)
                daemon.process.wait(timeout=10)
            # Then no transaction is ever half-written
            runs = _check_consistency(database, f"after kill {kill}")

        # When it runs once more until the outbox is drained
        with DaemonProcess(path, port, tmp_path) as daemon:
            daemon.wait_healthy()
            # a single instance frees the claims its killed self held, so nothing waits;
            # targets a kill always cut short get their first notification in this run
            deadline = time.monotonic() + 60
            while _notifications(database) < TARGETS and time.monotonic() < deadline:
                time.sleep(0.3)
            _wait_for_drain(database, 60)
            assert _outbox(path, "--pending") == []
            assert daemon.stop() == 0, daemon.log_text()
        runs = _check_consistency(database, "after the last run")

    # Then every notification was delivered, and every one the outbox holds reached the sink
    outbox = _outbox(path)
    delivered = [entry for entry in outbox if entry["state"] == "delivered"]
    outbox_keys = {entry["dedup_key"] for entry in outbox}
    lost = outbox_keys - set(sink.keys)
    print(
        f"\nkills survived: {KILLS}, runs recorded: {runs}, notifications in outbox: "
        f"{len(outbox)}, delivered: {len(delivered)} ({len(sink.keys)} deliveries received, "
        f"{len(sink.keys) - len(set(sink.keys))} duplicates by key), lost: {len(lost)}"
    )
    assert runs >= 2 * TARGETS, "the kills came before the daemon did any work"
    assert len(outbox) >= TARGETS, "every target's expiring certificate is notified"
    assert len(delivered) == len(outbox), [e for e in outbox if e["state"] != "delivered"][:5]
    assert lost == set()
    assert set(sink.keys) <= outbox_keys, "a delivery the outbox does not know of"
