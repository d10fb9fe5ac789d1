"""The one function checks use for outbound HTTP: timeouts, size caps, redirects recorded,
a user agent, and errors that name the URL."""

from __future__ import annotations

import os
import ssl
import threading
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from checks.egress import EgressPolicy
from checks.interface import BadInput, CheckMisconfigured, TargetUnreachable
from checks.network import is_ip_literal
from monitor import __version__
from monitor.http_deadline import deadline_transport, passed

USER_AGENT = f"apivigil/{__version__} (+https://github.com/apivigil)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})
_DEADLINE_PASSED = "the run's deadline passed before the answer was complete"
_PIECE = 64 * 1024  # most bytes one step of inflating a compressed body may produce
# all `fetch` ever sends: RFC 9110's safe methods (TRACE only where a caller opts in)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class ConnectionRefused(TargetUnreachable):
    """Nothing accepted the connection: the port answered the SYN with a reset
    (ECONNREFUSED). A deliberate, repeatable answer, unlike a timeout."""


class NotConnected(TargetUnreachable):
    """No connection within the timeout: nothing answered the SYN (a firewall that drops the
    port, a host that is down). Unlike a server that accepts and then hangs."""


class ConnectionDropped(TargetUnreachable):
    """The connection was accepted, then reset or closed before a whole answer arrived."""


@dataclass(frozen=True, slots=True)
class Redirect:
    status: int
    location: str


@dataclass(frozen=True, slots=True)
class HttpResponse:
    url: str  # after redirects
    status: int
    headers: tuple[tuple[str, str], ...]  # as received: names keep their case
    body: bytes
    redirects: tuple[Redirect, ...]
    truncated: bool = False  # `body` is its beginning only (fetch's truncate, partial_body)

    def header_values(self) -> dict[str, str]:
        """Lower-cased header name -> value; repeated headers joined with ', '."""
        joined: dict[str, list[str]] = {}
        for name, value in self.headers:
            joined.setdefault(name.lower(), []).append(value)
        return {name: ", ".join(values) for name, values in joined.items()}


def fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    max_redirects: int = 5,
    verify: bool | str | ssl.SSLContext = True,
    headers: Mapping[str, str] | None = None,
    read_body: bool = True,
    max_header_bytes: int = 64 * 1024,
    derived: bool = False,
    egress: EgressPolicy,
    deadline: float | None = None,
    method: str = "GET",
    follow_redirects: bool = True,
    truncate: bool = False,
    partial_body: bool = False,
) -> HttpResponse:
    """GET (or HEAD) `url`, following up to `max_redirects` redirects (each recorded, no
    body read); without `follow_redirects`, a redirect is the answer (its Location kept).

    `method` may be HEAD, OPTIONS or TRACE instead (safe methods only: anything else is
    CheckMisconfigured before a connection is made; HEAD reads no body). With
    `follow_redirects` False a redirect is returned as the response, not followed.

    Every redirect's target, and `url` itself when `derived` (it came from remote content,
    e.g. a `$ref`), must pass `egress` (the run's `CheckContext.egress`) before any
    connection to it is made. With a `deadline` (a `time.monotonic()` value, the run's),
    the whole exchange ends by it however slowly the server sends headers or body.

    With `truncate`, a body over `max_bytes` is cut there (the response says `truncated`)
    instead of being an error: for callers that judge headers and a body's beginning.
    With `partial_body`, a body that stops coming once the status and headers arrived (a
    timeout, a reset or close, the deadline) is returned as far as it came, `truncated`: for
    callers to whom the answer itself is the verdict (a plain-HTTP port that answered 200
    served plain HTTP, however its body ends).

    Raises TargetUnreachable (no connection or answer in time, the deadline passed, a
    redirect loop; ConnectionRefused, NotConnected and ConnectionDropped say how a
    connection failed),
    BadInput (headers over `max_header_bytes`, a body over `max_bytes`, an
    address the egress policy denies) or CheckMisconfigured (not a URL, a CA bundle that
    cannot be loaded), each naming the URL.
    """
    request_headers = {
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "gzip, deflate",  # what _decoded undoes in bounded pieces
        **(headers or {}),
    }
    if method not in SAFE_METHODS:
        raise CheckMisconfigured(f"{method} is not a safe method to send", subject=url)
    read_body = read_body and method != "HEAD"
    redirects: list[Redirect] = []
    current = url
    vetted = egress.check_url(url, timeout=timeout) if derived else ()
    try:
        with _client(verify, timeout, deadline) as client:
            while True:
                address, pin_headers, pin_extensions = _pinned(current, vetted)
                with client.stream(
                    method,
                    address,
                    headers={**request_headers, **pin_headers},
                    extensions=pin_extensions,
                ) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location and follow_redirects:
                        following = urljoin(current, location)
                        # a redirect's target comes from the answer: checked before the limit
                        # so that a redirect to a denied address is reported as such
                        vetted = egress.check_url(following, timeout=timeout)
                        if len(redirects) >= max_redirects:
                            raise TargetUnreachable(
                                f"more than {max_redirects} redirects", subject=url
                            )
                        redirects.append(Redirect(response.status_code, location))
                        if _origin(following) != _origin(current):
                            # credentials are for the origin they were configured for
                            for name in [n for n in request_headers if n.lower() in _CREDENTIALS]:
                                del request_headers[name]
                        current = following
                        continue
                    received = tuple(
                        (name.decode("latin-1"), value.decode("latin-1"))
                        for name, value in response.headers.raw
                    )
                    size = sum(len(name) + len(value) + 4 for name, value in received)
                    if size > max_header_bytes:
                        raise BadInput(
                            f"response headers of {size} bytes exceed the limit of "
                            f"{max_header_bytes}",
                            subject=current,
                        )
                    body, truncated = (
                        _read_capped(
                            response,
                            max_bytes,
                            current,
                            deadline,
                            truncate=truncate,
                            partial=partial_body,
                        )
                        if read_body
                        else (b"", False)
                    )
                    return HttpResponse(
                        url=current,
                        status=response.status_code,
                        headers=received,
                        body=body,
                        redirects=tuple(redirects),
                        truncated=truncated,
                    )
    except httpx.TimeoutException as error:
        raise _timed_out(
            timeout, deadline, current, connected=not isinstance(error, httpx.ConnectTimeout)
        ) from None
    except httpx.InvalidURL as error:
        raise CheckMisconfigured(f"not a URL to GET: {error}", subject=current) from None
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise _failed_as(error)(f"{method} failed: {reason}", subject=current) from None


