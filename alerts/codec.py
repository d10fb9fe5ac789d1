"""Notifications and group states as JSON, for the outbox and the alert_group table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from alerts.model import Alert, AlertState, Notification, NotificationKind, NotifiedAlert
from monitor.model import Severity


def notification_to_json(notification: Notification) -> str:
    return json.dumps(
        {
            "dedup_key": notification.dedup_key,
            "receiver": notification.receiver,
            "route": notification.route,
            "group_key": notification.group_key,
            "group_labels": dict(notification.group_labels),
            "kind": notification.kind.value,
            "created_at": utc_text(notification.created_at),
            "firing": [alert_document(a) for a in notification.firing],
            "resolved": [alert_document(a) for a in notification.resolved],
            "note": notification.note,
            "external_url": notification.external_url,
        },
        separators=(",", ":"),
    )


def notification_from_json(text: str) -> Notification:
    document: dict[str, Any] = json.loads(text)
    return Notification(
        dedup_key=document["dedup_key"],
        receiver=document["receiver"],
        route=document["route"],
        group_key=document["group_key"],
        group_labels=document["group_labels"],
        kind=NotificationKind(document["kind"]),
        created_at=datetime.fromisoformat(document["created_at"]),
        firing=tuple(_alert(a) for a in document["firing"]),
        resolved=tuple(_alert(a) for a in document["resolved"]),
        note=document["note"],
        external_url=document["external_url"],
    )


def alert_document(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "check": alert.check,
        "target": alert.target,
        "rule_id": alert.rule_id,
        "severity": alert.severity.value,
        "title": alert.title,
        "subject": alert.subject,
        "evidence": alert.evidence,
        "remediation": alert.remediation,
        "state": alert.state.value,
        "started_at": utc_text(alert.started_at),
        "ended_at": utc_text(alert.ended_at) if alert.ended_at else None,
        "controls": list(alert.controls),
        "labels": dict(alert.labels),
    }


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC."""
    return moment.astimezone(UTC).isoformat()


def _alert(document: Mapping[str, Any]) -> Alert:
    return Alert(
        fingerprint=document["fingerprint"],
        check=document["check"],
        target=document["target"],
        rule_id=document["rule_id"],
        severity=Severity(document["severity"]),
        title=document["title"],
        subject=document["subject"],
        evidence=document["evidence"],
        remediation=document["remediation"],
        state=AlertState(document["state"]),
        started_at=datetime.fromisoformat(document["started_at"]),
        ended_at=datetime.fromisoformat(document["ended_at"]) if document["ended_at"] else None,
        controls=tuple(document["controls"]),
        labels=document["labels"],
    )


def notified_to_json(notified: Mapping[str, NotifiedAlert]) -> str:
    return json.dumps(
        {
            fingerprint: [n.severity.value, n.check, n.target, n.rule_id, n.subject, n.title]
            for fingerprint, n in notified.items()
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def notified_from_json(text: str) -> dict[str, NotifiedAlert]:
    document: dict[str, list[str]] = json.loads(text)
    return {
        fingerprint: NotifiedAlert(Severity(v[0]), v[1], v[2], v[3], v[4], v[5])
        for fingerprint, v in document.items()
    }
