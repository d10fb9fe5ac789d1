"""Real HTTP servers on 127.0.0.1 for tests.

- `LoopbackHttpServer`: the lifecycle every test HTTP server shares. A ThreadingHTTPServer on
  127.0.0.1 (a free port unless one is given), HTTPS when given a certificate chain and key,
  served from a thread between `with` and its end; `record()` keeps what arrived, in order.
- `ScriptedHttpServer`: answers a test changes between runs.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Generic, Self, TypeVar

Request = TypeVar("Request")


class LoopbackHttpServer(Generic[Request]):
    """`with server:` serves `handler` on server.url until the block ends; `requests` holds
    what `record()` was given, in order (handlers run in threads of their own)."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.host = host
        self.requests: list[Request] = []
        self._recording = threading.Lock()
        self._http = ThreadingHTTPServer((host, port), handler)
        self._http.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
            self.scheme = "https"
        self.port: int = self._http.server_address[1]
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def record(self, request: Request) -> None:
        with self._recording:
            self.requests.append(request)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._http.shutdown()
        self._http.server_close()


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds to stall before answering


class ScriptedHttpServer(LoopbackHttpServer[tuple[str, dict[str, str]]]):
    """Serves `replies[path]` (404 otherwise); tests edit `replies` between requests.
    `requests` holds (path, headers) of each request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.replies: dict[str, Reply] = {}
        self.post_handlers: dict[str, Callable[[bytes], Reply]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.record((self.path, dict(self.headers.items())))
                reply = server.replies.get(self.path, Reply(404, {}, b"not found"))
                if reply.delay:
                    time.sleep(reply.delay)
                self._send(reply)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.record((self.path, dict(self.headers.items())))
                handler = server.post_handlers.get(self.path)
                reply = handler(body) if handler else Reply(404, {}, b"not found")
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def send_response(self, code: int, message: str | None = None) -> None:
                # No automatic Server header: tests decide every header a reply carries.
                self.send_response_only(code, message)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler, host=host, port=port)
