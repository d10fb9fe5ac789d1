"""Alerts and notifications for receiver tests, with readable defaults to override."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.model import Alert, AlertState, Notification, NotificationKind
from monitor.model import Severity

STARTED = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def make_alert(
    number: int = 1,
    *,
    severity: Severity = Severity.HIGH,
    title: str = "TLS 1.0 is enabled",
    evidence: str = "the server accepted a TLS 1.0 handshake",
    state: AlertState = AlertState.FIRING,
    **changes: Any,
) -> Alert:
    values: dict[str, Any] = {
        "fingerprint": f"fp-{number:05d}",
        "check": "tls_posture",
        "target": "payments",
        "rule_id": "TLS-PROTOCOL-TLS10",
        "severity": severity,
        "title": title,
        "subject": "payments.example.com:443",
        "evidence": evidence,
        "remediation": "Disable TLS 1.0 (nginx: ssl_protocols TLSv1.2 TLSv1.3;)",
        "state": state,
        "started_at": STARTED + timedelta(minutes=number),
        "ended_at": STARTED + timedelta(hours=2) if state is AlertState.RESOLVED else None,
        "controls": ("NIST SP 800-53 SC-8", "PCI DSS 4.2.1"),
        "labels": {"env": "prod"},
    }
    return Alert(**(values | changes))


def make_notification(
    firing: tuple[Alert, ...] = (),
    resolved: tuple[Alert, ...] = (),
    kind: NotificationKind = NotificationKind.FIRING,
    **changes: Any,
) -> Notification:
    values: dict[str, Any] = {
        "dedup_key": "dk-3f9a1c",
        "receiver": "secops-slack",
        "route": "route-0",
        "group_key": "route-0:target=payments",
        "group_labels": {"target": "payments"},
        "kind": kind,
        "created_at": STARTED + timedelta(hours=3),
        "firing": firing,
        "resolved": resolved,
    }
    return Notification(**(values | changes))
