"""A TCP proxy on 127.0.0.1 that can turn into a black hole: on `blackhole()` it stops
forwarding in both directions but keeps every socket open, as when the peer vanishes and
its packets are dropped (no RST, no FIN); on `forward()` the link comes back and whatever
waited is delivered. Connections opened meanwhile are accepted and black-holed too."""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from sqlalchemy.engine import make_url

from tests.support.hostile_servers import ThreadedServer


class BlackholeProxy(ThreadedServer):
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        super().__init__()
        self._upstream = (upstream_host, upstream_port)
        self._flowing = threading.Event()
        self._flowing.set()

    def blackhole(self) -> None:
        self._flowing.clear()

    def forward(self) -> None:
        self._flowing.set()

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(None)
        with socket.create_connection(self._upstream, timeout=5) as upstream:
            upstream.settimeout(None)
            back = threading.Thread(target=self._pump, args=(upstream, connection), daemon=True)
            back.start()
            self._pump(connection, upstream)
            back.join()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while not self._stop.is_set():
            if not self._flowing.wait(0.2):
                continue  # black hole: nothing read, nothing sent, nothing closed
            try:
                readable, _, _ = select.select([source], [], [], 0.2)
                if not readable or not self._flowing.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            except OSError:
                break
        for end in (source, sink):  # one side ended: end the other too
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def through(proxy: BlackholeProxy, url: str) -> str:
    """A database URL whose connections go through the proxy."""
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)
