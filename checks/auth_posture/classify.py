"""Pure reading of single answers: refused or accepted, a login redirect or login form, a soft
error envelope, a 401 without a challenge, an error body that says too much, rate-limit headers."""

from __future__ import annotations

import difflib
import json
import re
from enum import StrEnum
from urllib.parse import urlsplit

from checks.auth_posture.facts import Exchange

REFUSED_STATUSES = frozenset({401, 403, 404})
_LOGIN = re.compile(
    r"(^|[/._-])(login|log-in|logon|signin|sign-in|sign_in|sso|auth|oauth2?|authorize|"
    r"openid-connect|saml|session|account/login)([/._?-]|$)",
    re.IGNORECASE,
)
_SAMPLE = 4096  # bytes of a body the text rules look at
BODY_SCAN = 16 * 1024  # of an HTML page, where a login form's password field is looked for
_PASSWORD_FIELD = re.compile(r"<input\b[^>]*\btype\s*=\s*[\"']?password\b", re.IGNORECASE)
_AUTH_ERROR_WORDS = (
    "unauthorized",
    "unauthorised",
    "unauthenticated",
    "not authenticated",
    "authentication required",
    "authentication failed",
    "login required",
    "please log in",
    "access denied",
    "forbidden",
    "permission denied",
    "not authorized",
    "invalid token",
    "invalid_token",
    "token expired",
    "missing token",
    "invalid credentials",
    "bad credentials",
    "credentials were not provided",
    "missing authentication",
    "requires authentication",
    "not logged in",
    "no api key",
    "missing api key",
    "invalid api key",
    "api key required",
    "accessdenied",
    "jwt expired",
    "jwt malformed",
    "invalid jwt",
)
_ERROR_KEYS = ("error", "errors", "fault")
# gateways that answer 200 put the real status in the envelope: {"status": 401, ...},
# {"statusCode": "403"}, {"code": 401}; or say {"status": "fail"}
_STATUS_KEYS = ("status", "statusCode", "status_code", "code", "httpStatus", "http_status")
_FAILED = frozenset({"error", "fail", "failed", "failure", "unauthorized", "forbidden", "denied"})
_ENVELOPE_KEYS = 8  # an envelope is small: a status field of a bigger object is data
# What an auth failure's body must not say: traces, internal class names, which check failed
# (RFC 6750 §3.1's error codes are all a client needs).
_LEAKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Python traceback", re.compile(r"Traceback \(most recent call last\)")),
    ("a Java/JS stack trace", re.compile(r"\n\s*at [\w$.<>]+\(")),
    ("a .NET stack trace", re.compile(r"\bat System\.[\w.]+")),
    ("a PHP error location", re.compile(r"\bon line \d+", re.IGNORECASE)),
    (
        "an internal exception name",
        re.compile(
            r"\b[a-z][\w]*(\.[\w]+)+\.[A-Z]\w*(Exception|Error)\b"
            r"|\b(ExpiredSignatureError|InvalidSignatureError|JsonWebTokenError|"
            r"SignatureVerificationException|JWTDecodeException|MalformedJwtException)\b"
        ),
    ),
    (
        "which part of the token failed",
        re.compile(
            r"signature (verification )?(failed|mismatch|invalid)|invalid signature|"
            r"no (matching )?key (found )?for kid|unknown kid|kid not found|"
            r"audience (mismatch|invalid)|issuer (mismatch|invalid)|"
            r"alg(orithm)? not (allowed|supported)",
            re.IGNORECASE,
        ),
    ),
    (
        "whether the account exists",
        re.compile(
            r"user (not found|does not exist)|no such user|unknown user|"
            r"(wrong|incorrect|invalid) password|password (is )?incorrect",
            re.IGNORECASE,
        ),
    ),
)
RATE_LIMIT_HEADERS = (
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
)


class Answer(StrEnum):
    """What one answer says about whether the request's credentials were checked."""

    REFUSED = "refused"  # 401, 403, 404, a redirect to a login, a 2xx error envelope
    ACCEPTED = "accepted"  # a 2xx that is not an error envelope
    INCONCLUSIVE = "inconclusive"  # any other status, another redirect
    NO_ANSWER = "no_answer"


