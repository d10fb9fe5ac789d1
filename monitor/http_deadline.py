"""httpx clients whose every socket operation ends by a deadline (checks' runs, receivers'
POSTs alike).

httpx's timeouts bound each read, not a whole answer: a server that sends its headers or
its body one byte at a time within each read timeout holds the caller for as long as it
likes. Here every connect, TLS handshake, read and write is given at most the time left
before the deadline (a `time.monotonic()` value, read from `deadline_of` at each operation,
None for no deadline) and fails as a timeout once it has passed, which httpx raises as
httpx.TimeoutException. httpx takes no network backend, so its pools' one is wrapped in
place.

Vocabulary shared with checks, alerts and dashboards: one of the few monitor modules they
may import (the import-linter contracts in pyproject.toml); it imports no other part of
monitor.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

DeadlineOf = Callable[[], float | None]


def deadline_transport(
    verify: bool | str | ssl.SSLContext, deadline: float | None
) -> httpx.HTTPTransport:
    """An HTTPTransport verifying TLS as `verify` says, no socket operation of which
    outlives `deadline` (when given)."""
    transport = httpx.HTTPTransport(verify=verify)
    if deadline is not None:
        _wrap(transport, lambda: deadline)
    return transport


def bound_by_deadline(client: httpx.Client, deadline_of: DeadlineOf) -> None:
    """Put every connection pool of `client` (proxies from the environment included) on
    the deadline `deadline_of` gives at each socket operation."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    if not sum(_wrap(transport, deadline_of) for transport in transports):
        raise RuntimeError("httpx/httpcore changed: no connection pool to bound by a deadline")


def passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _wrap(transport: object, deadline_of: DeadlineOf) -> bool:
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.NetworkBackend):
        return False
    pool._network_backend = _DeadlineBackend(backend, deadline_of)  # type: ignore[union-attr]
    return True


def _bounded(
    timeout: float | None, deadline_of: DeadlineOf, error: type[Exception]
) -> float | None:
    deadline = deadline_of()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline_of: DeadlineOf) -> None:
        self._stream = stream
        self._deadline_of = deadline_of

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        bounded = _bounded(timeout, self._deadline_of, httpcore.ReadTimeout)
        return self._stream.read(max_bytes, bounded)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, self._deadline_of, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, self._deadline_of, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, bounded), self._deadline_of
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend, deadline_of: DeadlineOf) -> None:
        self._backend = backend
        self._deadline_of = deadline_of

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, self._deadline_of, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline_of)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, self._deadline_of, httpcore.ConnectTimeout)
        stream = self._backend.connect_unix_socket(path, bounded, socket_options)
        return _DeadlineStream(stream, self._deadline_of)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
