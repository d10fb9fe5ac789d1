"""Many TLS endpoints in one process: listen on N loopback ports, handshake, close.

Started by run.py. Prints one JSON line `{"ports": [...]}` on stdout once every port
listens, then serves until SIGTERM/SIGINT or until its stdin closes (so it never outlives
the benchmark). Usage:

    python tls_server.py --cert chain.pem --key leaf.key --count 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import ssl
import sys
import threading
from pathlib import Path

HOST = "127.0.0.1"
BACKLOG = 1024
HANDSHAKE_TIMEOUT_SECONDS = 10.0


def raise_fd_limit(wanted: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit to `wanted` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.num_tickets = 0  # clients hang up right after the handshake; save the work
    return context


async def _close_after_handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    # Called once the TLS handshake has completed: nothing to serve, just hang up.
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout=2.0)


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop the server when the parent closes our stdin (or dies)."""

    def wait_for_eof() -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, name="stdin-eof", daemon=True).start()


async def serve(cert: Path, key: Path, count: int) -> None:
    loop = asyncio.get_running_loop()
    # Aborted handshakes and resets are normal for a scanned server; keep stderr quiet.
    loop.set_exception_handler(lambda _loop, _context: None)
    context = server_context(cert, key)
    servers = [
        await asyncio.start_server(
            _close_after_handshake,
            HOST,
            0,
            ssl=context,
            backlog=BACKLOG,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT_SECONDS,
        )
        for _ in range(count)
    ]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _watch_stdin(loop, stop)
    sys.stdout.write(json.dumps({"ports": ports}) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", type=Path, required=True, help="PEM chain: leaf first")
    parser.add_argument("--key", type=Path, required=True, help="PEM private key of the leaf")
    parser.add_argument("--count", type=int, default=1000, help="number of ports to listen on")
    args = parser.parse_args()
    # Listening sockets + concurrent connections + slack.
    raise_fd_limit(args.count + 4096)
    asyncio.run(serve(args.cert, args.key, args.count))


if __name__ == "__main__":
    main()
