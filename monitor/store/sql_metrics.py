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
from monitor.store import alerting
from monitor.store.interface import DurationHistogram, LatestSample, MetricsState, OpenRule
from monitor.store.tables import CheckRunRow, FindingRow, SampleRow, TargetRow

_EVALUATED = (RunStatus.OK, RunStatus.ERROR, RunStatus.TIMEOUT)


def read_metrics_state(session: Session, duration_buckets: Sequence[float]) -> MetricsState:
    targets = {
        name: json.loads(labels)
        for name, labels in session.execute(
            sa.select(col(TargetRow.name), col(TargetRow.labels)).where(
                col(TargetRow.active).is_(True)
            )
        ).all()
    }
    grouped = session.execute(
        sa.select(
            col(CheckRunRow.check),
            col(CheckRunRow.target),
            col(CheckRunRow.status),
            func.count(),
            func.max(CheckRunRow.finished_at),
        ).group_by(CheckRunRow.check, CheckRunRow.target, CheckRunRow.status)
    ).all()
    run_counts: dict[tuple[CheckKind, str, RunStatus], int] = {}
    last_run_at: dict[tuple[CheckKind, str, RunStatus], datetime] = {}
    for check, target, status, count, finished in grouped:
        kind = known_kind(check)
        if kind is None or target not in targets:
            continue
        run_counts[(kind, target, RunStatus(status))] = count
        last_run_at[(kind, target, RunStatus(status))] = as_utc(finished)
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
            for check, target, status in session.execute(_latest_runs(_EVALUATED, col_status=True))
            if (kind := known_kind(check)) is not None and target in targets
        },
        durations=_duration_histograms(session, duration_buckets),
        open_findings={
            (kind, target, Severity(severity)): count
            for check, target, severity, count in open_counts
            if (kind := known_kind(check)) is not None and target in targets
        },
        latest_samples=_latest_samples(session, targets),
        open_rules=[
            OpenRule(kind, target, rule_id, Severity(severity), int(count))
            for check, target, rule_id, severity, count in open_rules
            if (kind := known_kind(check)) is not None and target in targets
        ],
        notifications_failed=alerting.failed_counts(session),
        notifications_pending=alerting.pending_counts(session),
        notifications_delivered=alerting.delivered_counts(session),
    )


def _latest_runs(statuses: Sequence[RunStatus], col_status: bool = False) -> Any:
    """check, target and (status or id) of the newest run per (check, target) in `statuses`."""
    wanted = [status.value for status in statuses]
    newest = (
        sa.select(
            col(CheckRunRow.check),
            col(CheckRunRow.target),
            func.max(CheckRunRow.started_at).label("started"),
        )
        .where(col(CheckRunRow.status).in_(wanted))
        .group_by(CheckRunRow.check, CheckRunRow.target)
        .subquery()
    )
    last = col(CheckRunRow.status) if col_status else col(CheckRunRow.id)
    return (
        sa.select(col(CheckRunRow.check), col(CheckRunRow.target), last)
        .join(
            newest,
            sa.and_(
                col(CheckRunRow.check) == newest.c.check,
                col(CheckRunRow.target) == newest.c.target,
                col(CheckRunRow.started_at) == newest.c.started,
            ),
        )
        .where(col(CheckRunRow.status).in_(wanted))
    )


def _latest_samples(session: Session, targets: dict[str, Any]) -> list[LatestSample]:
    latest_ok = _latest_runs((RunStatus.OK,)).subquery()
    rows = session.execute(
        sa.select(
            col(SampleRow.check),
            col(SampleRow.target),
            col(SampleRow.name),
            col(SampleRow.labels),
            col(SampleRow.value),
        ).join(latest_ok, col(SampleRow.run_id) == latest_ok.c.id)
    ).all()
    parsed: dict[str, dict[str, str]] = {}
    samples = []
    for check, target, name, labels, value in rows:
        kind = known_kind(check)
        if kind is None or target not in targets:
            continue
        if labels not in parsed:
            parsed[labels] = json.loads(labels)
        samples.append(LatestSample(kind, target, name, parsed[labels], value))
    return samples


def _duration_histograms(
    session: Session, bounds: Sequence[float]
) -> dict[CheckKind, DurationHistogram]:
    duration = col(CheckRunRow.duration_seconds)
    columns: list[Any] = [func.sum(sa.case((duration <= bound, 1), else_=0)) for bound in bounds]
    selected: list[Any] = [col(CheckRunRow.check), func.count(), func.sum(duration), *columns]
    rows = session.execute(
        sa.select(*selected)
        .where(col(CheckRunRow.status) != RunStatus.SKIPPED.value)
        .group_by(CheckRunRow.check)
    ).all()
    result: dict[CheckKind, DurationHistogram] = {}
    for check, count, total, *cumulative in rows:
        kind = known_kind(check)
        if kind is not None:
            result[kind] = DurationHistogram(
                buckets=[(bound, int(n or 0)) for bound, n in zip(bounds, cumulative, strict=True)],
                total_seconds=float(total or 0.0),
                count=int(count),
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
