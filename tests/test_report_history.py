"""Report data from a store filled by real check runs against local targets over nine days:
the numbers must be the store's numbers, and every open finding must be there with its
controls. The history (`History.record`) is shared with the other report tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from trestle.oscal.assessment_results import AssessmentResults

from checks.controls import controls_for
from monitor.metrics import build_registry
from monitor.model import (
    FIRST_OBSERVATION,
    CheckKind,
    CheckOutput,
    CheckRun,
    Finding,
    FindingStatus,
    RunStatus,
    Severity,
    Target,
)
from monitor.report.build import build_report_data
from monitor.report.formats import ReportFormat
from monitor.report.model import ReportPeriod
from monitor.report.render import render_report
from monitor.store.interface import FindingQuery
from monitor.store.sql import SqlStore
from tests.support.postgres import POSTGRES_ADMIN_URL
from tests.support.report_history import DAYS, IMMEDIATE, History

pytestmark = pytest.mark.integration


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[History]:
    directory = tmp_path_factory.mktemp("report")
    if request.param == "sqlite":
        url, cleanup = f"sqlite:///{directory / 'apivigil.db'}", None
    else:
        schema = f"apivigil_report_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(POSTGRES_ADMIN_URL)
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url, cleanup = f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}", (admin, schema)
    store = SqlStore(url)
    store.upgrade_schema()
    recorded = History.record(store, directory)
    yield recorded
    recorded.close()
    if cleanup is not None:
        admin, schema = cleanup
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def scalar(store: SqlStore, sql: str, **params: Any) -> Any:
    with store.engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar()


def test_run_counts_and_error_rate_are_the_stores(history: History) -> None:
    data = history.data()
    start = history.period.start

    runs = scalar(history.store, "select count(*) from check_run where status != 'skipped'")
    failed = scalar(
        history.store, "select count(*) from check_run where status in ('error', 'timeout')"
    )

    assert scalar(history.store, "select min(started_at) from check_run") is not None
    assert data.summary.runs == runs == 5 * DAYS + 1
    assert data.summary.failed_runs == failed == DAYS  # legacy never answered
    assert data.summary.error_rate == pytest.approx(DAYS / (5 * DAYS + 1))
    assert sum(d.runs for d in data.days) == runs
    legacy = next(c for c in data.checks if c.check is CheckKind.CERT_EXPIRY)
    assert (legacy.runs, legacy.failed, legacy.targets) == (3 * DAYS, DAYS, 3)
    assert start < min(c.first_run for c in data.checks if c.first_run)


def test_every_open_finding_is_in_the_report_with_its_controls(history: History) -> None:
    data = history.data()
    stored = history.store.findings(FindingQuery())

    reported = {f.fingerprint: f for f in data.findings}
    assert {f.fingerprint for f in stored} == set(reported)
    assert {f.rule_id for f in stored} >= {
        "CERT-EXPIRES-SOON",
        "INVENTORY-OPERATION-ADDED",
        "TLS-CERT-UNTRUSTED",
    }
    for finding in stored:
        assert reported[finding.fingerprint].controls == controls_for(finding.rule_id)
        assert reported[finding.fingerprint].controls
        assert reported[finding.fingerprint].severity is finding.severity


def test_finding_transitions_drift_and_inventory_changes_are_counted_per_week(
    history: History,
) -> None:
    data = history.data()

    opened = scalar(history.store, "select count(*) from finding_event where kind = 'opened'")
    resolved = scalar(history.store, "select count(*) from finding_event where kind = 'resolved'")

    assert (data.summary.opened, data.summary.resolved) == (opened, resolved)
    assert sum(w.opened for w in data.weeks) == opened
    assert data.summary.drift_events == 2  # db.host changed, then ssl added
    assert sum(w.drift_events for w in data.weeks) == 2
    # POST /refunds added, and unauthenticated (as a change and as a standing risk), and GET
    # /orders reported unauthenticated on first sight (the inventory's posture, issue 18)
    assert data.summary.inventory_changes == 4
    ledger = history.store.findings(
        FindingQuery(target="ledger", statuses=frozenset({FindingStatus.RESOLVED}))
    )
    assert len(ledger) == 2  # one reverted, one approved
    assert len(history.store.findings(FindingQuery(target="ledger"))) == 0


def test_mean_time_to_remediate_is_resolution_minus_first_sighting(history: History) -> None:
    data = history.data()
    resolved = history.store.findings(FindingQuery(statuses=frozenset({FindingStatus.RESOLVED})))

    by_severity: dict[Severity, list[float]] = {}
    for finding in resolved:
        assert finding.resolved_at is not None
        hours = (finding.resolved_at - finding.first_seen).total_seconds() / 3600
        by_severity.setdefault(finding.severity, []).append(hours)
    reported = {r.severity: r for r in data.summary.remediation}
    assert set(reported) == set(by_severity)
    for severity, hours in by_severity.items():
        assert reported[severity].resolved == len(hours)
        assert reported[severity].mean_hours == pytest.approx(sum(hours) / len(hours), abs=0.01)


def test_posture_matches_the_metric_and_the_trend_ends_at_the_current_state(
    history: History,
) -> None:
    data = history.data()
    registry = build_registry(history.store)

    evaluated = [t for t in data.targets if t.name != "legacy"]  # legacy: every run errored
    for target in evaluated:
        assert target.posture == registry.get_sample_value(
            "apivigil_posture_score", {"target": target.name}
        )
    assert {t.name: t.posture for t in data.targets}["legacy"] is None  # no evidence
    postures = [t.posture for t in evaluated if t.posture is not None]
    assert data.summary.posture == pytest.approx(sum(postures) / len(evaluated), abs=0.01)
    assert data.days[-1].open_by_severity == data.summary.open_by_severity
    assert data.days[-1].posture == data.summary.posture
    assert data.days[0].posture is None  # the day before the first run: no data, not 100


def test_coverage_certificates_and_tls_baseline(history: History) -> None:
    data = history.data()
    targets = {t.name: t for t in data.targets}

    assert targets["legacy"].covered is False  # never evaluated: every run errored
    assert all(targets[n].covered for n in ("shop", "billing", "ledger", "catalog"))
    assert data.summary.coverage == pytest.approx(4 / 5)
    assert data.days[0].coverage == 0.0
    assert data.summary.certificates_expiring_30d == 2
    assert [(c.target, round(c.days_left)) for c in data.certificates] == [
        ("billing", 10),
        ("shop", 20),
    ]
    assert targets["shop"].tls_baseline_met is False  # untrusted chain is high
    assert targets["billing"].tls_baseline_met is None  # tls_posture never ran there
    assert (data.summary.tls_baseline_met, data.summary.tls_baseline_evaluated) == (0, 1)
    assert targets["shop"].tls_grade == "T"


def test_the_html_report_says_why_a_tls_grade_is_what_it_is(history: History) -> None:
    page = render_report(history.data(), ReportFormat.HTML)
    assert "TLS-GRADE" in page
    # the leaf alone, its issuer neither sent nor trusted
    assert "TLS grade T: T certificate not trusted (incomplete chain)" in page


def test_the_baseline_approval_is_in_the_audit_trail(history: History) -> None:
    audit = history.data().audit

    (entry,) = [a for a in audit if a.actor == "alice"]
    assert (entry.action, entry.subject) == ("baseline.approve", "config_drift/ledger")
    assert "TLS to the database" in entry.detail
    assert {a.subject for a in audit if a.actor == FIRST_OBSERVATION} == {
        "config_drift/ledger",
        "api_inventory/catalog",
    }


def test_a_target_and_framework_filter_narrow_findings_and_controls(history: History) -> None:
    data = history.data(targets=["shop"], framework="PCI DSS")

    assert [t.name for t in data.targets] == ["shop"]
    assert {f.target for f in data.findings} == {"shop"}
    assert {c.control.framework for c in data.controls} == {"PCI DSS"}
    assert all(c.framework == "PCI DSS" for f in data.findings for c in f.controls)
    assert data.summary.runs == DAYS + 1


def test_a_finding_of_an_unmapped_rule_is_still_reported_and_exported(store: SqlStore) -> None:
    now = datetime.now(UTC)
    store.sync_targets([Target("api", "https://127.0.0.1:8443")], now)
    finding = Finding("PLUGIN-SOMETHING", Severity.HIGH, "odd", "api:8443", "seen", "fix")
    store.record(
        CheckRun(
            str(uuid.uuid4()),
            CheckKind.CERT_EXPIRY,
            "api",
            now - timedelta(hours=1),
            now - timedelta(hours=1),
            RunStatus.OK,
            output=CheckOutput(findings=(finding,)),
        ),
        IMMEDIATE,
    )

    data = build_report_data(store, ReportPeriod.ending(now, timedelta(days=1)), [])

    (reported,) = data.findings
    assert (reported.rule_id, reported.controls) == ("PLUGIN-SOMETHING", ())
    document = json.loads(render_report(data, ReportFormat.OSCAL))
    (oscal_finding,) = document["assessment-results"]["results"][0]["findings"]
    assert oscal_finding["target"]["title"].startswith("apivigil PLUGIN-SOMETHING")
    AssessmentResults.model_validate(document["assessment-results"])
