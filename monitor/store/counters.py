"""Stored totals (table counter_total) and the current state of each (check, target): what
/metrics reads instead of scanning history, and what deleting old rows never lowers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.model import CheckRun, RunStatus
from monitor.store.tables import CheckRunRow, CheckStateRow, CounterRow

# upper bounds (seconds) of apivigil_check_duration_seconds; each run adds 1 to its own bucket
DURATION_BUCKETS: Sequence[float] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
INF = "+Inf"

RUNS = "check_runs"  # {check, target, status}: runs recorded
LAST_RUN = "check_last_run"  # {check, target, status}: newest finished_at, epoch seconds
DURATION_BUCKET = "check_duration_bucket"  # {check, le}: runs whose duration is in that bucket
DURATION_SUM = "check_duration_sum"  # {check}: seconds
DELIVERED_PRUNED = "notifications_delivered_pruned"  # {receiver}: delivered rows deleted
FAILED_PRUNED = "notifications_failed_pruned"  # {receiver}: failed-for-good rows deleted
PRUNED_ROWS = "retention_pruned_rows"  # {table}
STORE_ROWS = "store_rows"  # {table}: a gauge, measured after each retention pass
STORE_BYTES = "store_bytes"  # {}: a gauge, likewise

EVALUATED = (RunStatus.OK.value, RunStatus.ERROR.value, RunStatus.TIMEOUT.value)

Executor = Session | Connection


def labels_key(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


def _insert(executor: Executor) -> Any:
    bind = executor if isinstance(executor, Connection) else executor.get_bind()
    return postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert


def add(executor: Executor, name: str, labels: Mapping[str, str], delta: float) -> None:
    """Add `delta` to the total of (name, labels), creating it at `delta`."""
    statement = _insert(executor)(CounterRow).values(
        name=name, labels=labels_key(labels), value=delta
    )
    executor.execute(
        statement.on_conflict_do_update(
            index_elements=["name", "labels"],
            set_={"value": CounterRow.__table__.c.value + statement.excluded.value},  # type: ignore[attr-defined]
        )
    )


def put(executor: Executor, name: str, labels: Mapping[str, str], value: float) -> None:
    """Set (name, labels) to `value` (a gauge kept in the same table)."""
    statement = _insert(executor)(CounterRow).values(
        name=name, labels=labels_key(labels), value=value
    )
    executor.execute(
        statement.on_conflict_do_update(
            index_elements=["name", "labels"], set_={"value": statement.excluded.value}
        )
    )


def raise_to(executor: Executor, name: str, labels: Mapping[str, str], value: float) -> None:
    """Make (name, labels) at least `value` (a latest timestamp never moves back)."""
    statement = _insert(executor)(CounterRow).values(
        name=name, labels=labels_key(labels), value=value
    )
    current = CounterRow.__table__.c.value  # type: ignore[attr-defined]
    executor.execute(
        statement.on_conflict_do_update(
            index_elements=["name", "labels"],
            set_={
                "value": sa.case(
                    (statement.excluded.value > current, statement.excluded.value), else_=current
                )
            },
        )
    )


def read(executor: Executor, names: Sequence[str]) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)] of every stored total named in `names`."""
    result: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in names}
    rows = executor.execute(
        sa.select(col(CounterRow.name), col(CounterRow.labels), col(CounterRow.value)).where(
            col(CounterRow.name).in_(list(names))
        )
    ).all()
    for name, labels, value in rows:
        result[name].append((json.loads(labels), float(value)))
    return result


def bucket_of(seconds: float) -> str:
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return f"{bound:g}"
    return INF


def count_run(session: Session, run: CheckRun, row_id: str | None = None) -> None:
    """Add a newly stored run to the totals and the (check, target) state; `row_id`: the
    check_run row that holds it (the row it extended, see run_length), run.id by default."""
    check, status = run.check.value, run.status.value
    labels = {"check": check, "target": run.target, "status": status}
    add(session, RUNS, labels, 1)
    raise_to(session, LAST_RUN, labels, run.finished_at.timestamp())
    if run.status is not RunStatus.SKIPPED:
        seconds = run.duration.total_seconds()
        add(session, DURATION_BUCKET, {"check": check, "le": bucket_of(seconds)}, 1)
        add(session, DURATION_SUM, {"check": check}, seconds)
    if status in EVALUATED:
        _advance_state(session, check, run.target, status, row_id or run.id, run.started_at)


