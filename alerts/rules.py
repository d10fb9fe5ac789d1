"""Which route an alert takes, and whether a silence or maintenance window mutes it. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from alerts.config import MaintenanceWindowConfig, RouteMatch, Weekday
from alerts.matchers import matches
from alerts.model import Alert, Silence

_WEEKDAYS = list(Weekday)


# The labels every alert carries beside its target's own (alert_labels).
ALERT_OWN_LABELS = ("check", "target", "rule_id", "severity", "subject", "fingerprint")


def alert_labels(alert: Alert) -> dict[str, str]:
    """The labels routes, silences and windows see: the target's plus the alert's own."""
    return {
        **alert.labels,
        "check": alert.check,
        "target": alert.target,
        "rule_id": alert.rule_id,
        "severity": alert.severity.value,
        "subject": alert.subject,
        "fingerprint": alert.fingerprint,
    }


def route_matches(match: RouteMatch, alert: Alert) -> bool:
    if match.check is not None and str(match.check) != alert.check:
        return False
    if match.severity is not None and not alert.severity.at_least(match.severity):
        return False
    if match.rule is not None and not fnmatch.fnmatchcase(alert.rule_id, match.rule):
        return False
    if match.target is not None and not fnmatch.fnmatchcase(alert.target, match.target):
        return False
    return all(alert.labels.get(key) == value for key, value in match.labels.items())


def silenced_by(silences: Sequence[Silence], alert: Alert, now: datetime) -> Silence | None:
    labels = alert_labels(alert)
    for silence in silences:
        if silence.active(now) and matches(silence.matchers, labels):
            return silence
    return None


def in_maintenance(
    windows: Sequence[MaintenanceWindowConfig], alert: Alert, now: datetime
) -> MaintenanceWindowConfig | None:
    labels = alert_labels(alert)
    for window in windows:
        if window_open(window, now) and matches(window.matchers, labels):
            return window
    return None


def window_open(window: MaintenanceWindowConfig, now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(window.timezone))
    if window.weekly is not None:
        weekly = window.weekly
        start, end = weekly.start, weekly.end
        today = _WEEKDAYS[local.weekday()]
        yesterday = _WEEKDAYS[(local.weekday() - 1) % 7]
        moment = local.time().replace(tzinfo=None)
        if start <= end:
            return today in weekly.days and start <= moment < end
        # crosses midnight: open from start today, or until end after a start yesterday
        return (today in weekly.days and moment >= start) or (
            yesterday in weekly.days and moment < end
        )
    assert window.cron is not None
    assert window.duration is not None
    return _cron_open(window.cron, window.timezone, window.duration, now)


def _cron_open(expression: str, zone: str, duration: timedelta, now: datetime) -> bool:
    trigger = CronTrigger.from_crontab(expression, timezone=ZoneInfo(zone))
    # the first start after (now - duration); the window is open if it began by now
    start = trigger.get_next_fire_time(None, now - duration)
    return start is not None and start <= now < start + duration
