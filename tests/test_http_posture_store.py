"""http_posture through the real runner and store: its metrics at scrape time, its snapshot as a
config_drift source (a header that disappears is DRIFT-REMOVED), and `apivigil scan --format
json` on a live app."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from checks.config_drift.params import ConfigDriftParams
from checks.http_posture.params import HttpPostureParams
from monitor.metrics import build_registry
from monitor.model import CheckKind, FindingStatus, Target
from monitor.report.build import build_report_data
from monitor.report.formats import ReportFormat
from monitor.report.model import ReportPeriod
from monitor.report.render import render_report
from monitor.store.interface import FindingQuery
from monitor.store.sql import SqlStore
from tests.support.checks_for_tests import record_snapshot
from tests.support.daemon_process import run_cli, write_config
from tests.support.posture_scans import Runs
from tests.support.posture_servers import API_HEADERS, PostureApp, Route
from tests.support.tls_certs import TestPki

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("posture-store-pki"), host="127.0.0.1")


def test_scores_and_header_presence_are_exported_per_target_and_profile(store: SqlStore) -> None:
    with PostureApp({"/": Route(200, API_HEADERS)}) as app:
        runs = Runs(store)
        store.sync_targets([Target("shop", app.url)], runs.clock.current)
        runs.run(CheckKind.HTTP_POSTURE, Target("shop", app.url), HttpPostureParams())

    registry = build_registry(store)
    api = registry.get_sample_value(
        "apivigil_http_posture_score", {"target": "shop", "profile": "api"}
    )
    observatory = registry.get_sample_value(
        "apivigil_http_posture_score", {"target": "shop", "profile": "observatory"}
    )
    assert api is not None
    assert observatory is not None
    assert 0 <= api < 100  # plain HTTP only: far from a good API grade
    assert (
        registry.get_sample_value(
            "apivigil_http_header_present", {"target": "shop", "header": "x-content-type-options"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "apivigil_http_header_present",
            {"target": "shop", "header": "strict-transport-security"},
        )
        == 0
    )


def test_a_security_header_that_disappears_is_drift_removed(store: SqlStore) -> None:
    runs = Runs(store)
    drift = ConfigDriftParams.model_validate({"sources": [{"snapshot": "http_posture"}]})
    with PostureApp({"/": Route(200, API_HEADERS)}) as app:
        target = Target("shop", app.url)
        runs.run(CheckKind.HTTP_POSTURE, target, HttpPostureParams())
        runs.run(CheckKind.CONFIG_DRIFT, target, drift)  # the first observation: the baseline
        app.routes["/"] = Route(200, [h for h in API_HEADERS if h[0] != "X-Content-Type-Options"])
        runs.run(CheckKind.HTTP_POSTURE, target, HttpPostureParams())
        runs.run(CheckKind.CONFIG_DRIFT, target, drift)

    found = store.findings(
        FindingQuery(
            target="shop",
            check=CheckKind.CONFIG_DRIFT,
            statuses=frozenset({FindingStatus.OPEN}),
        )
    )
    removed = [f for f in found if f.rule_id == "DRIFT-REMOVED"]
    # the page and its malformed-query error page both lost the header
    assert {f.subject for f in removed} == {
        "snapshot:http_posture|headers./.x-content-type-options",
        "snapshot:http_posture|headers.error page: malformed query.x-content-type-options",
    }


def test_a_probe_answered_429_once_is_not_drift_and_keeps_its_findings_open(
    store: SqlStore,
) -> None:
    runs = Runs(store)
    drift = ConfigDriftParams.model_validate({"sources": [{"snapshot": "http_posture"}]})
    bare = Route(404, [("Content-Type", "application/json")], b"{}")  # no nosniff
    with PostureApp({"/": Route(200, API_HEADERS)}, fallback=bare) as app:
        target = Target("shop", app.url)
        runs.run(CheckKind.HTTP_POSTURE, target, HttpPostureParams())
        runs.run(CheckKind.CONFIG_DRIFT, target, drift)
        app.fallback = Route(429, [("Retry-After", "60")], b"")
        partial = runs.run(CheckKind.HTTP_POSTURE, target, HttpPostureParams())
        runs.run(CheckKind.CONFIG_DRIFT, target, drift)

    assert partial.output is not None
    assert "HTTP-PROBE-FAILED" in {f.rule_id for f in partial.output.findings}
    opened = store.findings(FindingQuery(target="shop", statuses=frozenset({FindingStatus.OPEN})))
    assert not [f for f in opened if f.rule_id.startswith("DRIFT-")]
    nosniff = {f.subject for f in opened if f.rule_id == "HTTP-NOSNIFF-MISSING"}
    assert "error page: unknown path (404)" in nosniff  # undetermined, not resolved


def test_scan_format_json_carries_both_scores_the_algorithm_and_controls(tmp_path: Path) -> None:
    with PostureApp({"/": Route(200, API_HEADERS, reflect_origin=True, credentials=True)}) as app:
        config = write_config(
            tmp_path / "apivigil.yaml",
            {
                "store": f"sqlite:///{tmp_path / 'a.db'}",
                "targets": [
                    {
                        "name": "shop",
                        "url": app.url,
                        "checks": {"http_posture": {"observatory_algorithm": 6}},
                    }
                ],
            },
        )
        done = run_cli(
            "scan", "--config", str(config), "--check", "http_posture", "--format", "json"
        )

    document = json.loads(done.stdout)
    (run,) = document["runs"]
    assert run["check"] == "http_posture"
    assert run["status"] == "ok"
    profiles = {
        o["labels"]["profile"] for o in run["observations"] if o["name"] == "http_posture_score"
    }
    assert profiles == {"api", "observatory"}
    grades = [f for f in run["findings"] if f["rule_id"] == "HTTP-POSTURE-GRADE"]
    assert any("(algorithm 6)" in f["title"] for f in grades)
    critical = [
        f for f in run["findings"] if f["rule_id"] == "CORS-ORIGIN-REFLECTED-WITH-CREDENTIALS"
    ]
    assert critical
    api8 = {
        "framework": "OWASP API Top 10",
        "control": "API8",
        "title": "security misconfiguration",
    }
    assert api8 in critical[0]["controls"]
    assert done.returncode == 1  # a critical finding fails the default --fail-on high


def test_the_report_has_an_http_posture_section_with_both_grades_and_versions(
    store: SqlStore,
) -> None:
    runs = Runs(store)
    with PostureApp({"/": Route(200, API_HEADERS)}) as app:
        target = Target("shop", app.url)
        store.sync_targets([target], runs.clock.current)
        runs.run(CheckKind.HTTP_POSTURE, target, HttpPostureParams(observatory_algorithm=4))
    period = ReportPeriod.ending(runs.clock.current + timedelta(hours=1), timedelta(days=2))

    data = build_report_data(store, period, [])

    assert {(g.profile, g.version) for g in data.http_posture} == {
        ("observatory", "4"),
        ("api", "1"),
    }
    observatory = next(g for g in data.http_posture if g.profile == "observatory")
    markdown = render_report(data, ReportFormat.MD)
    assert "## HTTP posture" in markdown
    assert f"| shop | observatory | {observatory.grade} | {observatory.score:g} | 4 |" in markdown
    assert 'id="http-posture"' in render_report(data, ReportFormat.HTML)
    document = json.loads(render_report(data, ReportFormat.JSON))
    assert {row["profile"] for row in document["http_posture"]} == {"observatory", "api"}


def operation(method: str, path: str, *parameters: list[object]) -> dict[str, object]:
    return {"method": method, "path": path, "parameters": list(parameters), "deprecated": False}


def test_documented_get_operations_are_sampled_with_credentials_and_no_guessed_ids(
    store: SqlStore, tmp_path: Path, pki: TestPki
) -> None:
    inventory = {
        "base_path": "/v1",
        "operations": [
            operation("get", "/items"),
            operation("get", "/items/{id}", ["id", "path", True, "string", []]),
            operation("get", "/search", ["q", "query", True, "string", []]),
            operation("post", "/orders"),
            operation("get", "/status"),
        ],
    }
    record_snapshot(store, CheckKind.API_INVENTORY, "shop", {"inventory": inventory})
    record_snapshot(store, CheckKind.TLS_POSTURE, "shop", {"hsts_max_age": 31536000})
    auth = tmp_path / "auth"
    auth.write_text("X-Api-Key: k3y\n")
    cert = pki.good()
    hsts = ("Strict-Transport-Security", "max-age=63072000")
    with PostureApp({"/": Route(200, [*API_HEADERS, hsts])}, cert=cert.chain, key=cert.key) as app:
        params = HttpPostureParams(
            inventory_sample=5, auth_header_file=auth, trust_store=pki.root_pem
        )
        run = Runs(store).run(CheckKind.HTTP_POSTURE, Target("shop", app.url), params)

    documented = {
        e.path for e in app.log if e.headers.get("X-Apivigil-Probe") == "http_posture/documented"
    }
    assert documented == {"/v1/items", "/v1/status"}
    assert {e.path for e in app.log if e.headers.get("X-Api-Key") == "k3y"} == documented
    assert {e.method for e in app.log} <= {"GET", "HEAD", "OPTIONS"}
    assert run.output is not None
    inconsistent = [f for f in run.output.findings if f.rule_id == "HTTP-HSTS-INCONSISTENT"]
    assert "max-age=31536000" in inconsistent[0].evidence
