"""RFC 9116 security.txt: present, Contact and Expires, not expired, HTTPS, Canonical (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from checks.http_posture.facts import HttpPostureRaw, Probe
from monitor.model import Finding, Severity

_REMEDY = (
    "Publish /.well-known/security.txt over HTTPS (RFC 9116) with at least one Contact and "
    "one Expires less than a year ahead, and renew it before it expires."
)


@dataclass(frozen=True, slots=True)
class SecurityTxt:
    url: str
    fields: tuple[tuple[str, str], ...]  # lower-cased name, value

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]


def parse_security_txt(url: str, text: str) -> SecurityTxt:
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("-----"):
            continue
        name, separator, value = stripped.partition(":")
        if separator and name and " " not in name:
            fields.append((name.strip().lower(), value.strip()))
    return SecurityTxt(url, tuple(fields))


def security_txt(raw: HttpPostureRaw) -> SecurityTxt | None:
    exchange = raw.exchange(Probe.SECURITY_TXT)
    answer = exchange.final if exchange else None
    if answer is None or answer.status != 200 or answer.media_type != "text/plain":
        return None
    return parse_security_txt(answer.url, answer.body.decode("utf-8", "replace"))


def security_txt_findings(
    raw: HttpPostureRaw, now: datetime, warning: timedelta
) -> Iterator[Finding]:
    exchange = raw.exchange(Probe.SECURITY_TXT)
    if exchange is None or (exchange.final is None and exchange.error is not None):
        return  # not probed (disabled or out of budget): reported as undetermined
    subject = "/.well-known/security.txt"
    answer = exchange.final
    found = security_txt(raw)
    if found is None or answer is None:
        shown = f"{answer.status} {answer.media_type or 'no type'}" if answer else "no answer"
        yield Finding(
            "SECTXT-MISSING", Severity.LOW, "No security.txt", subject,
            f"GET {exchange.url} answered {shown} (RFC 9116 wants 200 text/plain)", _REMEDY,
        )  # fmt: skip
        return
    if not found.url.lower().startswith("https:"):
        yield Finding(
            "SECTXT-NOT-HTTPS", Severity.LOW, "security.txt is served over plain HTTP", subject,
            f"served from {found.url}", _REMEDY,
        )  # fmt: skip
    if not found.values("contact"):
        yield Finding(
            "SECTXT-NO-CONTACT", Severity.LOW, "security.txt names no Contact", subject,
            f"{found.url} has fields {sorted({k for k, _ in found.fields})}", _REMEDY,
        )  # fmt: skip
    canonical = found.values("canonical")
    if canonical and found.url not in canonical:
        yield Finding(
            "SECTXT-CANONICAL-MISMATCH", Severity.LOW,
            "security.txt's Canonical does not name where it is served", subject,
            f"served from {found.url}; Canonical: {canonical}", _REMEDY,
        )  # fmt: skip
    expires = found.values("expires")
    if len(expires) != 1:
        yield Finding(
            "SECTXT-NO-EXPIRES", Severity.LOW, "security.txt needs exactly one Expires", subject,
            f"{found.url} has {len(expires)} Expires fields", _REMEDY,
        )  # fmt: skip
        return
    try:
        when = datetime.fromisoformat(expires[0].replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError("no time zone")
    except ValueError:
        yield Finding(
            "SECTXT-NO-EXPIRES", Severity.LOW, "security.txt's Expires is not a valid date",
            subject, f"Expires: {expires[0][:60]!r} (RFC 9116 wants ISO 8601 with a zone)", _REMEDY,
        )  # fmt: skip
        return
    left = when.astimezone(UTC) - now
    if left <= timedelta(0):
        yield Finding(
            "SECTXT-EXPIRED", Severity.MEDIUM, "security.txt has expired", subject,
            f"Expires: {expires[0]} ({-left.days} days ago)", _REMEDY,
        )  # fmt: skip
    elif left <= warning:
        yield Finding(
            "SECTXT-EXPIRING", Severity.LOW, "security.txt expires soon", subject,
            f"Expires: {expires[0]} (in {left.days} days)", _REMEDY,
        )  # fmt: skip
