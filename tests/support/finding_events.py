"""What a recorded run did to findings, read back from the store's finding events (the
store keeps transitions as events; `record()` returns nothing)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from monitor.model import CheckRun, Severity, TransitionKind
from monitor.store.interface import HysteresisPolicy, RunSlot
from monitor.store.sql import SqlStore
from monitor.store.tables import FindingEventRow, FindingRow


@dataclass(frozen=True, slots=True)
class Event:
    kind: TransitionKind
    rule_id: str
    subject: str
    severity: Severity
    previous_severity: Severity | None


def events_of(store: SqlStore, run: CheckRun) -> list[Event]:
    """The transitions `run` caused, in the order the store made them."""
    with Session(store.engine) as session:
        rows = session.exec(
            select(FindingEventRow, FindingRow)
            .join(FindingRow, col(FindingRow.fingerprint) == col(FindingEventRow.fingerprint))
            .where(col(FindingEventRow.run_id) == run.id)
            .order_by(col(FindingEventRow.id))
        ).all()
    return [
        Event(
            TransitionKind(event.kind),
            finding.rule_id,
            finding.subject,
            Severity(event.severity),
            Severity(event.previous_severity) if event.previous_severity else None,
        )
        for event, finding in rows
    ]


def record_transitions(
    store: SqlStore, run: CheckRun, policy: HysteresisPolicy, slot: RunSlot | None = None
) -> list[Event]:
    """Record `run` and return the transitions it caused."""
    store.record(run, policy, slot)
    return events_of(store, run)
