"""Run-length rows of check_run: an ok run whose outcome equals the previous run's (same
status, findings and their severities, snapshot, series of samples) does not get a row of
its own; it extends the previous row (run_count, last_started_at, duration sum and max).
A sample is written only when its value changed since the row's last one.

Never extended: failed or skipped runs (each is a row, so "the last N runs failed" stays a
count of rows), runs that caused a finding transition (events point at their run's row),
runs with a baseline update, and runs of another UTC day (rollups and the report count runs
per day by their row's day)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.model import CheckRun, Observation, RunStatus
from monitor.store.interface import RunSlot
from monitor.store.sql_metrics import as_utc
from monitor.store.tables import CheckRunRow, SampleRow

OUTCOME_CHARS = 16  # of the sha256 hex digest: compared with one row only, 64 bits do
MAX_STEPS_CHARS = 400  # check_run.slot_steps

# upper bounds (seconds) of the duration buckets a run-length row counts its runs in (the
# daily rollups estimate duration quantiles from them, as Prometheus's histogram_quantile does)
BOUNDS: Sequence[float] = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2,
    3,
    5,
    10,
    20,
    30,
    60,
    120,
    300,
    600,
)


def bucket_of(seconds: float) -> int:
    """The index in BOUNDS of the first bound at or above `seconds` (len(BOUNDS): above all)."""
    return next((i for i, bound in enumerate(BOUNDS) if seconds <= bound), len(BOUNDS))


def buckets_text(counts: dict[int, int]) -> str:
    """`index:count` pairs of the non-empty buckets, e.g. `6:280,7:8`."""
    return ",".join(f"{index}:{counts[index]}" for index in sorted(counts))


def parse_buckets(text: str) -> dict[int, int]:
    pairs = (item.split(":") for item in text.split(",") if item)
    return {int(index): int(count) for index, count in pairs}


def cumulative_counts(text: str) -> list[int]:
    """How many of a row's runs took at most each of BOUNDS."""
    counts = parse_buckets(text)
    result, running = [], 0
    for index in range(len(BOUNDS)):
        running += counts.get(index, 0)
        result.append(running)
    return result


def outcome_key(run: CheckRun, snapshot_sha: str | None) -> str | None:
    """What another run must equal to extend this run's row; None: it never extends one."""
    output = run.output
    if run.status is not RunStatus.OK or output is None or output.baseline_update is not None:
        return None
    document = {
        "status": run.status.value,
        "findings": sorted(
            (finding.fingerprint(run.check, run.target), finding.severity.value)
            for finding in output.findings
        ),
        "snapshot": snapshot_sha,
        "series": sorted(series_key(o) for o in output.observations),
        "undetermined": sorted(output.undetermined),
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:OUTCOME_CHARS]


def series_key(observation: Observation) -> tuple[str, str]:
    return (observation.name, labels_text(observation))


def labels_text(observation: Observation) -> str:
    return json.dumps(dict(observation.labels), sort_keys=True)


def moment(column_last: datetime | None, column_first: datetime) -> datetime:
    return as_utc(column_last if column_last is not None else column_first)


def last_started() -> sa.ColumnElement[datetime]:
    """The start of a row's newest run (old one-run rows have no last_started_at)."""
    return sa.func.coalesce(col(CheckRunRow.last_started_at), col(CheckRunRow.started_at))


@dataclass(frozen=True, slots=True)
class Extended:
    row_id: str
    samples: list[SampleRow]  # the changed values, to add


def slot_taken(session: Session, run: CheckRun, slot: RunSlot) -> bool:
    """Whether `slot` was recorded: it is the first slot of a row or one of the slots the
    row was extended by (slot_steps)."""
    rows = session.execute(
        sa.select(col(CheckRunRow.slot_at), col(CheckRunRow.slot_steps)).where(
            col(CheckRunRow.check) == run.check.value,
            col(CheckRunRow.target) == run.target,
            col(CheckRunRow.slot_at) <= slot.at,
            sa.func.coalesce(col(CheckRunRow.last_slot_at), col(CheckRunRow.slot_at)) >= slot.at,
        )
    ).all()
    return any(slot.at in slots_of(as_utc(first), steps or "") for first, steps in rows if first)


def slots_of(first: datetime, steps: str) -> set[datetime]:
    """The slots of a row: its first, then one per step (`milliseconds*times`, comma-separated:
    a regular grid is one pair however many runs the row holds)."""
    slots, at = {first}, first
    for pair in steps.split(","):
        if not pair:
            continue
        step, times = (int(part) for part in pair.split("*"))
        for _ in range(times):
            at += timedelta(milliseconds=step)
            slots.add(at)
    return slots


