"""The committed dashboards equal dashboards/build.py's output, are well formed, and use only
metrics the daemon exports (one table, monitor/metric_names.py)."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from dashboards.build import JSON_DIR, SDK, SDK_VERSION, build_all, differences, render, write
from monitor.metric_names import (
    FAMILIES,
    OBSERVATION_PREFIX,
    OBSERVATIONS,
    REQUESTED,
    SAMPLE_NAMES,
    MetricType,
)
from tests.support.daemon_process import run_cli

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = build_all()
METRIC = re.compile(r"\b(apivigil_[A-Za-z0-9_]+)")
# checks/api_inventory exports a cumulative count as a gauge named *_total
GAUGES_NAMED_TOTAL = {
    "apivigil_inventory_changes_total",
    "apivigil_inventory_unmatched_requests_total",
    "apivigil_inventory_templates_evicted_total",
}
TARGET_SCOPED = {
    "apivigil-api-inventory.json",
    "apivigil-overview.json",
    "apivigil-tls.json",
    "apivigil-patch-levels.json",
    "apivigil-config-drift.json",
}


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in document["panels"]:
        yield panel
        yield from panel.get("panels", [])


def panel_exprs(document: dict[str, Any]) -> Iterator[str]:
    for panel in panels(document):
        for target in panel.get("targets", []):
            yield target["expr"]


def other_exprs(document: dict[str, Any]) -> Iterator[str]:
    """Variable and annotation queries."""
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["query"]
    for annotation in document["annotations"]["list"]:
        if "expr" in annotation:
            yield annotation["expr"]


@pytest.mark.unit
def test_committed_json_equals_the_builders_output() -> None:
    assert differences() == [], "run `apivigil dashboards build` and commit dashboards/json/"
    assert {path.name for path in JSON_DIR.glob("*.json")} == set(DOCUMENTS)


@pytest.mark.unit
def test_build_writes_the_same_files_and_removes_stale_ones(tmp_path: Path) -> None:
    (tmp_path / "old-dashboard.json").write_text("{}")
    written = write(tmp_path)
    assert {path.name for path in written} == set(DOCUMENTS)
    assert not (tmp_path / "old-dashboard.json").exists()
    for path in written:
        assert path.read_text() == (JSON_DIR / path.name).read_text()
    assert differences(tmp_path) == []
    (tmp_path / "apivigil-tls.json").write_text(render({"changed": True}))
    assert differences(tmp_path) == ["apivigil-tls.json: differs from dashboards/build.py's output"]


@pytest.mark.e2e
def test_the_build_command_writes_and_checks(tmp_path: Path) -> None:
    built = run_cli("dashboards", "build", "--out", str(tmp_path))
    assert built.returncode == 0, built.stderr
    assert run_cli("dashboards", "build", "--check", "--out", str(tmp_path)).returncode == 0
    (tmp_path / "apivigil-alerts.json").unlink()
    stale = run_cli("dashboards", "build", "--check", "--out", str(tmp_path))
    assert stale.returncode == 1
    assert "apivigil-alerts.json: missing" in stale.stderr


@pytest.mark.unit
def test_the_sdk_is_pinned_exactly_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [dep for dep in project["dependencies"] if dep.startswith(SDK)]
    assert pins == [f"{SDK}=={SDK_VERSION}"]


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_panel_ids_are_unique_and_no_two_panels_overlap(name: str) -> None:
    document = DOCUMENTS[name]
    ids = [panel["id"] for panel in panels(document)]
    assert len(ids) == len(set(ids))
    assert all(isinstance(panel_id, int) and panel_id > 0 for panel_id in ids)
    boxes = []
    for panel in panels(document):
        grid = panel["gridPos"]
        assert min(grid["x"], grid["y"]) >= 0
        assert min(grid["w"], grid["h"]) > 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        boxes.append((panel["title"], grid))
    for (first, a), (second, b) in combinations(boxes, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, f"{name}: {first!r} overlaps {second!r}"


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_panel_queries_prometheus_through_the_datasource_variable(name: str) -> None:
    document = DOCUMENTS[name]
    assert document["uid"] == name.removesuffix(".json")
    assert document["title"].startswith("apivigil / ")
    for panel in panels(document):
        assert panel["title"]
        if panel["type"] == "row":
            continue
        assert panel.get("description"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({target["refId"] for target in targets}) == len(targets)
        for target in targets:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_metric_a_panel_uses_is_one_the_daemon_exports(name: str) -> None:
    document = DOCUMENTS[name]
    used = {m for expr in panel_exprs(document) for m in METRIC.findall(expr)}
    assert used
    assert used <= set(SAMPLE_NAMES), f"not exported: {sorted(used - set(SAMPLE_NAMES))}"
    requested = {family.name for family in REQUESTED}
    others = {m for expr in other_exprs(document) for m in METRIC.findall(expr)}
    assert others <= set(SAMPLE_NAMES) | requested, sorted(others - set(SAMPLE_NAMES))


@pytest.mark.unit
def test_together_the_dashboards_show_every_exported_family() -> None:
    used = {
        SAMPLE_NAMES[m].name
        for document in DOCUMENTS.values()
        for expr in panel_exprs(document)
        for m in METRIC.findall(expr)
    }
    assert used == {family.name for family in FAMILIES}


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_variables_and_annotations(name: str) -> None:
    document = DOCUMENTS[name]
    variables = {variable["name"]: variable for variable in document["templating"]["list"]}
    assert document["templating"]["list"][0]["name"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    annotations = {annotation["name"] for annotation in document["annotations"]["list"]}
    assert "Annotations & Alerts" in annotations
    if name not in TARGET_SCOPED:
        return
    assert {"datasource", "env", "team", "target"} <= set(variables)
    for label in ("env", "team", "target"):
        assert variables[label]["multi"]
        assert variables[label]["includeAll"]
        assert variables[label]["allValue"] == ".*"
    for expr in panel_exprs(document):
        if 'target=~"$target"' not in expr:
            families = {SAMPLE_NAMES[m] for m in METRIC.findall(expr)}
            assert all("target" not in family.labels for family in families), expr
    assert {"Finding transitions", "Baseline approvals", "apivigil notifications"} <= annotations


@pytest.mark.unit
def test_the_certificate_table_lists_days_left_soonest_first_with_coloured_thresholds() -> None:
    (table,) = [
        panel
        for panel in panels(DOCUMENTS["apivigil-tls.json"])
        if panel["title"] == "Days to expiry of every certificate"
    ]
    assert table["type"] == "table"
    assert table["options"]["sortBy"] == [{"desc": False, "displayName": "days left"}]
    (override,) = [
        o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "days left"
    ]
    properties = {prop["id"]: prop["value"] for prop in override["properties"]}
    steps = properties["thresholds"]["steps"]
    assert [step["value"] for step in steps] == [None, 0, 7, 14, 30]
    assert properties["custom.cellOptions"]["type"] == "color-background"
    assert "apivigil_cert_not_after_timestamp_seconds" in table["targets"][0]["expr"]
    assert "position" in table["targets"][0]["expr"]


def _observation_literals() -> Iterator[tuple[Path, int, str, set[str] | None]]:
    """Every `Observation("name", value, {labels})` in checks/: name and label keys."""
    for path in sorted((ROOT / "checks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Observation"):
                continue
            first = node.args[0] if node.args else None
            name = first.value if isinstance(first, ast.Constant) else None
            assert isinstance(name, str), f"{path}:{node.lineno}: name it with a string literal"
            labels = node.args[2] if len(node.args) > 2 else None
            keys = None
            if isinstance(labels, ast.Dict):
                keys = {key.value for key in labels.keys if isinstance(key, ast.Constant)}
            yield path, node.lineno, name, keys


@pytest.mark.unit
def test_every_observation_a_check_makes_is_in_the_metric_table() -> None:
    found = list(_observation_literals())
    assert len(found) >= 10
    for path, line, name, keys in found:
        family = OBSERVATIONS.get(name)
        where = f"{path.relative_to(ROOT)}:{line}"
        assert family is not None, f"{where}: add {OBSERVATION_PREFIX}{name} to metric_names.py"
        if keys is not None:
            assert keys == set(family.labels) - {"target"}, where


@pytest.mark.unit
def test_the_metric_table_is_consistent() -> None:
    names = [family.name for family in FAMILIES]
    assert len(names) == len(set(names))
    for family in (*FAMILIES, *REQUESTED):
        assert family.name.startswith(OBSERVATION_PREFIX)
        assert family.help
        named_total = family.name.endswith("_total") and family.name not in GAUGES_NAMED_TOTAL
        assert named_total == (family.type is MetricType.COUNTER), family.name
        if family.observation is not None:
            assert family.name == OBSERVATION_PREFIX + family.observation
            assert family.labels[0] == "target"
    assert not {family.name for family in REQUESTED} & set(names)


@pytest.mark.unit
def test_the_committed_json_parses_as_grafana_dashboards() -> None:
    for path in JSON_DIR.glob("*.json"):
        document = json.loads(path.read_text())
        assert document["schemaVersion"] >= 39
        assert "id" not in document  # Grafana assigns ids; uids are ours


@pytest.mark.e2e
def test_the_build_command_writes_into_the_working_directory_by_default(tmp_path: Path) -> None:
    before = {path: path.stat().st_mtime_ns for path in JSON_DIR.glob("*.json")}
    built = run_cli("dashboards", "build", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert {p.name for p in (tmp_path / "dashboards" / "json").iterdir()} == set(DOCUMENTS)
    assert {path: path.stat().st_mtime_ns for path in JSON_DIR.glob("*.json")} == before
