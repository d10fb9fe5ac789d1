"""One sslyze Scanner per server, stopped at a cap: a hostile server holds only its own scan.

A Scanner shared by several servers yields nothing before every one of them has finished
connectivity testing, and sslyze cannot cancel a scan: one tarpit held a healthy server's
result until the run's deadline, and every abandoned Scanner kept its ~50 threads for as
long as a hostile server kept talking (a ServerHello at one byte a second never trips a
per-read timeout). So each server gets a Scanner of its own; when its cap passes, every
socket of that scan is shut down and new ones are refused, so sslyze's jobs fail at once
and its threads end. Connectivity testing has a shorter cap of its own: against a tarpit
sslyze tries eleven handshakes, each until its network timeout. `servers_at_once` still
bounds how many scans (and their threads) run in the process.

sslyze opens every socket through `tls_connection._open_socket(location, timeout)`. That
function is wrapped once; a scan's sockets are told apart by its ServerNetworkLocation
object, registered for as long as the scan's threads live.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from sslyze import (
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
    ServerTlsProbingResult,
)
from sslyze.connection_helpers import tls_connection
from sslyze.errors import ConnectionToServerFailed
from sslyze.scanner.scanner_observer import ScannerObserver

SocketOpener = Callable[[ServerNetworkLocation, int], socket.socket]


class ScanStopped(Exception):
    """The scan was still running when its cap passed; its threads are ending."""


class NoHandshake(ScanStopped):
    """Connectivity testing (the first handshakes) was still running at its cap."""


class NoScanSlot(Exception):
    """`servers_at_once` scans were running for the whole cap."""


@dataclass(eq=False)
class _ScanSockets:
    """The sockets one scan opened; once stopped, shut down and refusing new ones."""

    ends_at: float
    stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    live: weakref.WeakSet[socket.socket] = field(default_factory=weakref.WeakSet)

    def open_socket(
        self, opener: Callable[[float], socket.socket], timeout: float
    ) -> socket.socket:
        left = self.ends_at - time.monotonic()
        if left <= 0:
            self.stopped = True
        if self.stopped:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "the scan was stopped")
        sock = opener(min(timeout, left))  # no read outlives the cap either
        with self.lock:
            if not self.stopped:
                self.live.add(sock)
                return sock
        sock.close()
        raise ConnectionRefusedError(errno.ECONNREFUSED, "the scan was stopped")

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            sockets = list(self.live)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by sslyze
                sock.shutdown(socket.SHUT_RDWR)


class _Registry:
    """Scans in flight by id() of their ServerNetworkLocation (ids of live objects are unique)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scans: dict[int, _ScanSockets] = {}
        self.original: SocketOpener | None = None

    def install(self) -> None:
        with self.lock:
            if self.original is None:
                self.original = tls_connection._open_socket
                tls_connection._open_socket = self.open_socket

    @contextlib.contextmanager
    def registered(self, location: ServerNetworkLocation, sockets: _ScanSockets) -> Iterator[None]:
        with self.lock:
            self.scans[id(location)] = sockets
        try:
            yield
        finally:
            with self.lock:
                del self.scans[id(location)]

    def open_socket(
        self, server_location: ServerNetworkLocation, network_timeout: int
    ) -> socket.socket:
        """sslyze's _open_socket, stopped with the scan of `server_location` if it has one."""
        original = self.original
        assert original is not None
        scan = self.scans.get(id(server_location))
        if scan is None:
            return original(server_location, network_timeout)
        return scan.open_socket(
            lambda timeout: original(server_location, timeout),  # type: ignore[arg-type]
            network_timeout,
        )


_REGISTRY = _Registry()


def _reset_registry_lock() -> None:
    _REGISTRY.lock = threading.Lock()  # a fork may have copied it held


os.register_at_fork(after_in_child=_reset_registry_lock)


class _ConnectivityDone(ScannerObserver):
    """Sets `done` when sslyze has finished connectivity testing, either way."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def server_connectivity_test_error(
        self, server_scan_request: ServerScanRequest, connectivity_error: ConnectionToServerFailed
    ) -> None:
        self.done.set()

    def server_connectivity_test_completed(
        self, server_scan_request: ServerScanRequest, connectivity_result: ServerTlsProbingResult
    ) -> None:
        self.done.set()

    def server_scan_completed(self, server_scan_result: ServerScanResult) -> None:
        self.done.set()

    def all_server_scans_completed(self) -> None:
        self.done.set()


@functools.cache
def _slots(servers_at_once: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(servers_at_once)


os.register_at_fork(after_in_child=_slots.cache_clear)


@dataclass(frozen=True, slots=True)
class ScanLimits:
    per_server_connections: int
    servers_at_once: int
    cap: float  # seconds for the whole scan, waiting for a slot included
    connectivity_cap: float  # seconds for connectivity testing


def scan_server(request: ServerScanRequest, limits: ScanLimits) -> ServerScanResult:
    """The scan of `request`'s one server, run by a Scanner of its own.

    Raises NoScanSlot when no slot came free within the cap; NoHandshake when connectivity
    testing had not finished within its cap, ScanStopped when the scan had not finished
    within the cap (then its sockets are shut down and its threads end on their own).
    """
    _REGISTRY.install()
    ends_at = time.monotonic() + limits.cap
    slots = _slots(limits.servers_at_once)
    if not slots.acquire(timeout=limits.cap):
        raise NoScanSlot(f"{limits.servers_at_once} TLS scans were running the whole time")
    sockets = _ScanSockets(ends_at)
    connectivity = _ConnectivityDone()
    outcome: Future[ServerScanResult] = Future()
    thread = threading.Thread(
        target=_drive,
        args=(request, limits.per_server_connections, sockets, connectivity, outcome, slots),
        name=f"sslyze {request.server_location.ip_address}:{request.server_location.port}",
        daemon=True,
    )
    try:
        thread.start()
    except BaseException:
        slots.release()
        raise
    try:
        shorter = limits.connectivity_cap < ends_at - time.monotonic()
        if shorter and not connectivity.done.wait(limits.connectivity_cap):
            raise NoHandshake("connectivity testing was still running at its cap")
        result = outcome.result(timeout=max(0.0, ends_at - time.monotonic()))
        if sockets.stopped:  # done just as the cap passed, with connections refused
            raise ScanStopped("the scan ended at its cap")
        return result
    except FutureTimeout:
        raise ScanStopped("the scan was still running at its cap") from None
    finally:
        sockets.stop()


def _drive(
    request: ServerScanRequest,
    per_server_connections: int,
    sockets: _ScanSockets,
    connectivity: _ConnectivityDone,
    outcome: Future[ServerScanResult],
    slots: threading.BoundedSemaphore,
) -> None:
    """Run the Scanner to its end (its threads joined), whether or not anyone still waits."""
    try:
        with _REGISTRY.registered(request.server_location, sockets):
            scanner = Scanner(
                per_server_concurrent_connections_limit=per_server_connections,
                concurrent_server_scans_limit=1,
                observers=[connectivity],
            )
            scanner.queue_scans([request])
            for result in scanner.get_results():
                if not outcome.done():
                    outcome.set_result(result)
    except Exception as error:
        if not outcome.done():
            outcome.set_exception(error)
    finally:
        slots.release()
        connectivity.done.set()  # also when sslyze failed before or during the test
    if not outcome.done():
        outcome.set_exception(RuntimeError("sslyze returned no result for this server"))
