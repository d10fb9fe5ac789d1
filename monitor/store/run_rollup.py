"""One run_rollup row per (check, target, UTC day): the day's runs folded together, status by
status, from raw rows (retention) or from the per-status rows of the old layout (migration
0009). Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.model import RunStatus
from monitor.store.run_length import BOUNDS, buckets_text, cumulative_counts, parse_buckets

COUNTED = (RunStatus.OK.value, RunStatus.ERROR.value, RunStatus.TIMEOUT.value)


@dataclass(frozen=True, slots=True)
class Runs:
    """Some runs of one status (and error reason, '' when none) of a day; `buckets`: how many
    took at most each of run_length.BOUNDS by bucket index (len(BOUNDS): longer), None when
    not known (rows rolled up before 0009 kept quantiles, not buckets)."""

    status: str
    reason: str
    count: int
    total: float
    longest: float
    first: datetime
    last: datetime
    buckets: Mapping[int, int] | None


@dataclass(slots=True)
class DayRollup:
    """The runs of one (check, target, day) folded together."""

    by_status: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    total: float = 0.0
    longest: float = 0.0
    buckets: dict[int, int] | None = field(default_factory=dict)
    counted: tuple[datetime, datetime] | None = None
    any_run: tuple[datetime, datetime] | None = None
    ok: tuple[datetime, datetime] | None = None

    def add(self, runs: Runs) -> None:
        self.by_status[runs.status] = self.by_status.get(runs.status, 0) + runs.count
        if runs.reason:
            self.reasons[runs.reason] = self.reasons.get(runs.reason, 0) + runs.count
        self.total += runs.total
        self.longest = max(self.longest, runs.longest)
        if self.buckets is not None and runs.buckets is not None:
            for index, count in runs.buckets.items():
                self.buckets[index] = self.buckets.get(index, 0) + count
        else:
            self.buckets = None
        span = (runs.first, runs.last)
        self.any_run = _widen(self.any_run, span)
        if runs.status in COUNTED:
            self.counted = _widen(self.counted, span)
        if runs.status == RunStatus.OK.value:
            self.ok = _widen(self.ok, span)

    def row(self, check: str, target: str, day: str) -> dict[str, Any]:
        """The run_rollup row; first/last started are of the counted runs (of any run on a
        day of skipped runs only)."""
        span = self.counted or self.any_run
        assert span is not None, "a day rollup of no runs"
        return {
            "check": check,
            "target": target,
            "day": day,
            "runs_ok": self.by_status.get(RunStatus.OK.value, 0),
            "runs_error": self.by_status.get(RunStatus.ERROR.value, 0),
            "runs_timeout": self.by_status.get(RunStatus.TIMEOUT.value, 0),
            "runs_skipped": self.by_status.get(RunStatus.SKIPPED.value, 0),
            "error_reasons": reasons_text(self.reasons),
            "duration_sum": self.total,
            "duration_max": self.longest,
            "duration_buckets": None if self.buckets is None else buckets_text(self.buckets),
            "first_started": span[0],
            "last_started": span[1],
            "ok_first_started": None if self.ok is None else self.ok[0],
            "ok_last_started": None if self.ok is None else self.ok[1],
        }

    def row_of_no_runs(self, check: str, target: str, day: str, at: datetime) -> dict[str, Any]:
        self.any_run = (at, at)
        return self.row(check, target, day)


def _widen(
    span: tuple[datetime, datetime] | None, other: tuple[datetime, datetime]
) -> tuple[datetime, datetime]:
    return other if span is None else (min(span[0], other[0]), max(span[1], other[1]))


def fold(rows: Iterable[tuple[str, str, str, Runs]]) -> list[dict[str, Any]]:
    """run_rollup rows of (check, target, day, runs) in any order."""
    days: dict[tuple[str, str, str], DayRollup] = {}
    for check, target, day, runs in rows:
        days.setdefault((check, target, day), DayRollup()).add(runs)
    return [rollup.row(*key) for key, rollup in days.items()]


def reasons_text(reasons: Mapping[str, int]) -> str:
    """`reason:count` pairs by reason, e.g. `bug:1,unreachable:3`."""
    return ",".join(f"{reason}:{reasons[reason]}" for reason in sorted(reasons))


def parse_reasons(text: str) -> dict[str, int]:
    pairs = (item.rsplit(":", 1) for item in text.split(",") if item)
    return {reason: int(count) for reason, count in pairs}


def buckets_from_cumulative(cumulative: Sequence[int], count: int) -> dict[int, int]:
    """Bucket counts from how many took at most each of BOUNDS (the rest: longer)."""
    counts, below = {}, 0
    for index, at_most in enumerate(cumulative):
        if at_most > below:
            counts[index] = at_most - below
        below = at_most
    if count > below:
        counts[len(BOUNDS)] = count - below
    return counts


def quantile(q: float, buckets_text_: str, longest: float) -> float:
    """The q-quantile of a rollup's durations, estimated from its bucket counts and
    interpolated within its bucket, as Prometheus's histogram_quantile does."""
    count = sum(parse_buckets(buckets_text_).values())
    cumulative = cumulative_counts(buckets_text_)
    rank = q * count
    lower, below = 0.0, 0
    for bound, at_most in zip(BOUNDS, cumulative, strict=True):
        if at_most >= rank and at_most > below:
            estimate = lower + (bound - lower) * (rank - below) / (at_most - below)
            return min(estimate, longest)
        lower, below = bound, at_most
    return longest


@dataclass(frozen=True, slots=True)
class Series:
    """One numeric series of a (check, target, day): how many samples, min, max, the last."""

    name: str
    labels: str
    count: int
    minimum: float
    maximum: float
    last: float
    last_at: datetime


def series_text(series: Iterable[Series]) -> str:
    """A JSON list of [name, labels, count, min, max, last, last_at] by name and labels."""
    return json.dumps(
        [
            [s.name, s.labels, s.count, s.minimum, s.maximum, s.last, s.last_at.isoformat()]
            for s in sorted(series, key=lambda s: (s.name, s.labels))
        ],
        separators=(",", ":"),
    )


def parse_series(text: str) -> list[Series]:
    return [
        Series(name, labels, int(count), low, high, last, datetime.fromisoformat(at))
        for name, labels, count, low, high, last, at in (json.loads(text) if text else [])
    ]


def with_series(
    rows: list[dict[str, Any]], series: Iterable[tuple[str, str, str, Series]]
) -> list[dict[str, Any]]:
    """`rows` with each (check, target, day)'s series; a day with series but no runs (a
    sample taken after midnight by a run started before) gets a row of no runs."""
    by_key: dict[tuple[str, str, str], list[Series]] = {}
    for check, target, day, one in series:
        by_key.setdefault((check, target, day), []).append(one)
    result = []
    for row in rows:
        found = by_key.pop((row["check"], row["target"], row["day"]), [])
        result.append({**row, "series": series_text(found)})
    for (check, target, day), found in by_key.items():
        at = max(one.last_at for one in found)
        result.append(
            {
                **DayRollup().row_of_no_runs(check, target, day, at),
                "series": series_text(found),
            }
        )
    return result
