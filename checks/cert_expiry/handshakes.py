"""One I/O thread that drives every TLS handshake of the process, non-blocking.

Many checks run at once; if each drove its own handshake, dozens of threads would fight
over the GIL between tiny OpenSSL calls and spend more CPU on switching than on TLS.
Here callers submit a handshake and sleep on a Future while a single selector loop does
the work. Each request carries its own deadline; errors come back as CheckError
subclasses, naming the address.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import heapq
import itertools
import os
import queue
import selectors
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from cryptography import x509
from OpenSSL import SSL

from checks.interface import BadInput, CheckError, TargetUnreachable
from monitor.model import Endpoint

_CONNECTING = "connecting"
_HANDSHAKING = "handshaking"
# the peer dropped the connection (RST): the network's answer, not what the server sent
_RESET_BY_PEER = {errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE}


@functools.cache
def client_context() -> SSL.Context:
    """Offer every protocol version and cipher and verify nothing: we only read the chain."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE)
    context.set_min_proto_version(0)
    context.set_cipher_list(b"ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return context


def describe_tls_error(error: SSL.Error) -> str:
    if isinstance(error, SSL.SysCallError):
        code, text = (*error.args, None, None)[:2]
        return "unexpected EOF" if code == -1 else str(text or code)
    reasons = [entry[2] for entry in (error.args[0] if error.args else []) if len(entry) > 2]
    return ", ".join(str(reason) for reason in reasons) or str(error)


@dataclass(eq=False)
class _Handshake:
    address: str
    port: int
    server_name: str | None
    deadline: float
    connect_timeout: float
    future: Future[list[x509.Certificate]] = field(default_factory=Future)
    sock: socket.socket | None = None
    connection: SSL.Connection | None = None
    phase: str = _CONNECTING

    @property
    def where(self) -> str:
        return str(Endpoint(self.address, self.port))


class HandshakeEngine:
    """Submit handshakes from any thread; `fetch_chain` blocks the caller until done."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._incoming: queue.SimpleQueue[_Handshake] = queue.SimpleQueue()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._deadlines: list[tuple[float, int, _Handshake]] = []
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._loop, name="tls-handshakes", daemon=True)
        self._thread.start()

    def fetch_chain(
        self,
        address: str,
        port: int,
        server_name: str | None,
        connect_timeout: float,
        deadline: float,
    ) -> list[x509.Certificate]:
        """The chain served at address:port, leaf first. Raises TargetUnreachable or BadInput."""
        request = _Handshake(
            address=address,
            port=port,
            server_name=server_name,
            deadline=min(deadline, time.monotonic() + connect_timeout),
            connect_timeout=connect_timeout,
        )
        self._incoming.put(request)
        with contextlib.suppress(BlockingIOError):  # full: the loop is already due to wake
            self._wake_write.send(b"\0")
        # the loop enforces the deadline; the margin only guards against a dead loop
        return request.future.result(timeout=max(0.0, request.deadline - time.monotonic()) + 30)

    def _loop(self) -> None:
        while True:
            timeout = None
            if self._deadlines:
                timeout = max(0.0, self._deadlines[0][0] - time.monotonic())
            for key, events in self._selector.select(timeout):
                if key.data is None:
                    self._drain_wakeups()
                else:
                    self._advance(key.data, events)
            self._accept_new()
            self._expire(time.monotonic())

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _accept_new(self) -> None:
        while True:
            try:
                request = self._incoming.get_nowait()
            except queue.Empty:
                return
            heapq.heappush(self._deadlines, (request.deadline, next(self._order), request))
            self._start(request)

    def _start(self, request: _Handshake) -> None:
        try:
            family = socket.AF_INET6 if ":" in request.address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            request.sock = sock
            sock.setblocking(False)
            code = sock.connect_ex((request.address, request.port))
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise TargetUnreachable(
                    f"TCP connection failed: {os.strerror(code)}", subject=request.where
                )
            self._selector.register(sock, selectors.EVENT_WRITE, request)
        except CheckError as error:
            self._finish(request, error=error)
        except OSError as error:
            self._finish(
                request,
                error=TargetUnreachable(
                    f"TCP connection failed: {error.strerror or error}", subject=request.where
                ),
            )

    def _advance(self, request: _Handshake, _events: int) -> None:
        try:
            if request.phase == _CONNECTING:
                assert request.sock is not None
                code = request.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise TargetUnreachable(
                        f"TCP connection failed: {os.strerror(code)}", subject=request.where
                    )
                connection = SSL.Connection(client_context(), request.sock)
                if request.server_name:
                    connection.set_tlsext_host_name(request.server_name.encode("idna"))
                connection.set_connect_state()
                request.connection = connection
                request.phase = _HANDSHAKING
            self._step_handshake(request)
        except CheckError as error:
            self._finish(request, error=error)
        except Exception as error:
            self._finish(request, error=error)

    def _step_handshake(self, request: _Handshake) -> None:
        connection = request.connection
        assert connection is not None
        assert request.sock is not None
        try:
            connection.do_handshake()
        except SSL.WantReadError:
            self._selector.modify(request.sock, selectors.EVENT_READ, request)
            return
        except SSL.WantWriteError:
            self._selector.modify(request.sock, selectors.EVENT_WRITE, request)
            return
        except ConnectionError as error:
            raise TargetUnreachable(
                f"the connection was reset during the TLS handshake ({error.strerror or error})",
                subject=request.where,
            ) from None
        except SSL.SysCallError as error:
            if error.args and error.args[0] in _RESET_BY_PEER:
                raise TargetUnreachable(
                    "the connection was reset during the TLS handshake "
                    f"({describe_tls_error(error)})",
                    subject=request.where,
                ) from None
            raise BadInput(
                f"the connection closed during the TLS handshake ({describe_tls_error(error)})",
                subject=request.where,
            ) from None
        except SSL.Error as error:
            raise BadInput(
                f"not a usable TLS server: {describe_tls_error(error)}", subject=request.where
            ) from None
        chain = connection.get_peer_cert_chain(as_cryptography=True) or []
        if not chain:
            raise BadInput(
                "the server completed the handshake without a certificate", subject=request.where
            )
        self._finish(request, chain=chain)

    def _expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, request = heapq.heappop(self._deadlines)
            if request.future.done():
                continue
            if request.phase == _CONNECTING:
                message = f"no TCP connection within {request.connect_timeout:g}s"
            else:
                message = "no TLS handshake answer in time"
            self._finish(request, error=TargetUnreachable(message, subject=request.where))

    def _finish(
        self,
        request: _Handshake,
        chain: list[x509.Certificate] | None = None,
        error: BaseException | None = None,
    ) -> None:
        if request.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(request.sock)
            request.sock.close()
        if request.future.done():
            return
        if error is not None:
            request.future.set_exception(error)
        else:
            request.future.set_result(chain or [])


@functools.cache
def shared_engine() -> HandshakeEngine:
    """The process's engine, started on first use."""
    return HandshakeEngine()


# A forked child has no engine thread: let it start its own.
os.register_at_fork(after_in_child=shared_engine.cache_clear)
