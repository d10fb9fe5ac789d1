"""Hostile servers on 127.0.0.1 (context managers), for checks that must give up cleanly.

- `DribblingTlsServer(cert, key)`: answers a ClientHello with a real ServerHello flight,
  one byte per second.
- `LongChainTlsServer(cert, key)`: a TLS server whose certificate file holds the leaf and
  thousands of copies of its intermediate (see `write_long_chain`).
- `HugeBodyServer(size)`: HTTP 200 streaming `size` bytes, declared or until close.
- `DrippingHttpServer(interval)`: plain HTTP whose answer (body, or headers too) comes one
  byte every `interval` seconds, each byte well within any read timeout.
- `SlowTlsServer(cert, key, delay)`: completes each TLS handshake only after `delay` seconds.
- `gzip_bomb(size)`: gzip of `size` zero bytes (about size/1000 bytes), made once per size.
- `HangUpThenGoneServer`: hangs up after the first ClientHello and stops listening.
- `ResettingServer(read_first)`: resets every connection (RST), after reading the ClientHello
  or at once.
- `Tarpit()`: accepts TCP connections and never says a word (it hangs up when the client does).
- `GarbageServer(payload)`: answers every connection with bytes that are not TLS.
- `DrippingSmtpServer(interval)`: greets each connection one byte every `interval` seconds.

tests/conftest.py has a fixture for each of the last two.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import struct
import threading
import time
import zlib
from pathlib import Path
from types import TracebackType
from typing import Self

from monitor.certmaker import Issued


class ThreadedServer:
    """Accepts TCP connections on `host` (127.0.0.1) and serves each in a thread of its own."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError, ssl.SSLError):
            self.handle(connection)

    def handle(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._listener.close()


class Tarpit(ThreadedServer):
    """Accepts TCP connections and never says a word; each is held until the client hangs up
    (so a client that closes its sockets frees the tarpit's threads) or the server stops."""

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not connection.recv(4096):
                    return
            except TimeoutError:
                continue


class GarbageServer(ThreadedServer):
    """Answers every connection with bytes that are not TLS, then hangs up."""

    def __init__(
        self,
        payload: bytes = b"HTTP/1.1 400 Bad Request\r\n\r\nnot tls at all\r\n",
        host: str = "127.0.0.1",
    ) -> None:
        self._payload = payload
        super().__init__(host)

    def handle(self, connection: socket.socket) -> None:
        connection.recv(4096)
        connection.sendall(self._payload)


class ResettingServer(ThreadedServer):
    """Resets every connection (SO_LINGER 0, then close sends RST), after reading what the
    client sent first (`read_first`) or at once."""

    def __init__(self, *, read_first: bool = True) -> None:
        self._read_first = read_first
        super().__init__()

    def handle(self, connection: socket.socket) -> None:
        if self._read_first:
            connection.settimeout(10)
            connection.recv(65536)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class HangUpThenGoneServer(ThreadedServer):
    """Reads the first ClientHello, stops listening and hangs up cleanly (FIN, no RST): a server
    stopped in the middle of a handshake. Later connections are refused, or reset when they
    reached the backlog before the listener went."""

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(10)
        connection.recv(65536)
        self._stop.set()
        self._listener.close()


def _read_request(connection: socket.socket) -> bool:
    """Read an HTTP request's headers and its Content-Length body; False if it hung up."""
    request = b""
    while b"\r\n\r\n" not in request:
        data = connection.recv(65536)
        if not data:
            return False
        request += data
    head, _, body = request.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        data = connection.recv(65536)
        if not data:
            return False
        body += data
    return True


class _Dripping(ThreadedServer):
    """Sends `prefix` at once, then `drip` one byte every `interval` seconds, until stopped."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.requests = 0
        super().__init__()

    def answer(self, connection: socket.socket) -> tuple[bytes, bytes] | None:
        raise NotImplementedError

    def handle(self, connection: socket.socket) -> None:
        parts = self.answer(connection)
        if parts is None:
            return
        prefix, drip = parts
        connection.sendall(prefix)
        for byte in drip:
            if self._stop.wait(self.interval):
                return
            connection.sendall(bytes([byte]))


class DrippingSmtpServer(_Dripping):
    """Greets each connection (`220 ...`) one byte every `interval` seconds."""

    def answer(self, connection: socket.socket) -> tuple[bytes, bytes] | None:
        self.requests += 1
        return b"", b"220 slow.example ESMTP " + b"." * 10000 + b"\r\n"


class DribblingTlsServer(ThreadedServer):
    """Reads the ClientHello, lets OpenSSL write its real answer (ServerHello onwards) into
    memory, and sends that one byte every `interval` seconds."""

    def __init__(self, cert_file: Path, key_file: Path, interval: float = 1.0) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self._interval = interval
        self.bytes_sent = 0
        super().__init__()

    def handle(self, connection: socket.socket) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self._context.wrap_bio(incoming, outgoing, server_side=True)
        connection.settimeout(10)
        incoming.write(connection.recv(65536))
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        answer = outgoing.read()
        for index in range(len(answer)):
            if self._stop.wait(self._interval):
                return
            connection.sendall(answer[index : index + 1])
            self.bytes_sent += 1


class SlowTlsServer(ThreadedServer):
    """Waits `delay` seconds after accepting, then completes the TLS handshake: a check
    against it stays in flight long enough to kill its worker."""

    def __init__(self, cert_file: Path, key_file: Path, delay: float) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self._delay = delay
        super().__init__()

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    def handle(self, connection: socket.socket) -> None:
        if self._stop.wait(self._delay):
            return
        connection.settimeout(10)
        with self._context.wrap_socket(connection, server_side=True):
            pass


def write_long_chain(
    directory: Path, leaf: Issued, intermediate: Issued, copies: int
) -> tuple[Path, Path]:
    """`long.crt` (leaf, then `copies` times the intermediate) and `long.key`."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "long.crt", directory / "long.key"
    cert_file.write_bytes(leaf.pem + intermediate.pem * copies)
    key_file.write_bytes(leaf.key_pem)
    key_file.chmod(0o600)
    return cert_file, key_file


class LongChainTlsServer(ThreadedServer):
    """Completes handshakes with the chain in `cert_file`, however long, then hangs up."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        super().__init__()

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(10)
        with self._context.wrap_socket(connection, server_side=True) as tls:
            tls.recv(1)


class _HttpServer(ThreadedServer):
    """Reads each HTTP request's head, then lets `answer` write whatever it likes."""

    @property
    def url(self) -> str:
        return f"http://{self.address}/openapi.json"

    requests = 0

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(10)
        if not _read_request(connection):
            return
        self.requests += 1
        self.answer(connection)

    def answer(self, connection: socket.socket) -> None:
        raise NotImplementedError


class HugeBodyServer(_HttpServer):
    """Answers any request with 200 and `size` bytes of JSON-looking filler, sent as fast as
    the client reads; with `declare` the size is in Content-Length, else the body ends at
    close."""

    def __init__(self, size: int = 100 * 1024 * 1024, *, declare: bool = True) -> None:
        self._size = size
        self._declare = declare
        self.bytes_sent = 0
        super().__init__()

    def answer(self, connection: socket.socket) -> None:
        length = f"Content-Length: {self._size}\r\n" if self._declare else "Connection: close\r\n"
        connection.sendall(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n".encode()
        )
        block = b" " * 65536
        started = time.monotonic()
        while self.bytes_sent < self._size and time.monotonic() - started < 60:
            if self._stop.is_set():
                return
            connection.sendall(block[: self._size - self.bytes_sent])
            self.bytes_sent += min(len(block), self._size - self.bytes_sent)


class DrippingHttpServer(_HttpServer):
    """Answers any request with 200 and then one body byte every `interval` seconds for up
    to `seconds` (the body is declared long enough never to end sooner); with
    `headers_too` the status line and headers come one byte at a time as well. A client
    bounded only per read is held for `seconds` and then gets a complete answer."""

    def __init__(
        self, interval: float = 0.2, *, seconds: float = 60.0, headers_too: bool = False
    ) -> None:
        self._interval = interval
        self._seconds = seconds
        self._headers_too = headers_too
        self.bytes_sent = 0
        super().__init__()

    def answer(self, connection: socket.socket) -> None:
        started = time.monotonic()
        length = int(self._seconds / self._interval) + 1
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        if not self._headers_too:
            connection.sendall(head.encode())
            head = ""
        answer = head.encode() + b" " * length
        for index in range(len(answer)):
            if time.monotonic() - started > self._seconds:
                connection.sendall(answer[index:])  # the rest at once: the answer is complete
                return
            if self._stop.wait(self._interval):
                return
            connection.sendall(answer[index : index + 1])
            self.bytes_sent += 1


@functools.cache
def gzip_bomb(size: int = 1024**3) -> bytes:
    """A gzip stream that inflates to `size` zero bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.compress(bytes(size % len(block))))
    parts.append(compressor.flush())
    return b"".join(parts)
