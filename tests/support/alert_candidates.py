"""Alert candidates and an alerts config with one webhook route, for the engine's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alerts.config import AlertsConfig
from alerts.model import Alert, AlertCandidate, AlertState
from monitor.model import Severity

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # a Saturday


def alerts_config(top: dict[str, Any] | None = None, **route: Any) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "receivers": [
                {"name": "hook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"}}
            ],
            "routes": [{"receivers": ["hook"], **route}],
            **(top or {}),
        }
    )


def candidate(
    fingerprint: str,
    target: str = "payments",
    severity: Severity = Severity.HIGH,
    rule: str = "TLS-PROTOCOL-TLS10",
    *,
    open: bool = True,
    seen: int = 1,
    missing: int = 0,
    labels: dict[str, str] | None = None,
) -> AlertCandidate:
    alert = Alert(
        fingerprint=fingerprint,
        check="tls_posture",
        target=target,
        rule_id=rule,
        severity=severity,
        title=f"title {fingerprint}",
        subject=f"subject {fingerprint}",
        evidence="evidence",
        remediation="fix it",
        state=AlertState.FIRING if open else AlertState.RESOLVED,
        started_at=T0,
        labels=labels or {"env": "prod"},
    )
    return AlertCandidate(alert, open=open, seen_streak=seen, missing_streak=missing)
