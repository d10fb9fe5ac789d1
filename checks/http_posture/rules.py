"""API-profile rules over the responses: transport, headers, errors and methods (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from checks.http_posture.answers import judged, label
from checks.http_posture.collect import TRACE_MARKER
from checks.http_posture.cookies import parse_set_cookie, session_like
from checks.http_posture.csp import InvalidCsp, parse_csp
from checks.http_posture.facts import Answer, HttpPostureRaw, Probe
from checks.http_posture.observatory import SIX_MONTHS
from checks.http_posture.plain_http import REFUSING_STATUSES, PlainHttpState, judge_plain_http
from monitor.model import Finding, Severity

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DISCLOSING = (
    "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator", "x-runtime",
    "x-php-version", "x-backend-server", "x-debug-token", "x-sourcemap", "sourcemap",
)  # fmt: skip
_TOKENS = frozenset({"x-debug-token"})  # Symfony's profiler token: a key to the request dump
_VERSION = re.compile(r"\d+\.\d+")
_TEXTUAL = re.compile(r"^(text/|application/(json|xml|problem\+json|problem\+xml|.*\+json))")
SNIPPET = 120

# (rule id, pattern): the first that matches a body is reported, with the snippet around it
_STACK = "HTTP-ERROR-STACK-TRACE"
ERROR_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (_STACK, re.compile(r"Traceback \(most recent call last\)")),
    (_STACK, re.compile(r"\n\s*at [\w$.<>]+\([\w$]+\.java:\d+\)")),
    (_STACK, re.compile(r"\bat (?:Object\.<anonymous>|[\w.]+) \([^)]+\.js:\d+:\d+\)")),
    (_STACK, re.compile(r"\bat System\.[\w.]+\(")),
    (_STACK, re.compile(r"\.rb:\d+:in `")),
    (_STACK, re.compile(r"(?:Fatal error|Warning|Parse error)</b>:.* on line <b>\d+")),
    (
        "HTTP-ERROR-DEBUG-PAGE",
        re.compile(
            r"Werkzeug Debugger|seeing this error because you have <code>DEBUG = True"
            r"|Whitelabel Error Page|Server Error in '/' Application"
            r"|<title>Action Controller: Exception caught"
        ),
    ),
    (
        "HTTP-ERROR-SQL",
        re.compile(
            r"You have an error in your SQL syntax|ORA-\d{5}|SQLSTATE\[|PG::SyntaxError"
            r"|psycopg2?\.errors\.|sqlite3\.OperationalError"
            r"|Unclosed quotation mark after the character string",
            re.IGNORECASE,
        ),
    ),
    (
        "HTTP-ERROR-INTERNAL-PATH",
        # a file under a server directory, not inside a URL or a route ("/home/feed"): a
        # JSON API's links must not read as a disclosed path
        re.compile(
            r"(?<![\w.:/-])(?:(?:/home/|/var/www/|/usr/lib/python3|/usr/local/lib/|/opt/|/srv/)"
            r"[\w./-]*|[A-Z]:\\(?:inetpub|Users|Program Files)[\w .\\-]*)"
            r"\.(?:py|pyc|rb|php|js|mjs|ts|java|jsp|class|jar|cs|aspx?|go|pl|erb|ex|exs|cfm)\b"
        ),
    ),
)
_ERROR_TITLES = {
    "HTTP-ERROR-STACK-TRACE": ("A response shows a stack trace", Severity.MEDIUM),
    "HTTP-ERROR-DEBUG-PAGE": ("A response is a framework debug page", Severity.MEDIUM),
    "HTTP-ERROR-SQL": ("A response shows a database error message", Severity.MEDIUM),
    "HTTP-ERROR-INTERNAL-PATH": ("A response discloses a server file path", Severity.LOW),
}


def transport_findings(raw: HttpPostureRaw) -> Iterator[Finding]:
    judged_plain = judge_plain_http(raw)
    plain = judged_plain.exchange
    if judged_plain.state is not PlainHttpState.ANSWERED or plain is None or plain.final is None:
        return  # refused: the best an API can do; or undetermined (keeps its findings' state)
    first, last = plain.hops[0], plain.final
    if first.status in _REDIRECTS and last.url.lower().startswith("https:"):
        yield Finding(
            "HTTP-PLAINTEXT-REDIRECTS",
            Severity.LOW,
            "Plain HTTP redirects to HTTPS instead of refusing",
            raw.http_url,
            f"GET {raw.http_url} answered {first.status} to {last.url}: a client that "
            "follows it has already sent its request (and any credentials) in the clear",
            "Refuse plain HTTP for the API (close port 80, or answer 403/421 without a body); "
            "a redirect is acceptable only for browsers' GETs.",
        )
        return
    if first.status in REFUSING_STATUSES:
        return
    secure = raw.exchange(Probe.HTTPS)
    page = secure.final if secure is not None else None
    if last.status >= 400 and page is not None and page.status != last.status:
        return  # an error the API does not give over HTTPS (a default vhost's 404, a 502)
    # from here the API itself answers in the clear, a 401 included: the client that meets
    # that 401 has already sent its token, and will send it again with the retry
    yield Finding(
        "HTTP-PLAINTEXT-SERVED",
        Severity.HIGH,
        "The API answers over plain HTTP",
        raw.http_url,
        f"GET {raw.http_url} answered {last.status} over plain HTTP"
        + (
            f" (via {len(plain.hops) - 1} redirects, ending at {last.url})"
            if len(plain.hops) > 1
            else ""
        )
        + ": requests, credentials and answers cross the network unencrypted",
        "Serve the API over HTTPS only: refuse plain HTTP (403/421/426 or a closed port).",
    )


def hsts_findings(raw: HttpPostureRaw) -> Iterator[Finding]:
    secure = raw.exchange(Probe.HTTPS)
    if secure is None or secure.final is None:
        yield Finding(
            "HTTP-HTTPS-UNAVAILABLE",
            Severity.HIGH,
            "The API does not answer over HTTPS",
            raw.target_url,
            f"GET {raw.target_url} failed: {secure.error if secure else 'not sent'}",
            "Serve the API over HTTPS (TLS 1.2 or 1.3) with a certificate clients trust.",
        )
        return
    header = secure.final.joined("strict-transport-security")
    subject = raw.target_url
    remedy = (
        "Send `Strict-Transport-Security: max-age=63072000; includeSubDomains` on every HTTPS "
        "response (tls_posture reads the same header: both should agree)."
    )
    if header is None:
        yield Finding(
            "HTTP-HSTS-MISSING", Severity.MEDIUM, "HTTPS answers without HSTS", subject,
            f"GET {raw.target_url} ({secure.final.status}) has no Strict-Transport-Security",
            remedy,
        )  # fmt: skip
        return
    match = re.search(r"max-age\s*=\s*\"?(\d+)", header, re.IGNORECASE)
    if "," in header or match is None:
        yield Finding(
            "HTTP-HSTS-INVALID", Severity.MEDIUM, "The HSTS header is invalid", subject,
            f"Strict-Transport-Security: {header[:SNIPPET]!r} (sent twice, or no max-age)",
            remedy,
        )  # fmt: skip
    elif int(match.group(1)) < SIX_MONTHS:
        yield Finding(
            "HTTP-HSTS-SHORT", Severity.LOW, "HSTS max-age is under six months", subject,
            f"Strict-Transport-Security: {header[:SNIPPET]!r}", remedy,
        )  # fmt: skip
    seen = int(match.group(1)) if match is not None and "," not in header else None
    if raw.tls_posture_hsts is not None and seen is not None and seen != raw.tls_posture_hsts:
        yield Finding(
            "HTTP-HSTS-INCONSISTENT", Severity.LOW,
            "HSTS differs between the target URL and what tls_posture saw", subject,
            f"{raw.target_url} sends max-age={seen}; tls_posture's latest scan saw "
            f"max-age={raw.tls_posture_hsts}: some paths or servers behind the name differ",
            remedy,
        )  # fmt: skip


def header_findings(
    raw: HttpPostureRaw, session_markers: tuple[str, ...] = ()
) -> Iterator[Finding]:
    """The REST Security Cheat Sheet's header set, on 2xx, 4xx and 5xx answers alike."""
    for name, exchange, answer in judged(raw):
        where = f"{name} ({answer.status})"
        if (answer.joined("x-content-type-options") or "").strip().lower() != "nosniff":
            yield Finding(
                "HTTP-NOSNIFF-MISSING", Severity.LOW,
                "A response lacks X-Content-Type-Options: nosniff", where,
                f"{exchange.method} {answer.url} answered {answer.status} with "
                f"X-Content-Type-Options: {answer.joined('x-content-type-options')!r}",
                "Send `X-Content-Type-Options: nosniff` on every response, errors included.",
            )  # fmt: skip
        credentialed = any(value == "(configured credential)" for _, value in exchange.sent_headers)
        yield from _content_type(where, exchange.method, answer, credentialed)
        yield from _framing_and_csp(where, answer)
        # a load balancer's or bot filter's cookie (AWSALB, __cf_bm) does not make a public
        # answer personal: only a request with credentials or a session-like cookie does
        sessions = [
            c.name
            for value in answer.values("set-cookie")
            if (c := parse_set_cookie(value)) is not None and session_like(c.name, session_markers)
        ]
        if (credentialed or sessions) and "no-store" not in (
            answer.joined("cache-control") or ""
        ).lower():
            yield Finding(
                "HTTP-CACHE-NOT-NO-STORE", Severity.MEDIUM,
                "A response with credentials or a cookie may be cached", where,
                f"{answer.url} answered {answer.status} "
                + ("to a request with credentials" if credentialed else f"setting {sessions}")
                + f" with Cache-Control: {answer.joined('cache-control')!r}",
                "Send `Cache-Control: no-store` on authenticated responses so proxies and "
                "browsers keep no copy.",
            )  # fmt: skip
        if 500 <= answer.status < 600:
            yield Finding(
                "HTTP-ERROR-5XX", Severity.LOW, "A benign request caused a server error", where,
                f"{exchange.method} {answer.url} answered {answer.status}",
                "Handle unknown paths and malformed input with a 4xx answer.",
            )  # fmt: skip
        yield from error_findings(where, answer)
    yield from disclosure_findings(raw)


