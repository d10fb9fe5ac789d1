"""The one function checks use for outbound HTTP: timeouts, size caps, redirects recorded,
a user agent, and errors that name the URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from checks.interface import BadInput, TargetUnreachable
from monitor import __version__

USER_AGENT = f"apivigil/{__version__} (+https://github.com/apivigil)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Redirect:
    status: int
    location: str


@dataclass(frozen=True, slots=True)
class HttpResponse:
    url: str  # after redirects
    status: int
    headers: tuple[tuple[str, str], ...]  # lower-cased names, in the order received
    body: bytes
    redirects: tuple[Redirect, ...]

    def header_values(self) -> dict[str, str]:
        """Header name -> value; repeated headers joined with ', '."""
        joined: dict[str, list[str]] = {}
        for name, value in self.headers:
            joined.setdefault(name, []).append(value)
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
) -> HttpResponse:
    """GET `url`, following up to `max_redirects` redirects (each recorded).

    Raises TargetUnreachable (no connection or answer in time) or BadInput (a body over
    `max_bytes`, too many redirects), each naming the URL.
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
                            raise BadInput(f"more than {max_redirects} redirects", subject=url)
                        redirects.append(Redirect(response.status_code, location))
                        current = urljoin(current, location)
                        continue
                    body = _read_capped(response, max_bytes, current) if read_body else b""
                    return HttpResponse(
                        url=current,
                        status=response.status_code,
                        headers=tuple(
                            (name.lower(), value) for name, value in response.headers.items()
                        ),
                        body=body,
                        redirects=tuple(redirects),
                    )
    except httpx.TimeoutException:
        raise TargetUnreachable(f"no answer within {timeout:g} s", subject=current) from None
    except httpx.HTTPError as error:
        raise TargetUnreachable(f"{type(error).__name__}: {error}", subject=current) from None


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
