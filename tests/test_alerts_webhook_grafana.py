"""The signed generic webhook against a receiver that verifies signatures the documented way,
and Grafana annotations against a local fake of Grafana's annotation API."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from alerts.config import GrafanaConfig, WebhookConfig
from alerts.grafana_annotations import GrafanaAnnotationNotifier
from alerts.interface import NotifierError
from alerts.model import Alert, AlertState, Notification, NotificationKind
from alerts.webhook import WebhookNotifier
from monitor.model import Severity
from tests.support.grafana_fake import GrafanaFake, Role
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.notifications import STARTED, make_alert, make_notification

pytestmark = pytest.mark.integration

SECRET = "webhook-shared-secret"
TOKEN = "glsa_apivigil_test_token"


def alert(number: int = 1, *, state: AlertState = AlertState.FIRING, **changes: Any) -> Alert:
    defaults: dict[str, Any] = {
        "remediation": "Disable TLS 1.0",
        "controls": ("NIST SP 800-53 SC-8",),
        "ended_at": STARTED + timedelta(hours=number) if state is AlertState.RESOLVED else None,
    }
    return make_alert(number, state=state, **(defaults | changes))


def notification(
    firing: tuple[Alert, ...] = (),
    resolved: tuple[Alert, ...] = (),
    kind: NotificationKind = NotificationKind.FIRING,
    **changes: Any,
) -> Notification:
    return make_notification(firing, resolved, kind, **({"receiver": "secops-hook"} | changes))


def milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return 0.0


class VerifyingReceiver(ScriptedHttpServer):
    """A webhook endpoint that checks signatures as the webhook module tells receivers to."""

    def __init__(self, secret: str, signature_header: str = "X-Apivigil-Signature") -> None:
        super().__init__()
        self.secret = secret
        self.signature_header = signature_header.lower()
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.post_handlers["/hook"] = self._receive

    def _receive(self, body: bytes) -> Reply:
        headers = {name.lower(): value for name, value in self.requests[-1][1].items()}
        timestamp = headers.get("x-apivigil-timestamp", "")
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        given = headers.get(self.signature_header, "")
        if not hmac.compare_digest(given, f"sha256={expected}"):
            return Reply(401, {}, b"bad signature")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return Reply(401, {}, b"stale timestamp")
        self.accepted.append((headers, body))
        return Reply(204)


@pytest.fixture
def receiver() -> Iterator[VerifyingReceiver]:
    server = VerifyingReceiver(SECRET)
    with server:
        yield server


def webhook(url: str, secret: str = SECRET, **options: Any) -> WebhookNotifier:
    return WebhookNotifier("secops-hook", WebhookConfig(url=url, secret=secret, **options))


def test_the_receiver_verifies_the_signature_over_timestamp_and_body_and_gets_the_dedup_key(
    receiver: VerifyingReceiver,
) -> None:
    webhook(f"{receiver.url}/hook").send(notification((alert(),)))

    [(headers, body)] = receiver.accepted
    assert headers["x-apivigil-dedup-key"] == "dk-3f9a1c"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["dedup_key"] == "dk-3f9a1c"


def test_a_notification_signed_with_another_secret_fails_verification_for_good(
    receiver: VerifyingReceiver,
) -> None:
    with pytest.raises(NotifierError) as caught:
        webhook(f"{receiver.url}/hook", secret="not-the-shared-secret").send(
            notification((alert(),))
        )

    assert caught.value.permanent
    assert "401" in str(caught.value)
    assert receiver.accepted == []


def test_a_captured_body_replayed_with_a_fresh_timestamp_fails_verification(
    receiver: VerifyingReceiver,
) -> None:
    webhook(f"{receiver.url}/hook").send(notification((alert(),)))
    [(headers, body)] = receiver.accepted
    replayed = {
        "Content-Type": "application/json",
        "X-Apivigil-Signature": headers["x-apivigil-signature"],
        "X-Apivigil-Timestamp": str(int(time.time()) + 60),
    }

    answer = httpx.post(f"{receiver.url}/hook", content=body, headers=replayed)

    assert answer.status_code == 401
    assert len(receiver.accepted) == 1


def test_an_old_signature_timestamp_is_refused_by_the_receiver(
    receiver: VerifyingReceiver,
) -> None:
    an_hour_ago = FixedClock(datetime.now(UTC) - timedelta(hours=1))
    notifier = WebhookNotifier(
        "secops-hook", WebhookConfig(url=f"{receiver.url}/hook", secret=SECRET), an_hour_ago
    )

    with pytest.raises(NotifierError, match="stale timestamp"):
        notifier.send(notification((alert(),)))


def test_the_signature_goes_in_the_configured_header() -> None:
    server = VerifyingReceiver(SECRET, signature_header="X-Hub-Signature-256")
    with server:
        webhook(f"{server.url}/hook", signature_header="X-Hub-Signature-256").send(
            notification((alert(),))
        )
    assert len(server.accepted) == 1


def test_the_body_follows_the_documented_schema(receiver: VerifyingReceiver) -> None:
    firing = alert(1)
    resolved = alert(2, state=AlertState.RESOLVED, severity=Severity.CRITICAL)
    webhook(f"{receiver.url}/hook").send(
        notification(
            (firing,), (resolved,), note="silence s-12 expired", external_url="https://vigil/"
        )
    )

    document = json.loads(receiver.accepted[0][1])
    assert {key: value for key, value in document.items() if key not in ("firing", "resolved")} == {
        "version": 1,
        "dedup_key": "dk-3f9a1c",
        "receiver": "secops-hook",
        "route": "route-0",
        "group_key": "route-0:target=payments",
        "group_labels": {"target": "payments"},
        "kind": "firing",
        "title": "[FIRING 1] high: payments",
        "severity": "high",
        "created_at": "2025-03-01T12:30:00+00:00",
        "note": "silence s-12 expired",
        "external_url": "https://vigil/",
    }
    assert document["firing"] == [
        {
            "fingerprint": "fp-00001",
            "check": "tls_posture",
            "target": "payments",
            "rule_id": "TLS-PROTOCOL-TLS10",
            "severity": "high",
            "title": "TLS 1.0 is enabled",
            "subject": "payments.example.com:443",
            "evidence": "the server accepted a TLS 1.0 handshake",
            "remediation": "Disable TLS 1.0",
            "state": "firing",
            "started_at": "2025-03-01T09:31:00+00:00",
            "ended_at": None,
            "controls": ["NIST SP 800-53 SC-8"],
            "labels": {"env": "prod"},
        }
    ]
    [gone] = document["resolved"]
    assert gone["state"] == "resolved"
    assert gone["severity"] == "critical"
    assert gone["ended_at"] == "2025-03-01T11:30:00+00:00"


@pytest.fixture
def grafana() -> Iterator[GrafanaFake]:
    fake = GrafanaFake({TOKEN: Role.EDITOR})
    fake.add_dashboard("apivigil-overview", "apivigil overview")
    with fake:
        yield fake


def grafana_notifier(url: str, token: str = TOKEN, **options: Any) -> GrafanaAnnotationNotifier:
    config = GrafanaConfig(url=url, token=token, **options)
    return GrafanaAnnotationNotifier("secops-grafana", config)


def test_an_annotation_arrives_with_tags_dashboard_time_and_text(grafana: GrafanaFake) -> None:
    firing = (
        alert(5),
        alert(2, check="cert_expiry", severity=Severity.CRITICAL, title="Certificate expired"),
    )

    grafana_notifier(
        grafana.url, dashboard_uid="apivigil-overview", tags=("apivigil", "security")
    ).send(notification(firing))

    [annotation] = grafana.annotations
    assert annotation["dashboardUID"] == "apivigil-overview"
    assert annotation["time"] == milliseconds(STARTED + timedelta(minutes=2))
    assert annotation["timeEnd"] is None
    assert annotation["tags"] == [
        "apivigil",
        "security",
        "kind:firing",
        "check:tls_posture",
        "check:cert_expiry",
        "target:payments",
        "severity:high",
        "severity:critical",
    ]
    lines = annotation["text"].splitlines()
    assert lines[0] == "[FIRING 2] critical: payments"
    assert "- [critical] Certificate expired (payments: payments.example.com:443)" in lines
    assert "dedup key dk-3f9a1c" in lines


def test_a_resolved_notification_is_a_region_until_the_last_alert_resolved(
    grafana: GrafanaFake,
) -> None:
    resolved = (alert(1, state=AlertState.RESOLVED), alert(3, state=AlertState.RESOLVED))

    grafana_notifier(grafana.url).send(
        notification(resolved=resolved, kind=NotificationKind.RESOLVED)
    )

    [annotation] = grafana.annotations
    assert annotation["time"] == milliseconds(STARTED + timedelta(minutes=1))
    assert annotation["timeEnd"] == milliseconds(STARTED + timedelta(hours=3))
    assert "kind:resolved" in annotation["tags"]
    assert "dashboardUID" not in annotation  # organisation-wide without a dashboard_uid


def test_grafana_served_under_a_sub_path_is_reached() -> None:
    fake = GrafanaFake({TOKEN: Role.EDITOR}, path_prefix="/grafana")
    with fake:
        grafana_notifier(f"{fake.url}/").send(notification((alert(),)))
    assert len(fake.annotations) == 1


def test_a_bad_token_fails_for_good_without_showing_the_token(grafana: GrafanaFake) -> None:
    with pytest.raises(NotifierError) as caught:
        grafana_notifier(grafana.url, token="glsa_wrong_token").send(notification((alert(),)))

    assert caught.value.permanent
    assert "401" in str(caught.value)
    assert "glsa_wrong_token" not in str(caught.value)
    assert grafana.annotations == []


@pytest.mark.parametrize(
    ("status", "message"), [(403, "Permissions needed: annotations:create"), (404, "Not found")]
)
def test_forbidden_or_missing_annotation_api_fails_for_good(
    grafana: GrafanaFake, status: int, message: str
) -> None:
    grafana.answer_next(status, message)

    with pytest.raises(NotifierError) as caught:
        grafana_notifier(grafana.url).send(notification((alert(),)))

    assert caught.value.permanent
    assert f"HTTP {status}" in str(caught.value)


def test_a_viewer_token_is_refused_with_403_and_fails_for_good() -> None:
    fake = GrafanaFake({"glsa_viewer_token": Role.VIEWER})
    with fake, pytest.raises(NotifierError) as caught:
        grafana_notifier(fake.url, token="glsa_viewer_token").send(notification((alert(),)))

    assert caught.value.permanent
    assert "HTTP 403" in str(caught.value)
    assert fake.annotations == []


def test_an_unknown_dashboard_fails_for_good(grafana: GrafanaFake) -> None:
    with pytest.raises(NotifierError, match="Invalid dashboard UID") as caught:
        grafana_notifier(grafana.url, dashboard_uid="no-such-dashboard").send(
            notification((alert(),))
        )

    assert caught.value.permanent


def test_a_grafana_server_error_can_be_retried(grafana: GrafanaFake) -> None:
    grafana.answer_next(500, "Failed to save annotation")

    with pytest.raises(NotifierError) as caught:
        grafana_notifier(grafana.url).send(notification((alert(),)))

    assert not caught.value.permanent
    assert "HTTP 500" in str(caught.value)


def test_a_slow_grafana_times_out_and_can_be_retried(grafana: GrafanaFake) -> None:
    grafana.delay = 1.0

    with pytest.raises(NotifierError, match=r"no answer within 0\.2 s") as caught:
        grafana_notifier(grafana.url, timeout="200ms").send(notification((alert(),)))

    assert not caught.value.permanent


def test_an_unreachable_grafana_can_be_retried() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    with pytest.raises(NotifierError) as caught:
        grafana_notifier(f"http://127.0.0.1:{port}").send(notification((alert(),)))

    assert not caught.value.permanent
