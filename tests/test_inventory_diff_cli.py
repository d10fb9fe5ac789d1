"""`apivigil inventory diff OLD NEW` as a CI job runs it: files, URLs and stdin, exit codes
by --fail-on, filters, and every format, with remote strings escaped for people."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_process import APIVIGIL, run_cli
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.openapi_specs import SpecChanges, resource_count, write_multi_file_spec

pytestmark = pytest.mark.e2e

HOSTILE_TITLE = "Shop \x1b[31mred\x1b]8;;http://evil.test\x07 <img src=x> [x](http://evil.test)"


def document(paths: dict[str, Any], title: str = "Shop") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "components": {"securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "k"}}},
        "security": [{"key": []}],
        "paths": paths,
    }


def ok(**extra: Any) -> dict[str, Any]:
    return {"responses": {"200": {"description": "ok"}}, **extra}


OLD = document({"/users": {"get": ok(), "post": ok()}, "/orders": {"get": ok()}})
ADDED = document({**OLD["paths"], "/items": {"get": ok()}})
BROKEN = document({"/users": {"get": ok()}, "/orders": {"get": ok(security=[])}})


def write(path: Path, content: dict[str, Any]) -> str:
    path.write_text(json.dumps(content))
    return str(path)


@pytest.fixture
def specs(tmp_path: Path) -> dict[str, str]:
    return {
        "old": write(tmp_path / "old.json", OLD),
        "added": write(tmp_path / "added.json", ADDED),
        "broken": write(tmp_path / "broken.json", BROKEN),
    }


def diff(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("inventory", "diff", *args)


def test_exit_codes_follow_fail_on_with_breaking_changes_failing_by_default(
    specs: dict[str, str],
) -> None:
    assert diff(specs["old"], specs["old"]).returncode == 0
    assert diff(specs["old"], specs["added"]).returncode == 0  # additions break nothing
    assert diff(specs["old"], specs["added"], "--fail-on", "low").returncode == 1
    broken = diff(specs["old"], specs["broken"])
    assert broken.returncode == 1
    assert "INVENTORY-SECURITY-REMOVED" in broken.stdout
    assert "[FAIL]" in broken.stdout
    assert diff(specs["old"], specs["broken"], "--fail-on", "never").returncode == 0
    only_added = diff(specs["old"], specs["broken"], "--rule", "INVENTORY-OPERATION-ADDED")
    assert only_added.returncode == 0


def test_an_unreadable_spec_is_exit_2_naming_it(specs: dict[str, str], tmp_path: Path) -> None:
    missing = diff(specs["old"], str(tmp_path / "nope.yaml"))
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("openapi: [unclosed\n")
    unparseable = diff(str(garbage), specs["old"])

    assert missing.returncode == 2
    assert "nope.yaml" in missing.stderr
    assert unparseable.returncode == 2
    assert "garbage.yaml" in unparseable.stderr
    assert "invalid YAML at line" in unparseable.stderr
    assert "Traceback" not in missing.stderr + unparseable.stderr


def test_json_lists_every_change_and_every_operation_of_a_roll_up(specs: dict[str, str]) -> None:
    result = diff(specs["old"], specs["broken"], "--format", "json")

    data = json.loads(result.stdout)
    assert result.returncode == 1
    assert data["failed"] is True
    rules = {c["rule_id"] for c in data["changes"]}
    assert rules == {"INVENTORY-SECURITY-REMOVED", "INVENTORY-OPERATION-REMOVED"}
    removed = next(g for g in data["groups"] if g["rule_id"] == "INVENTORY-OPERATION-REMOVED")
    assert removed["operations"] == ["POST /users"]
    assert data["old"]["operations"] == 3


def test_min_severity_and_rule_filter_what_is_shown(specs: dict[str, str]) -> None:
    critical = json.loads(
        diff(specs["old"], specs["broken"], "-f", "json", "--min-severity", "critical").stdout
    )
    security = json.loads(
        diff(specs["old"], specs["broken"], "-f", "json", "--rule", "INVENTORY-SECURITY").stdout
    )

    assert [c["rule_id"] for c in critical["changes"]] == ["INVENTORY-SECURITY-REMOVED"]
    assert [c["rule_id"] for c in security["changes"]] == ["INVENTORY-SECURITY-REMOVED"]


def test_sarif_has_one_result_per_change(specs: dict[str, str]) -> None:
    result = diff(specs["old"], specs["broken"], "--format", "sarif")

    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert sorted(r["ruleId"] for r in results) == [
        "INVENTORY-OPERATION-REMOVED",
        "INVENTORY-SECURITY-REMOVED",
    ]
    assert all(r["kind"] == "fail" for r in results)
    assert (
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == (specs["broken"])
    )


def test_markdown_and_table_escape_what_the_spec_author_wrote(tmp_path: Path) -> None:
    hostile_path = "/a\u202eb<script>"
    old = write(tmp_path / "old.json", document({hostile_path: {"get": ok()}}, HOSTILE_TITLE))
    new = write(tmp_path / "new.json", document({}, HOSTILE_TITLE))

    markdown = diff(old, new, "--format", "markdown").stdout
    table = diff(old, new).stdout

    for shown in (markdown, table):
        assert "\x1b" not in shown
        assert "\u202e" not in shown
        assert "\\x1b" in shown
        assert "\\u202e" in shown
    assert re.search(r"(?<!\\)<(img|script)", markdown) is None  # `\<img`: text, not HTML
    assert re.search(r"(?<!\\)\]\(http", markdown) is None  # no link
    assert markdown.startswith("### API changes:")
    assert "<details><summary>" in markdown


@pytest.fixture
def web() -> Iterator[ScriptedHttpServer]:
    with ScriptedHttpServer() as server:
        yield server


def test_urls_and_stdin_work_as_old_and_new(specs: dict[str, str], web: ScriptedHttpServer) -> None:
    web.replies["/openapi.json"] = Reply(200, {}, json.dumps(BROKEN).encode())
    from_url = diff(specs["old"], f"{web.url}/openapi.json", "-f", "json")
    from_stdin = subprocess.run(
        [*APIVIGIL, "inventory", "diff", "-", specs["broken"], "-f", "json"],
        input=Path(specs["old"]).read_text(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert from_url.returncode == 1, from_url.stderr
    assert from_stdin.returncode == 1, from_stdin.stderr
    assert json.loads(from_url.stdout)["changes"] == json.loads(from_stdin.stdout)["changes"]


def test_a_1500_file_spec_pair_diffs_and_limits_are_set_on_the_command_line(
    tmp_path: Path,
) -> None:
    resources = resource_count(1_500)
    old = write_multi_file_spec(tmp_path / "old", resources)
    new = write_multi_file_spec(
        tmp_path / "new", resources, changes=SpecChanges(insert_variant=True, public_resources=2)
    )

    result = diff(str(old), str(new), "-f", "json")
    limited = diff(str(old), str(new), "--max-files", "100")

    data = json.loads(result.stdout)
    assert result.returncode == 1  # two resources went public
    assert data["summary"]["INVENTORY-SECURITY-REMOVED"] == 8
    assert not [c for c in data["changes"] if "enum value removed" in c["detail"]]
    assert limited.returncode == 2
    assert "(limit max_files = 100)" in limited.stderr