def text_sample(body: bytes) -> str:
    return body[:_SAMPLE].decode("utf-8", errors="replace")


def login_redirect(exchange: Exchange) -> bool:
    location = exchange.header("location")
    if exchange.status is None or not 300 <= exchange.status < 400 or not location:
        return False
    parts = urlsplit(location)
    return bool(_LOGIN.search(parts.path) or _LOGIN.search(parts.netloc.split(".")[0]))


def error_envelope(body: bytes, complete: bool = True) -> bool:
    """A 2xx body that is an error: a small JSON object with an error member, `success:
    false`, a 4xx/5xx or failed status field or an auth error phrase; or a page (not JSON)
    with an auth error phrase. A JSON array, a bigger object or a JSON body not read whole is
    data, whatever words it holds (an audit log saying "access denied" is no refusal)."""
    if body.lstrip()[:1] in (b"{", b"["):
        if not complete:
            return False
        try:
            document = json.loads(body)
        except ValueError:
            document = None  # JSON-looking text: judged as a page
        if isinstance(document, list) or (
            isinstance(document, dict) and len(document) > _ENVELOPE_KEYS
        ):
            return False
        if isinstance(document, dict) and _failed_envelope(document):
            return True
    lowered = text_sample(body).lower()
    return any(word in lowered for word in _AUTH_ERROR_WORDS)


def _failed_envelope(document: dict[str, object]) -> bool:
    if any(document.get(key) for key in _ERROR_KEYS):
        return True
    if document.get("success") is False or document.get("ok") is False:
        return True
    return any(_failed_status(document.get(key)) for key in _STATUS_KEYS)


def _failed_status(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 400 <= value < 600
    if isinstance(value, str):
        text = value.strip().lower()
        return text in _FAILED or (text.isdigit() and 400 <= int(text) < 600)
    return False


def answer(exchange: Exchange) -> Answer:
    status = exchange.status
    if status is None:
        return Answer.NO_ANSWER
    if status in REFUSED_STATUSES or login_redirect(exchange):
        return Answer.REFUSED
    if 200 <= status < 300:
        envelope = error_envelope(exchange.body, exchange.body_complete)
        return Answer.REFUSED if envelope or login_page(exchange) else Answer.ACCEPTED
    return Answer.INCONCLUSIVE


def login_page(exchange: Exchange) -> bool:
    """A 2xx HTML page with a password field: a login form served in the operation's place
    (an SSO proxy or a session-based app), whatever the spec documents."""
    content_type = (exchange.header("content-type") or "").split(";")[0].strip().lower()
    if content_type not in ("text/html", "application/xhtml+xml"):
        return False
    return _PASSWORD_FIELD.search(exchange.body[:BODY_SCAN].decode("utf-8", "replace")) is not None


def catch_all_page(exchange: Exchange, documented: tuple[str, ...]) -> bool:
    """A 2xx HTML page for an operation whose spec documents its answers as other media
    types only (JSON, say): a single-page app's fallback or a login form answering every
    path, which says nothing about whether the operation checks credentials."""
    content_type = (exchange.header("content-type") or "").split(";")[0].strip().lower()
    html = content_type in ("text/html", "application/xhtml+xml")
    return html and bool(documented) and not any("html" in media for media in documented)


def leak(exchange: Exchange) -> str | None:
    """What a refusal's body gives away beyond the scheme's error code, or None."""
    if exchange.status not in (401, 403) or not exchange.body:
        return None
    sample = text_sample(exchange.body)
    for what, pattern in _LEAKS:
        found = pattern.search(sample)
        if found:
            return f"{what} ({found.group(0).strip()[:80]!r})"
    return None


def similarity(first: bytes, second: bytes) -> float:
    """0..1: how alike two bodies are (their first 4 KiB), 1.0 for equal ones."""
    if first == second:
        return 1.0
    matcher = difflib.SequenceMatcher(None, text_sample(first), text_sample(second))
    return matcher.ratio()


def rate_limit_headers(exchange: Exchange) -> tuple[str, ...]:
    names = {name.lower() for name, _ in exchange.headers}
    return tuple(name for name in RATE_LIMIT_HEADERS if name in names)