def _advance_state(
    executor: Executor, check: str, target: str, status: str, run_id: str, started: datetime
) -> None:
    ok = status == RunStatus.OK.value
    values: dict[str, Any] = {
        "check": check,
        "target": target,
        "evaluated_status": status,
        "evaluated_started_at": started,
        "ok_run_id": run_id if ok else None,
        "ok_started_at": started if ok else None,
    }
    statement = _insert(executor)(CheckStateRow).values(**values)
    table = CheckStateRow.__table__.c  # type: ignore[attr-defined]
    excluded = statement.excluded
    newer_evaluated = sa.or_(
        table.evaluated_started_at.is_(None),
        table.evaluated_started_at <= excluded.evaluated_started_at,
    )
    updates: dict[str, Any] = {
        "evaluated_status": sa.case(
            (newer_evaluated, statement.excluded.evaluated_status), else_=table.evaluated_status
        ),
        "evaluated_started_at": sa.case(
            (newer_evaluated, statement.excluded.evaluated_started_at),
            else_=table.evaluated_started_at,
        ),
    }
    if ok:
        newer_ok = sa.or_(
            table.ok_started_at.is_(None), table.ok_started_at <= excluded.ok_started_at
        )
        updates["ok_run_id"] = sa.case(
            (newer_ok, statement.excluded.ok_run_id), else_=table.ok_run_id
        )
        updates["ok_started_at"] = sa.case(
            (newer_ok, statement.excluded.ok_started_at), else_=table.ok_started_at
        )
    executor.execute(
        statement.on_conflict_do_update(index_elements=["check", "target"], set_=updates)
    )


def seed_from_runs(connection: Connection) -> None:
    """Fill the totals and states from the runs stored before they existed (migration 0006)."""
    run = CheckRunRow.__table__.c  # type: ignore[attr-defined]
    for check, target, status, count, finished in connection.execute(
        sa.select(
            run.check, run.target, run.status, sa.func.count(), sa.func.max(run.finished_at)
        ).group_by(run.check, run.target, run.status)
    ).all():
        labels = {"check": check, "target": target, "status": status}
        add(connection, RUNS, labels, int(count))
        raise_to(connection, LAST_RUN, labels, _as_utc(finished).timestamp())
    buckets: dict[tuple[str, str], int] = {}
    sums: dict[str, float] = {}
    for check, duration in connection.execute(
        sa.select(run.check, run.duration_seconds).where(run.status != RunStatus.SKIPPED.value)
    ):
        key = (check, bucket_of(duration))
        buckets[key] = buckets.get(key, 0) + 1
        sums[check] = sums.get(check, 0.0) + float(duration)
    for (check, le), count in buckets.items():
        add(connection, DURATION_BUCKET, {"check": check, "le": le}, count)
    for check, seconds in sums.items():
        add(connection, DURATION_SUM, {"check": check}, seconds)
    latest: dict[tuple[str, str], tuple[str, str, datetime]] = {}
    latest_ok: dict[tuple[str, str], tuple[str, str, datetime]] = {}
    for check, target, status, run_id, started in connection.execute(
        sa.select(run.check, run.target, run.status, run.id, run.started_at)
        .where(run.status.in_(EVALUATED))
        .order_by(run.started_at)
    ):
        latest[(check, target)] = (status, run_id, _as_utc(started))
        if status == RunStatus.OK.value:
            latest_ok[(check, target)] = (status, run_id, _as_utc(started))
    for (check, target), (status, run_id, started) in [*latest_ok.items(), *latest.items()]:
        _advance_state(connection, check, target, status, run_id, started)


def _as_utc(moment: datetime | str) -> datetime:
    from monitor.store.sql_metrics import as_utc  # noqa: PLC0415 (sql_metrics imports this)

    return as_utc(moment)
