"""Real HTTP(S) servers on 127.0.0.1 for the auth_posture tests: every request, whatever its
method, is answered by a route function and written to `requests`, so a test can prove
which methods were (never) sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.support.http_servers import LoopbackHttpServer

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]

    @property
    def probe(self) -> str | None:
        return self.headers.get("X-Apivigil-Probe")


Route = Callable[[Seen], Answer]


class RecordingServer(LoopbackHttpServer[Seen]):
    """`with RecordingServer(route) as server:` answers on server.url; TLS when given a
    certificate chain file and key."""

    def __init__(self, route: Route, tls: tuple[Path, Path] | None = None) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen = Seen(self.command, self.path, dict(self.headers.items()))
                recorder.record(seen)
                answer = route(seen)
                self.send_response_only(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        for method in METHODS:
            setattr(Handler, f"do_{method}", Handler._any)
        super().__init__(Handler, tls=tls)
