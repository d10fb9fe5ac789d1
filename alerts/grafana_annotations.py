"""Grafana annotations (POST /api/annotations through grafana-client): one per notification.

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
from urllib.parse import urlsplit

import niquests.exceptions
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaTimeoutError

from alerts.config import GrafanaConfig
from alerts.interface import NotifierError
from alerts.model import Alert, Notification, NotificationKind
from alerts.transport import PERMANENT_CLIENT_ERRORS, USER_AGENT

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

    def close(self) -> None:
        """Nothing to release: each send opens and closes its own connection."""

    def send(self, notification: Notification) -> None:
        """Add the annotation. Raises NotifierError: permanent for 400/401/403/404 (bad
        request, bad token, no permission, unknown dashboard), not for 5xx or timeouts."""
        annotation = grafana_annotation(notification, self._config)
        api = self._api()
        try:
            api.annotations.add_annotation(  # type: ignore[no-untyped-call]
                dashboard_uid=annotation.dashboard_uid,
                time_from=annotation.time_ms,
                time_to=annotation.time_end_ms,
                tags=list(annotation.tags),
                text=annotation.text,
            )
        except GrafanaTimeoutError:
            timeout = self._config.timeout.total_seconds()
            raise NotifierError(f"grafana {self.name}: no answer within {timeout:g} s") from None
        except GrafanaClientError as error:
            raise NotifierError(
                f"grafana {self.name}: {_reason(error)}",
                permanent=error.status_code in PERMANENT_CLIENT_ERRORS,
            ) from None
        except GrafanaException as error:  # 5xx, or the connection failed
            raise NotifierError(f"grafana {self.name}: {_reason(error)}") from None
        except niquests.exceptions.RequestException as error:
            # grafana-client lets connection errors and unreadable answers through
            raise NotifierError(
                f"grafana {self.name}: {error or type(error).__name__}",
                permanent=isinstance(error, niquests.exceptions.InvalidURL),
            ) from None
        finally:
            api.client.s.close()

    def _api(self) -> GrafanaApi:
        assert self._config.token is not None  # the config resolves token_file
        url = urlsplit(self._config.url)
        host = url.hostname or ""
        prefix = url.path.strip("/")
        return GrafanaApi(
            auth=self._config.token.get_secret_value(),
            host=f"[{host}]" if ":" in host else host,
            port=url.port,
            # grafana-client joins the prefix and "api" without a slash
            url_path_prefix=f"{prefix}/" if prefix else "",
            protocol=url.scheme,
            timeout=self._config.timeout.total_seconds(),
            user_agent=USER_AGENT,
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
    return "\n".join(lines)


def _reason(error: GrafanaException) -> str:
    """Grafana's own message (`{"message": ...}`) with the status, else grafana-client's."""
    answer: object = error.response
    detail = error.message
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):
        detail = answer["message"]
    return f"HTTP {error.status_code} {detail}" if error.status_code else detail


def _milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
