"""CORS rules: crafted Origins on GET and on a preflight (pure)."""

from __future__ import annotations

from collections.abc import Iterator

from checks.http_posture.facts import HttpPostureRaw, Probe
from monitor.model import Finding, Severity

_ORIGIN_PROBES = {
    Probe.CORS_ARBITRARY: "an unrelated origin",
    Probe.PREFLIGHT: "an unrelated origin (preflight)",
    Probe.CORS_SUFFIX: "the target's host with a suffix",
    Probe.CORS_PREFIX: "the target's host with a prefix",
}
_REMEDY = (
    "Allow only an explicit list of origins, compared exactly (no reflection, no suffix or "
    "prefix matching, never `null`); send no CORS headers if cross-origin calls are not needed."
)


def cors_findings(raw: HttpPostureRaw) -> Iterator[Finding]:
    seen: set[tuple[str, str]] = set()
    for probe in (
        Probe.PREFLIGHT, Probe.CORS_ARBITRARY, Probe.CORS_SUFFIX, Probe.CORS_PREFIX, Probe.CORS_NULL
    ):  # fmt: skip
        exchange = raw.exchange(probe)
        answer = exchange.final if exchange else None
        if exchange is None or answer is None:
            continue
        sent = dict(exchange.sent_headers).get("Origin", "")
        allowed = (answer.joined("access-control-allow-origin") or "").strip()
        credentials = (answer.joined("access-control-allow-credentials") or "").strip().lower()
        with_credentials = credentials == "true"
        evidence = (
            f"{exchange.method} {answer.url} with Origin: {sent} answered {answer.status} with "
            f"Access-Control-Allow-Origin: {allowed or None!r}, "
            f"Access-Control-Allow-Credentials: {credentials or None!r}"
        )
        finding: Finding | None = None
        if allowed == "*" and with_credentials:
            finding = Finding(
                "CORS-WILDCARD-WITH-CREDENTIALS", Severity.MEDIUM,
                "CORS allows any origin and credentials", "*", evidence, _REMEDY,
            )  # fmt: skip
        elif probe is Probe.CORS_NULL and allowed == "null":
            finding = Finding(
                "CORS-NULL-ORIGIN-ALLOWED",
                Severity.HIGH if with_credentials else Severity.MEDIUM,
                "CORS allows the null origin" + (" with credentials" if with_credentials else ""),
                "null", evidence, _REMEDY,
            )  # fmt: skip
        elif probe is not Probe.CORS_NULL and sent and allowed == sent:
            kind = _ORIGIN_PROBES[probe]
            if with_credentials:
                finding = Finding(
                    "CORS-ORIGIN-REFLECTED-WITH-CREDENTIALS", Severity.CRITICAL,
                    "CORS reflects any origin and allows credentials", kind, evidence,
                    _REMEDY + " Any web page can read this API's answers as the signed-in user.",
                )  # fmt: skip
            else:
                finding = Finding(
                    "CORS-ORIGIN-REFLECTED", Severity.LOW,
                    "CORS reflects the request's origin", kind, evidence, _REMEDY,
                )  # fmt: skip
        if finding is not None and (finding.rule_id, finding.subject) not in seen:
            seen.add((finding.rule_id, finding.subject))
            yield finding
        if probe is Probe.PREFLIGHT:
            methods = answer.joined("access-control-allow-methods")
            headers = answer.joined("access-control-allow-headers")
            yield from _broad(answer.url, methods, headers, with_credentials)


def _broad(
    url: str, methods: str | None, headers: str | None, with_credentials: bool
) -> Iterator[Finding]:
    listed = {m.strip().upper() for m in (methods or "").split(",") if m.strip()}
    risky = listed & {"*", "TRACE", "TRACK", "CONNECT"}
    if risky:
        yield Finding(
            "CORS-ALLOW-METHODS-BROAD", Severity.LOW,
            "The CORS preflight allows any or unsafe methods", "methods",
            f"OPTIONS {url}: Access-Control-Allow-Methods: {methods}",
            "List only the methods cross-origin clients use.",
        )  # fmt: skip
    if (headers or "").strip() == "*" and with_credentials:
        yield Finding(
            "CORS-ALLOW-HEADERS-BROAD", Severity.LOW,
            "The CORS preflight allows any request header", "headers",
            f"OPTIONS {url}: Access-Control-Allow-Headers: {headers}",
            "List only the request headers cross-origin clients send.",
        )  # fmt: skip
