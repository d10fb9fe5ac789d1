"""A small HTTPS server on loopback for the demo and tests (stdlib ssl, a thread per connection)."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

_INTERMEDIATE_CIPHERS = ":".join(
    f"ECDHE-{key}-{suite}"
    for suite in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305")
    for key in ("ECDSA", "RSA")
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok", "service": "apivigil demo target"}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Strict-Transport-Security", "max-age=31536000")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(address, _Handler)

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, address = super().get_request()
        sock.settimeout(10)
        return self._context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address

    def handle_error(self, request: object, client_address: object) -> None:
        return  # clients that hang up mid-handshake are normal for a scanned server


class HttpsServer:
    """`with HttpsServer(cert, key) as server:` serves on 127.0.0.1:server.port."""

    def __init__(
        self, cert_file: Path, key_file: Path, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        # The Mozilla intermediate configuration, so that a demo target with a valid
        # certificate is clean: TLS 1.2+, AEAD ECDHE suites only, one of its curves
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(_INTERMEDIATE_CIPHERS)
        context.set_ecdh_curve("prime256v1")
        self._server = _TlsServer((host, port), context)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"https:{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> HttpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
