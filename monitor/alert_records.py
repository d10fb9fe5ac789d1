"""Alerting's AlertStore on the SQL store: maps the rows of `monitor.store.alert_rows` to
and from alerting's value types (`alerts.model`). The store knows no alerting; alerting
knows no tables; this module is where the two meet."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlmodel import Session

from alerts.codec import notification_to_json, notified_from_json, notified_to_json
from alerts.interface import TickRecords
from alerts.model import (
    Alert,
    AlertCandidate,
    AlertState,
    FailingCheck,
    GroupState,
    OutboxEntry,
    Silence,
    TickResult,
    group_id,
)
from checks.controls import controls_for
from monitor.model import FindingStatus, Severity
from monitor.store import alert_rows
from monitor.store.interface import Store
from monitor.store.tables import AlertGroupRow, FindingRow, OutboxRow, SilenceRow


class AlertRecords:
    """AlertStore over a Store; each method one transaction."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @contextmanager
    def tick_transaction(self) -> Iterator[TickRecords]:
        with self._store.alert_transaction() as session:
            alert_rows.lock_tick(session)
            yield _TickRecords(session)

    def outbox_due(
        self, now: datetime, limit: int, exclude: Collection[str] = ()
    ) -> list[OutboxEntry]:
        with self._store.alert_transaction() as session:
            return [_entry(row) for row in alert_rows.due(session, now, limit, exclude)]

    def outbox_claim(self, entry_id: str, now: datetime, lease: timedelta) -> bool:
        with self._store.alert_transaction() as session:
            return alert_rows.claim(session, entry_id, now, lease)

    def outbox_release_claims(self) -> int:
        with self._store.alert_transaction() as session:
            return alert_rows.release_claims(session)

    def outbox_delivered(self, entry_id: str, now: datetime) -> None:
        with self._store.alert_transaction() as session:
            alert_rows.mark_delivered(session, entry_id, now)

    def outbox_failed(
        self, entry_id: str, error: str, permanent: bool, next_attempt_at: datetime
    ) -> None:
        with self._store.alert_transaction() as session:
            alert_rows.mark_failed(session, entry_id, error, permanent, next_attempt_at)

    def outbox_entries(
        self, failed_only: bool = False, pending_only: bool = False, limit: int = 100
    ) -> list[OutboxEntry]:
        with self._store.alert_transaction() as session:
            rows = alert_rows.entries(session, failed_only, pending_only, limit)
            return [_entry(row) for row in rows]

    def add_silence(self, silence: Silence, now: datetime) -> None:
        row = SilenceRow(
            id=silence.id,
            matchers=json.dumps(dict(silence.matchers), sort_keys=True),
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            created_by=silence.created_by,
            comment=silence.comment,
            created_at=now,
        )
        with self._store.alert_transaction() as session:
            alert_rows.add_silence(session, row, silence.matchers, now)

    def silences(self, now: datetime, include_expired: bool = False) -> list[Silence]:
        with self._store.alert_transaction() as session:
            return [_silence(row) for row in alert_rows.silence_rows(session, now, include_expired)]

    def expire_silence(self, silence_id: str, actor: str, now: datetime) -> bool:
        with self._store.alert_transaction() as session:
            return alert_rows.expire_silence(session, silence_id, actor, now)


class _TickRecords:
    """TickRecords over one open session (the tick's transaction)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._labels: dict[str, dict[str, str]] | None = None

    def _target_labels(self) -> dict[str, dict[str, str]]:
        if self._labels is None:
            self._labels = alert_rows.target_labels(self._session)
        return self._labels

    def finding_candidates(self) -> list[AlertCandidate]:
        labels = self._target_labels()
        return [_candidate(row, labels) for row in alert_rows.announceable_findings(self._session)]

    def failing_checks(self, after: int) -> list[FailingCheck]:
        labels = self._target_labels()
        return [
            FailingCheck(
                check=failed.check,
                target=failed.target,
                failed_runs=failed.count,
                since=failed.first_started_at,
                last_error=failed.last_error,
                labels=labels.get(failed.target, {}),
            )
            for failed in alert_rows.failed_runs(self._session, after, labels.keys())
        ]

    def group_states(self) -> list[GroupState]:
        return [
            GroupState(
                id=row.id,
                route=row.route,
                receiver=row.receiver,
                group_key=row.group_key,
                labels=json.loads(row.labels),
                firing_since=row.firing_since,
                last_sent_at=row.last_sent_at,
                notified=notified_from_json(row.notified),
            )
            for row in alert_rows.group_rows(self._session)
        ]

    def silences_for_tick(self, now: datetime) -> list[Silence]:
        return [_silence(row) for row in alert_rows.silence_rows_for_tick(self._session, now)]

    def write_tick(self, result: TickResult, now: datetime) -> None:
        session = self._session
        for state in result.upserts:
            alert_rows.save_group(
                session,
                AlertGroupRow(
                    id=state.id,
                    route=state.route,
                    receiver=state.receiver,
                    group_key=state.group_key,
                    labels=json.dumps(dict(state.labels), sort_keys=True),
                    firing_since=state.firing_since,
                    last_sent_at=state.last_sent_at,
                    notified=notified_to_json(state.notified),
                ),
            )
        alert_rows.delete_groups(session, result.deleted)
        for notification in result.notifications:
            alert_rows.add_outbox_row(
                session,
                entry_id=notification.dedup_key,
                receiver=notification.receiver,
                group_id=group_id(
                    notification.route, notification.receiver, notification.group_key
                ),
                kind=notification.kind.value,
                payload=notification_to_json(notification),
                now=now,
            )
        alert_rows.mark_silences_handled(session, result.handled_silences)


def _candidate(row: FindingRow, target_labels: dict[str, dict[str, str]]) -> AlertCandidate:
    is_open = row.status == FindingStatus.OPEN.value
    return AlertCandidate(
        alert=Alert(
            fingerprint=row.fingerprint,
            check=row.check,
            target=row.target,
            rule_id=row.rule_id,
            severity=Severity(row.severity),
            title=row.title,
            subject=row.subject,
            evidence=row.evidence,
            remediation=row.remediation,
            state=AlertState.FIRING if is_open else AlertState.RESOLVED,
            started_at=row.first_seen,
            ended_at=row.resolved_at,
            controls=tuple(str(c) for c in controls_for(row.rule_id)),
            labels={**target_labels.get(row.target, {}), **json.loads(row.labels)},
        ),
        open=is_open,
        seen_streak=row.seen_streak,
        missing_streak=row.missing_streak,
    )


def _silence(row: SilenceRow) -> Silence:
    try:
        matchers = json.loads(row.matchers)
    except ValueError:
        matchers = None
    return Silence(
        id=row.id,
        # unreadable matchers become none at all, which the engine refuses (never "mute all")
        matchers=matchers if isinstance(matchers, dict) else {},
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_by=row.created_by,
        comment=row.comment,
    )


def _entry(row: OutboxRow) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        receiver=row.receiver,
        kind=row.kind,
        payload=row.payload,
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        permanent=row.permanent,
    )
