"""Pure judgement of an auth_posture run: findings, observations and a snapshot.

Rules (ids are stable):
- AUTH-NOT-ENFORCED (critical): a secured GET/HEAD operation answered 2xx, not an error
  envelope, without credentials or with an invalid bearer token; unless the configured
  credentials get a clearly different answer (the anonymous one is a public stub).
  401, 403, 404, redirects to a login page and a 2xx login form are "enforced".
- AUTH-CHALLENGE-MISSING (low): a 401 without WWW-Authenticate (RFC 9110 §11.6.1).
- AUTH-ERROR-LEAKS (medium): a 401/403 body with a stack trace, an internal exception
  name, which token check failed, or whether the account exists.
- AUTH-CREDENTIALS-REJECTED (medium): the configured credentials were not accepted (a 401,
  a login redirect or error envelope; a 403/404 is the identity's permissions, not its
  credentials), so a 2xx answered without them cannot be compared with the real answer.
- AUTH-OPERATIONS-UNVERIFIED (low): secured safe operations not judged, per reason (no
  example for a path parameter, budget spent, no or an inconclusive answer, a 429 that
  stopped the run's probing).
- AUTH-NO-SECURED-OPERATIONS (low): the spec marks nothing secured, so nothing was verified.
- AUTH-ALL-NOT-FOUND (low): every operation counted enforced only ever answered 404 (a
  target URL or servers path that does not match the API verifies nothing).
- AUTH-SPEC-SECURITY-INVALID (low): `security` the loader could not read (such an operation
  counts as public and is not probed) or that names an undefined scheme.
- JWKS-*, OIDC-*: see checks/auth_posture/jwks.py and discovery.py.
- RATELIMIT-HEADERS-ABSENT (info), RATELIMIT-429-WITHOUT-RETRY-AFTER (info),
  RATELIMIT-NOT-OBSERVED (medium, opt-in burst), RATELIMIT-BURST-NOT-SENT (info: no store,
  or the day's burst was sent by a run that did not finish), RATELIMIT-BURST-INCOMPLETE
  (info: the burst got no answer before its end or a 429).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from checks.auth_posture.burst import burst_json
from checks.auth_posture.classify import (
    Answer,
    answer,
    catch_all_page,
    leak,
    rate_limit_headers,
    similarity,
)
from checks.auth_posture.discovery import audit_discovery
from checks.auth_posture.facts import (
    AuthPostureRaw,
    Exchange,
    FetchedDocument,
    OperationProbe,
    SkippedOperation,
    SkipReason,
    Variant,
)
from checks.auth_posture.jwks import KeyAudit, audit_key_set
from checks.auth_posture.params import BURST_MIN_INTERVAL, AuthPostureParams
from monitor.model import CheckOutput, Finding, Observation, Severity
from monitor.redact import MASK


class AuthState(StrEnum):
    ENFORCED = "enforced"
    NOT_ENFORCED = "not_enforced"
    SKIPPED = "skipped"


_VARIANT_TEXT = {
    Variant.ANONYMOUS: "without credentials",
    Variant.INVALID_TOKEN: "with an invalid bearer token",
    Variant.VALID: "with the configured credentials",
}
_UNVERIFIED = {
    SkipReason.NO_EXAMPLE: "a required parameter has no example or default in the spec",
    SkipReason.BUDGET: "the run's request budget (max_requests) was spent first",
    SkipReason.NO_ANSWER: "the request got no answer",
    SkipReason.INCONCLUSIVE: "the answer was neither a refusal nor a 2xx",
    SkipReason.CATCH_ALL_PAGE: (
        "the answer was an HTML page where the spec documents other media types (a "
        "single-page app's catch-all or a login form?); configure auth_header_file so it "
        "can be compared with a real answer"
    ),
    SkipReason.NOT_ON_TARGET: "the operation's path cannot be put on the target's origin",
    SkipReason.RATE_LIMITED: (
        "the API answered 429, so probing stopped for this run (the next run resumes)"
    ),
}


def evaluate(raw: AuthPostureRaw, params: AuthPostureParams, now: datetime) -> CheckOutput:
    findings: list[Finding] = []
    observations: list[Observation] = []
    operations: dict[str, dict[str, Any]] = {}
    skipped = list(raw.skipped)
    for probe in raw.probes:
        state, judged = _judge(probe, params, findings, raw.credentials_configured)
        operations[probe.key] = judged
        if state is AuthState.SKIPPED:
            skipped.append(
                SkippedOperation(probe.key, SkipReason(judged["reason"]), judged["detail"])
            )
    states = Counter(
        judged["state"] for judged in operations.values() if judged["state"] != "skipped"
    )
    if raw.spec_probed:
        counts = {
            AuthState.ENFORCED: states[AuthState.ENFORCED.value],
            AuthState.NOT_ENFORCED: states[AuthState.NOT_ENFORCED.value],
            AuthState.SKIPPED: len(skipped),
        }
        observations.extend(
            Observation("auth_operations", float(count), {"state": state.value})
            for state, count in counts.items()
        )
    findings.extend(_unverified(skipped))
    not_found = [
        probe.key
        for probe in raw.probes
        if operations[probe.key]["state"] == AuthState.ENFORCED.value
        and all(e.status == 404 for e in probe.exchanges if e.variant is not Variant.VALID)
    ]
    if len(not_found) >= 2 and len(not_found) == states[AuthState.ENFORCED.value]:
        findings.append(
            Finding(
                "AUTH-ALL-NOT-FOUND",
                Severity.LOW,
                "Every operation counted as enforced only answered 404",
                "spec",
                f"all {len(not_found)} operation(s) judged enforced answered 404 to every probe "
                f"(e.g. {', '.join(not_found[:3])} at {raw.probes[0].url}): a 404 counts as a "
                "refusal, but when all of them are 404 the target URL or the spec's servers "
                "base path likely does not match the API, and nothing was really verified",
                "Check the target's url and the spec's servers path (the probe URL is the "
                "target URL + the servers path + the operation path).",
            )
        )
    security_problems = [problem for problem in raw.spec_problems if "security" in problem]
    if security_problems:
        shown = "; ".join(security_problems[:5])
        more = f"; and {len(security_problems) - 5} more" if len(security_problems) > 5 else ""
        findings.append(
            Finding(
                "AUTH-SPEC-SECURITY-INVALID",
                Severity.LOW,
                "The spec's security requirements cannot be read everywhere",
                "spec",
                f"{len(security_problems)} problem(s) in the spec's security requirements: "
                f"{shown}{more}; an operation whose `security` is unreadable counts as public, "
                "so it is not probed",
                "Write `security` as a list of requirement objects naming defined schemes "
                "(OpenAPI 3 §4.8.30), e.g. `security: [{bearer: []}]`.",
            )
        )
    if raw.spec_probed and raw.secured_operations == 0:
        findings.append(
            Finding(
                "AUTH-NO-SECURED-OPERATIONS",
                Severity.LOW,
                "The spec marks no operation as secured: there was nothing to verify",
                "spec",
                f"none of the spec's {raw.documented_operations} operation(s) has an effective "
                "security requirement without an anonymous {} option, so no probe was sent "
                "(a removed top-level `security` makes every operation public)",
                "Declare the API's security requirements in the spec (top-level `security`, or "
                "per operation), or turn probe_operations off for a public API.",
            )
        )
    findings.extend(_credentials_rejected(raw))
    findings.extend(_rate_limit_findings(raw))
    audit = KeyAudit()
    for fetched in raw.jwks:
        audit.add(_jwks(fetched, raw, params, now))
    audit.observe()
    findings.extend(audit.findings)
    observations.extend(audit.observations)
    # keys no longer published are forgotten; while a set cannot be read, none are
    unread = any(
        fetched.error is not None
        or not isinstance(fetched.document, dict)
        or not isinstance(fetched.document.get("keys"), list)
        for fetched in raw.jwks
    )
    first_seen = {**raw.key_first_seen, **audit.first_seen} if unread else audit.first_seen
    for discovery in raw.discoveries:
        findings.extend(audit_discovery(discovery))
    snapshot: dict[str, Any] = {
        "operations": operations,
        "skipped": {
            skip.key: {"reason": skip.reason.value, "detail": skip.detail} for skip in skipped
        },
        "skipped_by_reason": dict(sorted(Counter(s.reason.value for s in skipped).items())),
        "requests_sent": raw.requests_sent,
        "last_probed": raw.last_probed,
        "max_requests": raw.max_requests,
        "spec_problems": list(raw.spec_problems[:20]),
        "credentials_configured": raw.credentials_configured,
        "jwks_urls": [fetched.url for fetched in raw.jwks],
        "keys": audit.keys,
        "key_age_series_dropped": audit.age_series_dropped,
        "key_first_seen": {
            thumbprint: when.isoformat() for thumbprint, when in sorted(first_seen.items())
        },
    }
    if raw.burst is not None:
        snapshot["burst"] = burst_json(raw.burst)
        snapshot["burst_ran"] = raw.burst_ran
    if raw.burst_lost_at is not None:
        due = (raw.burst_lost_at + BURST_MIN_INTERVAL).isoformat()
        snapshot["burst_lost_at"] = raw.burst_lost_at.isoformat()
        findings.append(
            Finding(
                "RATELIMIT-BURST-NOT-SENT",
                Severity.INFO,
                "The configured rate-limit burst was not sent",
                "rate_limit_burst",
                f"a burst was claimed at {raw.burst_lost_at.isoformat()} by a run that did not "
                "finish (failed, timed out or was stopped), so its result is lost; a burst may "
                f"run at most once a day: the next is due after {due}",
                "See that run's error; if it timed out, raise the check's timeout.",
            )
        )
    if raw.burst_needs_store:
        snapshot["burst_not_sent"] = "no store remembers the last burst (once a day at most)"
        findings.append(
            Finding(
                "RATELIMIT-BURST-NOT-SENT",
                Severity.INFO,
                "The configured rate-limit burst was not sent",
                "rate_limit_burst",
                "this run has no store (a one-off `apivigil scan`) to remember when the last "
                "burst was sent, and a burst may run at most once a day: rate limiting was not "
                "tested",
                "Let the daemon run the check: it keeps the last burst's time in its store.",
            )
        )
    return CheckOutput(
        observations=tuple(observations),
        findings=tuple(sorted(findings, key=lambda f: (f.rule_id, f.subject))),
        snapshot=snapshot,
    )


def _judge(
    probe: OperationProbe,
    params: AuthPostureParams,
    findings: list[Finding],
    credentials: bool = False,
) -> tuple[AuthState, dict[str, Any]]:
    exchanges = probe.exchanges
    judged: dict[str, Any] = {
        "url": probe.url,
        "answers": {e.variant.value: e.status for e in exchanges},
    }
    reported: set[str] = set()  # a rule once per operation, from the first answer showing it
    for exchange in exchanges:
        if exchange.variant is not Variant.VALID:
            for finding in _refusal_findings(probe.key, exchange):
                if finding.rule_id not in reported:
                    reported.add(finding.rule_id)
                    findings.append(finding)
    accepted = next(
        (e for e in exchanges if e.variant is not Variant.VALID and answer(e) is Answer.ACCEPTED),
        None,
    )
    if accepted is None:
        first = exchanges[0]
        if answer(first) is Answer.REFUSED and len(exchanges) >= 2:
            second = exchanges[1]
            # the invalid token was refused too (a 400 for it is a refusal: a malformed
            # token); no answer, a 5xx or another redirect says nothing about it
            if answer(second) is Answer.REFUSED or second.status == 400:
                judged["state"] = AuthState.ENFORCED.value
                return AuthState.ENFORCED, judged
            first = second
        verdict = answer(first)
        reason = SkipReason.NO_ANSWER if verdict is Answer.NO_ANSWER else SkipReason.INCONCLUSIVE
        if first.status == 429:
            reason = SkipReason.RATE_LIMITED
        judged.update(state=AuthState.SKIPPED.value, reason=reason.value, detail=_said(first))
        return AuthState.SKIPPED, judged
    valid = next((e for e in exchanges if e.variant is Variant.VALID), None)
    comparison = (
        "the run's request budget (max_requests) left no request to compare with the "
        "configured credentials"
        if credentials
        else "no credentials are configured (auth_header_file) to compare with"
    )
    if valid is not None:
        if answer(valid) is Answer.ACCEPTED:
            alike = similarity(accepted.body, valid.body)
            comparison = (
                f"{_said(valid)}, {alike:.0%} alike"
                if accepted.body or valid.body
                else f"{_said(valid)}, both empty"
            )
            if alike < params.similarity:
                judged.update(
                    state=AuthState.ENFORCED.value, public_stub=True, comparison=comparison
                )
                return AuthState.ENFORCED, judged
        else:
            comparison = f"{_said(valid)}, so the answers cannot be compared"
    if catch_all_page(accepted, probe.documented_media_types):
        judged.update(
            state=AuthState.SKIPPED.value,
            reason=SkipReason.CATCH_ALL_PAGE.value,
            detail=f"{_said(accepted)} as {accepted.header('content-type')}",
        )
        return AuthState.SKIPPED, judged
    judged.update(state=AuthState.NOT_ENFORCED.value, comparison=comparison)
    findings.append(
        Finding(
            "AUTH-NOT-ENFORCED",
            Severity.CRITICAL,
            "A secured operation answers without valid credentials",
            probe.key,
            f"the spec requires authentication for {probe.key}, but {_said(accepted)} "
            f"(not an error envelope); {comparison}",
            "Enforce authentication for this route in the API or its gateway (check the "
            "route's security filter after the last change), or mark it public in the spec "
            "(security: [] or an empty {} requirement) if it is meant to be.",
        )
    )
    return AuthState.NOT_ENFORCED, judged


def _said(exchange: Exchange) -> str:
    text = f"{exchange.method} {_VARIANT_TEXT[exchange.variant]} "
    if exchange.status is None:
        return text + f"got no answer ({exchange.error})"
    location = exchange.header("location")
    where = f" to {_shown(location)}" if location and 300 <= exchange.status < 400 else ""
    return text + f"answered {exchange.status}{where} with {exchange.body_size} bytes"


def _shown(location: str) -> str:
    """A Location as evidence: no userinfo, query or fragment (a server may put tokens,
    even the request's own credentials, there)."""
    parts = urlsplit(location)
    query = "?" + MASK if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")) + query


def _refusal_findings(key: str, exchange: Exchange) -> list[Finding]:
    found: list[Finding] = []
    if exchange.status == 401 and exchange.header("www-authenticate") is None:
        found.append(
            Finding(
                "AUTH-CHALLENGE-MISSING",
                Severity.LOW,
                "A 401 answer carries no WWW-Authenticate challenge",
                key,
                f"{_said(exchange)} and no WWW-Authenticate header (RFC 9110 §11.6.1: a 401 "
                "MUST send one)",
                "Send the scheme's challenge with every 401, e.g. "
                '`WWW-Authenticate: Bearer realm="api", error="invalid_token"` (RFC 6750 §3).',
            )
        )
    leaked = leak(exchange)
    if leaked is not None:
        found.append(
            Finding(
                "AUTH-ERROR-LEAKS",
                Severity.MEDIUM,
                "An authentication error says more than the scheme needs",
                key,
                f"{_said(exchange)}; its body shows {leaked}",
                "Answer auth failures with the scheme's error code only (RFC 6750 §3.1: "
                "invalid_request, invalid_token, insufficient_scope); log the details instead.",
            )
        )
    return found


def _credentials_rejected(raw: AuthPostureRaw) -> list[Finding]:
    rejected = [
        (probe.key, exchange)
        for probe in raw.probes
        for exchange in probe.exchanges
        # a 403 or 404 is the identity's permissions (least privilege), not its credentials
        if exchange.variant is Variant.VALID
        and answer(exchange) is Answer.REFUSED
        and exchange.status not in (403, 404)
    ]
    if not rejected:
        return []
    shown = "; ".join(f"{key}: {_said(exchange)}" for key, exchange in rejected[:5])
    return [
        Finding(
            "AUTH-CREDENTIALS-REJECTED",
            Severity.MEDIUM,
            "The monitor's own credentials are refused",
            "auth_header_file",
            f"{len(rejected)} operation(s) refused the configured Authorization value ({shown}): "
            "open operations cannot be told from public stubs while it is refused",
            "Renew the monitoring identity's token in auth_header_file (read-only, "
            "short-lived, least privilege).",
        )
    ]


def _unverified(skipped: list[SkippedOperation]) -> list[Finding]:
    by_reason: dict[SkipReason, list[SkippedOperation]] = {}
    for skip in skipped:
        if skip.reason is not SkipReason.UNSAFE_METHOD:
            by_reason.setdefault(skip.reason, []).append(skip)
    findings = []
    for reason, skips in sorted(by_reason.items()):
        shown = "; ".join(f"{s.key}" + (f" ({s.detail})" if s.detail else "") for s in skips[:10])
        more = f"; and {len(skips) - 10} more" if len(skips) > 10 else ""
        findings.append(
            Finding(
                "AUTH-OPERATIONS-UNVERIFIED",
                Severity.LOW,
                "Secured operations whose authentication could not be verified",
                reason.value,
                f"{len(skips)} secured GET/HEAD operation(s) not judged: {_UNVERIFIED[reason]}: "
                f"{shown}{more}",
                "Add examples or defaults for required parameters in the spec, or raise "
                "max_requests; see the run's snapshot for each operation.",
            )
        )
    return findings


def _rate_limit_findings(raw: AuthPostureRaw) -> list[Finding]:
    findings: list[Finding] = []
    exchanges = [e for probe in raw.probes for e in probe.exchanges if e.status is not None]
    if exchanges and not any(rate_limit_headers(e) for e in exchanges):
        host = urlsplit(raw.probes[0].url).netloc
        findings.append(
            Finding(
                "RATELIMIT-HEADERS-ABSENT",
                Severity.INFO,
                "The API advertises no rate limits",
                host,
                f"none of {len(exchanges)} answers carried RateLimit, RateLimit-Policy or "
                "X-RateLimit-* headers (headers absent does not prove there is no throttling)",
                "Advertise limits (RateLimit/RateLimit-Policy, draft-ietf-httpapi-ratelimit-"
                "headers) and answer 429 with Retry-After when they are exceeded.",
            )
        )
    no_retry = [e for e in exchanges if e.status == 429 and e.header("retry-after") is None]
    burst = raw.burst
    if no_retry or (burst is not None and burst.throttled_after and not burst.retry_after):
        findings.append(
            Finding(
                "RATELIMIT-429-WITHOUT-RETRY-AFTER",
                Severity.INFO,
                "A 429 answer says nothing about when to retry",
                "429",
                "a 429 came without Retry-After (RFC 6585 §4)",
                "Send Retry-After with every 429.",
            )
        )
    if burst is not None and burst.error is not None:
        findings.append(
            Finding(
                "RATELIMIT-BURST-INCOMPLETE",
                Severity.INFO,
                "The rate-limit burst stopped before it was done",
                urlsplit(burst.url).path,
                f"the burst to {burst.url} at {burst.at.isoformat()} stopped after "
                f"{burst.sent} request(s) without a 429: {burst.error}; rate limiting was not "
                "tested (the burst runs at most once a day; this is its latest result)",
                "See why the API stopped answering (it may be the throttling, answered by "
                "dropping connections instead of 429), or raise network_timeout.",
            )
        )
    if burst is not None and burst.throttled_after is None and burst.error is None:
        findings.append(
            Finding(
                "RATELIMIT-NOT-OBSERVED",
                Severity.MEDIUM,
                "A burst of requests was never throttled",
                urlsplit(burst.url).path,
                f"{burst.sent} GETs to {burst.url} in a row at {burst.at.isoformat()} got no "
                "429 (the burst runs at most once a day; this is its latest result)",
                "Rate-limit the API per client (OWASP API4:2023) and answer 429 with Retry-After.",
            )
        )
    return findings


def _jwks(
    fetched: FetchedDocument, raw: AuthPostureRaw, params: AuthPostureParams, now: datetime
) -> KeyAudit:
    audit = KeyAudit()
    if urlsplit(fetched.url).scheme.lower() != "https":
        audit.findings.append(
            Finding(
                "JWKS-NOT-HTTPS",
                Severity.HIGH,
                "The JWK Set is fetched over plain HTTP",
                fetched.url,
                f"{fetched.url} is not https: anyone on the path can swap the keys verifiers trust",
                "Serve the JWK Set over HTTPS only and point jwks_uri at the https URL.",
            )
        )
    if fetched.error is not None:
        audit.findings.append(
            Finding(
                "JWKS-UNREACHABLE",
                Severity.HIGH,
                "The JWK Set cannot be fetched",
                fetched.url,
                fetched.error,
                "Serve the JWK Set at jwks_uri; verifiers that cannot fetch it reject every "
                "token (or keep trusting stale keys).",
            )
        )
        return audit
    found = audit_key_set(fetched.url, fetched.document, params, now, dict(raw.key_first_seen))
    found.findings[:0] = audit.findings
    return found
