"""The config's egress policy holds in every process that runs checks: `apivigil scan`,
`apivigil run` and a clustered `apivigil worker`, at start and after SIGHUP.

The "internal network" is 127.0.0.2 (denied by the config); the targets are on 127.0.0.1:
the spec of one redirects to the internal server, the spec of the other has a same-origin
`$ref` that redirects there.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster_processes import (
    CandidateProcess,
    WorkerProcess,
    cluster_config,
    redis_namespace,
    wait_until,
)
from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.hostile_peer]

DENIED = "127.0.0.2/32"
DENIAL = f"egress to 127.0.0.2 denied by policy: deny list {DENIED}"
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "paths": {"/users": {"get": {"responses": {"200": {"$ref": "/common.json#/Ok"}}}}},
}


@dataclass(frozen=True)
class Hostile:
    """A target on 127.0.0.1 whose redirects lead to `internal` on 127.0.0.2."""

    web: ScriptedHttpServer
    internal: ScriptedHttpServer

    def targets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "redirecting",
                "url": self.web.url,
                "checks": {"api_inventory": {"spec_path": "/moved.json"}},
            },
            {
                "name": "refs",
                "url": self.web.url,
                "checks": {
                    "api_inventory": {"spec_path": "/openapi.json", "allow_remote_refs": True}
                },
            },
        ]


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    with ScriptedHttpServer() as web, ScriptedHttpServer(host="127.0.0.2") as internal:
        internal.replies["/openapi.json"] = Reply(200, {}, json.dumps(SPEC).encode())
        internal.replies["/common.json"] = Reply(200, {}, b'{"Ok": {"description": "ok"}}')
        web.replies["/moved.json"] = Reply(302, {"Location": f"{internal.url}/openapi.json"})
        web.replies["/openapi.json"] = Reply(200, {}, json.dumps(SPEC).encode())
        web.replies["/common.json"] = Reply(302, {"Location": f"{internal.url}/common.json"})
        yield Hostile(web, internal)


def with_egress(config: dict[str, Any], deny: list[str]) -> dict[str, Any]:
    return {**config, "egress": {"deny_cidrs": deny}}


def errors_by_target(events: list[dict[str, Any]]) -> dict[str, str | None]:
    """The latest "check run" event's error of each target."""
    return {e["target"]: e.get("error") for e in events if e.get("event") == "check run"}


def both_denied(errors: dict[str, str | None]) -> bool:
    return all(DENIAL in (errors.get(name) or "") for name in ("redirecting", "refs"))


def test_apivigil_scan_refuses_a_hostile_redirect_and_a_denied_ref(
    tmp_path: Path, hostile: Hostile
) -> None:
    config = with_egress({"targets": hostile.targets()}, [DENIED])
    path = write_config(tmp_path / "apivigil.yaml", config)

    scanned = run_cli("scan", "--config", str(path), "--format", "json")

    runs = {run["target"]: run for run in json.loads(scanned.stdout)["runs"]}
    assert scanned.returncode == 3, scanned.stderr
    for name in ("redirecting", "refs"):
        assert runs[name]["error"]["reason"] == "bad_input"
        assert DENIAL in runs[name]["error"]["message"]
    assert hostile.internal.requests == []


def test_apivigil_run_refuses_them_and_a_reload_replaces_the_policy(
    tmp_path: Path, hostile: Hostile
) -> None:
    port = free_port()
    config = {
        "store": f"sqlite:///{tmp_path / 'apivigil.db'}",
        "listen": f"127.0.0.1:{port}",
        "defaults": {"interval": "2s", "timeout": "20s"},
        "scheduler": {"initial_spread": "1s"},
        "targets": hostile.targets(),
    }
    path = write_config(tmp_path / "apivigil.yaml", with_egress(config, [DENIED]))
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        # Given the daemon started with 127.0.0.2 denied: both targets fail naming the denial
        wait_until(lambda: both_denied(errors_by_target(daemon.events())), 30, "both denied")
        assert hostile.internal.requests == []
        # When the denial is removed and the daemon reloads
        write_config(path, with_egress(config, []))
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_event(lambda e: e.get("event") == "config reloaded")
        # Then later runs follow the redirect: the running policy was replaced
        wait_until(lambda: hostile.internal.requests, 30, "the internal server reached")
        assert daemon.stop() == 0


@pytest.mark.postgres
def test_a_clustered_worker_refuses_them_and_a_reload_replaces_the_policy(
    tmp_path: Path, hostile: Hostile, postgres_url: str
) -> None:
    namespace_keys = redis_namespace()
    namespace = next(namespace_keys)
    config = cluster_config(postgres_url, namespace, free_port(), hostile.targets())
    candidate_path = write_config(tmp_path / "candidate.yaml", with_egress(config, [DENIED]))
    worker_path = write_config(tmp_path / "worker.yaml", with_egress(config, [DENIED]))
    candidate = CandidateProcess(candidate_path, int(config["listen"].rsplit(":")[1]), tmp_path)
    worker: WorkerProcess | None = None
    try:
        candidate.wait_healthy()
        worker = WorkerProcess(worker_path, tmp_path)
        worker.wait_started()
        # Given a worker whose config denies 127.0.0.2: both targets fail naming the denial
        wait_until(lambda: both_denied(errors_by_target(worker.events())), 40, "both denied")
        assert hostile.internal.requests == []
        # When the worker's config drops the denial and it reloads
        write_config(worker_path, with_egress(config, []))
        worker.signal(signal.SIGHUP)
        worker.wait_for_event(lambda e: e.get("event") == "config reloaded")
        # Then its later runs follow the redirect
        wait_until(lambda: hostile.internal.requests, 30, "the internal server reached")
        assert worker.stop() == 0
        assert candidate.stop() == 0
    finally:
        for process in (candidate, worker):
            if process is not None and process.process.poll() is None:
                process.process.kill()
                process.process.wait(timeout=10)
        next(namespace_keys, None)
