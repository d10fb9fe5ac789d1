"""AlertmanagerNotifier against the real Alertmanager, which forwards to a webhook sink."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from alerts.alertmanager import AlertmanagerNotifier, postable_alerts, rfc3339
from alerts.config import AlertmanagerConfig
from alerts.interface import NotifierError
from alerts.model import Alert, AlertState, Notification, NotificationKind
from alerts.transport import post_json
from monitor.model import Severity
from tests.support.alertmanager_server import (
    BINARY,
    INSTALLER,
    AlertmanagerServer,
    WebhookPayload,
    WebhookSink,
)
from tests.support.ports import free_port

RESEND_INTERVAL = timedelta(minutes=1)


@pytest.fixture(scope="module")
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as server:
        yield server


@pytest.fixture(scope="module")
def alertmanager(sink: WebhookSink) -> Iterator[AlertmanagerServer]:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `sudo bash {INSTALLER}` first")
    with AlertmanagerServer(sink.url) as server:
        yield server


def _notifier(
    alertmanager: AlertmanagerServer, resend_interval: timedelta = RESEND_INTERVAL
) -> AlertmanagerNotifier:
    config = AlertmanagerConfig(
        url=alertmanager.url, resend_interval=resend_interval, timeout=timedelta(seconds=5)
    )
    return AlertmanagerNotifier("alertmanager", config)


def _alert(**changes: object) -> Alert:
    values: dict[str, object] = {
        "fingerprint": uuid.uuid4().hex[:16],  # a fresh Alertmanager alert per test
        "check": "tls_posture",
        "target": "payments-api",
        "rule_id": "TLS-PROTOCOL-TLS10",
        "severity": Severity.HIGH,
        "title": "TLS 1.0 accepted",
        "subject": "api.example.test:443",
        "evidence": "server accepted a TLS 1.0 handshake",
        "remediation": "Disable TLS 1.0",
        "state": AlertState.FIRING,
        "started_at": datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5),
        "controls": ("NIST SP 800-53 SC-8", "PCI DSS 4.2.1"),
        "labels": {"team": "payments"},
    }
    values.update(changes)
    return Alert(**values)  # type: ignore[arg-type]


def _notification(
    firing: tuple[Alert, ...] = (), resolved: tuple[Alert, ...] = (), **changes: object
) -> Notification:
    values: dict[str, object] = {
        "dedup_key": uuid.uuid4().hex,
        "receiver": "alertmanager",
        "route": "route-0",
        "group_key": "route-0:target=payments-api",
        "group_labels": {"target": "payments-api"},
        "kind": NotificationKind.RESOLVED if resolved and not firing else NotificationKind.FIRING,
        "created_at": datetime.now(UTC),
        "firing": firing,
        "resolved": resolved,
    }
    values.update(changes)
    return Notification(**values)  # type: ignore[arg-type]


def _about(alert: Alert, status: str) -> Callable[[WebhookPayload], bool]:
    def matches(payload: WebhookPayload) -> bool:
        return payload["status"] == status and any(
            entry["labels"].get("fingerprint") == alert.fingerprint for entry in payload["alerts"]
        )

    return matches


def _only_alert(payload: WebhookPayload) -> dict[str, Any]:
    [entry] = payload["alerts"]
    assert isinstance(entry, dict)
    return entry


@pytest.mark.e2e
def test_a_firing_alert_reaches_the_receiver_and_its_resolution_follows(
    alertmanager: AlertmanagerServer, sink: WebhookSink
) -> None:
    alert = _alert()
    notifier = _notifier(alertmanager)
    notification = _notification(firing=(alert,))

    notifier.send(notification)

    firing = _only_alert(sink.wait_for(_about(alert, "firing")))
    assert firing["status"] == "firing"
    assert firing["labels"] == {
        "alertname": "TLS-PROTOCOL-TLS10",
        "apivigil_check": "tls_posture",
        "target": "payments-api",
        "severity": "high",
        "subject": "api.example.test:443",
        "fingerprint": alert.fingerprint,
        "team": "payments",
    }
    assert firing["annotations"] == {
        "title": "TLS 1.0 accepted",
        "evidence": "server accepted a TLS 1.0 handshake",
        "remediation": "Disable TLS 1.0",
        "controls": "NIST SP 800-53 SC-8; PCI DSS 4.2.1",
        "dedup_key": notification.dedup_key,
    }
    assert _parse(firing["startsAt"]) == alert.started_at
    # Alertmanager keeps the alert only as long as apivigil would keep re-sending it.
    [active] = _active_alerts(alertmanager, alert.fingerprint)
    assert active["status"]["state"] == "active"
    assert _parse(active["endsAt"]) == _ms(notification.created_at + 4 * RESEND_INTERVAL)

    ended = datetime.now(UTC) - timedelta(seconds=1)
    resolved_alert = _alert(
        fingerprint=alert.fingerprint,
        started_at=alert.started_at,
        state=AlertState.RESOLVED,
        ended_at=ended,
    )
    notifier.send(_notification(resolved=(resolved_alert,)))

    resolved = _only_alert(sink.wait_for(_about(alert, "resolved")))
    assert resolved["status"] == "resolved"
    assert resolved["labels"] == firing["labels"]
    assert _parse(resolved["endsAt"]) == _ms(ended)


@pytest.mark.e2e
def test_alertmanager_resolves_an_alert_by_itself_when_it_is_no_longer_re_sent(
    alertmanager: AlertmanagerServer, sink: WebhookSink
) -> None:
    alert = _alert()
    notifier = _notifier(alertmanager, resend_interval=timedelta(seconds=1))

    notifier.send(_notification(firing=(alert,)))  # endsAt: four seconds from now

    sink.wait_for(_about(alert, "firing"))
    resolved = sink.wait_for(_about(alert, "resolved"), timeout=10)
    assert _only_alert(resolved)["labels"]["fingerprint"] == alert.fingerprint


@pytest.mark.e2e
def test_malformed_labels_are_sanitised_before_alertmanager_sees_them(
    alertmanager: AlertmanagerServer, sink: WebhookSink
) -> None:
    alert = _alert(
        rule_id="  ",
        subject="x" * 300,
        controls=(),
        remediation="",
        labels={
            "team-name": "payments",
            "9lives": "cat",
            "__meta_secret": "internal",
            "": "no name",
            "empty": "",
            "severity": "spoofed",
            "fingerprint": "spoofed",
        },
    )
    notification = _notification(
        firing=(alert,),
        group_labels={"target": "payments-api", "env.name": "prod"},
        external_url="http://127.0.0.1:9/apivigil",
    )

    _notifier(alertmanager).send(notification)

    entry = _only_alert(sink.wait_for(_about(alert, "firing")))
    assert entry["labels"] == {
        "alertname": "apivigil",
        "apivigil_check": "tls_posture",
        "target": "payments-api",
        "severity": "high",
        "subject": "x" * 255 + "…",
        "fingerprint": alert.fingerprint,
        "team_name": "payments",
        "_9lives": "cat",
        "meta_secret": "internal",
        "env_name": "prod",
    }
    assert set(entry["annotations"]) == {"title", "evidence", "dedup_key"}
    assert entry["generatorURL"] == "http://127.0.0.1:9/apivigil"


@pytest.mark.unit
def test_a_generator_url_that_is_not_a_url_is_left_out() -> None:
    notification = _notification(firing=(_alert(),), external_url="not a url")

    [entry] = postable_alerts(notification, RESEND_INTERVAL)

    assert "generatorURL" not in entry


@pytest.mark.unit
def test_a_retried_notification_posts_the_same_document() -> None:
    notification = _notification(firing=(_alert(),), resolved=(_alert(ended_at=None),))

    first = postable_alerts(notification, RESEND_INTERVAL)

    assert postable_alerts(notification, RESEND_INTERVAL) == first
    assert first[0]["endsAt"] == rfc3339(notification.created_at + 4 * RESEND_INTERVAL)
    assert first[1]["endsAt"] == rfc3339(notification.created_at)


@pytest.mark.e2e
def test_an_alert_alertmanager_rejects_is_a_permanent_error(
    alertmanager: AlertmanagerServer,
) -> None:
    # What the notifier never sends (its labels are sanitised): the real answer to it.
    invalid = [{"labels": {"bad-name": "x"}, "startsAt": rfc3339(datetime.now(UTC))}]

    with pytest.raises(NotifierError) as caught:
        post_json(f"{alertmanager.url}/api/v2/alerts", invalid, timeout=5, what="Alertmanager")

    assert caught.value.permanent is True
    assert "HTTP 400" in str(caught.value)


@pytest.mark.integration
def test_an_unreachable_alertmanager_is_a_temporary_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    notifier = AlertmanagerNotifier(
        "alertmanager", AlertmanagerConfig(url=url, timeout=timedelta(seconds=2))
    )

    with pytest.raises(NotifierError) as caught:
        notifier.send(_notification(firing=(_alert(),)))

    assert caught.value.permanent is False


def _active_alerts(alertmanager: AlertmanagerServer, fingerprint: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{alertmanager.url}/api/v2/alerts",
        params={"filter": f'fingerprint="{fingerprint}"'},
        timeout=5,
        trust_env=False,
    )
    answer.raise_for_status()
    alerts = answer.json()
    assert isinstance(alerts, list)
    return alerts


def _parse(value: object) -> datetime:
    assert isinstance(value, str)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
