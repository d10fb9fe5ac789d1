"""Slots: when each (check, target) is due, the same in every process. Pure.

A (check, target) with interval I fires at EPOCH + offset + n·I, where the offset is a hash
of (check, target) below I. The grid spreads load over the interval without jitter, and an
old and a new leader compute the same slots, so a slot's key names one execution
everywhere: a run is recorded once per key however often its message is delivered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.jobs import ScheduledCheck
from monitor.model import CheckKind
from monitor.store.interface import RunSlot

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class SlotGrid:
    """Slots of one (check, target): EPOCH + offset + n * interval, in whole milliseconds."""

    interval_ms: int
    offset_ms: int

    @classmethod
    def of(cls, check: CheckKind, target: str, interval: timedelta) -> SlotGrid:
        interval_ms = max(1, interval // _MILLISECOND)
        digest = hashlib.sha256(f"{check.value}|{target}".encode()).digest()
        return cls(interval_ms, int.from_bytes(digest[:8], "big") % interval_ms)

    @classmethod
    def of_check(cls, scheduled: ScheduledCheck) -> SlotGrid:
        job = scheduled.job
        return cls.of(job.check, job.target.name, scheduled.interval)

    def index_at_or_before(self, moment: datetime) -> int:
        return (_ms(moment) - self.offset_ms) // self.interval_ms

    def slot(self, index: int) -> datetime:
        return EPOCH + _MILLISECOND * (self.offset_ms + index * self.interval_ms)

    def at_or_before(self, moment: datetime) -> datetime:
        """The latest slot not after `moment` (the one a job firing now belongs to)."""
        return self.slot(self.index_at_or_before(moment))

    def after(self, moment: datetime) -> datetime:
        """The first slot strictly after `moment`."""
        return self.slot(self.index_at_or_before(moment) + 1)


def slot_key(check: CheckKind, target: str, at: datetime) -> str:
    """`check:target:2027-01-15T10:00:03.250Z`: unique per (check, target, slot)."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return f"{check.value}:{target}:{stamp}Z"


def run_slot(check: CheckKind, target: str, at: datetime) -> RunSlot:
    return RunSlot(key=slot_key(check, target, at), at=at)


@dataclass(frozen=True, slots=True)
class DueSlot:
    """A slot to enqueue now (`delay` zero) or spread over the start window."""

    check: ScheduledCheck
    at: datetime
    delay: timedelta


def catch_up(
    checks: Sequence[ScheduledCheck],
    last_slots: Mapping[tuple[CheckKind, str], datetime],
    now: datetime,
    misfire_grace: timedelta,
    spread: timedelta,
) -> list[DueSlot]:
    """Slots that came due while no leader ran, for a leader that just took over.

    When the oldest slot missed since the last recorded one is at most `misfire_grace`
    old (a failover), every missed slot is enqueued at once, oldest first: none is lost.
    After a longer outage the missed slots coalesce into the newest one, and a check that
    never ran gets its current slot; those are spread over min(spread, interval), like
    first runs on a single node.
    """
    prompt: list[DueSlot] = []
    waiting: list[tuple[ScheduledCheck, datetime]] = []
    for check in checks:
        grid = SlotGrid.of_check(check)
        newest = grid.index_at_or_before(now)
        last = last_slots.get(check.job.key)
        if last is None:
            waiting.append((check, grid.slot(newest)))
            continue
        first_missed = grid.index_at_or_before(last) + 1
        if first_missed > newest:
            continue  # nothing missed: the scheduler fires the next slot
        if grid.slot(first_missed) < now - misfire_grace:
            waiting.append((check, grid.slot(newest)))  # an outage: run once
            continue
        prompt.extend(
            DueSlot(check, grid.slot(index), timedelta(0))
            for index in range(first_missed, newest + 1)
        )
    prompt.sort(key=lambda due: (due.at, due.check.job_id))
    waiting.sort(key=lambda item: item[0].job_id)
    spread_out = [
        DueSlot(check, at, min(spread, check.interval) * (index / len(waiting)))
        for index, (check, at) in enumerate(waiting)
    ]
    return prompt + spread_out


def next_slots(
    checks: Sequence[ScheduledCheck],
    _last_started: Mapping[tuple[CheckKind, str], datetime],
    now: datetime,
    _spread: timedelta,
) -> dict[str, datetime]:
    """A first-run planner for CheckScheduler: each job first fires at its next slot after
    `now` (slots up to `now` are `catch_up`'s)."""
    return {check.job_id: SlotGrid.of_check(check).after(now) for check in checks}


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // _MILLISECOND
