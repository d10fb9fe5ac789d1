"""Engines for the store: SQLite tuned for a single writer and kept private to its owner,
PostgreSQL with bounded waits (see limits.py and deadline.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from monitor.redact import mask_secrets
from monitor.store.deadline import RoundTripDeadline
from monitor.store.interface import StoreError
from monitor.store.limits import ConnectionLimits

log = structlog.get_logger("apivigil.store")
DEFAULT_LIMITS = ConnectionLimits()


def create_engine_for(url: str, limits: ConnectionLimits = DEFAULT_LIMITS) -> Engine:
    """An engine for `url`. SQLite gets WAL, synchronous=NORMAL, a busy timeout, foreign keys
    and a database file only its owner can read; PostgreSQL gets `limits` (timeouts,
    keepalives) and, while statements are bounded, a deadline on every round trip."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(f"store URL {mask_secrets(url)!r} is not valid: {error}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            private_database_file(path)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        round_trip = limits.round_trip_seconds
        engine = sa.create_engine(
            parsed,
            pool_pre_ping=round_trip is None,  # else the deadline pings, within its bound
            pool_size=10,
            max_overflow=20,
            pool_timeout=limits.pool_seconds,
            connect_args=limits.connect_args(parsed),
        )
        if round_trip is not None:
            RoundTripDeadline(round_trip, ping_seconds=limits.connect_seconds).attach(engine)
        return engine
    raise StoreError(
        f"store URL {mask_secrets(url)!r}: only sqlite:/// and postgresql+psycopg:// are supported"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # takes effect only on a database without tables yet: lets retention shrink the file
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def private_database_file(path: Path) -> None:
    """Create the SQLite database file 0600 before SQLite does (it holds the key that masks
    secrets); SQLite gives its -wal and -shm files the database file's mode. An existing
    file that other users may open is left alone, with a warning at start."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # SQLite says what is wrong when it opens the file
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            log.warning(
                "the store file is open to other users; it holds the key that masks secrets: "
                "chmod 600 it",
                file=str(candidate),
                mode=f"{mode:04o}",
            )
