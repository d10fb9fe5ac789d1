"""A small real HTTP(S) app on 127.0.0.1 for the http_posture tests and benchmark.

Each path answers a scripted `Route` (status, headers in order and repeated as given, body);
`reflect_origin` echoes the request's Origin into Access-Control-Allow-Origin. Every request
of every method is logged (method, path, headers) so tests assert on what really arrived.
With `cert`/`key` it serves HTTPS. `SilentListener` and `resetting_listener` are plain-HTTP
ports that accept and never answer, or accept and reset; `DroppingListener` never accepts
(connecting times out, as through a firewall that drops the port).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType

from tests.support.hostile_servers import ThreadedServer
from tests.support.http_servers import LoopbackHttpServer


@dataclass
class Route:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b'{"ok": true}'
    reflect_origin: bool = False  # Access-Control-Allow-Origin: <the request's Origin>
    credentials: bool = False  # with Access-Control-Allow-Credentials: true
    echo_trace: bool = False  # TRACE answers 200 with the request it received
    options_status: int | None = None  # OPTIONS answers this status instead
    reflect_ending: str | None = None  # reflect only Origins ending with this (a naive check)


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    headers: Mapping[str, str]


class PostureApp(LoopbackHttpServer[Logged]):
    """`with PostureApp(routes) as app:` app.url, app.port, app.log; unknown paths 404."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        fallback: Route | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        port: int = 0,
    ) -> None:
        self.routes = dict(routes)
        self.fallback = fallback or Route(404, [("Content-Type", "application/json")], b"{}")
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                app.log.append(Logged(self.command, self.path, dict(self.headers.items())))
                route = app.routes.get(path, app.fallback)
                status = route.status
                if self.command == "OPTIONS" and route.options_status is not None:
                    status = route.options_status
                self.send_response_only(status)
                for name, value in route.headers:
                    self.send_header(name, value)
                origin = self.headers.get("Origin")
                naive = route.reflect_ending is not None and (origin or "").endswith(
                    route.reflect_ending
                )
                if (route.reflect_origin or naive) and origin:
                    self.send_header("Access-Control-Allow-Origin", origin)
                    if route.credentials:
                        self.send_header("Access-Control-Allow-Credentials", "true")
                body = route.body if self.command != "HEAD" else b""
                if self.command == "TRACE" and route.echo_trace:
                    body = f"{self.requestline}\r\n{self.headers}".encode()
                    self.send_header("Content-Type", "message/http")
                self.send_header("Content-Length", str(len(body if body else route.body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_OPTIONS = do_POST = do_PUT = do_DELETE = do_PATCH = _answer
            do_TRACE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(
            Handler, port=port, tls=(cert, key) if cert is not None and key is not None else None
        )

    @property
    def log(self) -> list[Logged]:
        return self.requests

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"


JSON = ("Content-Type", "application/json")
API_HEADERS = [
    JSON,
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
]


class SilentListener(ThreadedServer):
    """`with SilentListener() as silent:` silent.url is a port whose listener accepts every
    connection (and reads what is sent) but never answers: a hung server, a timeout. With
    `answer`, it sends those bytes (a status line and headers) after reading the request,
    then hangs (or resets, with `reset`): a body that never comes."""

    def __init__(self, *, reset: bool = False, port: int = 0, answer: bytes = b"") -> None:
        super().__init__(port=port)
        self._reset = reset
        self._answer = answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def handle(self, connection: socket.socket) -> None:
        if self._reset or self._answer:
            connection.settimeout(2)
            with contextlib.suppress(OSError):
                connection.recv(65536)  # the whole request
                connection.sendall(self._answer)
        if self._reset:  # then a reset (RST)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        connection.settimeout(0.2)  # held, unanswered, until the client hangs up or we stop
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                if not connection.recv(4096):
                    return


def resetting_listener(port: int = 0) -> SilentListener:
    """A port whose listener accepts, reads the request and resets the connection (RST)
    without a byte of answer: a crashing server or a load balancer without backends."""
    return SilentListener(reset=True, port=port)


class DroppingListener:
    """`with DroppingListener() as dropping:` dropping.url is a port whose SYNs go unanswered,
    like a firewall that drops the port: its listener's accept queue is full (filled here,
    never drained) and Linux drops SYNs to a full queue, so connecting times out."""

    def __init__(self, *, port: int = 0) -> None:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(0)
        self.port = int(self._listener.getsockname()[1])
        self._fillers: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> DroppingListener:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()
