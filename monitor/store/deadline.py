"""Every round trip to PostgreSQL ends: a connection that has waited longer than its bound
for the answer to a statement, a commit, a rollback or a ping has its socket shut down.

Keepalives and tcp_user_timeout end a connection only when the kernel sees unanswered
probes or unacknowledged data. A stuck proxy, pooler or middlebox on the way keeps
acknowledging both while forwarding nothing, and libpq then waits for an answer forever.
Shutting the socket down makes the waiting call fail at once as a lost connection: the pool
discards it and the caller sees the store as unavailable instead of hanging.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

log = structlog.get_logger("apivigil.store")


class RoundTripDeadline:
    def __init__(
        self,
        limit_seconds: float,
        ping_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit_seconds
        self._ping_limit = ping_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # id(DBAPI connection) -> (connection, when its wait ends, what it waits for)
        self._waiting: dict[int, tuple[Any, float, str]] = {}
        self._dialect: Any = None
        self._thread: threading.Thread | None = None
        self.cut = 0  # connections dropped because an answer did not come in time

    def attach(self, engine: Engine) -> None:
        self._dialect = engine.dialect
        listen = sa.event.listen
        listen(engine, "before_cursor_execute", self._before_execute)
        listen(engine, "after_cursor_execute", self._after_execute)
        listen(engine, "handle_error", self._after_error)
        listen(engine, "commit", self._before_end)
        listen(engine, "rollback", self._before_end)
        listen(engine, "checkout", self._ping)  # instead of pool_pre_ping, which has no bound
        listen(engine, "reset", self._before_reset)
        for done in ("checkin", "close", "detach", "invalidate"):
            listen(engine, done, self._finished)

    # events ---------------------------------------------------------------

    def _before_execute(self, _conn: Any, cursor: Any, statement: str, *_rest: Any) -> None:
        self._arm(cursor.connection, self._limit, (statement.split(None, 1) or ["?"])[0])

    def _after_execute(self, _conn: Any, cursor: Any, *_rest: Any) -> None:
        self._disarm(cursor.connection)

    def _after_error(self, context: Any) -> None:
        cursor = getattr(context, "cursor", None)  # absent when connecting failed
        if cursor is not None:
            self._disarm(cursor.connection)

    def _before_end(self, conn: Any) -> None:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            self._arm(conn.connection.dbapi_connection, self._limit, "COMMIT/ROLLBACK")

    def _before_reset(self, dbapi_connection: Any, *_rest: Any) -> None:
        self._arm(dbapi_connection, self._limit, "ROLLBACK")  # the pool's reset on return

    def _finished(self, dbapi_connection: Any, *_rest: Any) -> None:
        if dbapi_connection is not None:
            self._disarm(dbapi_connection)

    def _ping(self, dbapi_connection: Any, *_rest: Any) -> None:
        """A pooled connection must answer a ping in time, or the pool replaces it."""
        self._arm(dbapi_connection, self._ping_limit, "ping")
        try:
            self._dialect.do_ping(dbapi_connection)
        except Exception as error:
            message = f"the pooled connection did not answer: {error}"
            raise sa.exc.DisconnectionError(message) from error
        finally:
            self._disarm(dbapi_connection)

    # the watch ------------------------------------------------------------

    def _arm(self, connection: Any, limit: float, doing: str) -> None:
        with self._lock:
            self._waiting[id(connection)] = (connection, self._clock() + limit, doing)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="apivigil-store-deadline", daemon=True
                )
                self._thread.start()

    def _disarm(self, connection: Any) -> None:
        with self._lock:
            self._waiting.pop(id(connection), None)

    def _watch(self) -> None:
        """Runs while connections wait; ends after a quiet minute (`_arm` starts it again)."""
        quiet_since = self._clock()
        while True:
            time.sleep(min(0.5, self._ping_limit / 4))
            now = self._clock()
            with self._lock:  # held while cutting: a connection cannot finish meanwhile
                if self._waiting:
                    quiet_since = now
                elif now - quiet_since > 60:
                    self._thread = None
                    return
                for key, (connection, ends, doing) in list(self._waiting.items()):
                    if ends <= now:
                        del self._waiting[key]
                        if _shut_down(connection):
                            self.cut += 1
                            log.warning(
                                "store connection dropped: no answer in time",
                                waiting_for=doing,
                            )


def _shut_down(connection: Any) -> bool:
    """Shut the connection's socket down; False when it has no socket any more."""
    try:
        descriptor = connection.fileno()
    except Exception:
        return False
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(descriptor)) as duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)
        return True
    return False
