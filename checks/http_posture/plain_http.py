"""How the plain-HTTP probe is judged: refused, answered, or undetermined (pure).

Only a repeatable answer decides. Refused: the port reset the SYN (connection refused: nothing
serves plain HTTP there), or a refusing status (400/403/421/426). Answered: any other HTTP
answer (its status and headers, however its body ends), redirects followed. Undetermined: a
timeout (a firewall that drops the port and a server that accepts and hangs look the same),
a connection accepted and then reset or closed before a status line, a 429, the run's
deadline or budget, any other error, or a redirect followed into one of these.
Undetermined neither rewards nor penalises: the API profile scores plain HTTP as the newest
run that could judge it did (at the same plain-HTTP URL; a refusal only `plain_http_dropped`
made, only while it is set), and is itself undetermined (no score exported) when no run ever
could; the Observatory-compatible grade is not given.

Two failures decide after all. A reset or close before any answer on the very host and port
that answered HTTPS in the same run is that TLS server rejecting a plaintext request (what
Python's and Java's TLS servers do; nginx and Go answer 400), so plain HTTP is refused there,
as the Observatory sees it. And where the target says plain HTTP is dropped by a firewall on
purpose (`plain_http_dropped`), no connection in time (nothing answered the SYN) is refused;
a server that accepts and then hangs is still undetermined.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from checks.http_posture.facts import (
    MAX_HOPS,
    Exchange,
    Failure,
    HttpPostureRaw,
    PlainHttpVerdict,
    Probe,
)
from monitor.redact import mask_secrets

REFUSING_STATUSES = frozenset({400, 403, 421, 426})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# the API-profile penalties the plain-HTTP answer decides (rules.transport_findings)
PLAIN_HTTP_RULES = ("HTTP-PLAINTEXT-REDIRECTS", "HTTP-PLAINTEXT-SERVED")


class PlainHttpState(StrEnum):
    REFUSED = "refused"
    ANSWERED = "answered"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, slots=True)
class PlainHttp:
    state: PlainHttpState
    exchange: Exchange | None
    why: str = ""  # for UNDETERMINED: "plain HTTP could not be judged: <the error>"
    as_configured: bool = False  # REFUSED only because plain_http_dropped says so

    @property
    def undetermined(self) -> bool:
        return self.state is PlainHttpState.UNDETERMINED

    @property
    def refused(self) -> bool:
        """What the API profile rewards: no connection, or a refusing status."""
        if self.state is PlainHttpState.REFUSED:
            return True
        return (
            self.state is PlainHttpState.ANSWERED
            and self.exchange is not None
            and self.exchange.hops[0].status in REFUSING_STATUSES
        )

    @property
    def label(self) -> str:
        """The snapshot's `plain_http`: "refused", "redirect 301 to URL", "answers 200"."""
        if self.state is not PlainHttpState.ANSWERED or self.exchange is None:
            return str(self.state)
        first, last = self.exchange.hops[0], self.exchange.hops[-1]
        if first.status in REDIRECTS:
            return f"redirect {first.status} to {last.url}"
        return f"answers {first.status}"


def judge_plain_http(raw: HttpPostureRaw) -> PlainHttp:
    plain = raw.exchange(Probe.HTTP)
    if plain is None:
        return PlainHttp(PlainHttpState.UNDETERMINED, None, _cannot("not probed"))
    if plain.cut_by_budget:
        return PlainHttp(PlainHttpState.UNDETERMINED, plain, _cannot(plain.error))
    if plain.final is not None:
        if (
            plain.final.status in REDIRECTS
            and plain.error is not None
            and plain.failure is not Failure.REFUSED
            and len(plain.hops) <= MAX_HOPS  # a redirect loop is an answer
        ):
            # a redirect followed into a timeout, a reset or a 429 is not what it leads to
            return PlainHttp(PlainHttpState.UNDETERMINED, plain, _cannot(plain.error))
        return PlainHttp(PlainHttpState.ANSWERED, plain)
    if plain.failure is Failure.REFUSED:
        return PlainHttp(PlainHttpState.REFUSED, plain)
    if plain.failure is Failure.DROPPED and _is_the_https_port(raw):
        return PlainHttp(PlainHttpState.REFUSED, plain)
    if plain.failure is Failure.NOT_CONNECTED and raw.plain_http_dropped:
        return PlainHttp(PlainHttpState.REFUSED, plain, as_configured=True)
    return PlainHttp(PlainHttpState.UNDETERMINED, plain, _cannot(plain.error))


def last_judged(
    snapshot: Mapping[str, Any] | None, http_url: str, *, dropped: bool = False
) -> PlainHttpVerdict | None:
    """The plain-HTTP verdict kept in a snapshot of an earlier run, if it judged it at
    `http_url`: a verdict on another URL (before `http_url` or the target's URL changed)
    says nothing about this one, nor does a refusal that only `plain_http_dropped` made
    one once the target no longer says so (`dropped`)."""
    if not snapshot or snapshot.get("http_url") != mask_secrets(http_url):
        return None
    if snapshot.get("plain_http_dropped_as_configured") and not dropped:
        return None
    state = snapshot.get("plain_http")
    if not isinstance(state, str) or not (
        state == "refused" or state.startswith(("answers ", "redirect "))
    ):
        return None  # "not assessed" / "undetermined" (older versions stored those)
    profile = snapshot.get("api_profile")
    modifiers = profile.get("modifiers") if isinstance(profile, dict) else None
    rules = tuple(r for r in PLAIN_HTTP_RULES if isinstance(modifiers, dict) and r in modifiers)
    refused = state == "refused" or (
        state.startswith("answers ") and _status(state) in REFUSING_STATUSES
    )
    return PlainHttpVerdict(state, refused, rules)


def _status(state: str) -> int | None:
    word = state.split(" ")[1] if " " in state else ""
    return int(word) if word.isdigit() else None


def _cannot(error: str | None) -> str:
    return f"plain HTTP could not be judged: {error or 'no answer'}"


def _is_the_https_port(raw: HttpPostureRaw) -> bool:
    https = raw.exchange(Probe.HTTPS)
    if https is None or https.final is None:
        return False
    plain, secure = urlsplit(raw.http_url), urlsplit(https.url)
    return (
        secure.scheme.lower() == "https"
        and (plain.hostname or "").lower() == (secure.hostname or "").lower()
        and (plain.port or 80) == (secure.port or 443)
    )
