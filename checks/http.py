"""The one function checks use for outbound HTTP: timeouts, size caps, redirects recorded,
a user agent, and errors that name the URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from checks.interface import BadInput, CheckMisconfigured, TargetUnreachable
from monitor import __version__

USER_AGENT = f"apivigil/{__version__} (+https://github.com/apivigil)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


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
    verify: bool | str = True,
    headers: Mapping[str, str] | None = None,
    read_body: bool = True,
    max_header_bytes: int = 64 * 1024,
) -> HttpResponse:
    """GET `url`, following up to `max_redirects` redirects (each recorded, no body read).

    Raises TargetUnreachable (no connection or answer in time, a redirect loop), BadInput
    (headers over `max_header_bytes`, a body over `max_bytes`) or CheckMisconfigured (not a
    URL), each naming the URL.
    """
    request_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    redirects: list[Redirect] = []
    current = url
    try:
        with httpx.Client(verify=verify, timeout=timeout, follow_redirects=False) as client:
            while True:
                with client.stream("GET", current, headers=request_headers) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        if len(redirects) >= max_redirects:
                            raise TargetUnreachable(
                                f"more than {max_redirects} redirects", subject=url
                            )
                        redirects.append(Redirect(response.status_code, location))
                        following = urljoin(current, location)
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
                    body = _read_capped(response, max_bytes, current) if read_body else b""
                    return HttpResponse(
                        url=current,
                        status=response.status_code,
                        headers=received,
                        body=body,
                        redirects=tuple(redirects),
                    )
    except httpx.TimeoutException:
        raise TargetUnreachable(f"no answer within {timeout:g} s", subject=current) from None
    except httpx.InvalidURL as error:
        raise CheckMisconfigured(f"not a URL to GET: {error}", subject=current) from None
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise TargetUnreachable(f"GET failed: {reason}", subject=current) from None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _read_capped(response: httpx.Response, max_bytes: int, url: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BadInput(f"response body of {declared} bytes exceeds {max_bytes}", subject=url)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise BadInput(f"response body exceeds {max_bytes} bytes", subject=url)
        chunks.append(chunk)
    return b"".join(chunks)


def post_json(
    url: str, document: object, *, timeout: float, max_bytes: int, verify: bool | str = True
) -> HttpResponse:
    """POST `document` as JSON (no redirects followed); errors as for `fetch`."""
    try:
        with (
            httpx.Client(verify=verify, timeout=timeout, follow_redirects=False) as client,
            client.stream(
                "POST", url, json=document, headers={"User-Agent": USER_AGENT}
            ) as response,
        ):
            body = _read_capped(response, max_bytes, url)
            return HttpResponse(
                url=url,
                status=response.status_code,
                headers=tuple(response.headers.items()),
                body=body,
                redirects=(),
            )
    except httpx.TimeoutException:
        raise TargetUnreachable(f"no answer within {timeout:g} s", subject=url) from None
    except httpx.InvalidURL as error:
        raise CheckMisconfigured(f"not a URL to POST to: {error}", subject=url) from None
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise TargetUnreachable(f"POST failed: {reason}", subject=url) from None
