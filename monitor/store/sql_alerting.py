"""SqlStore's door for alerting's records: a transaction over `monitor.store.alert_rows`.
`monitor.alert_records` builds alerting's AlertStore on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from sqlmodel import Session


class _HasSession(Protocol):
    def _session(self) -> AbstractContextManager[Session]: ...


class SqlAlertingMixin:
    """Needs `_session()` from SqlStore."""

    @contextmanager
    def alert_transaction(self: _HasSession) -> Iterator[Session]:
        """A session for alerting's rows: committed when the block ends normally, rolled
        back when it raises; database errors become StoreUnavailable or StoreError."""
        with self._session() as session:
            yield session
            session.commit()


__all__ = ["SqlAlertingMixin"]