def _content_type(where: str, method: str, answer: Answer, credentialed: bool) -> Iterator[Finding]:
    declared = answer.media_type
    if answer.body and not declared:
        yield Finding(
            "HTTP-CONTENT-TYPE-MISSING", Severity.LOW, "A response has no Content-Type", where,
            f"{method} {answer.url} answered {answer.status} with {len(answer.body)} bytes "
            "and no Content-Type: clients and browsers must guess",
            "Send the exact Content-Type of every body (application/json for JSON).",
        )  # fmt: skip
    elif (
        answer.body
        and not answer.truncated
        and (declared == "application/json" or declared.endswith("+json"))
    ):
        try:
            json.loads(answer.body)
        except ValueError:
            yield Finding(
                "HTTP-CONTENT-TYPE-INCORRECT", Severity.LOW,
                "A response's body is not what its Content-Type says", where,
                f"{answer.url} declares {declared} but the body is not JSON: "
                # an answer to a request with credentials may hold the user's data
                + (
                    f"{len(answer.body)} bytes, not shown"
                    if credentialed
                    else repr(answer.body[:40])
                ),
                "Declare the media type the body really has.",
            )  # fmt: skip


def _framing_and_csp(where: str, answer: Answer) -> Iterator[Finding]:
    header = answer.joined("content-security-policy")
    try:
        csp = parse_csp(header) if header else {}
    except InvalidCsp:
        csp = {}
    frame_ancestors = csp.get("frame-ancestors")
    xfo = (answer.joined("x-frame-options") or "").strip().lower()
    if frame_ancestors != {"'none'"} and xfo not in ("deny", "sameorigin"):
        yield Finding(
            "HTTP-FRAMING-UNPROTECTED", Severity.LOW, "A response may be framed", where,
            f"{answer.url}: Content-Security-Policy frame-ancestors "
            f"{sorted(frame_ancestors) if frame_ancestors else None}, "
            f"X-Frame-Options {xfo or None!r}",
            "Send `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` (or "
            "X-Frame-Options: DENY) on API responses.",
        )  # fmt: skip
    html = answer.media_type in ("text/html", "application/xhtml+xml")
    if csp.get("default-src") != {"'none'"} and (html or header is not None):
        yield Finding(
            "HTTP-CSP-PERMISSIVE", Severity.MEDIUM if html else Severity.LOW,
            "A response's Content-Security-Policy allows content to load", where,
            f"{answer.url} ({answer.media_type or 'no type'}): Content-Security-Policy "
            f"{(header or '')[:SNIPPET]!r}",
            "API responses need no content at all: `Content-Security-Policy: default-src "
            "'none'; frame-ancestors 'none'`.",
        )  # fmt: skip


