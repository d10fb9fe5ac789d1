"""api_inventory's probes stay on the target's origin, whatever the spec's `servers`,
`basePath` or path keys say: a real target on 127.0.0.1 and an "attacker" on 127.0.0.2 that
answers 200 to anything and must never see a connection."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks.egress import EgressPolicy
from monitor.model import Finding
from monitor.store.sql import SqlStore
from tests.support.hostile_servers import GarbageServer
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.inventory_api import Api, ok

pytestmark = [pytest.mark.integration, pytest.mark.hostile_peer]

ATTACKER_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

# {a} is the attacker's host:port, {p} its port
TRICKS = {
    "userinfo": "@{a}",
    "userinfo with a password": ":secret@{a}",
    "decimal IPv4": "@2130706434:{p}",
    "hex IPv4": "@0x7f000002:{p}",
    "octal IPv4": "@0177.0.0.2:{p}",
    "IPv6 zone": "@[fe80::1%25lo]:{p}",
    "backslashes": "\\\\{a}",
    "slash and backslash": "/\\{a}",
    "encoded slashes": "%2F%2F{a}",
    "scheme-relative": "//{a}",
    "a tab before the host": "@\t{a}",
    "a newline before the userinfo": "\n@{a}",
    "a query swallowing the path": "?@{a}",
}


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return sqlite_url  # what is probed does not depend on the store


@pytest.fixture
def web() -> Iterator[ScriptedHttpServer]:
    with ScriptedHttpServer() as server:
        yield server


@pytest.fixture
def attacker() -> Iterator[GarbageServer]:
    with GarbageServer(ATTACKER_ANSWER, host="127.0.0.2") as server:
        yield server


def publish(web: ScriptedHttpServer, document: dict[str, Any]) -> None:
    web.replies["/openapi.json"] = Reply(
        200, {"Content-Type": "application/json"}, json.dumps(document).encode()
    )


def openapi_3(server_url: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Shop", "version": "1"},
        "servers": [{"url": server_url}],
        "paths": paths,
    }


def swagger_2(base_path: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Shop", "version": "1"},
        "basePath": base_path,
        "paths": paths,
    }


def probed_paths(web: ScriptedHttpServer) -> list[str]:
    return [path for path, _ in web.requests if path != "/openapi.json"]


def answered(findings: list[Finding]) -> list[str]:
    return [f.evidence for f in findings if f.evidence.startswith("probe GET")]


def run_findings(api: Api) -> list[Finding]:
    run = api.run()
    assert run.output is not None
    return list(run.output.findings)


@pytest.mark.parametrize("version", ["openapi 3", "swagger 2"])
@pytest.mark.parametrize("trick", TRICKS.values(), ids=TRICKS.keys())
def test_a_base_path_never_sends_the_probe_off_the_target(
    store: SqlStore,
    web: ScriptedHttpServer,
    attacker: GarbageServer,
    tmp_path: Path,
    trick: str,
    version: str,
) -> None:
    # Given a spec whose server URL (3.x) or basePath (2.0) is a URL-parsing trick, and a
    # documented /v2/items, so the check probes whether /v1/items still answers
    base = trick.format(a=attacker.address, p=attacker.port)
    paths = {"/v2/items": {"get": ok()}}
    api = Api(store, web, tmp_path / "access.log", probe={"timeout": "2s"})
    document = openapi_3(base, paths) if version == "openapi 3" else swagger_2(base, paths)
    publish(web, document)

    # When the check runs
    findings = run_findings(api)

    # Then the attacker saw no connection, no probe answer reached a finding, and the
    # probe (if any) went to the target itself, on a path of its own
    assert attacker.connections == 0
    assert answered(findings) == []
    assert probed_paths(web) == ["/v1/items"]


def test_a_base_path_that_is_not_a_path_is_a_spec_problem_and_the_probe_stays_home(
    store: SqlStore, web: ScriptedHttpServer, attacker: GarbageServer, tmp_path: Path
) -> None:
    api = Api(store, web, tmp_path / "access.log", probe={"timeout": "2s"})
    paths = {"/v2/items": {"get": ok()}}
    publish(web, openapi_3(f"@{attacker.address}/api", paths))

    findings = run_findings(api)

    (invalid,) = [f for f in findings if f.rule_id == "INVENTORY-SPEC-INVALID"]
    assert f"servers[0].url '@{attacker.address}/api'" in invalid.evidence
    assert "must start with '/'" in invalid.evidence
    assert probed_paths(web) == ["/v1/items"]
    assert attacker.connections == 0


def test_an_absolute_server_url_of_another_origin_gives_only_its_path(
    store: SqlStore, web: ScriptedHttpServer, attacker: GarbageServer, tmp_path: Path
) -> None:
    api = Api(store, web, tmp_path / "access.log", probe={"timeout": "2s"})
    web.replies["/api/v1/items"] = Reply(200, {}, b"[]")
    publish(web, openapi_3(f"http://{attacker.address}/api", {"/v2/items": {"get": ok()}}))

    findings = run_findings(api)

    assert probed_paths(web) == ["/api/v1/items"]
    assert answered(findings) == ["probe GET /v1/items answered HTTP 200"]
    assert attacker.connections == 0


@pytest.mark.parametrize(
    "path", ["@{a}/old", "{{id}}@{a}/old", "\\\\{a}/old", "//{a}/old", "\t@{a}/old"]
)
def test_a_removed_operation_whose_path_is_a_trick_is_not_probed_anywhere(
    store: SqlStore, web: ScriptedHttpServer, attacker: GarbageServer, tmp_path: Path, path: str
) -> None:
    # Given a removed operation whose path key is a URL-parsing trick
    trick = path.format(a=attacker.address)
    api = Api(store, web, tmp_path / "access.log", probe={"timeout": "2s"})
    publish(web, openapi_3("", {trick: {"get": ok()}, "/kept": {"get": ok()}}))
    api.run()
    publish(web, openapi_3("", {"/kept": {"get": ok()}}))

    # When the check probes the removed operation
    findings = run_findings(api)

    # Then it was not probed at all, nothing left the target and no answer became a finding
    assert attacker.connections == 0
    assert answered(findings) == []
    assert probed_paths(web) == []


def test_probe_urls_pass_the_egress_policy_like_every_url_taken_from_a_spec(
    store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    # Given an egress policy that denies the target's network (the configured spec URL
    # itself is not derived and is still read)
    api = Api(store, web, tmp_path / "access.log", probe={"timeout": "2s"})
    web.replies["/v1/items"] = Reply(200, {}, b"[]")
    publish(web, openapi_3("/", {"/v2/items": {"get": ok()}}))
    api.egress = EgressPolicy.with_lists([ipaddress.ip_network("127.0.0.1/32")])
    findings = run_findings(api)

    # Then the probe, a URL built from the spec, was refused before any connection
    assert probed_paths(web) == []
    assert answered(findings) == []
