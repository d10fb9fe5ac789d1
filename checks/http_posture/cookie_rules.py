"""Cookie rules over every Set-Cookie the API sent (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from checks.http_posture.cookies import SetCookie, parse_set_cookie, session_like
from checks.http_posture.facts import HttpPostureRaw
from monitor.model import Finding, Severity


def cookies_seen(raw: HttpPostureRaw) -> list[tuple[str, SetCookie]]:
    """(URL that set it, cookie), the first time each cookie name was set."""
    seen: dict[str, tuple[str, SetCookie]] = {}
    for exchange in raw.exchanges:
        for hop in exchange.hops:
            for value in hop.values("set-cookie"):
                cookie = parse_set_cookie(value)
                if cookie is not None:
                    seen.setdefault(cookie.name, (hop.url, cookie))
    return list(seen.values())


def cookie_findings(
    raw: HttpPostureRaw, session_markers: tuple[str, ...], now: datetime
) -> Iterator[Finding]:
    for url, cookie in cookies_seen(raw):
        if cookie.deletes(now):
            continue  # nothing is stored, so nothing to protect (the Observatory still counts it)
        session = session_like(cookie.name, session_markers)
        kind = "session-like cookie" if session else "cookie"
        evidence = f"{url} set {cookie.name} with attributes " + (
            "; ".join(n if v is None else f"{n}={v}" for n, v in cookie.attributes) or "(none)"
        )
        if url.lower().startswith("http:"):
            yield Finding(
                "COOKIE-OVER-PLAIN-HTTP", Severity.HIGH if session else Severity.MEDIUM,
                f"A {kind} is set over plain HTTP", cookie.name, evidence,
                "Set cookies only on HTTPS responses; refuse plain HTTP.",
            )  # fmt: skip
        if not cookie.secure:
            yield Finding(
                "COOKIE-NO-SECURE", Severity.HIGH if session else Severity.MEDIUM,
                f"A {kind} lacks the Secure attribute", cookie.name, evidence,
                "Add `Secure` so the cookie is never sent over plain HTTP.",
            )  # fmt: skip
        if session and not cookie.http_only:
            yield Finding(
                "COOKIE-NO-HTTPONLY", Severity.MEDIUM,
                "A session-like cookie lacks HttpOnly", cookie.name, evidence,
                "Add `HttpOnly` so scripts cannot read the session cookie.",
            )  # fmt: skip
        if cookie.same_site_invalid:
            yield Finding(
                "COOKIE-SAMESITE-INVALID", Severity.LOW,
                "A cookie's SameSite value is invalid", cookie.name, evidence,
                "Use `SameSite=Strict` or `Lax` (or `None` together with `Secure`).",
            )  # fmt: skip
        elif cookie.same_site == "none" and not cookie.secure:
            yield Finding(
                "COOKIE-SAMESITE-NONE-INSECURE", Severity.MEDIUM,
                "A SameSite=None cookie lacks Secure", cookie.name, evidence,
                "Browsers reject SameSite=None without Secure: add `Secure`.",
            )  # fmt: skip
        violation = cookie.prefix_violation()
        if violation is not None:
            yield Finding(
                "COOKIE-PREFIX-VIOLATION", Severity.LOW,
                "A cookie breaks its name prefix's rules", cookie.name,
                f"{evidence}: {violation}",
                "__Secure- cookies need Secure; __Host- cookies need Secure, Path=/ and no Domain.",
            )  # fmt: skip
