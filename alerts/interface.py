"""Alerting's contracts: receivers (Notifier) deliver one Notification or say why they could
not; the store (AlertStore) keeps what alerting reads and writes, behind value types of
`alerts.model`, so alerting never sees tables and the store never sees alerting."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Protocol

from alerts.model import (
    AlertCandidate,
    FailingCheck,
    GroupState,
    Notification,
    OutboxEntry,
    Silence,
    TickResult,
)


class NotifierError(Exception):
    """Delivery failed. `permanent` says whether retrying can help; `retry_after` (seconds)
    is the receiver's own request to wait (HTTP 429 Retry-After)."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class TemplateFailed(NotifierError):
    """A message template failed to render: permanent (a retry renders it the same way), and
    counted as a skipped template."""

    def __init__(self, message: str, template: str) -> None:
        super().__init__(message, permanent=True)
        self.template = template


class Notifier(Protocol):
    name: str

    def send(self, notification: Notification) -> None:
        """Deliver `notification` once. Returns when the receiver accepted it; raises
        NotifierError (permanent or not) otherwise. Never raises anything else for a
        delivery problem."""
        ...

    def close(self) -> None:
        """Release connections (the receiver is being replaced or the daemon stops)."""
        ...


class TickRecords(Protocol):
    """What one engine tick reads and writes, inside one store transaction."""

    def finding_candidates(self) -> list[AlertCandidate]:
        """Open findings, and resolved ones a group may still have to announce."""
        ...

    def failing_checks(self, after: int) -> list[FailingCheck]:
        """The (check, target)s of known targets whose latest `after` runs all failed."""
        ...

    def group_states(self) -> list[GroupState]: ...

    def silences_for_tick(self, now: datetime) -> list[Silence]:
        """Active silences and those that ended but whose end was not handled yet."""
        ...

    def write_tick(self, result: TickResult, now: datetime) -> None:
        """The tick's group states, outbox rows and handled silences (committed when the
        transaction ends without an error)."""
        ...


class OutboxStore(Protocol):
    def outbox_due(
        self, now: datetime, limit: int, exclude: Collection[str] = ()
    ) -> list[OutboxEntry]:
        """Undelivered, not failed, unclaimed rows whose next attempt is due, oldest first,
        except those for the receivers in `exclude`."""
        ...

    def outbox_claim(self, entry_id: str, now: datetime, lease: timedelta) -> bool:
        """True when this caller now holds the row until now + lease."""
        ...

    def outbox_delivered(self, entry_id: str, now: datetime) -> None: ...

    def outbox_failed(
        self, entry_id: str, error: str, permanent: bool, next_attempt_at: datetime
    ) -> None: ...


class AlertStore(OutboxStore, Protocol):
    """The store as alerting uses it. Raises StoreUnavailable or StoreError as the Store does."""

    def tick_transaction(self) -> AbstractContextManager[TickRecords]:
        """One transaction for one engine tick, taken in turn across instances: committed
        when the block ends normally, rolled back when it raises."""
        ...

    def outbox_release_claims(self) -> int:
        """Free every claim (a single instance starting, whose earlier self may have died
        holding them); returns how many were held."""
        ...

    def outbox_entries(
        self, failed_only: bool = False, pending_only: bool = False, limit: int = 100
    ) -> list[OutboxEntry]:
        """Outbox rows, newest first."""
        ...

    def add_silence(self, silence: Silence, now: datetime) -> None:
        """Store a silence and audit who added it."""
        ...

    def silences(self, now: datetime, include_expired: bool = False) -> list[Silence]:
        """Silences by end time; those that ended only with `include_expired`."""
        ...

    def expire_silence(self, silence_id: str, actor: str, now: datetime) -> bool:
        """End an active silence now (audited); False when none such is active."""
        ...
