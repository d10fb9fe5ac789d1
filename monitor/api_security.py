"""Hardening of the daemon's own HTTP API: rate limits, request size limits, errors without
traces, security headers and the TLS context."""

from __future__ import annotations

import json
import math
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.bounded_files import open_regular

log = structlog.get_logger("apivigil.api")

# Mozilla server-side TLS "intermediate" (v5.7), ECDHE only: no DH parameters to manage
MOZILLA_INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)
MOZILLA_INTERMEDIATE_GROUPS = "X25519:prime256v1:secp384r1"
HSTS = "max-age=63072000"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context: TLS 1.2+, Mozilla intermediate ciphers, no compression or
    renegotiation. Raises ssl.SSLError or OSError when the files cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(MOZILLA_INTERMEDIATE_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    # Mozilla's groups; before Python 3.13 the ssl module can set only one of them
    set_groups = getattr(context, "set_groups", None)
    if set_groups is not None:
        set_groups(MOZILLA_INTERMEDIATE_GROUPS)
    else:
        context.set_ecdh_curve("prime256v1")
    for path in (cert_file, key_file):  # a FIFO there would hold the start forever
        open_regular(path).close()
    context.load_cert_chain(cert_file, key_file)
    return context


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class RateLimiter:
    """In-memory token buckets, one per key; `take` spends one token.

    Buckets untouched long enough to be full again are dropped once `max_keys` is reached.
    """

    rate: float
    burst: int
    monotonic: Callable[[], float] = time.monotonic
    max_keys: int = 10_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> float:
        """Spend one token for `key`: 0.0 when allowed, else the seconds until one is due."""
        return self._spend(key, spend=True)

    def wait(self, key: str) -> float:
        """Like `take` without spending: 0.0 when a token is available."""
        return self._spend(key, spend=False)

    def _spend(self, key: str, spend: bool) -> float:
        now = self.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._drop_full(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                if spend:
                    bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _drop_full(self, now: float) -> None:
        refill = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= refill]:
            del self._buckets[key]


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities (which JSON cannot carry) as their names."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


async def unprocessable(_request: Request, error: Exception) -> JSONResponse:
    """422 for a body that does not validate; FastAPI's own handler fails with 500 when the
    body held NaN or Infinity (valid to Python's JSON reader, not to its writer)."""
    if not isinstance(error, RequestValidationError):
        raise error
    return JSONResponse({"detail": _finite(jsonable_encoder(error.errors()))}, status_code=422)


def too_many_requests(wait: float) -> HTTPException:
    return HTTPException(429, "rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait)))})


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI renders it as 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


async def _send_json(send: Send, status: int, document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413: by Content-Length before reading,
    and by counting the bytes as they stream in (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _send_json(
                send, 413, {"detail": f"request body larger than {self.max_bytes} bytes"}
            )
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge as error:
            if not started:
                await _send_json(send, 413, {"detail": error.detail})


class SecurityHeadersAndErrors:
    """Outermost: security headers on every response (HSTS when served over TLS), and any
    unhandled exception answered as `{"error": "internal error", "id": ...}` while the trace
    goes to the log under that id."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.headers = [*SECURITY_HEADERS]
        if hsts:
            self.headers.append((b"strict-transport-security", HSTS.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in self.headers}
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message = {**message, "headers": [*kept, *self.headers]}
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            error_id = str(uuid.uuid4())
            log.exception("unhandled error in the API", error_id=error_id, path=scope.get("path"))
            if not started:
                await _send_json(with_headers, 500, {"error": "internal error", "id": error_id})
