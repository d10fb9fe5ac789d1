"""Grafana annotations (POST /api/annotations, through the receivers' one HTTP function with
its total deadline): one per notification.

The annotation starts at the earliest `started_at` of the firing alerts (of the resolved ones
when none fire, the notification's time when there are no alerts); a resolved notification
is a region that ends at the latest `ended_at`. Tags: the configured ones, then `kind:<kind>`
and one `check:`, `target:` and `severity:` tag per distinct value among the alerts, so a
dashboard can filter by any of them. It lands on `dashboard_uid` when configured, otherwise
it is an organisation-wide annotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from alerts.config import GrafanaConfig
from alerts.model import Alert, Notification, NotificationKind
from alerts.transport import SharedClient, post_json
from monitor.text import printable

_LISTED_ALERTS = 20


@dataclass(frozen=True, slots=True)
class GrafanaAnnotation:
    time_ms: int
    time_end_ms: int | None
    tags: tuple[str, ...]
    text: str
    dashboard_uid: str | None


class GrafanaAnnotationNotifier:
    def __init__(self, name: str, config: GrafanaConfig) -> None:
        self.name = name
        self._config = config
        self._http = SharedClient()

    def close(self) -> None:
        self._http.close()

    def send(self, notification: Notification) -> None:
        """Add the annotation. Raises NotifierError: permanent for 400/401/403/404 (bad
        request, bad token, no permission, unknown dashboard), not for 5xx or timeouts."""
        annotation = grafana_annotation(notification, self._config)
        assert self._config.token is not None  # the config resolves token_file
        document: dict[str, object] = {
            "panelId": None,
            "time": annotation.time_ms,
            "timeEnd": annotation.time_end_ms,
            "tags": list(annotation.tags),
            "text": annotation.text,
        }
        if annotation.dashboard_uid is not None:
            document["dashboardUID"] = annotation.dashboard_uid
        post_json(
            f"{self._config.url.rstrip('/')}/api/annotations",
            document,
            timeout=self._config.timeout.total_seconds(),
            headers={"Authorization": f"Bearer {self._config.token.get_secret_value()}"},
            what=f"grafana {self.name}",
            client=self._http,
        )


def grafana_annotation(notification: Notification, config: GrafanaConfig) -> GrafanaAnnotation:
    """What `notification` looks like as an annotation (pure; see the module docstring)."""
    alerts = notification.firing or notification.resolved
    start = min((a.started_at for a in alerts), default=notification.created_at)
    end: datetime | None = None
    if notification.kind is NotificationKind.RESOLVED:
        end = max((a.ended_at or notification.created_at for a in alerts), default=start)
    tags = [
        *config.tags,
        f"kind:{notification.kind.value}",
        *(f"check:{a.check}" for a in alerts),
        *(f"target:{a.target}" for a in alerts),
        *(f"severity:{a.severity.value}" for a in alerts),
    ]
    return GrafanaAnnotation(
        time_ms=_milliseconds(start),
        time_end_ms=None if end is None else _milliseconds(end),
        tags=tuple(dict.fromkeys(tags)),
        text=_text(notification),
        dashboard_uid=config.dashboard_uid,
    )


def _text(notification: Notification) -> str:
    alerts: Sequence[Alert] = notification.firing or notification.resolved
    lines = [notification.title]
    lines += [
        f"- [{a.severity.value}] {a.title} ({a.target}: {a.subject})"
        for a in alerts[:_LISTED_ALERTS]
    ]
    if len(alerts) > _LISTED_ALERTS:
        lines.append(f"…and {len(alerts) - _LISTED_ALERTS} more")
    if notification.note:
        lines.append(notification.note)
    lines.append(f"dedup key {notification.dedup_key}")
    return printable("\n".join(lines), keep_newlines=True)  # people read it on a dashboard


def _milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
