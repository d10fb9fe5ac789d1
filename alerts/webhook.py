"""Generic webhook: POST one signed JSON document per notification.

Body (UTF-8 JSON, schema version 1; times are RFC 3339 in UTC; absent values are null):

    {"version": 1, "dedup_key": str, "receiver": str, "route": str, "group_key": str,
     "group_labels": {str: str}, "kind": "firing|reminder|resolved|silence_expired|test",
     "title": str, "severity": "info|low|medium|high|critical", "created_at": time,
     "firing": [alert], "resolved": [alert], "note": str|null, "external_url": str|null}
    alert = {"fingerprint", "check", "target", "rule_id", "severity", "title", "subject",
             "evidence", "remediation", "state": "firing|resolved", "started_at": time,
             "ended_at": time|null, "controls": [str], "labels": {str: str}}

Headers:

    X-Apivigil-Timestamp: <unix seconds when the request was signed>
    X-Apivigil-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-Apivigil-Dedup-Key: <dedup_key, the same on every retry of this notification>

(the signature header's name is `signature_header` in the config). The timestamp is part of
the signed material so a captured request cannot be replayed later: a receiver recomputes
the HMAC over the timestamp header, a dot and the raw body bytes as received, compares it in
constant time, and rejects timestamps more than a few minutes from its own clock. Delivery is
at least once: a retry carries the same dedup key with a new timestamp and signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from alerts.codec import alert_document, utc_text
from alerts.config import WebhookConfig
from alerts.model import Notification
from alerts.transport import SharedClient, post
from monitor.clock import Clock, SystemClock

SCHEMA_VERSION = 1
TIMESTAMP_HEADER = "X-Apivigil-Timestamp"
DEDUP_KEY_HEADER = "X-Apivigil-Dedup-Key"


class WebhookNotifier:
    def __init__(self, name: str, config: WebhookConfig, clock: Clock | None = None) -> None:
        self.name = name
        self._config = config
        self._clock = clock or SystemClock()
        self._http = SharedClient()

    def close(self) -> None:
        self._http.close()

    def send(self, notification: Notification) -> None:
        """POST the signed document. Raises NotifierError (see `alerts.transport.post`)."""
        assert self._config.secret is not None  # the config resolves secret_file
        body = json.dumps(webhook_document(notification), ensure_ascii=False).encode()
        timestamp = int(self._clock.now().timestamp())
        headers = {
            TIMESTAMP_HEADER: str(timestamp),
            self._config.signature_header: signature(
                self._config.secret.get_secret_value(), timestamp, body
            ),
            DEDUP_KEY_HEADER: notification.dedup_key,
        }
        post(
            self._config.url,
            body,
            timeout=self._config.timeout.total_seconds(),
            headers=headers,
            what=f"webhook {self.name}",
            client=self._http,
        )


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 with `secret` over `<timestamp>.<body>`."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_document(notification: Notification) -> dict[str, object]:
    """The JSON document (schema version 1) for `notification`."""
    return {
        "version": SCHEMA_VERSION,
        "dedup_key": notification.dedup_key,
        "receiver": notification.receiver,
        "route": notification.route,
        "group_key": notification.group_key,
        "group_labels": dict(notification.group_labels),
        "kind": notification.kind.value,
        "title": notification.title,
        "severity": notification.severity.value,
        "created_at": utc_text(notification.created_at),
        "firing": [alert_document(alert) for alert in notification.firing],
        "resolved": [alert_document(alert) for alert in notification.resolved],
        "note": notification.note,
        "external_url": notification.external_url,
    }
