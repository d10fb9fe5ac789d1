"""The API-profile score: the Observatory's arithmetic over API-appropriate expectations.

It does not penalise a JSON API for what only browsers' HTML needs (SRI, Referrer-Policy,
COOP/COEP, a CSP on JSON), rewards refusing plain HTTP, and judges every response probed
(error pages too). One modifier per rule id (the worst finding of each counts once);
bonuses count only when the penalties alone leave at least 90, as in the Observatory.

When this run could not judge plain HTTP (a timeout ...), its bonus or penalty is what the
newest run that could judge it found (`carried`), so a timeout never changes the score; when
no run could, the score is `undetermined`: computed without either, said, and not exported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from checks.http_posture.observatory import EXTRA_CREDIT_MINIMUM, grade_for
from monitor.model import Finding

PROFILE_VERSION = 1
PENALTIES: Mapping[str, int] = {
    "HTTP-PLAINTEXT-SERVED": -40,
    "HTTP-PLAINTEXT-REDIRECTS": -5,
    "HTTP-HTTPS-UNAVAILABLE": -40,
    "HTTP-HSTS-MISSING": -20,
    "HTTP-HSTS-INVALID": -20,
    "HTTP-HSTS-SHORT": -10,
    "HTTP-NOSNIFF-MISSING": -5,
    "HTTP-CONTENT-TYPE-MISSING": -5,
    "HTTP-CONTENT-TYPE-INCORRECT": -5,
    "HTTP-FRAMING-UNPROTECTED": -5,
    "HTTP-CSP-PERMISSIVE": -10,
    "HTTP-CACHE-NOT-NO-STORE": -10,
    "HTTP-SOFTWARE-DISCLOSED": -5,
    "HTTP-ERROR-5XX": -5,
    "HTTP-ERROR-STACK-TRACE": -20,
    "HTTP-ERROR-DEBUG-PAGE": -20,
    "HTTP-ERROR-SQL": -20,
    "HTTP-ERROR-INTERNAL-PATH": -10,
    "HTTP-TRACE-ADVERTISED": -5,
    "HTTP-TRACE-ENABLED": -10,
    "HTTP-REDIRECT-NOT-FOLLOWED": -5,
    "HTTP-HSTS-INCONSISTENT": -5,
    "CORS-ORIGIN-REFLECTED-WITH-CREDENTIALS": -50,
    "CORS-NULL-ORIGIN-ALLOWED": -20,
    "CORS-WILDCARD-WITH-CREDENTIALS": -10,
    "CORS-ORIGIN-REFLECTED": -5,
    "CORS-ALLOW-METHODS-BROAD": -5,
    "CORS-ALLOW-HEADERS-BROAD": -5,
    "COOKIE-OVER-PLAIN-HTTP": -20,
    "COOKIE-NO-SECURE": -20,
    "COOKIE-NO-HTTPONLY": -30,
    "COOKIE-SAMESITE-INVALID": -10,
    "COOKIE-SAMESITE-NONE-INSECURE": -10,
    "COOKIE-PREFIX-VIOLATION": -5,
    "SECTXT-EXPIRED": -5,
}
BONUS_PLAIN_HTTP_REFUSED = 5
BONUS_CSP_NONE = 5
BONUS_SECURITY_TXT = 5


@dataclass(frozen=True, slots=True)
class ApiScore:
    score: int
    grade: str
    modifiers: tuple[tuple[str, int], ...]  # (rule id or bonus name, modifier)
    plain_http_note: str | None = None  # plain HTTP was not judged this run: why, and how scored
    undetermined: bool = False  # ... and no run ever judged it: the score is not a verdict

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {
            "profile_version": PROFILE_VERSION,
            "score": self.score,
            "grade": self.grade,
            "modifiers": dict(self.modifiers),
        }
        if self.plain_http_note:
            document["plain_http_note"] = self.plain_http_note
        if self.undetermined:
            document["undetermined"] = True
        return document


def api_score(
    findings: Iterable[Finding],
    *,
    plain_http_refused: bool,
    csp_none: bool,
    security_txt_ok: bool,
    carried: Iterable[str] = (),
    plain_http_note: str | None = None,
    undetermined: bool = False,
) -> ApiScore:
    """`carried`: penalties of rules this run could not judge, as the newest run that could
    judge them found them (plain HTTP's)."""
    rules = sorted({f.rule_id for f in findings if f.rule_id in PENALTIES} | set(carried))
    modifiers = [(rule, PENALTIES[rule]) for rule in rules]
    bonuses = [
        ("bonus: plain HTTP refused", BONUS_PLAIN_HTTP_REFUSED if plain_http_refused else 0),
        ("bonus: CSP default-src 'none'", BONUS_CSP_NONE if csp_none else 0),
        ("bonus: valid security.txt", BONUS_SECURITY_TXT if security_txt_ok else 0),
    ]
    uncurved = 100 + sum(m for _, m in modifiers)
    with_credit = uncurved + sum(m for _, m in bonuses)
    score = max(with_credit if uncurved >= EXTRA_CREDIT_MINIMUM else uncurved, 0)
    return ApiScore(
        score,
        grade_for(score),
        tuple(modifiers + [b for b in bonuses if b[1]]),
        plain_http_note,
        undetermined,
    )
