"""TCP relays on 127.0.0.1 in front of a TLS server, for scans that must meet a slow or silent
peer (context managers, or `close()`).

- `TlsRelay(upstream_port, accept_delay=..., holds=...)`: relays every connection both ways;
  `accept_delay` seconds before each accept (one at a time: in front of a single-threaded
  server a scanner's parallel connections queue and time out); `holds(index, hello)` keeps a
  connection (numbered from 1, with its first bytes, the ClientHello) open without a byte of
  answer, like a server that stops answering mid-scan.
- `RenegotiationHoldingRelay(upstream_port)`: passes each TLS 1.2 connection's first
  handshake, then holds every handshake record the client sends: a client-initiated
  renegotiation never reaches the server and is never answered, nor refused.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from typing import Self

from tests.support.ports import HOST


class TlsRelay:
    def __init__(
        self,
        upstream_port: int,
        *,
        accept_delay: float = 0.0,
        holds: Callable[[int, bytes], bool] | None = None,
    ) -> None:
        self._upstream = upstream_port
        self._accept_delay = accept_delay
        self._holds = holds
        self._listener = socket.create_server((HOST, 0), backlog=256)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def holds(self, index: int, hello: bytes) -> bool:
        """Whether connection `index` (from 1), whose client sent `hello` first, is held."""
        return self._holds is not None and self._holds(index, hello)

    def client_bytes(self) -> Callable[[bytes], bytes]:
        """For one connection: what of the client's bytes to send upstream (all of them)."""
        return lambda data: data

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._accepter.join(timeout=5)
        for held in self._held:
            held.close()

    def _accept(self) -> None:
        index = 0
        while not self._stop.is_set():
            if self._accept_delay and self._stop.wait(self._accept_delay):
                return
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            index += 1
            threading.Thread(target=self._relay, args=(client, index), daemon=True).start()

    def _relay(self, client: socket.socket, index: int) -> None:
        hello = b""
        with contextlib.suppress(OSError):
            client.settimeout(10)
            hello = client.recv(16384)
            if hello and self.holds(index, hello):
                self._held.append(client)
                return
        forward = self.client_bytes()
        with (
            client,
            contextlib.suppress(OSError),  # either side may reset: the relay just ends
            socket.create_connection((HOST, self._upstream), timeout=10) as upstream,
        ):
            if not hello:
                return
            upstream.sendall(forward(hello))
            while not self._stop.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client:
                        upstream.sendall(forward(data))
                    else:
                        client.sendall(data)


class RenegotiationHoldingRelay(TlsRelay):
    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)

    def client_bytes(self) -> Callable[[bytes], bytes]:
        return _FirstHandshakeOnly().forward


class _FirstHandshakeOnly:
    """A connection's client-to-server TLS records until the client starts a second handshake
    (an encrypted handshake record after its Finished); from then on, nothing."""

    def __init__(self) -> None:
        self._records: bool | None = None  # None until the first bytes say
        self._buffer = b""
        self._cipher_spec_changed = False
        self._finished = False
        self._holding = False

    def forward(self, data: bytes) -> bytes:
        if self._records is None:
            self._records = 20 <= data[0] <= 24  # not so for an SSL 2.0 hello
        if not self._records:
            return data
        self._buffer += data
        passed = b""
        while not self._holding and len(self._buffer) >= 5:
            end = 5 + int.from_bytes(self._buffer[3:5], "big")
            if len(self._buffer) < end:
                break
            record, self._buffer = self._buffer[:end], self._buffer[end:]
            if record[0] == 20:  # change_cipher_spec
                self._cipher_spec_changed = True
            elif record[0] == 22 and self._cipher_spec_changed:  # an encrypted handshake
                self._holding = self._finished
                self._finished = True
            if not self._holding:
                passed += record
        if self._holding:
            self._buffer = b""
        return passed
