"""How long a PostgreSQL store may keep the daemon waiting: connect, statement and lock
timeouts, TCP keepalives and tcp_user_timeout on both ends, and the pool's wait.

A peer that vanishes without a RST (a dropped link, a stuck proxy) otherwise leaves libpq
waiting for an answer forever, and recording with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # settings import this module; the CLI must not load SQLAlchemy for it
    from sqlalchemy.engine import URL


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    connect_seconds: float = 10.0
    statement_seconds: float | None = 30.0  # None: no statement_timeout (migrations)
    lock_seconds: float | None = 10.0
    idle_in_transaction_seconds: float = 300.0
    keepalive_idle_seconds: float = 10.0
    keepalive_interval_seconds: float = 5.0
    keepalive_count: int = 3
    tcp_user_timeout_seconds: float = 30.0
    pool_seconds: float = 10.0

    @property
    def round_trip_seconds(self) -> float | None:
        """How long the client waits for one answer before dropping the connection: longer
        than the server's own statement_timeout, so a slow statement is cancelled cleanly by
        the server first and only an answer that cannot arrive hits this bound."""
        if self.statement_seconds is None:
            return None
        return self.statement_seconds + max(5.0, self.connect_seconds)

    def unbounded_statements(self) -> ConnectionLimits:
        """The same link settings without statement or lock timeouts (schema migrations)."""
        return replace(self, statement_seconds=None, lock_seconds=None)

    def connect_args(self, url: URL) -> dict[str, Any]:
        """libpq parameters for psycopg; anything the URL's query sets itself wins."""
        server = {
            "statement_timeout": _ms(self.statement_seconds),
            "lock_timeout": _ms(self.lock_seconds),
            "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction_seconds),
            # the server's side of the link: a client that vanished loses its session (and
            # the locks it held) instead of keeping them until the kernel's 2-hour default
            "tcp_keepalives_idle": _whole(self.keepalive_idle_seconds),
            "tcp_keepalives_interval": _whole(self.keepalive_interval_seconds),
            "tcp_keepalives_count": self.keepalive_count,
            "tcp_user_timeout": _ms(self.tcp_user_timeout_seconds),
        }
        ours = " ".join(f"-c {name}={value}" for name, value in server.items())
        theirs = url.query.get("options")
        theirs = theirs if isinstance(theirs, str | None) else theirs[-1]
        args: dict[str, Any] = {
            "connect_timeout": _whole(self.connect_seconds),
            "keepalives": 1,
            "keepalives_idle": _whole(self.keepalive_idle_seconds),
            "keepalives_interval": _whole(self.keepalive_interval_seconds),
            "keepalives_count": self.keepalive_count,
            "tcp_user_timeout": _ms(self.tcp_user_timeout_seconds),
            # later -c settings win: the URL's own options come last
            "options": f"{ours} {theirs}" if theirs else ours,
        }
        return {key: value for key, value in args.items() if key not in url.query} | {
            "options": args["options"]
        }


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else max(1, math.ceil(seconds * 1000))


def _whole(seconds: float) -> int:
    return max(1, math.ceil(seconds))
