"""api_inventory end to end: a local HTTP server whose spec changes between runs, an access
log with rotation, probes of retired operations, the real runner and store."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.baselines import accept
from monitor.model import CheckKind, FindingStatus, Severity
from monitor.store.sql import SqlStore
from tests.support.daemon_process import APIVIGIL, run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.inventory_api import V1, V2, Api, ok, spec


@pytest.fixture
def web() -> Iterator[ScriptedHttpServer]:
    with ScriptedHttpServer() as server:
        yield server


@pytest.mark.integration
def test_spec_changes_raise_breaking_and_security_findings_that_resolve_when_reverted(
    store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    api = Api(store, web, tmp_path / "access.log")
    first = api.run()
    assert first.output is not None
    assert not [f for f in first.output.findings if f.rule_id.startswith("INVENTORY-OPERATION")]
    (baseline,) = store.baseline_history(CheckKind.API_INVENTORY, "shop")
    assert baseline.approved_by == "first observation"

    api.publish(V2)
    api.run()
    found = api.findings()
    rules = {rule for rule, _ in found}

    public_post = found[next(k for k in found if k[0] == "INVENTORY-SECURITY-REMOVED")]
    assert public_post.severity is Severity.CRITICAL
    assert "POST /users" in public_post.subject
    assert any(r == "INVENTORY-UNAUTHENTICATED-OPERATION" and "GET /export" in s for r, s in found)
    removed = next(f for (r, _), f in found.items() if r == "INVENTORY-OPERATION-REMOVED")
    assert removed.severity is Severity.HIGH
    # named as the spec writes it, not by the internal key `GET /users/{}`
    assert "GET /users/{id}: removed without prior deprecation" in removed.evidence
    assert "{}" not in removed.evidence + removed.title
    breaking = next(f for (r, _), f in found.items() if r == "INVENTORY-BREAKING-CHANGE")
    assert "required parameter added" in breaking.evidence
    assert "INVENTORY-OPERATION-ADDED" in rules

    api.publish(V1)
    api.run()
    assert not [k for k in api.findings() if k[1].startswith("inventory|")]
    assert (
        len([k for k in api.findings(FindingStatus.RESOLVED) if k[1].startswith("inventory|")]) >= 5
    )


@pytest.mark.integration
def test_accepting_the_new_inventory_resolves_its_findings(
    store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    api = Api(store, web, tmp_path / "access.log")
    api.run()
    api.publish(V2)
    api.run()
    assert [k for k in api.findings() if k[1].startswith("inventory|")]

    sources = ["inventory", "posture"]  # what `apivigil inventory accept` approves
    result = accept(store, CheckKind.API_INVENTORY, "shop", sources, "v2", "erin", api.clock.now())
    api.run()

    assert result.transitions
    assert not [k for k in api.findings() if k[1].startswith("inventory|")]
    assert [b.approved_by for b in store.baseline_history(CheckKind.API_INVENTORY, "shop")] == [
        "first observation",
        "erin",
    ]


@pytest.mark.integration
def test_shadow_and_zombie_traffic_is_found_across_log_rotation(
    store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    api = Api(store, web, log)
    api.traffic(
        ("GET", "/users", 200), ("GET", "/admin/debug/42", 200), ("GET", "/internal/x", 403)
    )
    api.run()
    api.publish(V2)  # GET /users/{id} removed

    api.traffic(("GET", "/users/7", 200))
    log.rename(tmp_path / "access.log.1")  # logrotate
    log.write_text("")
    api.traffic(("GET", "/users/8", 200), ("GET", "/admin/debug/43", 200))
    api.run()

    found = api.findings()
    shadow = found[("INVENTORY-SHADOW-ENDPOINT", "shadow|GET /admin/debug/{param}")]
    assert shadow.severity is Severity.HIGH
    assert "2 request(s)" in shadow.evidence
    refused = found[("INVENTORY-SHADOW-ENDPOINT", "shadow|GET /internal/x")]
    assert refused.severity is Severity.LOW
    zombie = found[("INVENTORY-ZOMBIE-ENDPOINT", "zombie|GET /users/{}")]
    assert "2 request(s)" in zombie.evidence
    assert zombie.title == "Removed operation GET /users/{id} still receives traffic"
    assert zombie.severity is Severity.HIGH


@pytest.mark.integration
def test_probes_find_removed_operations_and_older_versions_that_still_answer(
    store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    api = Api(store, web, tmp_path / "access.log", probe={"timeout": "2s"})
    web.replies["/users/1"] = Reply(200, {}, b"{}")  # still served after its removal
    web.replies["/v1/items"] = Reply(200, {}, b"[]")  # the old version was never turned off
    api.run()
    api.publish(V2)

    api.run()

    found = api.findings()
    assert found[("INVENTORY-ZOMBIE-ENDPOINT", "zombie|GET /users/{}")].severity is Severity.HIGH
    older = found[("INVENTORY-ZOMBIE-ENDPOINT", "zombie|GET /v1/items")]
    assert "answered HTTP 200" in older.evidence


@pytest.mark.integration
def test_an_unparseable_spec_is_a_finding_and_keeps_the_previous_inventory(
    store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    api = Api(store, web, tmp_path / "access.log")
    api.run()
    api.publish(V2)
    api.run()
    before = {k for k in api.findings() if k[1].startswith("inventory|")}

    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)
    )
    web.replies["/openapi.json"] = Reply(200, {"Content-Type": "application/yaml"}, laughs.encode())
    for _ in range(2):
        api.run()

    found = api.findings()
    assert ("INVENTORY-SPEC-UNPARSEABLE", "spec") in found
    assert before <= set(found), "an unreadable spec resolved the change findings"
    snapshot = store.latest_snapshot(CheckKind.API_INVENTORY, "shop")
    assert snapshot is not None
    assert len(snapshot["inventory"]["operations"]) == 4


@pytest.mark.e2e
def test_inventory_cli_shows_diffs_and_accepts(
    tmp_path: Path, sqlite_url: str, web: ScriptedHttpServer
) -> None:
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    api = Api(store, web, tmp_path / "access.log")
    api.run()
    api.publish(V2)
    api.run()
    store.close()
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": sqlite_url,
            "targets": [
                {
                    "name": "shop",
                    "url": web.url,
                    "checks": {"api_inventory": {"spec_path": "/openapi.json"}},
                }
            ],
        },
    )

    shown = run_cli("inventory", "show", "shop", "--config", str(config))
    diff = run_cli("inventory", "diff", "shop", "--config", str(config))
    as_json = run_cli(
        "inventory", "diff", "shop", "-c", str(config), "-f", "json", "--rule", "INVENTORY-SEC"
    )
    accepted = run_cli("inventory", "accept", "shop", "--reason", "v2", "--config", str(config))
    again = run_cli("inventory", "diff", "shop", "--config", str(config))

    assert shown.returncode == 0, shown.stderr
    assert "/export" in shown.stdout
    assert "public" in shown.stdout
    assert "INVENTORY-SECURITY-REMOVED" in diff.stdout
    assert diff.returncode == 1  # security removed is worse than high
    assert {c["rule_id"] for c in json.loads(as_json.stdout)["changes"]} == {
        "INVENTORY-SECURITY-REMOVED"
    }
    assert accepted.returncode == 0, accepted.stderr
    assert "finding(s) resolved" in accepted.stdout
    assert "is the approved one" in again.stdout


@pytest.mark.integration
def test_a_first_observation_reports_public_plain_http_and_deprecated_operations_until_accepted(
    store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    api = Api(store, web, tmp_path / "access.log")
    public = {
        f"/public/open{i}": {"get": ok(security=[]), "delete": ok(security=[])} for i in range(12)
    }
    document = json.loads(spec({**V1, **public, "/old": {"get": ok(deprecated=True)}}))
    document["servers"] = [{"url": "http://api.example.test/"}, {"url": "https://api.example.test"}]
    web.replies["/openapi.json"] = Reply(200, {}, json.dumps(document).encode())

    api.run()
    found = api.findings()
    api.run()  # the automatic baseline does not silence them

    assert api.findings().keys() == found.keys()
    by_rule: dict[str, list[Any]] = {}
    for (rule, _), finding in found.items():
        by_rule.setdefault(rule, []).append(finding)
    unauthenticated = by_rule["INVENTORY-UNAUTHENTICATED-OPERATION"]
    # 12 writes and 12 reads: more than ten of a kind roll up, every operation listed
    assert {f.severity for f in unauthenticated} == {Severity.MEDIUM, Severity.HIGH}
    assert len(unauthenticated) == 2
    writes = next(f for f in unauthenticated if f.severity is Severity.HIGH)
    assert writes.title == (
        "12 operation(s) without authentication — unauthenticated write under /public: "
        "DELETE /public/open0, DELETE /public/open1, DELETE /public/open10 and 9 more"
    )
    assert all(f"DELETE /public/open{i}" in writes.evidence for i in range(12))
    (plaintext,) = by_rule["INVENTORY-PLAINTEXT-SERVER"]
    assert plaintext.severity is Severity.HIGH  # bearer tokens cross in clear text
    assert "http://api.example.test/" in plaintext.title
    (deprecated,) = by_rule["INVENTORY-OPERATION-DEPRECATED"]
    assert "GET /old" in deprecated.evidence

    sources = ["inventory", "posture"]  # what `apivigil inventory accept` approves
    accept(store, CheckKind.API_INVENTORY, "shop", sources, "known", "erin", api.clock.now())
    api.run()

    assert not [k for k in api.findings() if k[1].startswith("inventory|")]


@pytest.mark.integration
def test_the_findings_table_names_each_changed_operation_as_the_spec_writes_it_at_80_columns(
    tmp_path: Path, sqlite_url: str, web: ScriptedHttpServer
) -> None:
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    api = Api(store, web, tmp_path / "access.log")
    api.run()
    api.publish(V2)  # GET /users/{id} removed, POST /users made public, GET /export added
    api.run()
    store.close()
    config = write_config(
        tmp_path / "apivigil.yaml",
        {"store": sqlite_url, "targets": [{"name": "shop", "url": web.url}]},
    )

    narrow = subprocess.run(
        [*APIVIGIL, "findings", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )

    assert narrow.returncode == 0, narrow.stderr
    shown = " ".join(narrow.stdout.replace("│", " ").split())
    assert "removed under /users: GET /users/{id}" in shown
    assert "POST /users: authentication removed" in shown
    assert "GET /export" in shown
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