def _failed_as(error: httpx.HTTPError) -> type[TargetUnreachable]:
    """Which TargetUnreachable `error` is: refused (a reset to the SYN), dropped (accepted,
    then reset or closed before a whole answer) or neither (DNS, TLS, a protocol error)."""
    causes: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.ConnectError) and any(
        isinstance(c, ConnectionRefusedError) for c in causes
    ):
        return ConnectionRefused
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError) and (
        any(isinstance(c, ConnectionResetError) for c in causes)
        or "disconnected" in str(error)
        or "closed connection" in str(error)
    ):
        return ConnectionDropped
    return TargetUnreachable


def _client(
    verify: bool | str | ssl.SSLContext, timeout: float, deadline: float | None
) -> httpx.Client:
    context = verify if isinstance(verify, ssl.SSLContext) else tls_context(verify)
    transport = deadline_transport(context, deadline)
    return httpx.Client(
        verify=context, timeout=timeout, follow_redirects=False, transport=transport
    )


_TLS_CONTEXTS: dict[tuple[object, ...], ssl.SSLContext] = {}
_TLS_CONTEXTS_LOCK = threading.Lock()


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS context for `verify` (True: the default CA bundle; a path: that PEM bundle or
    directory alone; False: no verification), made once per setting and CA bundle version:
    loading a bundle takes ~60 ms, which many small requests (auth probes, bursts, a posture
    run's probes) would pay each. A changed bundle file (size or mtime) or SSL_CERT_FILE/
    SSL_CERT_DIR makes a new one. A bundle that cannot be loaded is CheckMisconfigured.

    A bundle's version is its file's identity and change time as well as its size and mtime
    (a file rewritten in place by `cp -p` keeps both), for the bundle of `verify` and for
    the one SSL_CERT_FILE names (True honours it, as httpx does)."""
    cert_file = os.environ.get("SSL_CERT_FILE")
    key: tuple[object, ...] = (
        verify,
        _file_version(verify) if isinstance(verify, str) else None,
        cert_file,
        _file_version(cert_file) if cert_file and verify is True else None,
        os.environ.get("SSL_CERT_DIR"),
    )
    with _TLS_CONTEXTS_LOCK:
        context = _TLS_CONTEXTS.get(key)
        if context is None:
            try:
                if isinstance(verify, str):
                    context = (
                        ssl.create_default_context(capath=verify)
                        if os.path.isdir(verify)
                        else ssl.create_default_context(cafile=verify)
                    )
                else:
                    context = httpx.create_ssl_context(verify=verify)
            except (OSError, ssl.SSLError) as error:
                where = verify if isinstance(verify, str) else "the default CA bundle"
                raise CheckMisconfigured(f"cannot load the CA bundle {where}: {error}") from None
            _TLS_CONTEXTS[key] = context
        return context


def _file_version(path: str) -> tuple[int, ...] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None  # ssl reports the missing file when the context is made
    return (
        status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns,
    )  # fmt: skip


def _timed_out(
    timeout: float, deadline: float | None, url: str, *, connected: bool = True
) -> TargetUnreachable:
    if passed(deadline):
        return TargetUnreachable(_DEADLINE_PASSED, subject=url)
    kind = TargetUnreachable if connected else NotConnected
    return kind(f"no answer within {timeout:g} s", subject=url)


def _pinned(url: str, vetted: tuple[str, ...]) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL to request, extra headers and request extensions. When the egress policy
    vetted addresses for `url`'s host, the connection goes to the first of them instead of
    resolving the name again; Host and SNI (so the certificate check) still use the name."""
    parsed = httpx.URL(url)
    if not vetted or is_ip_literal(parsed.host):
        return parsed, {}, {}
    return (
        parsed.copy_with(host=vetted[0]),
        {"Host": parsed.netloc.decode("ascii")},
        {"sni_hostname": parsed.raw_host.decode("ascii")},
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _read_capped(
    response: httpx.Response,
    max_bytes: int,
    url: str,
    deadline: float | None,
    *,
    truncate: bool = False,
    partial: bool = False,
) -> tuple[bytes, bool]:
    """The body and whether it was cut at `max_bytes` (only with `truncate`; without it a
    larger body is BadInput) or, with `partial`, where it stopped coming (a timeout, a reset
    or close, the deadline)."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes and not truncate:
        raise BadInput(f"response body of {declared} bytes exceeds {max_bytes}", subject=url)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in _decoded(response, url):
            if size + len(chunk) > max_bytes:
                if not truncate:
                    raise BadInput(f"response body exceeds {max_bytes} bytes", subject=url)
                chunks.append(chunk[: max_bytes - size])
                return b"".join(chunks), True
            size += len(chunk)
            if passed(deadline):
                raise TargetUnreachable(_DEADLINE_PASSED, subject=url)
            chunks.append(chunk)
    except (httpx.TimeoutException, httpx.ReadError, httpx.RemoteProtocolError):
        if not partial:
            raise
        return b"".join(chunks), True
    except TargetUnreachable:
        if not partial:
            raise
        return b"".join(chunks), True
    return b"".join(chunks), False


def _decoded(response: httpx.Response, url: str) -> Iterator[bytes]:
    """The body with its Content-Encoding undone in pieces of at most `_PIECE` bytes, so a
    gzip bomb inflates no further than the cap (httpx's decoder inflates a whole network
    read at once: 64 KiB of gzip can be 64 MiB). Unknown encodings pass through as httpx
    does."""
    codings = [
        coding.strip().lower()
        for coding in response.headers.get("content-encoding", "").split(",")
        if coding.strip().lower() not in ("", "identity")
    ]
    body: Iterator[bytes] = response.iter_raw()
    for coding in reversed(codings):  # the last coding applied is undone first
        if coding in ("gzip", "x-gzip", "deflate"):
            body = _inflate(body, url, gzip=coding != "deflate")
    return body


def _inflate(compressed: Iterator[bytes], url: str, *, gzip: bool) -> Iterator[bytes]:
    # deflate is zlib-wrapped by the standard, raw in some servers: try zlib first
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
    started = False
    try:
        for chunk in compressed:
            data = chunk
            while data and not inflater.eof:
                try:
                    piece = inflater.decompress(data, _PIECE)
                except zlib.error:
                    if gzip or started:
                        raise
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    piece = inflater.decompress(data, _PIECE)
                started = True
                data = inflater.unconsumed_tail
                if piece:
                    yield piece
        # output held back by the last max_length, in pieces as well
        while not inflater.eof and (piece := inflater.decompress(b"", _PIECE)):
            yield piece
    except zlib.error as error:
        raise BadInput(
            f"response body is not valid {'gzip' if gzip else 'deflate'}: {error}", subject=url
        ) from None


def post_json(
    url: str,
    document: object,
    *,
    timeout: float,
    max_bytes: int,
    verify: bool | str = True,
    deadline: float | None = None,
) -> HttpResponse:
    """POST `document` as JSON (no redirects followed); `deadline` and errors as for `fetch`."""
    try:
        with (
            _client(verify, timeout, deadline) as client,
            client.stream(
                "POST", url, json=document, headers={"User-Agent": USER_AGENT}
            ) as response,
        ):
            body, _ = _read_capped(response, max_bytes, url, deadline)
            return HttpResponse(
                url=url,
                status=response.status_code,
                headers=tuple(response.headers.items()),
                body=body,
                redirects=(),
            )
    except httpx.TimeoutException:
        raise _timed_out(timeout, deadline, url) from None
    except httpx.InvalidURL as error:
        raise CheckMisconfigured(f"not a URL to POST to: {error}", subject=url) from None
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise TargetUnreachable(f"POST failed: {reason}", subject=url) from None
