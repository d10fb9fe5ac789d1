"""The one function receivers use for HTTP: a total deadline, a user agent, and errors that
say whether a retry can help (`NotifierError.permanent`, `retry_after`).

httpx's timeouts bound each read, so a receiver that answers one byte every few seconds
would hold a POST for as long as it likes. Every socket operation of our clients is
therefore given at most the time left until the POST's deadline (`monitor.http_deadline`),
and the POST ends with a timeout when that time is up."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from alerts.interface import NotifierError
from monitor import __version__
from monitor.http_deadline import bound_by_deadline

USER_AGENT = f"apivigil/{__version__}"
_MAX_RESPONSE_BYTES = 1024 * 1024
# 4xx answers a retry cannot fix; 408 and 429 are not among them
PERMANENT_CLIENT_ERRORS = frozenset({400, 401, 403, 404, 405, 410, 413, 414, 415, 422})


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self, limit: int = 300) -> str:
        return self.body[:limit].decode("utf-8", "replace")


class SharedClient:
    """One connection pool per receiver, made on first use and kept: a new client per POST
    loads the CA bundle every time (about 16 ms a notification, measured)."""

    def __init__(self, verify: bool | str = True) -> None:
        self._verify = verify
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(verify=self._verify, follow_redirects=False)
                bound_by_deadline(self._client, lambda: _deadline.at)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def post(
    url: str,
    body: bytes,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
    verify: bool | str = True,
    what: str = "POST",
    client: SharedClient | None = None,
) -> HttpAnswer:
    """POST `body`; return the answer for 2xx. Raise NotifierError otherwise: permanent for
    4xx a retry cannot fix, with `retry_after` from a 429's or 503's Retry-After."""
    request_headers = {"User-Agent": USER_AGENT, "Content-Type": content_type, **(headers or {})}
    shared = client or SharedClient(verify)
    _deadline.at = time.monotonic() + timeout
    try:
        with shared.get().stream(
            "POST", url, content=body, headers=request_headers, timeout=timeout
        ) as response:
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > _MAX_RESPONSE_BYTES:
                    break
            answer = HttpAnswer(response.status_code, dict(response.headers), data)
    except httpx.TimeoutException:
        raise NotifierError(f"{what} {_safe(url)}: no answer within {timeout:g} s") from None
    except httpx.InvalidURL as error:
        raise NotifierError(f"{what}: invalid URL: {error}", permanent=True) from None
    except httpx.HTTPError as error:
        raise NotifierError(f"{what} {_safe(url)}: {error or type(error).__name__}") from None
    finally:
        _deadline.at = None
        if client is None:
            shared.close()
    if 200 <= answer.status < 300:
        return answer
    message = f"{what} {_safe(url)}: HTTP {answer.status} {answer.text(200)!r}"
    if answer.status in (429, 503):
        raise NotifierError(message, retry_after=retry_after_seconds(answer.headers))
    raise NotifierError(message, permanent=answer.status in PERMANENT_CLIENT_ERRORS)


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() by which the current POST must end


_deadline = _Deadline()


def post_json(
    url: str,
    document: object,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    verify: bool | str = True,
    what: str = "POST",
    client: SharedClient | None = None,
) -> HttpAnswer:
    body = json.dumps(document, separators=(",", ":"), default=str).encode()
    return post(
        url, body, timeout=timeout, headers=headers, verify=verify, what=what, client=client
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or junk."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _safe(url: str) -> str:
    """The URL without its path: webhook paths are secrets (Slack, most chat tools)."""
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.host}" + (f":{parts.port}" if parts.port else "")
