"""SqlStore's alerting methods: each one transaction over monitor.store.alerting."""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session

from alerts.engine import AlertCandidate, GroupState, TickResult
from alerts.model import Silence
from alerts.outbox import OutboxEntry
from monitor.store import alerting

TickFunction = Callable[[list[AlertCandidate], list[GroupState], list[Silence]], TickResult]


class _HasSession(Protocol):
    def _session(self) -> AbstractContextManager[Session]: ...


class SqlAlertingMixin:
    """Needs `_session()` from SqlStore."""

    def alert_tick(
        self: _HasSession, decide: TickFunction, check_failing_after: int, now: datetime
    ) -> TickResult:
        """Read candidates, group states and silences, let `decide` compute the tick, and
        write its group states and outbox rows in the same transaction."""
        with self._session() as session:
            if session.get_bind().dialect.name == "postgresql":
                # one tick at a time across instances: a deposed leader's last tick then sees
                # the new leader's group states, and the level-triggered engine sends nothing twice
                session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('apivigil:tick'))"))
            result = decide(
                alerting.candidates(session, check_failing_after, now),
                alerting.group_states(session),
                alerting.silences_for_tick(session, now),
            )
            alerting.commit_tick(session, result, now)
            session.commit()
        return result

    def outbox_due(
        self: _HasSession, now: datetime, limit: int, exclude: Collection[str] = ()
    ) -> list[OutboxEntry]:
        with self._session() as session:
            return alerting.due(session, now, limit, exclude)

    def outbox_claim(self: _HasSession, entry_id: str, now: datetime, lease: timedelta) -> bool:
        with self._session() as session:
            claimed = alerting.claim(session, entry_id, now, lease)
            session.commit()
            return claimed

    def outbox_release_claims(self: _HasSession) -> int:
        with self._session() as session:
            released = alerting.release_claims(session)
            session.commit()
            return released

    def outbox_delivered(self: _HasSession, entry_id: str, now: datetime) -> None:
        with self._session() as session:
            alerting.mark_delivered(session, entry_id, now)
            session.commit()

    def outbox_failed(
        self: _HasSession, entry_id: str, error: str, permanent: bool, next_attempt_at: datetime
    ) -> None:
        with self._session() as session:
            alerting.mark_failed(session, entry_id, error, permanent, next_attempt_at)
            session.commit()

    def outbox_entries(
        self: _HasSession, failed_only: bool = False, pending_only: bool = False, limit: int = 100
    ) -> list[OutboxEntry]:
        with self._session() as session:
            return alerting.entries(session, failed_only, pending_only, limit)

    def add_silence(self: _HasSession, silence: Silence, now: datetime) -> None:
        with self._session() as session:
            alerting.add_silence(session, silence, now)
            session.commit()

    def silences(self: _HasSession, now: datetime, include_expired: bool = False) -> list[Silence]:
        with self._session() as session:
            return alerting.list_silences(session, now, include_expired)

    def expire_silence(self: _HasSession, silence_id: str, actor: str, now: datetime) -> bool:
        with self._session() as session:
            expired = alerting.expire_silence(session, silence_id, actor, now)
            session.commit()
            return expired


__all__ = ["OutboxEntry", "SqlAlertingMixin", "TickFunction"]