def add_step(steps: str | None, step_ms: int) -> str:
    pairs = [pair.split("*") for pair in (steps or "").split(",") if pair]
    if pairs and int(pairs[-1][0]) == step_ms:
        pairs[-1][1] = str(int(pairs[-1][1]) + 1)
    else:
        pairs.append([str(step_ms), "1"])
    return ",".join(f"{step}*{times}" for step, times in pairs)


def extend_previous(
    session: Session, run: CheckRun, outcome: str, slot: RunSlot | None
) -> Extended | None:
    """Add `run` to the newest row of its (check, target) when that row has the same outcome
    and day; None when it does not (the caller writes a row of its own)."""
    previous = session.execute(
        sa.select(
            col(CheckRunRow.id),
            col(CheckRunRow.outcome),
            col(CheckRunRow.started_at),
            col(CheckRunRow.last_started_at),
            col(CheckRunRow.run_count),
            col(CheckRunRow.slot_key),
            col(CheckRunRow.slot_at),
            col(CheckRunRow.last_slot_at),
            col(CheckRunRow.duration_seconds),
            col(CheckRunRow.duration_buckets),
            col(CheckRunRow.slot_steps),
        )
        .where(col(CheckRunRow.check) == run.check.value, col(CheckRunRow.target) == run.target)
        .order_by(col(CheckRunRow.started_at).desc())
        .limit(1)
    ).first()
    if previous is None or previous.outcome != outcome:
        return None
    first = as_utc(previous.started_at)
    if run.started_at < moment(previous.last_started_at, first):
        return None
    if run.started_at.date() != first.date():
        return None  # a new UTC day starts a new row
    if (slot is None) != (previous.slot_key is None):
        return None
    if slot is not None and slot.at <= moment(previous.last_slot_at, previous.slot_at):
        return None
    seconds = run.duration.total_seconds()
    counts = (
        parse_buckets(previous.duration_buckets)
        if previous.duration_buckets is not None
        else {bucket_of(previous.duration_seconds): 1}  # a row of one run
    )
    counts[bucket_of(seconds)] = counts.get(bucket_of(seconds), 0) + 1
    values: dict[str, object] = {
        "duration_buckets": buckets_text(counts),
        "run_count": col(CheckRunRow.run_count) + 1,
        "last_started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": col(CheckRunRow.duration_seconds) + seconds,
        "duration_max": sa.case(
            (
                sa.func.coalesce(col(CheckRunRow.duration_max), col(CheckRunRow.duration_seconds))
                < seconds,
                seconds,
            ),
            else_=sa.func.coalesce(
                col(CheckRunRow.duration_max), col(CheckRunRow.duration_seconds)
            ),
        ),
    }
    if slot is not None:
        step = slot.at - moment(previous.last_slot_at, previous.slot_at)
        steps = add_step(previous.slot_steps, step // timedelta(milliseconds=1))
        if len(steps) > MAX_STEPS_CHARS:
            return None  # slots far off any grid: a new row
        values |= {"last_slot_key": slot.key, "last_slot_at": slot.at, "slot_steps": steps}
    moved = session.connection().execute(
        sa.update(CheckRunRow)
        .where(
            col(CheckRunRow.id) == previous.id,
            col(CheckRunRow.run_count) == previous.run_count,  # compare and set
        )
        .values(**values)
    )
    if moved.rowcount != 1:
        return None
    observations = run.output.observations if run.output is not None else ()
    return Extended(previous.id, _changed_samples(session, run, previous.id, observations))


def _changed_samples(
    session: Session, run: CheckRun, row_id: str, observations: Sequence[Observation]
) -> list[SampleRow]:
    """Samples of `observations` whose value differs from the row's newest of that series."""
    newest = (
        sa.select(sa.func.max(col(SampleRow.id)))
        .where(col(SampleRow.run_id) == row_id)
        .group_by(col(SampleRow.name), col(SampleRow.labels))
    )
    current = {
        (name, labels): value
        for name, labels, value in session.execute(
            sa.select(col(SampleRow.name), col(SampleRow.labels), col(SampleRow.value)).where(
                col(SampleRow.id).in_(newest)
            )
        ).all()
    }
    return [
        new_sample(run, row_id, observation)
        for observation in observations
        if current.get(series_key(observation)) != observation.value
    ]


def new_sample(run: CheckRun, row_id: str, observation: Observation) -> SampleRow:
    return SampleRow(
        run_id=row_id,
        time=run.started_at,
        check=run.check.value,
        target=run.target,
        name=observation.name,
        labels=labels_text(observation),
        value=observation.value,
    )
