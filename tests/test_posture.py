"""Posture score and compliance roll-ups, from the store to /metrics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from monitor.metrics import build_registry
from monitor.model import CheckKind, CheckOutput, CheckRun, Finding, RunStatus, Severity, Target
from monitor.posture import ControlStatus, control_statuses, posture_scores
from monitor.store.interface import HysteresisPolicy, OpenRule
from monitor.store.sql import SqlStore


@pytest.mark.unit
def test_posture_deducts_each_open_rule_once_at_its_worst_severity() -> None:
    rules = [
        OpenRule(CheckKind.PATCH_LEVEL, "a", "PATCH-VULNERABLE", Severity.LOW, 10_000),
        OpenRule(CheckKind.PATCH_LEVEL, "a", "PATCH-VULNERABLE", Severity.CRITICAL, 1),
        OpenRule(CheckKind.TLS_POSTURE, "a", "TLS-PROTOCOL-TLS10", Severity.HIGH, 1),
        OpenRule(CheckKind.TLS_POSTURE, "c", "TLS-PROTOCOL-TLS10", Severity.CRITICAL, 3),
        OpenRule(CheckKind.TLS_POSTURE, "c", "TLS-CIPHER-RC4", Severity.CRITICAL, 3),
        OpenRule(CheckKind.TLS_POSTURE, "c", "TLS-CIPHER-NULL", Severity.CRITICAL, 3),
    ]

    assert posture_scores(["a", "b", "c"], rules) == {"a": 45.0, "b": 100.0, "c": 0.0}


@pytest.mark.unit
def test_controls_pass_when_evaluated_and_fail_with_an_open_finding() -> None:
    statuses = control_statuses(
        [CheckKind.CERT_EXPIRY, CheckKind.TLS_POSTURE],
        [OpenRule(CheckKind.TLS_POSTURE, "a", "TLS-PROTOCOL-TLS10", Severity.HIGH, 1)],
    )

    assert statuses[("PCI DSS", "4.2.1")] is ControlStatus.FAILING
    assert statuses[("NIST SP 800-53", "SC-17")] is ControlStatus.PASSING
    assert ("NIST SP 800-40", "3.5") not in statuses  # patch_level never ran


@pytest.mark.integration
def test_metrics_show_posture_and_control_status(store: SqlStore) -> None:
    now = datetime.now(UTC)
    store.sync_targets([Target("api")], now)
    finding = Finding("TLS-PROTOCOL-TLS10", Severity.HIGH, "TLS 1.0", "api:443", "on", "off")
    store.record(
        CheckRun(
            str(uuid.uuid4()),
            CheckKind.TLS_POSTURE,
            "api",
            now,
            now,
            RunStatus.OK,
            output=CheckOutput(findings=(finding,)),
        ),
        HysteresisPolicy(open_after=1),
    )

    registry = build_registry(store)

    assert registry.get_sample_value("apivigil_posture_score", {"target": "api"}) == 85.0
    failing = {"framework": "PCI DSS", "control": "4.2.1", "status": "failing"}
    assert registry.get_sample_value("apivigil_control_status", failing) == 1
    assert (
        registry.get_sample_value("apivigil_control_status", {**failing, "status": "passing"}) == 0
    )
