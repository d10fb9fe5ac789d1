"""The MDN HTTP Observatory's score and grade, emulated from the published algorithm.

A re-implementation (the scanner is MPL-2.0; only its facts are used: test names, result
ids, modifiers, the grade chart), checked side by side against the npm scanner in
benchmarks/http_posture/. Score: 100 plus one modifier per test; bonuses count only when the
penalties alone leave at least 90; the grade is that of the score floored to a multiple of
5 (capped at 100). Algorithm 4 = npm 1.4.x, 5 = 1.6.x (X-Frame-Options DENY/SAMEORIGIN +5),
6 = adds Cross-Origin-Opener-Policy and -Embedder-Policy.

Known differences (all from requests the scanner makes and this check does not): no
`/robots.txt` fetch (cookies only it sets are not seen), no `<meta http-equiv>` parsing of
HTML pages, no HSTS preload list (loopback and private names are never preloaded), and the
CORS preflight does not follow redirects. One quirk of npm 1.4.8 is kept for algorithm 4:
it never finds the Origin it sent, so "universal access" (-50) is never scored there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from checks.http_posture.collect import ARBITRARY_ORIGIN
from checks.http_posture.cookies import SetCookie, parse_set_cookie
from checks.http_posture.csp import csp_result
from checks.http_posture.facts import Answer, Exchange, HttpPostureRaw, Probe
from checks.http_posture.params import ObservatoryAlgorithm
from checks.network import is_ip_literal

_GRADES = (
    (100, "A+"), (90, "A"), (85, "A-"), (80, "B+"), (70, "B"), (65, "B-"), (60, "C+"),
    (50, "C"), (45, "C-"), (40, "D+"), (30, "D"), (25, "D-"), (0, "F"),
)  # fmt: skip
EXTRA_CREDIT_MINIMUM = 90

_MODIFIERS: Mapping[str, int] = {
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    "csp-not-implemented-but-reporting-enabled": -25,
    "csp-implemented-but-duplicate-directives": 0,
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    "redirection-all-redirects-preloaded": 0,
    "redirection-to-https": 0,
    "redirection-not-needed-no-http": 0,
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-not-to-https": -20,
    "redirection-missing": -20,
    "redirection-invalid-cert": -20,
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    "hsts-preloaded": 5,
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    "hsts-not-implemented-no-https": -20,
    "hsts-invalid-cert": -20,
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 0,  # +5 from algorithm 5 on
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    "corp-header-invalid": -5,
    "corp-implemented-with-cross-origin": 0,
    "corp-implemented-with-same-origin": 10,
    "corp-implemented-with-same-site": 10,
    "corp-not-implemented": 0,
    "coop-implemented-with-same-origin": 10,
    "coop-implemented-with-same-origin-allow-popups": 10,
    "coop-implemented-with-noopener-allow-popups": 10,
    "coop-implemented-with-unsafe-none": 0,
    "coop-not-implemented": 0,
    "coop-header-invalid": -5,
    "coep-implemented-with-require-corp": 10,
    "coep-implemented-with-credentialless": 10,
    "coep-implemented-with-unsafe-none": 0,
    "coep-not-implemented": 0,
    "coep-header-invalid": -5,
}
_PASSING: frozenset[str] = frozenset(
    {
        "csp-implemented-with-no-unsafe",
        "csp-implemented-with-no-unsafe-default-src-none",
        "csp-implemented-with-unsafe-inline-in-style-src-only",
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
        "csp-implemented-but-duplicate-directives",
        "cookies-not-found",
        "cookies-secure-with-httponly-sessions-and-samesite",
        "cookies-secure-with-httponly-sessions",
        "cross-origin-resource-sharing-not-implemented",
        "cross-origin-resource-sharing-implemented-with-public-access",
        "cross-origin-resource-sharing-implemented-with-restricted-access",
        "redirection-to-https",
        "redirection-not-needed-no-http",
        "redirection-all-redirects-preloaded",
        "referrer-policy-private",
        "referrer-policy-not-implemented",
        "hsts-implemented-max-age-at-least-six-months",
        "hsts-preloaded",
        "sri-implemented-and-all-scripts-loaded-securely",
        "sri-implemented-and-external-scripts-loaded-securely",
        "sri-not-implemented-response-not-html",
        "sri-not-implemented-but-no-scripts-loaded",
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
        "x-content-type-options-nosniff",
        "x-frame-options-sameorigin-or-deny",
        "x-frame-options-implemented-via-csp",
        "corp-implemented-with-same-site",
        "corp-implemented-with-same-origin",
        "corp-implemented-with-cross-origin",
        "corp-not-implemented",
        "coop-implemented-with-same-origin",
        "coop-implemented-with-same-origin-allow-popups",
        "coop-implemented-with-noopener-allow-popups",
        "coop-implemented-with-unsafe-none",
        "coop-not-implemented",
        "coep-implemented-with-require-corp",
        "coep-implemented-with-credentialless",
        "coep-implemented-with-unsafe-none",
        "coep-not-implemented",
    }
)
SIX_MONTHS = 15_552_000  # the scanner's threshold (a "white lie" below 15,768,000)
_HTML = frozenset({"text/html", "application/xhtml+xml"})
_REFERRER_GOOD = ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin")
_REFERRER_BAD = ("origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade")
_COOKIE_ORDER = (
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
)  # worst last
_IGNORED_COOKIES = frozenset({"heroku-session-affinity"})
_SCRIPT = re.compile(rb"<script\b([^>]*)>", re.IGNORECASE)
_SRC = re.compile(rb"""\bsrc\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
_INTEGRITY = re.compile(rb"""\bintegrity\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)
_SRI_ORDER = (
    "sri-implemented-and-all-scripts-loaded-securely",
    "sri-implemented-and-external-scripts-loaded-securely",
    "sri-implemented-but-external-scripts-not-loaded-securely",
    "sri-not-implemented-but-external-scripts-loaded-securely",
    "sri-not-implemented-and-external-scripts-not-loaded-securely",
    "sri-not-implemented-response-not-html",
)  # the scanner's "goodness" order: a later one replaces an earlier one


@dataclass(frozen=True, slots=True)
class TestResult:
    name: str
    result: str
    modifier: int
    passed: bool


@dataclass(frozen=True, slots=True)
class ObservatoryGrade:
    algorithm: int
    score: int  # not capped above 100, as the scanner reports it
    grade: str
    tests: tuple[TestResult, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "algorithm_version": self.algorithm,
            "score": self.score,
            "grade": self.grade,
            "tests": {t.name: {"result": t.result, "modifier": t.modifier} for t in self.tests},
        }


@dataclass(frozen=True, slots=True)
class NotGraded:
    """The scanner would not grade: no answer, or a status other than 2xx, 3xx, 401, 403."""

    algorithm: int
    reason: str


def grade_for(score: int) -> str:
    key = min(max(score, 0) - max(score, 0) % 5, 100)
    return next(letter for minimum, letter in _GRADES if key >= minimum)


def observatory_grade(
    raw: HttpPostureRaw, algorithm: ObservatoryAlgorithm
) -> ObservatoryGrade | NotGraded:
    https = raw.exchange(Probe.HTTPS)
    http = raw.exchange(Probe.HTTP)
    auto = https if https is not None and https.final is not None else http
    if auto is None or auto.final is None:
        return NotGraded(int(algorithm), "neither HTTP nor HTTPS answered")
    status = auto.final.status
    if status < 200 or (status >= 400 and status not in (401, 403)):
        return NotGraded(int(algorithm), f"the page answered {status} (graded: 2xx, 3xx, 401, 403)")
    page = auto.final
    secure_page = auto.url.lower().startswith("https:")
    csp_result_id, csp_directives = csp_result(page, secure_page)
    hsts = _hsts(https)
    results = [
        ("content-security-policy", csp_result_id),
        ("cookies", _cookies(auto, page, hsts in _PASSING)),
        ("cross-origin-resource-sharing", _cors(raw.exchange(Probe.PREFLIGHT), algorithm)),
        ("redirection", _redirection(http)),
        ("referrer-policy", _referrer(page)),
        ("strict-transport-security", hsts),
        ("subresource-integrity", _sri(page, secure_page)),
        ("x-content-type-options", _xcto(page)),
        ("x-frame-options", _xfo(page, csp_directives)),
        ("cross-origin-resource-policy", _corp(page)),
    ]
    if algorithm >= ObservatoryAlgorithm.V6:
        results.append(("cross-origin-opener-policy", _token_header(page, "coop")))
        results.append(("cross-origin-embedder-policy", _token_header(page, "coep")))
    tests = tuple(
        TestResult(name, result, _modifier(result, algorithm), result in _PASSING)
        for name, result in results
    )
    with_credit = 100 + sum(t.modifier for t in tests)
    uncurved = 100 + sum(t.modifier for t in tests if t.modifier < 0)
    score = max(with_credit if uncurved >= EXTRA_CREDIT_MINIMUM else uncurved, 0)
    return ObservatoryGrade(int(algorithm), score, grade_for(score), tests)


def _modifier(result: str, algorithm: ObservatoryAlgorithm) -> int:
    if result == "x-frame-options-sameorigin-or-deny" and algorithm >= ObservatoryAlgorithm.V5:
        return 5
    return _MODIFIERS[result]


def _first(answer: Answer, name: str) -> str | None:
    return answer.joined(name)


# -- the other tests ------------------------------------------------------------------------


def _cookies(auto: Exchange, page: Answer, hsts_passes: bool) -> str:
    result: str | None = None

    def worse(candidate: str) -> None:
        nonlocal result
        if result is None or _COOKIE_ORDER.index(candidate) > _COOKIE_ORDER.index(result):
            result = candidate

    for raw_cookie in page.values("set-cookie"):
        parsed = parse_set_cookie(raw_cookie)
        if parsed is not None and parsed.same_site_invalid:
            worse("cookies-samesite-flag-invalid")
    jar: dict[str, SetCookie] = {}
    for hop in auto.hops:
        for raw_cookie in hop.values("set-cookie"):
            cookie = parse_set_cookie(raw_cookie)
            if cookie is None or cookie.name in _IGNORED_COOKIES:
                continue
            if cookie.prefix_violation() is not None:
                continue  # a jar drops these silently
            jar[cookie.name] = cookie
    if not jar:
        return "cookies-not-found"
    missing_same_site = False
    for cookie in jar.values():
        name = cookie.name.lower()
        session = "login" in name or "sess" in name
        if not cookie.secure and cookie.same_site == "none":
            worse("cookies-samesite-flag-invalid")
        if not cookie.secure:
            worse(
                "cookies-without-secure-flag-but-protected-by-hsts"
                if hsts_passes
                else "cookies-without-secure-flag"
            )
        if "csrf" in name and cookie.same_site is None:
            worse("cookies-anticsrf-without-samesite-flag")
        if session and not cookie.secure:
            worse(
                "cookies-session-without-secure-flag-but-protected-by-hsts"
                if hsts_passes
                else "cookies-session-without-secure-flag"
            )
        if session and not cookie.http_only:
            worse("cookies-session-without-httponly-flag")
        missing_same_site = missing_same_site or cookie.same_site is None
    if result is not None:
        return result
    if missing_same_site:
        return "cookies-secure-with-httponly-sessions"
    return "cookies-secure-with-httponly-sessions-and-samesite"


def _cors(preflight: Exchange | None, algorithm: ObservatoryAlgorithm) -> str:
    answer = preflight.final if preflight is not None else None
    allowed = _first(answer, "access-control-allow-origin") if answer else None
    if answer is None or not allowed:
        return "cross-origin-resource-sharing-not-implemented"
    if allowed[:256].strip().lower() == "*":
        return "cross-origin-resource-sharing-implemented-with-public-access"
    credentials = (_first(answer, "access-control-allow-credentials") or "").strip().lower()
    # npm 1.4.8 looks for the Origin it sent on the response object, where it is not, so
    # algorithm 4 never reports universal access (seen side by side in the benchmark)
    reflected = allowed == ARBITRARY_ORIGIN and algorithm >= ObservatoryAlgorithm.V5
    if reflected and credentials == "true":
        return "cross-origin-resource-sharing-implemented-with-universal-access"
    return "cross-origin-resource-sharing-implemented-with-restricted-access"


def _redirection(http: Exchange | None) -> str:
    if http is None or http.final is None or http.error is not None:
        return "redirection-not-needed-no-http"
    if http.certificate_error:
        return "redirection-invalid-cert"
    route = [hop.url for hop in http.hops]
    if len(route) == 1:
        return "redirection-missing"
    if not route[-1].lower().startswith("https:"):
        return "redirection-not-to-https"
    if route[1].lower().startswith("http:"):
        return "redirection-not-to-https-on-initial-redirection"
    first, second = _host(route[0]), _host(route[1])
    if route[0].lower().startswith("http:") and first != second:
        return "redirection-off-host-from-http"
    return "redirection-to-https"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _referrer(page: Answer) -> str:
    header = _first(page, "referrer-policy")
    if header is None:
        return "referrer-policy-not-implemented"
    valid = [
        token.strip().lower()
        for token in header.split(",")
        if token.strip().lower() in _REFERRER_GOOD + _REFERRER_BAD
    ]
    policy = valid[-1] if valid else ""
    if policy in _REFERRER_GOOD:
        return "referrer-policy-private"
    if policy in _REFERRER_BAD:
        return "referrer-policy-unsafe"
    return "referrer-policy-header-invalid"


def _hsts(https: Exchange | None) -> str:
    if https is None or https.final is None:
        return "hsts-not-implemented-no-https"
    if https.certificate_error:
        return "hsts-invalid-cert"
    header = _first(https.final, "strict-transport-security")
    if header is None:
        return "hsts-not-implemented"
    value = header[:1024]
    if "," in value:
        return "hsts-header-invalid"
    max_age: float | None = None
    for parameter in (p.strip().lower() for p in value.split(";")):
        if parameter.startswith("max-age="):
            digits = re.match(r"\s*([+-]?\d+)", parameter[8:128])
            # the scanner's parseInt gives NaN for "max-age=abc" or "max-age=", and NaN is
            # not < six months: it passes (seen side by side with npm 1.4.8)
            max_age = int(digits.group(1)) if digits else math.nan
    if max_age is None:
        return "hsts-header-invalid"
    if max_age < SIX_MONTHS:
        return "hsts-implemented-max-age-less-than-six-months"
    return "hsts-implemented-max-age-at-least-six-months"


def _sri(page: Answer, secure_page: bool) -> str:
    """The scanner's per-script walk: a script is "foreign" unless relative or on the page's
    registrable domain (protocol-relative is always foreign); a foreign script is judged by
    its own scheme and integrity, the worst result wins. The registrable domain is read as
    the last two labels (the scanner uses the public suffix list; an IP has none)."""
    if page.media_type not in _HTML:
        return "sri-not-implemented-response-not-html"
    tags = _SCRIPT.findall(page.body)
    if not tags:
        return "sri-not-implemented-but-no-scripts-loaded"
    result: str | None = None
    foreign_seen = False
    page_domain = _registrable(urlsplit(page.url).hostname)
    for tag in tags:
        match = _SRC.search(tag)
        if match is None:
            continue  # an inline script
        source = match.group(1).decode("latin-1")
        integrity = bool((found := _INTEGRITY.search(tag)) and found.group(1))
        relative_protocol = re.match(r"//[^/]", source) is not None
        relative_origin = not relative_protocol and re.match(r"https?://", source) is None
        same_domain = (
            relative_protocol
            or relative_origin
            or (_registrable(urlsplit(source).hostname) == page_domain)
        )
        secure_origin = relative_origin or (same_domain and not relative_protocol)
        scheme = None if relative_protocol or relative_origin else urlsplit(source).scheme
        secure_scheme = scheme == "https" or (relative_origin and secure_page)
        if secure_origin:
            if integrity and secure_scheme and result is None:
                result = "sri-implemented-and-all-scripts-loaded-securely"
            continue
        foreign_seen = True
        if integrity and not secure_scheme:
            candidate = "sri-implemented-but-external-scripts-not-loaded-securely"
        elif not integrity and secure_scheme:
            candidate = "sri-not-implemented-but-external-scripts-loaded-securely"
        elif not integrity:
            candidate = "sri-not-implemented-and-external-scripts-not-loaded-securely"
        else:
            continue
        if result is None or _SRI_ORDER.index(candidate) > _SRI_ORDER.index(result):
            result = candidate
    if result is not None:
        return result
    if foreign_seen:
        return "sri-implemented-and-external-scripts-loaded-securely"
    return "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"


def _registrable(host: str | None) -> str | None:
    if not host or is_ip_literal(host):
        return None
    return ".".join(host.lower().rstrip(".").split(".")[-2:])


def _xcto(page: Answer) -> str:
    header = _first(page, "x-content-type-options")
    if header is None:
        return "x-content-type-options-not-implemented"
    if header[:256].strip().lower() == "nosniff":
        return "x-content-type-options-nosniff"
    return "x-content-type-options-header-invalid"


def _xfo(page: Answer, csp: dict[str, set[str]] | None) -> str:
    if csp is not None and "frame-ancestors" in csp:
        return "x-frame-options-implemented-via-csp"
    header = _first(page, "x-frame-options")
    if header is None:
        return "x-frame-options-not-implemented"
    value = header[:1024].strip().lower()
    if value in ("deny", "sameorigin"):
        return "x-frame-options-sameorigin-or-deny"
    if value.startswith("allow-from"):
        return "x-frame-options-allow-from-origin"
    return "x-frame-options-header-invalid"


def _corp(page: Answer) -> str:
    header = _first(page, "cross-origin-resource-policy")
    if header is None:
        return "corp-not-implemented"
    value = header[:256].strip().lower()
    if value in ("same-site", "same-origin", "cross-origin"):
        return f"corp-implemented-with-{value}"
    return "corp-header-invalid"


def _token_header(page: Answer, test: str) -> str:
    name = "cross-origin-opener-policy" if test == "coop" else "cross-origin-embedder-policy"
    good = (
        ("same-origin", "same-origin-allow-popups", "noopener-allow-popups")
        if test == "coop"
        else ("require-corp", "credentialless")
    )
    values = page.values(name)
    if not values:
        return f"{test}-not-implemented"
    if len(values) > 1:
        return f"{test}-header-invalid"
    policy = values[0].split(";")[0].strip()
    if policy in good or policy == "unsafe-none":
        return f"{test}-implemented-with-{policy}"
    return f"{test}-header-invalid"
