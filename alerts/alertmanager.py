"""Alertmanager receiver: POST {url}/api/v2/alerts, one entry per alert of the notification.

A firing alert is sent with `endsAt` = the notification's creation time + 4 x resend_interval:
Alertmanager keeps it firing only while apivigil keeps re-sending it, and resolves it by itself
when apivigil stops (crashed, removed the target). Anchoring on the creation time rather than
the moment of sending makes a retry send the same document, and a retry delayed by backoff
cannot keep an alert firing longer than 4 intervals after apivigil last saw it. A resolved
alert is sent with `endsAt` = when it ended (in the past), which resolves it at once.

Labels are what Alertmanager routes, groups and deduplicates on, so they must be stable for
the life of a finding: names are sanitised to Prometheus label names and empty values are
never sent (Alertmanager would drop them, and an alert without `alertname` is unroutable).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from alerts.config import AlertmanagerConfig
from alerts.model import Alert, Notification
from alerts.transport import SharedClient, post_json

RESEND_MARGIN = 4  # endsAt of a firing alert, in resend intervals
MAX_SUBJECT_CHARS = 256
FALLBACK_ALERTNAME = "apivigil"
_NOT_LABEL_CHARACTER = re.compile(r"[^A-Za-z0-9_]")

PostableAlert = dict[str, object]


class AlertmanagerNotifier:
    """Posts a notification's alerts to one Alertmanager (see the module docstring)."""

    def __init__(self, name: str, config: AlertmanagerConfig) -> None:
        self.name = name
        self._config = config
        self._http = SharedClient()

    def close(self) -> None:
        self._http.close()

    def send(self, notification: Notification) -> None:
        """POST the alerts. Returns when Alertmanager accepted them; raises NotifierError
        otherwise (permanent for a 400: Alertmanager rejected an alert as invalid)."""
        document = postable_alerts(notification, self._config.resend_interval)
        post_json(
            self._config.url.rstrip("/") + "/api/v2/alerts",
            document,
            timeout=self._config.timeout.total_seconds(),
            what=f"Alertmanager {self.name}",
            client=self._http,
        )


def postable_alerts(notification: Notification, resend_interval: timedelta) -> list[PostableAlert]:
    """The body of POST /api/v2/alerts for `notification`: firing alerts end
    RESEND_MARGIN resend intervals after the notification was created, resolved ones when
    they ended."""
    firing_until = notification.created_at + RESEND_MARGIN * resend_interval
    generator_url = _generator_url(notification.external_url)
    document = [
        _postable(alert, notification, firing_until, generator_url) for alert in notification.firing
    ]
    document += [
        _postable(alert, notification, alert.ended_at or notification.created_at, generator_url)
        for alert in notification.resolved
    ]
    return document


def _postable(
    alert: Alert, notification: Notification, ends_at: datetime, generator_url: str | None
) -> PostableAlert:
    entry: PostableAlert = {
        "labels": alertmanager_labels(alert, notification.group_labels),
        "annotations": _non_empty(
            {
                "title": alert.title,
                "evidence": alert.evidence,
                "remediation": alert.remediation,
                "controls": "; ".join(alert.controls),
                "dedup_key": notification.dedup_key,
            }
        ),
        "startsAt": rfc3339(alert.started_at),
        # Alertmanager rejects an alert that ends before it starts.
        "endsAt": rfc3339(max(ends_at, alert.started_at)),
    }
    if generator_url is not None:
        entry["generatorURL"] = generator_url
    return entry


def alertmanager_labels(alert: Alert, group_labels: Mapping[str, str]) -> dict[str, str]:
    """Target labels, then group labels, then apivigil's own (which win on a clash), with
    names made valid Prometheus label names and empty values left out."""
    labels: dict[str, str] = {}
    for source in (alert.labels, group_labels):
        for raw_name in sorted(source):
            name = label_name(raw_name)
            if name is not None:
                labels[name] = source[raw_name]
    labels |= {
        "alertname": alert.rule_id.strip() or FALLBACK_ALERTNAME,
        "apivigil_check": alert.check,
        "target": alert.target,
        "severity": alert.severity.value,
        "subject": _truncate(alert.subject, MAX_SUBJECT_CHARS),
        "fingerprint": alert.fingerprint,
    }
    return _non_empty(labels)


def label_name(raw: str) -> str | None:
    """`raw` as a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*), or None when nothing is
    left. Leading underscores go: `__` names are reserved for Prometheus itself."""
    name = _NOT_LABEL_CHARACTER.sub("_", raw).lstrip("_")
    if not name:
        return None
    return f"_{name}" if name[0].isdigit() else name


def rfc3339(moment: datetime) -> str:
    """UTC, millisecond precision, `Z` suffix (what Alertmanager itself writes)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _generator_url(external_url: str | None) -> str | None:
    # Alertmanager rejects the whole request (422) for a generatorURL that is not a URI.
    if external_url is None:
        return None
    parts = urlsplit(external_url)
    return external_url if parts.scheme in ("http", "https") and parts.netloc else None


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _non_empty(values: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in values.items() if value.strip()}
