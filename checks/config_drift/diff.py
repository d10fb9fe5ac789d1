"""The rules that judge drift items (volatile paths, ignore rules, severity); `diff` and
`DriftItem` live in `checks.baseline_diff` and are re-exported here."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from datetime import datetime

from checks.baseline_diff import Change, DriftItem, diff
from checks.config_drift.params import IgnoreRule, SeverityRule
from monitor.model import Severity

__all__ = ["DriftItem", "diff"]


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


def _setting(
    key: str, severity: Severity, value: str | None = None, change: Change | None = None
) -> tuple[SeverityRule, ...]:
    """Rules for the setting `key` wherever it sits: top level, in a block or section
    (`server api.ssl_protocols`), or in a directory source's file (`x.conf:ssl`)."""
    return tuple(
        SeverityRule(path=path, change=change, value=value, severity=severity)
        for path in (key, f"*.{key}", f"*:{key}")
    )


_WEAK_TLS = r"(?i)(^|[\s+])(SSLv2|SSLv3|TLSv1|TLSv1\.1)(\s|$)|\ball\b"
_ON = r"(?i)^(on|1|true|yes)$"
# Security settings whose drift is serious whatever the user configured (anchors: the CIS
# Benchmarks for OpenSSH, nginx, Apache, PostgreSQL and Redis, and Mozilla's server-side
# TLS guide). Configured rules come first and win.
KNOWN_SETTINGS = (
    *_setting("permitrootlogin", Severity.CRITICAL, r"(?i)^yes$"),
    *_setting("permitrootlogin", Severity.HIGH),
    *_setting("permitemptypasswords", Severity.CRITICAL, r"(?i)^yes$"),
    *_setting("passwordauthentication", Severity.HIGH, r"(?i)^yes$"),
    *_setting("passwordauthentication", Severity.MEDIUM),
    *_setting("ciphers", Severity.HIGH),
    *_setting("macs", Severity.HIGH),
    *_setting("kexalgorithms", Severity.HIGH),
    *_setting("ssl_protocols", Severity.HIGH, _WEAK_TLS),
    *_setting("ssl_protocols", Severity.MEDIUM),
    *_setting("ssl_ciphers", Severity.HIGH),
    *_setting("server_tokens", Severity.LOW),
    *_setting("add_header strict-transport-security", Severity.HIGH, change=Change.REMOVED),
    *_setting("add_header strict-transport-security", Severity.MEDIUM),
    *_setting("header always set strict-transport-security", Severity.HIGH, change=Change.REMOVED),
    *_setting("servertokens", Severity.LOW),
    *_setting("serversignature", Severity.LOW),
    *_setting("traceenable", Severity.MEDIUM, _ON),
    *_setting("sslprotocol", Severity.HIGH, _WEAK_TLS),
    *_setting("sslprotocol", Severity.MEDIUM),
    *_setting("sslciphersuite", Severity.HIGH),
    *_setting("expose_php", Severity.LOW, _ON),
    *_setting("display_errors", Severity.HIGH, _ON),
    *_setting("allow_url_include", Severity.HIGH, _ON),
    *_setting("protected-mode", Severity.HIGH, r"(?i)^no$"),
    *_setting("protected-mode", Severity.MEDIUM),
    *_setting("bind", Severity.HIGH),
    *_setting("requirepass", Severity.CRITICAL, change=Change.REMOVED),
    *_setting("password_encryption", Severity.HIGH, r"(?i)^'?md5'?$"),
    *_setting("password_encryption", Severity.MEDIUM),
    *_setting("ssl", Severity.HIGH, r"(?i)^'?(off|false|0)'?$"),
    *_setting("ssl", Severity.HIGH, change=Change.REMOVED),
    *_setting("listen_addresses", Severity.MEDIUM),
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
    *KNOWN_SETTINGS,
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
