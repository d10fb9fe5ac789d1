"""Leader election on a PostgreSQL session-level advisory lock, with self-fencing.

The lock lives on a dedicated connection (autocommit, not pooled, TCP keepalives on both
ends). The leader confirms every `heartbeat` that its session still holds the lock; when a
confirmation fails, or none succeeded for `fence_after`, it stops leading at once and
drops the connection. PostgreSQL releases the lock of a dead session: when the holder's
process dies, at once; when the network fails, after the server-side keepalives give up,
which is set to happen later than the leader fences itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import structlog
from sqlalchemy.engine import make_url

from monitor.clock import Clock, SystemClock
from monitor.cluster.config import ElectionConfig

log = structlog.get_logger("apivigil.election")

_CONNECT_TIMEOUT_SECONDS = 5
_SERVER_KEEPALIVE_PROBES = 3


def default_lock_id(namespace: str) -> int:
    """A stable signed 64-bit advisory lock key per installation namespace."""
    digest = hashlib.sha256(f"apivigil-leader:{namespace}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def connection_params(store_url: str, config: ElectionConfig) -> dict[str, Any]:
    """libpq parameters for the election connection, from the store's SQLAlchemy URL.

    Server side, the session dies (and the lock is released) once the peer has been silent
    for longer than `fence_after` plus a few keepalive probes; the leader stops itself
    before that.
    """
    url = make_url(store_url)
    params: dict[str, Any] = {
        key: value
        for key, value in {
            "host": url.host,
            "port": url.port,
            "user": url.username,
            "password": url.password,
            "dbname": url.database,
        }.items()
        if value is not None
    }
    for key, value in url.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    fence_seconds = max(1, math.ceil(config.fence_after.total_seconds()))
    server_side = (
        f"-c tcp_keepalives_idle={fence_seconds} -c tcp_keepalives_interval=1 "
        f"-c tcp_keepalives_count={_SERVER_KEEPALIVE_PROBES} "
        f"-c tcp_user_timeout={(fence_seconds + _SERVER_KEEPALIVE_PROBES) * 1000} "
        f"-c statement_timeout={fence_seconds * 1000}"
    )
    params["options"] = f"{params.get('options', '')} {server_side}".strip()
    params.update(
        application_name="apivigil-leader-election",
        connect_timeout=_CONNECT_TIMEOUT_SECONDS,
        keepalives=1,
        keepalives_idle=1,
        keepalives_interval=1,
        keepalives_count=_SERVER_KEEPALIVE_PROBES,
        tcp_user_timeout=fence_seconds * 1000,
    )
    return params


class LeaderElection:
    """Campaigns in a background thread; `on_elected` / `on_deposed` run in order on a
    thread of their own, so a slow leadership change never delays a heartbeat."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        lock_id: int,
        config: ElectionConfig,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        clock: Clock | None = None,
    ) -> None:
        self._connect = connect
        self._lock_id = lock_id
        self._config = config
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._clock = clock or SystemClock()
        self._stop = threading.Event()
        self._state = threading.Lock()
        self._leading = False
        self._confirmed_at = 0.0
        self._drop_connection = False
        self._connection: psycopg.Connection[Any] | None = None
        self._callbacks = ThreadPoolExecutor(1, thread_name_prefix="apivigil-leadership")
        self._thread = threading.Thread(target=self._campaign, name="apivigil-election")
        self._watchdog = threading.Thread(target=self._watch, name="apivigil-fence")
        self._thread.daemon = self._watchdog.daemon = True

    # state --------------------------------------------------------------

    def is_leader(self) -> bool:
        """True while the lock is held and was confirmed within `fence_after`."""
        with self._state:
            return self._leading and self._fresh()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _fresh(self) -> bool:
        age = self._clock.monotonic() - self._confirmed_at
        return age < self._config.fence_after.total_seconds()

    # lifecycle ----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._watchdog.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop campaigning, step down (callbacks run first) and release the lock."""
        self._stop.set()
        self._thread.join(timeout)
        self._depose("shutting down")
        self._callbacks.shutdown(wait=True)
        self._close()

    # the campaign -------------------------------------------------------

    def _campaign(self) -> None:
        heartbeat = self._config.heartbeat.total_seconds()
        retry = self._config.retry.total_seconds()
        while not self._stop.is_set():
            wait = retry
            try:
                if self._drop_connection:
                    self._close()
                if self._connection is None:
                    self._connection = self._connect()
                if self._leading:
                    self._confirm()
                else:
                    self._try_lock()
                wait = heartbeat if self._leading else retry
            except (psycopg.Error, OSError) as error:
                log.warning("election connection failed", error=str(error).strip())
                self._depose("the election connection failed")
                self._close()
            self._stop.wait(wait)

    def _try_lock(self) -> None:
        assert self._connection is not None
        row = self._connection.execute(
            "SELECT pg_try_advisory_lock(%s)", (self._lock_id,)
        ).fetchone()
        if row is None or not row[0]:
            return
        with self._state:
            self._leading = True
            self._confirmed_at = self._clock.monotonic()
        log.info("elected leader", lock_id=self._lock_id)
        self._callbacks.submit(self._call, self._on_elected)

    def _confirm(self) -> None:
        assert self._connection is not None
        row = self._connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 1",
            ((self._lock_id >> 32) & 0xFFFFFFFF, self._lock_id & 0xFFFFFFFF),
        ).fetchone()
        if row is None or row[0] != 1:
            self._depose("the advisory lock is no longer held")
            return
        with self._state:
            if self._leading:
                self._confirmed_at = self._clock.monotonic()

    def _watch(self) -> None:
        """Fence even while a heartbeat hangs on a silent network."""
        interval = self._config.heartbeat.total_seconds() / 2
        while not self._stop.wait(interval):
            with self._state:
                stale = self._leading and not self._fresh()
            if stale:
                self._depose(f"no heartbeat confirmed for {self._config.fence_after}")

    def _depose(self, reason: str) -> None:
        with self._state:
            if not self._leading:
                return
            self._leading = False
            self._drop_connection = True  # the session may still hold the lock: end it
        log.warning("stepped down as leader", reason=reason)
        self._callbacks.submit(self._call, self._on_deposed)

    def _call(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("leadership change failed")
            if callback is self._on_elected:
                self._depose("taking over failed")

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        self._drop_connection = False
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                connection.close()