def error_findings(where: str, answer: Answer) -> Iterator[Finding]:
    if not answer.body or (answer.media_type and not _TEXTUAL.match(answer.media_type)):
        return
    text = answer.body[: 256 * 1024].decode("utf-8", "replace")
    seen: set[str] = set()
    for rule_id, pattern in ERROR_PATTERNS:
        match = pattern.search(text)
        if match is None or rule_id in seen:
            continue
        seen.add(rule_id)
        title, severity = _ERROR_TITLES[rule_id]
        yield Finding(
            rule_id, severity, title, where,
            f"{answer.url} answered {answer.status}; matched: {snippet(text, match)!r}",
            "Return a generic error body (e.g. RFC 9457 problem+json) and log details on "
            "the server; turn debug modes off in production.",
        )  # fmt: skip


def snippet(text: str, match: re.Match[str]) -> str:
    """At most SNIPPET characters around the match, never the whole body."""
    start = max(0, match.start() - 20)
    return text[start : start + SNIPPET].strip()


def disclosure_findings(raw: HttpPostureRaw) -> Iterator[Finding]:
    disclosed: dict[str, str] = {}
    for _name, _exchange, answer in judged(raw):
        server = answer.joined("server")
        if server and _VERSION.search(server):
            disclosed.setdefault("server", server)
        for header in _DISCLOSING:
            value = answer.joined(header)
            if value:
                disclosed.setdefault(header, value)
    for header, value in sorted(disclosed.items()):
        shown = "(present; its value opens the profiler, not shown)" if header in _TOKENS else value
        yield Finding(
            "HTTP-SOFTWARE-DISCLOSED", Severity.LOW, f"The {header} header discloses software",
            header, f"{header}: {shown[:SNIPPET]}",
            "Remove the header (or its version) at the server or gateway "
            "(nginx: `server_tokens off;`).",
        )  # fmt: skip


