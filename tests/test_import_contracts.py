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


def test_the_layering_contracts_are_declared() -> None:
    contracts = _contracts()
    independent = [c["modules"] for c in contracts.values() if c["type"] == "independence"]
    forbidden = {
        tuple(c["source_modules"]): c["forbidden_modules"]
        for c in contracts.values()
        if c["type"] == "forbidden"
    }
    assert ["checks", "alerts", "dashboards"] in independent
    assert [
        "checks.api_inventory",
        "checks.auth_posture",
        "checks.cert_expiry",
        "checks.config_drift",
        "checks.http_posture",
        "checks.patch_level",
        "checks.tls_posture",
    ] in independent
    assert forbidden[("monitor.store",)] == ["alerts", "checks"]
    assert forbidden[("checks", "alerts", "dashboards")] == ["monitor.*"]


def test_no_import_breaks_the_layering(capsys: pytest.CaptureFixture[str]) -> None:
    configuration.configure()  # what the lint-imports command does first
    result = lint_imports(
        config_filename=str(PYPROJECT), cache_dir=None, no_logo=True, is_debug_mode=True
    )
    report = capsys.readouterr().out
    assert result == SUCCESS, report
    assert "0 broken" in report
