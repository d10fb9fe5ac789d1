"""Added / removed / changed paths between two flat mappings, and the rules that judge them."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from checks.config_drift.params import Change, IgnoreRule, SeverityRule
from monitor.model import Severity


@dataclass(frozen=True, slots=True)
class DriftItem:
    source: str
    path: str
    change: Change
    before: str | None
    after: str | None

    @property
    def subject(self) -> str:
        return f"{self.source}|{self.path}"


def diff(source: str, approved: Mapping[str, str], observed: Mapping[str, str]) -> list[DriftItem]:
    items: list[DriftItem] = []
    for path in sorted(approved.keys() | observed.keys()):
        before, after = approved.get(path), observed.get(path)
        if before == after:
            continue
        if before is None:
            items.append(DriftItem(source, path, Change.ADDED, None, after))
        elif after is None:
            items.append(DriftItem(source, path, Change.REMOVED, before, None))
        else:
            items.append(DriftItem(source, path, Change.CHANGED, before, after))
    return items


# Values that change on every response: never drift.
VOLATILE_PATHS = (
    "header.date",
    "header.set-cookie",
    "header.etag",
    "header.age",
    "header.last-modified",
    "header.expires",
    "header.content-length",
    "header.x-request-id",
    "header.request-id",
    "header.x-correlation-id",
    "header.x-amzn-requestid",
    "header.x-amz-request-id",
    "header.x-amz-id-2",
    "header.x-amz-cf-id",
    "header.cf-ray",
    "header.traceparent",
    "header.tracestate",
    "header.x-trace-id",
    "header.x-b3-traceid",
    "header.server-timing",
    "header.x-runtime",
    "header.x-response-time",
    "header.x-served-by",
    "header.x-cache",
    "header.x-cache-hits",
    "header.x-timer",
    "header.via",
    "body.*request_id",
    "body.*requestId",
)

BUILT_IN_SEVERITY = (
    SeverityRule(
        path="header.strict-transport-security", change=Change.REMOVED, severity=Severity.HIGH
    ),
    SeverityRule(path="header.access-control-allow-origin", value=r"^\*$", severity=Severity.HIGH),
    SeverityRule(
        path="header.access-control-allow-credentials", value="(?i)^true$", severity=Severity.HIGH
    ),
    SeverityRule(
        path="header.content-security-policy", change=Change.REMOVED, severity=Severity.MEDIUM
    ),
    SeverityRule(path="header.server", change=Change.ADDED, severity=Severity.LOW),
    SeverityRule(path="header.x-powered-by", change=Change.ADDED, severity=Severity.LOW),
    SeverityRule(path="snapshot:tls_posture|protocols*", severity=Severity.HIGH),
)


def _path_matches(pattern: str, item: DriftItem) -> bool:
    pattern = pattern.lower()
    return fnmatch.fnmatchcase(item.subject.lower(), pattern) or fnmatch.fnmatchcase(
        item.path.lower(), pattern
    )


def _value(item: DriftItem) -> str:
    return item.after if item.after is not None else (item.before or "")


def ignored_by(item: DriftItem, rules: Sequence[IgnoreRule], now: datetime) -> IgnoreRule | None:
    """The first unexpired rule that hides `item`, if any."""
    for rule in rules:
        expires = rule.expires_at
        if expires is not None and now > expires:
            continue
        if not _path_matches(rule.path, item):
            continue
        if rule.value is not None and re.search(rule.value, _value(item)) is None:
            continue
        return rule
    return None


def is_volatile(item: DriftItem) -> bool:
    return any(fnmatch.fnmatchcase(item.path.lower(), path.lower()) for path in VOLATILE_PATHS)


def severity_of(item: DriftItem, rules: Sequence[SeverityRule], default: Severity) -> Severity:
    for rule in (*rules, *BUILT_IN_SEVERITY):
        if not _path_matches(rule.path, item):
            continue
        if rule.change is not None and rule.change is not item.change:
            continue
        if rule.value is not None and (
            item.after is None or re.search(rule.value, item.after) is None
        ):
            continue
        return rule.severity
    return default
