"""A small real HTTP(S) app on 127.0.0.1 for the http_posture tests and benchmark.

Each path answers a scripted `Route` (status, headers in order and repeated as given, body);
`reflect_origin` echoes the request's Origin into Access-Control-Allow-Origin. Every request
of every method is logged (method, path, headers) so tests assert on what really arrived.
With `cert`/`key` it serves HTTPS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

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

        super().__init__(Handler, tls=(cert, key) if cert is not None and key is not None else None)

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
