"""The layering of DESIGN.md §1 holds: import-linter's contracts in pyproject.toml, run in
process over this tree (the same check `lint-imports` makes in tests/setup-and-run.sh)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from importlinter import configuration
from importlinter.application.use_cases import SUCCESS, lint_imports

pytestmark = pytest.mark.unit

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _contracts() -> dict[str, dict[str, Any]]:
    document = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return {c["name"]: c for c in document["tool"]["importlinter"]["contracts"]}


CHECKS = [
    "checks.api_inventory",
    "checks.auth_posture",
    "checks.cert_expiry",
    "checks.config_drift",
    "checks.http_posture",
    "checks.patch_level",
    "checks.tls_posture",
]


def test_the_layering_contracts_are_declared() -> None:
    contracts = _contracts()
    independent = [c["modules"] for c in contracts.values() if c["type"] == "independence"]
    forbidden = {
        tuple(c["source_modules"]): c["forbidden_modules"]
        for c in contracts.values()
        if c["type"] == "forbidden"
    }
    assert ["checks", "alerts", "dashboards"] in independent
    assert CHECKS in independent
    assert forbidden[("monitor.store",)] == ["alerts", "checks"]
    assert forbidden[("checks.openapi",)] == CHECKS  # shared by the checks, imports none
    assert forbidden[("checks", "alerts", "dashboards")] == ["monitor.*"]


VOCABULARY = {
    "monitor.model",
    "monitor.durations",
    "monitor.clock",
    "monitor.secret_files",
    "monitor.bounded_files",
    "monitor.http_deadline",
    "monitor.redact",
    "monitor.text",
    "monitor.metric_names",
}


def test_the_contracts_make_no_exception_but_the_declared_ones() -> None:
    """An ignore_imports line or allow_indirect_imports silently loosens a contract that
    still reports KEPT: only the vocabulary may be. The OpenAPI reader two checks share is
    checks.openapi, which belongs to no check, so the checks need no exception."""
    contracts = _contracts()
    ignored = {name: set(c.get("ignore_imports", ())) for name, c in contracts.items()}
    assert not [name for name, c in contracts.items() if c.get("allow_indirect_imports")]
    assert ignored["checks, alerts and dashboards are independent of each other"] == set()
    assert ignored["the store imports neither alerting nor the checks"] == set()
    assert ignored["the checks are independent of each other"] == set()
    assert ignored["the shared OpenAPI reader imports no specific check"] == set()
    assert ignored["checks, alerts and dashboards use only monitor's vocabulary modules"] == {
        f"{layer}.** -> {module}"
        for layer in ("checks", "alerts", "dashboards")
        for module in VOCABULARY
    }
    assert ignored["monitor's vocabulary modules import no other part of monitor"] == {
        "monitor.secret_files -> monitor.bounded_files"
    }
    vocabulary_contract = contracts["monitor's vocabulary modules import no other part of monitor"]
    assert set(vocabulary_contract["source_modules"]) == VOCABULARY


def test_no_import_breaks_the_layering(capsys: pytest.CaptureFixture[str]) -> None:
    configuration.configure()  # what the lint-imports command does first
    result = lint_imports(
        config_filename=str(PYPROJECT), cache_dir=None, no_logo=True, is_debug_mode=True
    )
    report = capsys.readouterr().out
    assert result == SUCCESS, report
    assert "0 broken" in report


def test_outside_the_store_sqlstore_is_only_built_never_typed_against() -> None:
    """Callers type against the Store protocol (issue 20 §4); only the factories that open a
    store name the SQL implementation, to construct it."""
    root = PYPROJECT.parent
    typed_against: list[str] = []
    for package in ("monitor", "alerts", "checks", "dashboards"):
        for path in sorted((root / package).rglob("*.py")):
            if path.is_relative_to(root / "monitor" / "store"):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "SqlStore" not in line:
                    continue
                stripped = line.strip()
                if stripped == "from monitor.store.sql import SqlStore" or "SqlStore(" in line:
                    continue
                typed_against.append(f"{path.relative_to(root)}:{number}: {stripped}")
    assert typed_against == []