def redirect_findings(raw: HttpPostureRaw) -> Iterator[Finding]:
    """A redirect this check did not follow (egress policy, an unreachable hop): said, not
    silently judged on the redirect itself."""
    for exchange in raw.exchanges:
        last = exchange.final
        if (
            last is not None
            and exchange.error is not None
            and last.status in _REDIRECTS
            and not exchange.cut_by_budget
        ):
            yield Finding(
                "HTTP-REDIRECT-NOT-FOLLOWED", Severity.MEDIUM,
                "A redirect leads where the check may not or cannot follow", label(exchange),
                f"{exchange.method} {exchange.url}: {last.status} to "
                f"{last.joined('location')}; {exchange.error}",
                "Redirect only to this API's own public HTTPS origin.",
            )  # fmt: skip


def method_findings(raw: HttpPostureRaw) -> Iterator[Finding]:
    trace = raw.exchange(Probe.TRACE)
    answer = trace.final if trace else None
    if (
        answer is not None
        and 200 <= answer.status < 300
        and TRACE_MARKER.lower().encode() in (answer.body.lower())
    ):
        yield Finding(
            "HTTP-TRACE-ENABLED", Severity.MEDIUM, "TRACE echoes requests", "TRACE",
            f"TRACE {answer.url} answered {answer.status} and echoed the {TRACE_MARKER} header "
            "it was sent (cross-site tracing can read headers scripts cannot)",
            "Disable TRACE and TRACK at the server and at every proxy in front of it.",
        )  # fmt: skip
    reported: set[str] = set()
    for probe in (Probe.OPTIONS, Probe.PREFLIGHT):
        exchange = raw.exchange(probe)
        answer = exchange.final if exchange else None
        if answer is None:
            continue
        advertised = ",".join(
            filter(None, (answer.joined("allow"), answer.joined("access-control-allow-methods")))
        )
        methods = {m.strip().upper() for m in advertised.split(",") if m.strip()}
        for method in sorted((methods & {"TRACE", "TRACK"}) - reported):
            reported.add(method)
            yield Finding(
                "HTTP-TRACE-ADVERTISED", Severity.LOW, f"The API advertises {method}", method,
                f"OPTIONS {answer.url} answered {answer.status} with methods {sorted(methods)}",
                "Disable TRACE and TRACK at the server (nginx does not serve them; Apache: "
                "`TraceEnable off`).",
            )  # fmt: skip
