"""Raw data of an http_posture run: each request sent and what came back, as plain facts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_HOPS = 10  # the Observatory follows at most 10 redirects


class Probe(StrEnum):
    """Why a request was sent; each kind is sent at most once per URL."""

    HTTPS = "https"  # GET of the target URL (the page the headers are judged on)
    HTTP = "http"  # GET of its plain-HTTP counterpart, redirects followed without credentials
    PATH = "path"  # GET of a configured path
    NOT_FOUND = "not_found"  # GET of a path that cannot exist (error page)
    MALFORMED = "malformed"  # GET with a malformed query (error page)
    CORS_ARBITRARY = "cors_arbitrary"  # GET with an unrelated Origin
    CORS_NULL = "cors_null"  # GET with Origin: null
    CORS_SUFFIX = "cors_suffix"  # GET with the target's own origin plus a suffix
    CORS_PREFIX = "cors_prefix"  # GET with the target's host behind a prefix (endswith checks)
    PREFLIGHT = "preflight"  # OPTIONS preflight with an unrelated Origin
    OPTIONS = "options"  # plain OPTIONS: which methods Allow advertises
    SECURITY_TXT = "security_txt"  # GET /.well-known/security.txt
    DOCUMENTED = "documented"  # GET of a documented operation (api_inventory's snapshot)
    TRACE = "trace"  # TRACE with a marker header (opt-in)


class Failure(StrEnum):
    """How a request that got no answer failed."""

    REFUSED = "refused"  # the port reset the SYN (ECONNREFUSED): nothing serves there
    NOT_CONNECTED = "not connected"  # nothing answered the SYN in time (a dropped port)
    TIMED_OUT = "timed out"  # connected, but no answer in time
    DROPPED = "dropped"  # accepted, then reset or closed before a whole answer
    OTHER = "other"  # DNS, TLS, a protocol error, the budget, a 429 ...


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP response, headers as received (names keep their case, repeats kept)."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool = False  # the body is its first max_body_bytes only

    def values(self, name: str) -> tuple[str, ...]:
        """Every value of header `name` (case-insensitive), in the order received."""
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key.lower() == wanted)

    def joined(self, name: str) -> str | None:
        """The values of `name` joined with ', ' (as Node and most clients see them)."""
        values = self.values(name)
        return ", ".join(values) if values else None

    @property
    def media_type(self) -> str:
        return (self.joined("content-type") or "").split(";")[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Exchange:
    """One probe: the request line sent, each hop answered (redirects first), or an error."""

    probe: Probe
    method: str
    url: str
    sent_headers: tuple[tuple[str, str], ...]  # credentials shown by name only
    hops: tuple[Answer, ...] = ()
    error: str | None = None  # could not be sent or answered (connection refused, 429 ...)
    certificate_error: bool = False  # HTTPS answered only without certificate verification
    failure: Failure | None = None  # how the last request failed, when `error` is its failure

    @property
    def final(self) -> Answer | None:
        return self.hops[-1] if self.hops else None

    @property
    def cut_by_budget(self) -> bool:
        """The budget ran out before this probe, or before a redirect of it, was sent: what
        it would have reached is not judged (HTTP-PROBE-BUDGET-EXHAUSTED says so)."""
        return self.error is not None and self.error.startswith("left out")

    @property
    def not_assessed(self) -> bool:
        """No answer because of this run, not because the target refused: a 429, the
        budget, the deadline, or a timeout (a retry may well get an answer)."""
        return (
            self.final is None and self.error is not None and self.error.startswith(_NOT_ASSESSED)
        )


# how collect's and checks.http's errors begin when the run, not the target, decided
_NOT_ASSESSED = (
    "rate limited",
    "not sent",
    "left out",
    "the certificate did not verify; no budget",
    "the run's deadline",
    "no answer within",
)


@dataclass(frozen=True, slots=True)
class PlainHttpVerdict:
    """How plain HTTP was judged by the newest run that could judge it (its snapshot)."""

    state: str  # "refused", "answers 403", "redirect 301 to https://...", "answers 200"
    refused: bool  # what the API profile rewards
    rules: tuple[str, ...]  # the API-profile penalties it cost (HTTP-PLAINTEXT-*)


@dataclass(frozen=True, slots=True)
class HttpPostureRaw:
    target_url: str  # the https:// (or configured) URL judged
    http_url: str  # where plain HTTP was probed
    exchanges: tuple[Exchange, ...]
    skipped: tuple[str, ...] = ()  # probes the request budget left out, "probe url"
    requests_sent: int = 0
    budget: int = 20
    tls_posture_hsts: int | None = None  # max-age tls_posture's latest snapshot saw, if any
    notes: tuple[str, ...] = ()  # what could not be planned (e.g. no inventory to sample)
    plain_http_last_judged: PlainHttpVerdict | None = None  # from the store, when there is one
    plain_http_dropped: bool = False  # configured: plain HTTP is dropped by a firewall on purpose

    def exchange(self, probe: Probe, url: str | None = None) -> Exchange | None:
        for exchange in self.exchanges:
            if exchange.probe is probe and (url is None or exchange.url == url):
                return exchange
        return None

    def answers(self) -> tuple[tuple[Exchange, Answer], ...]:
        """Every final answer with the probe it answered."""
        return tuple((e, e.final) for e in self.exchanges if e.final is not None)
