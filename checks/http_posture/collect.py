"""I/O of http_posture: a fixed, budgeted plan of GET, HEAD and OPTIONS requests (and one
TRACE where the target opts in).

Every request goes through `checks.http.fetch` (egress policy, deadline, size caps, the
apivigil User-Agent) and carries `X-Apivigil-Probe` naming why it was sent. Redirects are
followed here, one hop at a time, so each hop counts against the budget and each hop's
target, like any origin other than the configured ones, passes the egress policy. The plan
is paid for in order before it is sent (the budget cuts its tail), then sent four requests
at a time. The configured auth header goes only with GETs of configured paths and sampled
documented operations, only over HTTPS and only to the target's own origin: a redirect to
another origin or to plain HTTP is followed without it.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

from checks.files import read_input_file
from checks.http import (
    ConnectionDropped,
    ConnectionRefused,
    NotConnected,
    fetch,
    tls_context,
)
from checks.http_posture.facts import (
    MAX_HOPS,
    Answer,
    Exchange,
    Failure,
    HttpPostureRaw,
    PlainHttpVerdict,
    Probe,
)
from checks.http_posture.params import HttpPostureParams
from checks.http_posture.plain_http import last_judged
from checks.interface import (
    CheckContext,
    CheckError,
    CheckMisconfigured,
    TargetUnreachable,
)
from monitor.model import CheckKind, Target

ARBITRARY_ORIGIN = "https://apivigil-cors-probe.example"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
RATE_LIMITED = 429
# gateway and CDN statuses for "the API behind me is down" (52x: Cloudflare)
UNAVAILABLE = frozenset({502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 527})
_HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # Observatory's
_API_ACCEPT = "application/json, */*;q=0.5"
_API = (("Accept", _API_ACCEPT),)
TRACE_MARKER = "X-Apivigil-Trace-Marker"
_MAX_AUTH_FILE_BYTES = 16 * 1024
_PARALLEL = 4  # requests in flight to one target at once


@dataclass(frozen=True, slots=True)
class Request:
    probe: Probe
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    credentials: bool = False  # may carry the auth header (same origin, HTTPS only)


@dataclass
class Budget:
    """Requests left in this run; every hop of every probe takes one (thread-safe)."""

    limit: int
    sent: int = 0
    skipped: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        with self._lock:
            if self.sent >= self.limit:
                return False
            self.sent += 1
            return True


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def counterpart(url: str, scheme: str) -> str:
    """`url` with another scheme, same host, same explicit port, path and query."""
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def collect(target: Target, params: HttpPostureParams, context: CheckContext) -> HttpPostureRaw:
    if not target.url:
        raise CheckMisconfigured("http_posture needs a target URL (https://host[:port][/path])")
    scheme = urlsplit(target.url.strip()).scheme.lower()
    if scheme not in ("http", "https"):
        raise CheckMisconfigured(f"not an http(s) URL: {target.url}", subject=target.name)
    https_url = counterpart(target.url.strip(), "https")
    http_url = params.http_url or counterpart(target.url.strip(), "http")
    auth = _auth_header(params)
    if params.trust_store is not None and not params.trust_store.is_file():
        raise CheckMisconfigured(f"trust_store {params.trust_store} is not a readable file")
    # one context for the run (loading a CA bundle costs ~50 ms): the trust store alone
    # when configured, else the default bundle; a bundle that cannot load is misconfigured
    verify = tls_context(str(params.trust_store) if params.trust_store else True)
    budget = Budget(params.request_budget)
    run = _Run(params, context, budget, verify, auth, https_url, http_url)

    pages = [
        Request(Probe.HTTPS, "GET", https_url, (("Accept", _HTML_ACCEPT),)),
        Request(Probe.HTTP, "GET", http_url, (("Accept", _HTML_ACCEPT),)),
    ]
    exchanges = run.send_all(pages)
    secure, plain = exchanges
    if scheme == "https" and secure.final is None:
        # the configured HTTPS URL did not answer (timeout, reset, 429 ...): judging the
        # plain-HTTP page instead would grade a different thing and call HTTPS unavailable
        raise TargetUnreachable(f"HTTPS did not answer: {secure.error}", subject=target.url)
    if secure.final is not None and secure.final.status in UNAVAILABLE:
        # a gateway saying the API is down (a deploy, an outage) is not the API's answer:
        # judging it would resolve every finding on the real page and open new ones
        raise TargetUnreachable(
            f"HTTPS answered {secure.final.status}: the API is unavailable, nothing judged",
            subject=target.url,
        )
    auto = secure if secure.final is not None else plain
    if auto.final is None:
        raise TargetUnreachable(
            f"neither HTTPS ({secure.error}) nor HTTP ({plain.error}) answered",
            subject=target.url,
        )
    base = auto.final.url
    base_origin = "{}://{}".format(*urlsplit(base)[:2])
    host = urlsplit(base).hostname or "localhost"
    documented, notes = _documented(target, params, context)
    plan = list(_plan(params, base, base_origin, host))
    plan += [
        Request(Probe.DOCUMENTED, "GET", urljoin(base, path), _API, True) for path in documented
    ]
    if params.trace:
        plan.append(Request(Probe.TRACE, "TRACE", base, ((TRACE_MARKER, "1"),)))
    exchanges += run.send_all(plan)
    return HttpPostureRaw(
        target_url=https_url,
        http_url=http_url,
        exchanges=tuple(e for e in exchanges if e is not None),
        skipped=tuple(budget.skipped),
        requests_sent=budget.sent,
        budget=budget.limit,
        tls_posture_hsts=_tls_posture_hsts(target, context),
        notes=notes,
        plain_http_last_judged=_plain_http_last_judged(target, http_url, params, context),
        plain_http_dropped=params.plain_http_dropped,
    )


def _documented(
    target: Target, params: HttpPostureParams, context: CheckContext
) -> tuple[list[str], tuple[str, ...]]:
    """Paths of up to `inventory_sample` documented GET operations that need no identifier
    (no path parameter, no required query parameter: nothing is guessed), and why none
    could be had."""
    if not params.inventory_sample:
        return [], ()
    if context.history is None:
        return [], ("inventory_sample needs the store (not in one-off scans)",)
    snapshot = context.history.latest_snapshot(CheckKind.API_INVENTORY, target.name) or {}
    inventory = snapshot.get("inventory") or {}
    operations = inventory.get("operations") if isinstance(inventory, dict) else None
    if not isinstance(operations, list):
        return [], ("no api_inventory snapshot of this target to sample operations from",)
    base_path = str(inventory.get("base_path") or "").rstrip("/")
    paths = sorted(
        {
            f"{base_path}{op['path']}"
            for op in operations
            if isinstance(op, dict)
            and op.get("method") == "get"
            and "{" not in str(op.get("path"))
            and not op.get("deprecated")
            and not any(p[1] == "query" and p[2] for p in op.get("parameters") or ())
        }
    )
    return paths[: params.inventory_sample], ()


def _tls_posture_hsts(target: Target, context: CheckContext) -> int | None:
    if context.history is None:
        return None
    snapshot = context.history.latest_snapshot(CheckKind.TLS_POSTURE, target.name) or {}
    value = snapshot.get("hsts_max_age")
    return value if isinstance(value, int) else None


def _plain_http_last_judged(
    target: Target, http_url: str, params: HttpPostureParams, context: CheckContext
) -> PlainHttpVerdict | None:
    """How the newest run that kept a snapshot (so judged plain HTTP) judged `http_url`."""
    if context.history is None:
        return None
    snapshot = context.history.latest_snapshot(CheckKind.HTTP_POSTURE, target.name)
    return last_judged(snapshot, http_url, dropped=params.plain_http_dropped)


def _plan(params: HttpPostureParams, base: str, base_origin: str, host: str) -> Iterator[Request]:
    """The probes after the two page fetches, most telling first (the budget cuts the tail)."""
    api = (("Accept", _API_ACCEPT),)
    yield Request(
        Probe.PREFLIGHT,
        "OPTIONS",
        base,
        (("Origin", ARBITRARY_ORIGIN), ("Access-Control-Request-Method", "GET")),
    )
    yield Request(Probe.NOT_FOUND, "GET", urljoin(base, f"/apivigil-probe-{uuid.uuid4().hex}"), api)
    yield Request(Probe.CORS_ARBITRARY, "GET", base, (*api, ("Origin", ARBITRARY_ORIGIN)))
    yield Request(Probe.CORS_NULL, "GET", base, (*api, ("Origin", "null")))
    scheme = urlsplit(base_origin).scheme
    yield Request(
        Probe.CORS_SUFFIX,
        "GET",
        base,
        (*api, ("Origin", f"{scheme}://{host}.apivigil-probe.example")),
    )
    yield Request(
        Probe.CORS_PREFIX, "GET", base, (*api, ("Origin", f"{scheme}://apivigil-probe{host}"))
    )
    yield Request(Probe.OPTIONS, "OPTIONS", base)
    separator = "&" if urlsplit(base).query else "?"
    yield Request(Probe.MALFORMED, "GET", f"{base}{separator}apivigil=%ZZ%27%22%5B%00", api)
    if params.security_txt:
        yield Request(Probe.SECURITY_TXT, "GET", urljoin(base, "/.well-known/security.txt"))
    for path in params.paths:
        yield Request(Probe.PATH, "GET", urljoin(base, path), api, credentials=True)


def _auth_header(params: HttpPostureParams) -> tuple[str, str] | None:
    if params.auth_header_file is None:
        return None
    text = read_input_file(params.auth_header_file, _MAX_AUTH_FILE_BYTES).decode("utf-8", "replace")
    name, separator, value = text.strip().partition(":")
    if not separator or not name.strip() or not value.strip() or "\n" in text.strip():
        raise CheckMisconfigured(
            "auth_header_file must hold one line `Name: value`",
            subject=str(params.auth_header_file),
        )
    return name.strip(), value.strip()


class _Run:
    def __init__(
        self,
        params: HttpPostureParams,
        context: CheckContext,
        budget: Budget,
        verify: ssl.SSLContext,
        auth: tuple[str, str] | None,
        target_url: str,
        http_url: str,
    ) -> None:
        self.params = params
        self.context = context
        self.budget = budget
        self.verify = verify
        # for the Observatory's second try after a certificate error: the answer is judged,
        # the certificate error is recorded (redirection and HSTS score it)
        self.unverified = tls_context(False)
        self.auth = auth
        self.rate_limited = False  # set by a 429: nothing more is sent this run
        self.target_origin = origin(target_url)
        # the configured URLs; any other origin (where a redirect led) is vetted by egress
        self.configured = {origin(target_url), origin(http_url)}

    def send_all(self, requests: list[Request]) -> list[Exchange]:
        """Send `requests` a few at a time. Their first requests are paid for in list order
        before any is sent, so the budget always cuts the tail of the list."""
        paid = [self.budget.take() for _ in requests]
        with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
            return list(pool.map(self.send, requests, paid))

    def send(self, request: Request, prepaid: bool = False) -> Exchange:
        """Send `request`, following redirects for GETs; an answer or an error, never raises
        for what the target does (only for the run's deadline)."""
        hops: list[Answer] = []
        url = request.url
        certificate_error = False
        sent_headers = [*request.headers, ("X-Apivigil-Probe", f"http_posture/{request.probe}")]
        shown = list(sent_headers)
        first = True
        while True:
            if self.rate_limited:
                return Exchange(
                    request.probe, request.method, request.url, tuple(shown), tuple(hops),
                    error="not sent: the target rate-limited this run (429)",
                    certificate_error=certificate_error,
                )  # fmt: skip
            if not ((first and prepaid) or (not first and self.budget.take())):
                self.budget.skipped.append(f"{request.probe} {url}")
                return Exchange(
                    request.probe, request.method, request.url, tuple(shown), tuple(hops),
                    error="left out: the request budget was spent"
                    + (f" before {url} (a redirect) was followed" if hops else ""),
                    certificate_error=certificate_error,
                )  # fmt: skip
            first = False
            headers = dict(sent_headers)
            if request.credentials and self.auth and self._may_carry_credentials(url):
                headers[self.auth[0]] = self.auth[1]
                shown.append((self.auth[0], "(configured credential)"))
            try:
                answer = self._fetch(
                    request.method, url, headers, derived=self._derived(url, hops),
                    partial_body=request.probe is Probe.HTTP,
                )  # fmt: skip
            except _DeadlinePassed:
                raise
            except _CertificateError:
                certificate_error = True
                if not self.budget.take():
                    self.budget.skipped.append(f"{request.probe} {url} (unverified retry)")
                    return Exchange(
                        request.probe, request.method, request.url, tuple(shown), tuple(hops),
                        error="the certificate did not verify; no budget left to retry",
                        certificate_error=True,
                    )  # fmt: skip
                try:
                    answer = self._fetch(
                        request.method,
                        url,
                        headers,
                        derived=self._derived(url, hops),
                        verify=self.unverified,
                        partial_body=request.probe is Probe.HTTP,
                    )
                except _DeadlinePassed:
                    raise
                except CheckError as error:
                    return self._failed(request, shown, hops, error, certificate_error)
            except CheckError as error:
                return self._failed(request, shown, hops, error, certificate_error)
            if answer.status == RATE_LIMITED:
                # a 429 is not the API's answer to judge: not assessed, and no more requests
                self.rate_limited = True
                retry = answer.joined("retry-after")
                return Exchange(
                    request.probe, request.method, request.url, tuple(shown), tuple(hops),
                    error=f"rate limited: {url} answered 429"
                    + (f" (Retry-After: {retry[:40]})" if retry else ""),
                    certificate_error=certificate_error,
                )  # fmt: skip
            hops.append(answer)
            location = answer.joined("location")
            if request.method != "GET" or answer.status not in _REDIRECTS or not location:
                return Exchange(
                    request.probe, request.method, request.url, tuple(shown), tuple(hops),
                    certificate_error=certificate_error,
                )  # fmt: skip
            if len(hops) > MAX_HOPS:
                return Exchange(
                    request.probe, request.method, request.url, tuple(shown), tuple(hops),
                    error=f"more than {MAX_HOPS} redirects: not followed further",
                    certificate_error=certificate_error,
                )  # fmt: skip
            url = urljoin(url, location.split(",")[0].strip())

    def _derived(self, url: str, hops: list[Answer]) -> bool:
        return bool(hops) or origin(url) not in self.configured

    def _may_carry_credentials(self, url: str) -> bool:
        return origin(url) == self.target_origin and self.target_origin[0] == "https"

    def _fetch(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        derived: bool,
        verify: ssl.SSLContext | None = None,
        partial_body: bool = False,
    ) -> Answer:
        """One request; with `partial_body` (the plain-HTTP probe, whose verdict is that it
        was answered at all) a body that stops coming after the headers is cut there."""
        if self.context.remaining() <= 0.05:
            raise _DeadlinePassed()
        try:
            response = fetch(
                url,
                method=method,
                follow_redirects=False,
                timeout=self.context.io_timeout(self.params.request_timeout.total_seconds()),
                max_bytes=self.params.max_body_bytes,
                truncate=True,  # headers are judged whatever the body's size
                partial_body=partial_body,
                verify=self.verify if verify is None else verify,
                headers=headers,
                derived=derived,
                egress=self.context.egress,
                deadline=self.context.deadline,
            )
        except TargetUnreachable as error:
            if "CERTIFICATE_VERIFY_FAILED" in error.message and url.lower().startswith("https"):
                raise _CertificateError() from None
            raise
        return Answer(
            response.url, response.status, response.headers, response.body, response.truncated
        )

    @staticmethod
    def _failed(
        request: Request,
        shown: list[tuple[str, str]],
        hops: list[Answer],
        error: CheckError,
        certificate_error: bool,
    ) -> Exchange:
        return Exchange(
            request.probe, request.method, request.url, tuple(shown), tuple(hops),
            error=error.message, certificate_error=certificate_error,
            failure=_failure(error),
        )  # fmt: skip


def _failure(error: CheckError) -> Failure:
    if isinstance(error, ConnectionRefused):
        return Failure.REFUSED
    if isinstance(error, ConnectionDropped):
        return Failure.DROPPED
    if isinstance(error, NotConnected):
        return Failure.NOT_CONNECTED
    if error.message.startswith("no answer within"):
        return Failure.TIMED_OUT
    return Failure.OTHER


class _CertificateError(Exception):
    """HTTPS answered with a certificate that did not verify (retried without verifying)."""


class _DeadlinePassed(TargetUnreachable):
    def __init__(self) -> None:
        super().__init__("the run's deadline passed before every probe was sent")
