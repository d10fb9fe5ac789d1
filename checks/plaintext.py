"""A target whose URL is `http://` offers no TLS: the TLS checks report that as a finding
(TLS-NOT-OFFERED) instead of probing a plaintext port for a handshake that cannot come."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.model import CheckOutput, Finding, Severity, Target


@dataclass(frozen=True, slots=True)
class NoTls:
    """Raw data of a TLS check on a plaintext target: where it is served without TLS."""

    endpoint: str


def no_tls(target: Target) -> NoTls | None:
    """NoTls when the target is configured as plain `http://`; None otherwise."""
    if target.url is None or urlsplit(target.url.strip()).scheme.lower() != "http":
        return None
    return NoTls(endpoint=str(target.endpoint))


def no_tls_output(raw: NoTls) -> CheckOutput:
    finding = Finding(
        rule_id="TLS-NOT-OFFERED",
        severity=Severity.CRITICAL,
        title="The API is served without TLS",
        subject=raw.endpoint,
        evidence=f"the target URL is plain http://{raw.endpoint}: requests, credentials and "
        "responses cross the network unencrypted and unauthenticated",
        remediation="Serve the API over HTTPS only (TLS 1.2 or 1.3), redirect or refuse "
        "plain HTTP, and point the target at its https:// URL.",
    )
    return CheckOutput(findings=(finding,))
