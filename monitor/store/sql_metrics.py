"""What /metrics shows, read in one session with column queries (no ORM objects: a scrape
of thousands of targets reads tens of thousands of rows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func

from monitor.model import CheckKind, FindingStatus, RunStatus, Severity
from monitor.store import alert_rows, counters
from monitor.store.interface import DurationHistogram, LatestSample, MetricsState, OpenRule
from monitor.store.tables import CheckStateRow, FindingRow, SampleRow, TargetRow

_IDS_PER_QUERY = 500


def read_metrics_state(session: Session, duration_buckets: Sequence[float]) -> MetricsState:
    targets = {
        name: json.loads(labels)
        for name, labels in session.execute(
            sa.select(col(TargetRow.name), col(TargetRow.labels)).where(
                col(TargetRow.active).is_(True)
            )
        ).all()
    }
    totals = counters.read(
        session,
        (
            counters.RUNS,
            counters.LAST_RUN,
            counters.DURATION_BUCKET,
            counters.DURATION_SUM,
            counters.STORE_ROWS,
            counters.STORE_BYTES,
            counters.PRUNED_ROWS,
        ),
    )
    run_counts: dict[tuple[CheckKind, str, RunStatus], int] = {}
    last_run_at: dict[tuple[CheckKind, str, RunStatus], datetime] = {}
    for labels, value in totals[counters.RUNS]:
        if (key := _run_key(labels, targets)) is not None:
            run_counts[key] = int(value)
    for labels, value in totals[counters.LAST_RUN]:
        if (key := _run_key(labels, targets)) is not None:
            last_run_at[key] = datetime.fromtimestamp(value, UTC)
    states = session.execute(
        sa.select(
            col(CheckStateRow.check),
            col(CheckStateRow.target),
            col(CheckStateRow.evaluated_status),
            col(CheckStateRow.ok_run_id),
        )
    ).all()
    open_counts = session.execute(
        sa.select(
            col(FindingRow.check), col(FindingRow.target), col(FindingRow.severity), func.count()
        )
        .where(col(FindingRow.status) == FindingStatus.OPEN.value)
        .group_by(FindingRow.check, FindingRow.target, FindingRow.severity)
    ).all()
    open_rules = session.execute(
        sa.select(
            col(FindingRow.check),
            col(FindingRow.target),
            col(FindingRow.rule_id),
            col(FindingRow.severity),
            func.count(),
        )
        .where(col(FindingRow.status) == FindingStatus.OPEN.value)
        .group_by(FindingRow.check, FindingRow.target, FindingRow.rule_id, FindingRow.severity)
    ).all()
    return MetricsState(
        targets=targets,
        run_counts=run_counts,
        last_run_at=last_run_at,
        last_status={
            (kind, target): RunStatus(status)
            for check, target, status, _ok in states
            if status is not None and (kind := known_kind(check)) is not None and target in targets
        },
        durations=_duration_histograms(totals, duration_buckets),
        open_findings={
            (kind, target, Severity(severity)): count
            for check, target, severity, count in open_counts
            if (kind := known_kind(check)) is not None and target in targets
        },
        latest_samples=_latest_samples(session, targets, [ok for *_, ok in states if ok]),
        open_rules=[
            OpenRule(kind, target, rule_id, Severity(severity), int(count))
            for check, target, rule_id, severity, count in open_rules
            if (kind := known_kind(check)) is not None and target in targets
        ],
        notifications_failed=_plus_pruned(
            alert_rows.failed_counts(session), session, counters.FAILED_PRUNED
        ),
        notifications_pending=alert_rows.pending_counts(session),
        notifications_delivered=_plus_pruned(
            alert_rows.delivered_counts(session), session, counters.DELIVERED_PRUNED
        ),
        store_rows={labels["table"]: int(v) for labels, v in totals[counters.STORE_ROWS]},
        store_bytes=next((int(v) for _labels, v in totals[counters.STORE_BYTES]), None),
        pruned_rows={labels["table"]: int(v) for labels, v in totals[counters.PRUNED_ROWS]},
    )


def _run_key(
    labels: dict[str, str], targets: dict[str, Any]
) -> tuple[CheckKind, str, RunStatus] | None:
    kind = known_kind(labels["check"])
    if kind is None or labels["target"] not in targets:
        return None
    return (kind, labels["target"], RunStatus(labels["status"]))


def _plus_pruned(live: dict[str, int], session: Session, name: str) -> dict[str, int]:
    """Counts of the outbox rows still kept plus those retention deleted."""
    total = dict(live)
    for labels, value in counters.read(session, (name,))[name]:
        receiver = labels["receiver"]
        total[receiver] = total.get(receiver, 0) + int(value)
    return total


def _latest_samples(
    session: Session, targets: dict[str, Any], ok_runs: Sequence[str]
) -> list[LatestSample]:
    """The samples of each (check, target)'s newest ok run, by the sample.run_id index."""
    parsed: dict[str, dict[str, str]] = {}
    samples = []
    for start in range(0, len(ok_runs), _IDS_PER_QUERY):
        rows = session.execute(
            sa.select(
                col(SampleRow.check),
                col(SampleRow.target),
                col(SampleRow.name),
                col(SampleRow.labels),
                col(SampleRow.value),
            ).where(col(SampleRow.run_id).in_(ok_runs[start : start + _IDS_PER_QUERY]))
        ).all()
        for check, target, name, labels, value in rows:
            kind = known_kind(check)
            if kind is None or target not in targets:
                continue
            if labels not in parsed:
                parsed[labels] = json.loads(labels)
            samples.append(LatestSample(kind, target, name, parsed[labels], value))
    return samples


def _duration_histograms(
    totals: dict[str, list[tuple[dict[str, str], float]]], bounds: Sequence[float]
) -> dict[CheckKind, DurationHistogram]:
    """Cumulative histograms at `bounds` from the stored per-bucket counts."""
    per_bucket: dict[CheckKind, list[tuple[float, int]]] = {}
    for labels, value in totals[counters.DURATION_BUCKET]:
        kind = known_kind(labels["check"])
        if kind is not None:
            per_bucket.setdefault(kind, []).append((float(labels["le"]), int(value)))
    sums = {labels["check"]: value for labels, value in totals[counters.DURATION_SUM]}
    result: dict[CheckKind, DurationHistogram] = {}
    for kind, buckets in per_bucket.items():
        result[kind] = DurationHistogram(
            buckets=[(bound, sum(n for le, n in buckets if le <= bound)) for bound in bounds],
            total_seconds=float(sums.get(kind.value, 0.0)),
            count=sum(n for _le, n in buckets),
        )
    return result


def known_kind(value: str) -> CheckKind | None:
    try:
        return CheckKind(value)
    except ValueError:
        return None  # written by a newer apivigil or a removed plugin: not ours to show


def as_utc(moment: datetime | str) -> datetime:
    if isinstance(moment, str):  # SQLite aggregates bypass the column type
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
