"""An API whose OpenAPI spec a local HTTP server publishes and changes between runs, its access
log, and the api_inventory check run against them on a manual clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from checks.api_inventory.params import ApiInventoryParams
from checks.egress import EgressPolicy
from monitor.model import CheckKind, CheckRun, FindingStatus, RunStatus, Target
from monitor.runner import CheckJob, Runner
from monitor.store.interface import FindingQuery, HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.clocks import ManualClock
from tests.support.http_servers import Reply, ScriptedHttpServer

STRICT = HysteresisPolicy(open_after=1, resolve_after=1)
BEARER = [{"bearer": []}]


def spec(paths: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "openapi": "3.0.3",
            "info": {"title": "Shop", "version": "1"},
            "servers": [{"url": "/"}],
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": BEARER,
            "paths": paths,
        }
    ).encode()


def ok(**extra: Any) -> dict[str, Any]:
    return {"responses": {"200": {"description": "ok"}}, **extra}


V1 = {
    "/users": {"get": ok(), "post": ok()},
    "/users/{id}": {
        "get": ok(
            parameters=[
                {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ]
        )
    },
    "/v2/items": {"get": ok()},
}
V2 = {
    "/users": {
        "get": ok(
            parameters=[
                {"name": "tenant", "in": "query", "required": True, "schema": {"type": "string"}}
            ]
        ),
        "post": ok(security=[]),
    },
    "/export": {"get": ok(security=[])},
    "/v2/items": {"get": ok()},
}


def combined(method: str, path: str, status: int, when: datetime) -> str:
    stamp = when.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'10.0.0.1 - - [{stamp}] "{method} {path} HTTP/1.1" {status} 12 "-" "curl/8"\n'


class Api:
    """The spec server, its access log and the check run against them."""

    def __init__(self, store: SqlStore, web: ScriptedHttpServer, log: Path, **params: Any) -> None:
        self.store, self.web, self.log = store, web, log
        self.clock = ManualClock(datetime(2026, 11, 29, 9, 0, tzinfo=UTC))
        self.target = Target("shop", url=web.url)
        self.egress = EgressPolicy()
        self.params = ApiInventoryParams.model_validate(
            {"spec_path": "/openapi.json", "access_logs": [{"path": str(log)}], **params}
        )
        self.publish(V1)
        log.write_text("")

    def publish(self, paths: dict[str, Any]) -> None:
        self.web.replies["/openapi.json"] = Reply(
            200, {"Content-Type": "application/json"}, spec(paths)
        )

    def traffic(self, *requests: tuple[str, str, int]) -> None:
        with self.log.open("a") as handle:
            for method, path, status in requests:
                handle.write(combined(method, path, status, self.clock.now()))

    def run(self) -> CheckRun:
        self.clock.current += timedelta(minutes=10)
        job = CheckJob(CheckKind.API_INVENTORY, self.target, self.params, timedelta(seconds=30))
        run = Runner(clock=self.clock, history=self.store, egress=self.egress).run(job)
        assert run.status is RunStatus.OK, run.error_message
        self.store.record(run, STRICT)
        return run

    def findings(self, status: FindingStatus = FindingStatus.OPEN) -> dict[tuple[str, str], Any]:
        query = FindingQuery(target="shop", statuses=frozenset({status}))
        return {(f.rule_id, f.subject): f for f in self.store.findings(query)}
