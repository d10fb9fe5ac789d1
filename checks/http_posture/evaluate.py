"""Pure judgement of an http_posture run: findings, both scores, observations, a snapshot."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from checks.http_posture.answers import judged, label
from checks.http_posture.api_profile import PROFILE_VERSION, ApiScore, api_score
from checks.http_posture.cookie_rules import cookie_findings, cookies_seen
from checks.http_posture.cors_rules import cors_findings
from checks.http_posture.csp import InvalidCsp, parse_csp
from checks.http_posture.facts import Exchange, HttpPostureRaw, Probe
from checks.http_posture.observatory import NotGraded, ObservatoryGrade, observatory_grade
from checks.http_posture.params import HttpPostureParams
from checks.http_posture.plain_http import PlainHttp, judge_plain_http
from checks.http_posture.rules import (
    header_findings,
    hsts_findings,
    method_findings,
    redirect_findings,
    transport_findings,
)
from checks.http_posture.security_txt import security_txt, security_txt_findings
from monitor.model import CheckOutput, Finding, Observation, Severity
from monitor.redact import mask_secrets

# headers whose presence on the target URL's answer is exported and kept in the snapshot
WATCHED_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "cache-control",
    "referrer-policy",
    "cross-origin-resource-policy",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
    "permissions-policy",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "server",
    "x-powered-by",
)


def evaluate(raw: HttpPostureRaw, params: HttpPostureParams, now: datetime) -> CheckOutput:
    found: list[Finding] = [
        *transport_findings(raw),
        *hsts_findings(raw),
        *header_findings(raw, params.session_cookie_names),
        *cors_findings(raw),
        *cookie_findings(raw, params.session_cookie_names, now),
        *method_findings(raw),
        *redirect_findings(raw),
        *security_txt_findings(raw, now, params.security_txt_warning),
    ]
    for note in raw.notes:
        found.append(
            Finding(
                "HTTP-INVENTORY-UNAVAILABLE",
                Severity.INFO,
                "Documented operations could not be sampled",
                "inventory",
                note,
                "Run api_inventory on this target (in the daemon) or set inventory_sample: 0.",
            )
        )
    if raw.skipped:
        found.append(
            Finding(
                "HTTP-PROBE-BUDGET-EXHAUSTED",
                Severity.INFO,
                "The request budget left probes out",
                "budget",
                f"{raw.requests_sent} of {raw.budget} requests sent; left out: "
                + ", ".join(raw.skipped),
                "Raise request_budget or configure fewer paths; what was left out is not judged.",
            )
        )
    failed = failed_probes(raw)
    if failed:
        found.append(
            Finding(
                "HTTP-PROBE-FAILED",
                Severity.INFO,
                f"{len(failed)} probes got no answer to judge: the run is partial",
                "probes",
                "; ".join(failed),
                "What these probes judge keeps its last state; if it persists, allow the "
                "check's requests (rate limits, WAF) or raise request_timeout.",
            )
        )
    observatory = observatory_grade(raw, params.observatory_algorithm)
    unassessed = _observatory_unassessed(raw)
    if isinstance(observatory, ObservatoryGrade) and unassessed:
        observatory = NotGraded(observatory.algorithm, unassessed)
    api = _api_score(raw, found)
    found.extend(_grade_findings(observatory, api, len(failed), len(raw.skipped)))
    found = [
        replace(f, subject=mask_secrets(f.subject), evidence=mask_secrets(f.evidence))
        for f in found
    ]
    observations = [Observation("http_posture_requests", float(raw.requests_sent))]
    if not api.undetermined:  # a score without plain HTTP judged is no verdict to chart
        observations[:0] = [
            Observation("http_posture_score", float(api.score), {"profile": "api"}),
            Observation(
                "http_posture_grade_info",
                1.0,
                {"profile": "api", "grade": api.grade, "version": str(PROFILE_VERSION)},
            ),
        ]
    if isinstance(observatory, ObservatoryGrade):
        observations += [
            Observation("http_posture_score", float(observatory.score), {"profile": "observatory"}),
            Observation(
                "http_posture_grade_info",
                1.0,
                {
                    "profile": "observatory",
                    "grade": observatory.grade,
                    "version": str(observatory.algorithm),
                },
            ),
        ]
    page = _page_headers(raw)
    observations += [
        Observation("http_header_present", 1.0 if header in page else 0.0, {"header": header})
        for header in WATCHED_HEADERS
    ]
    return CheckOutput(
        observations=tuple(observations),
        findings=tuple(sorted(found, key=lambda f: (-f.severity.rank, f.rule_id, f.subject))),
        # a run missing answers it will likely get next time (429, timeouts) keeps no
        # snapshot: config_drift compares the last complete one instead of reporting every
        # header of an unanswered probe as removed
        snapshot=None if _transient_gaps(raw) else snapshot(raw, observatory, api),
        undetermined=tuple(_undetermined(raw)),
    )


def _api_score(raw: HttpPostureRaw, found: list[Finding]) -> ApiScore:
    """The API-profile score; plain HTTP that this run could not judge is scored as the
    newest run that could judge it found it, or, when none could, is neither rewarded nor
    penalised and the score is marked undetermined."""
    plain = judge_plain_http(raw)
    previous = raw.plain_http_last_judged if plain.undetermined else None
    if previous is not None:
        refused, carried = previous.refused, previous.rules
        note: str | None = f"{plain.why}; scored as last judged: {previous.state}"
    else:
        refused, carried = plain.refused, ()
        note = f"{plain.why}; neither rewarded nor penalised" if plain.undetermined else None
    return api_score(
        found,
        plain_http_refused=refused,
        csp_none=_csp_none_everywhere(raw),
        security_txt_ok=_security_txt_ok(raw, found),
        carried=carried,
        plain_http_note=mask_secrets(note) if note else None,
        undetermined=plain.undetermined and previous is None,
    )


def _grade_findings(
    observatory: ObservatoryGrade | NotGraded, api: ApiScore, failed: int, skipped: int
) -> list[Finding]:
    gaps = [
        *([f"{failed} probes not answered (HTTP-PROBE-FAILED)"] if failed else []),
        *([f"{skipped} left out by the budget (HTTP-PROBE-BUDGET-EXHAUSTED)"] if skipped else []),
    ]
    partial = f" (partial: {'; '.join(gaps)})" if gaps else ""
    modifiers = "modifiers: " + (", ".join(f"{n} {m:+d}" for n, m in api.modifiers) or "none")
    title = f"HTTP posture (API profile) {api.grade}, {api.score}{partial}"
    if api.undetermined:
        title = f"HTTP posture (API profile) undetermined: plain HTTP not judged{partial}"
        modifiers = f"without plain HTTP: {api.grade}, {api.score}; {modifiers}"
    findings = [
        Finding(
            "HTTP-POSTURE-GRADE",
            Severity.INFO,
            title,
            "api",
            modifiers + (f" ({api.plain_http_note})" if api.plain_http_note else ""),
            "Each modifier names the rule behind it; fix the largest penalties first."
            + (
                " Plain HTTP got no answer that decides (a timeout or a dropped connection): "
                "refuse the connection (close the port) or answer 403/421; if a firewall drops "
                "the port on purpose, set plain_http_dropped: true."
                if api.plain_http_note
                else ""
            ),
        )
    ]
    if isinstance(observatory, ObservatoryGrade):
        changed = [f"{t.name}: {t.result} {t.modifier:+d}" for t in observatory.tests if t.modifier]
        findings.append(
            Finding(
                "HTTP-POSTURE-GRADE",
                Severity.INFO,
                f"Observatory-compatible grade {observatory.grade}, {observatory.score} "
                f"(algorithm {observatory.algorithm})",
                "observatory",
                "; ".join(changed) or "every test scored 0",
                "The Observatory judges websites: see the API-profile grade for what an API needs.",
            )
        )
    else:
        findings.append(
            Finding(
                "HTTP-POSTURE-GRADE",
                Severity.INFO,
                f"Not graded by the Observatory's rules (algorithm {observatory.algorithm})",
                "observatory",
                observatory.reason,
                "The Observatory grades only pages answering 2xx, 3xx, 401 or 403.",
            )
        )
    return findings


def failed_probes(raw: HttpPostureRaw) -> list[str]:
    """'probe METHOD url: why' of each probe that got no answer to judge, except those the
    budget left out (HTTP-PROBE-BUDGET-EXHAUSTED) and plain HTTP refused by the target; plain
    HTTP redirected into a timeout (answered, yet undetermined) included."""
    plain = judge_plain_http(raw)
    return [
        f"{e.probe} {e.method} {e.url}: {e.error}"
        for e in raw.exchanges
        if e.error is not None
        and not e.cut_by_budget
        and e.probe is not Probe.HTTPS  # judged: HTTP-HTTPS-UNAVAILABLE (an https target
        # that does not answer is unreachable)
        and (_undetermined_plain(plain, e) if e.probe is Probe.HTTP else e.final is None)
    ]


def _transient_gaps(raw: HttpPostureRaw) -> bool:
    plain = judge_plain_http(raw)
    return any(
        _undetermined_plain(plain, e) if e.probe is Probe.HTTP else e.not_assessed
        for e in raw.exchanges
        if e.probe is not Probe.HTTPS and (e.error is None or not e.error.startswith("left out"))
    )


def _undetermined_plain(plain: PlainHttp, exchange: Exchange) -> bool:
    """The plain-HTTP probe got no answer that decides (a timeout, a dropped connection, a
    429, the deadline, the budget ...): see checks/http_posture/plain_http.py."""
    return plain.undetermined and plain.exchange is exchange


def _observatory_unassessed(raw: HttpPostureRaw) -> str | None:
    """Why the Observatory's grade cannot be trusted this run: a test it scores from the
    preflight or the plain-HTTP page would pass only because that request got no answer."""
    preflight = raw.exchange(Probe.PREFLIGHT)
    plain = judge_plain_http(raw)
    if preflight is not None and preflight.not_assessed:
        return f"the CORS preflight got no answer ({preflight.error}): not graded this run"
    if plain.undetermined:
        return f"{mask_secrets(plain.why)}: not graded this run"
    return None


def _csp_none_everywhere(raw: HttpPostureRaw) -> bool:
    answers = judged(raw)
    for _label, _exchange, answer in answers:
        try:
            csp = parse_csp(answer.joined("content-security-policy") or "")
        except InvalidCsp:
            return False
        if csp.get("default-src") != {"'none'"}:
            return False
    return bool(answers)


def _security_txt_ok(raw: HttpPostureRaw, found: list[Finding]) -> bool:
    return security_txt(raw) is not None and not any(f.rule_id.startswith("SECTXT-") for f in found)


def _page_headers(raw: HttpPostureRaw) -> dict[str, str]:
    https = raw.exchange(Probe.HTTPS)
    page = https if https is not None and https.final is not None else raw.exchange(Probe.HTTP)
    if page is None or page.final is None:
        return {}
    return {h: v for h in WATCHED_HEADERS if (v := page.final.joined(h)) is not None}


def _undetermined(raw: HttpPostureRaw) -> list[str]:
    """Subject prefixes this run could not judge (probes the budget left out or that got no
    answer): their findings keep their state instead of resolving."""
    subjects: list[str] = []
    plain = judge_plain_http(raw)
    for exchange in raw.exchanges:
        if exchange.probe is Probe.HTTP:
            if _undetermined_plain(plain, exchange):
                subjects.append(mask_secrets(raw.http_url))  # HTTP-PLAINTEXT-*
        elif exchange.final is None or exchange.cut_by_budget:
            subjects.extend(_SUBJECTS_OF.get(exchange.probe, (label(exchange) + " (",)))
    return sorted(set(subjects))


# the finding subjects each probe's answer decides (header findings: "<label> (<status>)")
_SUBJECTS_OF: dict[Probe, tuple[str, ...]] = {
    Probe.CORS_ARBITRARY: ("an unrelated origin", "*"),
    Probe.CORS_SUFFIX: ("the target's host with a suffix", "*"),
    Probe.CORS_PREFIX: ("the target's host with a prefix", "*"),
    Probe.CORS_NULL: ("null", "*"),
    Probe.PREFLIGHT: ("an unrelated origin (preflight)", "methods", "headers", "*", "TRACE"),
    Probe.OPTIONS: ("TRACE", "TRACK"),
    Probe.TRACE: ("TRACE",),
    Probe.SECURITY_TXT: ("/.well-known/security.txt",),
}


def snapshot(
    raw: HttpPostureRaw, observatory: ObservatoryGrade | NotGraded, api: ApiScore
) -> dict[str, Any]:
    """Observed state for evidence and for config_drift (`snapshot: http_posture`): a
    security header that disappears is a removed key there, so DRIFT-REMOVED."""
    headers: dict[str, dict[str, str]] = {}
    for name, _exchange, answer in judged(raw):
        present = {h: v for h in WATCHED_HEADERS if (v := answer.joined(h)) is not None}
        headers[name] = present
    plain = judge_plain_http(raw)
    plain_state = mask_secrets(plain.label)
    preflight = raw.exchange(Probe.PREFLIGHT)
    cors = {}
    if preflight is not None and preflight.final is not None:
        cors = {
            h: v
            for h in (
                "access-control-allow-origin",
                "access-control-allow-credentials",
                "access-control-allow-methods",
                "access-control-allow-headers",
            )
            if (v := preflight.final.joined(h)) is not None
        }
    return {
        "target_url": mask_secrets(raw.target_url),
        "http_url": mask_secrets(raw.http_url),
        "observatory": observatory.to_json()
        if isinstance(observatory, ObservatoryGrade)
        else {"algorithm_version": observatory.algorithm, "not_graded": observatory.reason},
        "api_profile": api.to_json(),
        "plain_http": plain_state,
        # a refusal read from plain_http_dropped, not seen: carried only while it is set
        **({"plain_http_dropped_as_configured": True} if plain.as_configured else {}),
        "headers": headers,
        "cors_preflight": cors,
        "cookies": {
            cookie.name: sorted(n for n, _ in cookie.attributes) for _, cookie in cookies_seen(raw)
        },
        "requests_sent": raw.requests_sent,
        "skipped": [mask_secrets(s) for s in raw.skipped],
        "failed_probes": [mask_secrets(f) for f in failed_probes(raw)],
    }
