"""Day-by-day and week-by-week series from the aggregate rows of `Store.report_rows`. Pure.

Definitions (also printed in every report):
- posture of a target at a moment: 100 minus 40/15/5/1 for each distinct rule open on it at
  its worst severity (critical/high/medium/low), floored at 0 (monitor.posture); the overall
  posture is the mean over the selected targets evaluated by then (a run with status ok). A
  target never evaluated has no score, and a day when none was is "no data".
- coverage at a moment: the share of targets with a schedule whose every scheduled check
  evaluated them (a run with status ok) within its interval plus grace (jitter + timeout).
- drift events: config_drift findings opened (DRIFT-ADDED, -REMOVED, -CHANGED); inventory
  changes: api_inventory change findings opened (operations added, removed, deprecated,
  breaking or security changes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from monitor.model import CheckKind, RunStatus, Severity, TransitionKind
from monitor.posture import posture_scores
from monitor.report.model import DayPoint, Expectation, ReportPeriod, WeekCount
from monitor.store.interface import BEFORE_PERIOD, OpenRule

DRIFT_RULES = frozenset({"DRIFT-ADDED", "DRIFT-REMOVED", "DRIFT-CHANGED"})
INVENTORY_CHANGE_RULES = frozenset(
    {
        "INVENTORY-OPERATION-ADDED",
        "INVENTORY-OPERATION-REMOVED",
        "INVENTORY-OPERATION-DEPRECATED",
        "INVENTORY-BREAKING-CHANGE",
        "INVENTORY-SECURITY-REMOVED",
        "INVENTORY-SECURITY-WEAKENED",
        "INVENTORY-UNAUTHENTICATED-OPERATION",
    }
)
_FAILED = (RunStatus.ERROR.value, RunStatus.TIMEOUT.value)

Pair = tuple[str, str]  # (check, target)


def coverage_at(
    moment: datetime,
    expected: Mapping[str, Sequence[Expectation]],
    last_ok: Mapping[Pair, datetime],
) -> float | None:
    """Share of the targets in `expected` whose every check ran ok within its allowed age."""
    if not expected:
        return None
    covered = sum(
        1
        for target, checks in expected.items()
        if all(within(moment, last_ok.get((e.check.value, target)), e) for e in checks)
    )
    return covered / len(expected)


def within(moment: datetime, last: datetime | None, expectation: Expectation) -> bool:
    return last is not None and moment - last <= expectation.allowed_age


def open_rules_by_day(rows: Iterable[Any]) -> dict[date, list[OpenRule]]:
    """Rows (day, target, rule_id, severity, count) -> the open rules at each day's end."""
    by_day: dict[date, list[OpenRule]] = defaultdict(list)
    for day, target, rule_id, severity, count in rows:
        by_day[date.fromisoformat(day)].append(
            # the check does not matter to the score; the rule id does
            OpenRule(CheckKind.CERT_EXPIRY, target, rule_id, Severity(severity), int(count))
        )
    return by_day


def daily_points(
    period: ReportPeriod,
    targets: Sequence[str],
    expected: Mapping[str, Sequence[Expectation]],
    open_rows: Iterable[Any],
    event_rows: Sequence[Any],
    activity: Iterable[Any],
    first_ok: Mapping[str, datetime],
) -> tuple[DayPoint, ...]:
    """`activity`: rows (check, target, day, status, count, first, last started) of
    `ReportRows.run_activity`, the timestamps already aware; `first_ok`: when each target was
    first evaluated (no posture before)."""
    open_rules = open_rules_by_day(open_rows)
    opened: dict[date, int] = defaultdict(int)
    resolved: dict[date, int] = defaultdict(int)
    for day, _check, _rule, kind, count in event_rows:
        bucket = opened if kind == TransitionKind.OPENED.value else resolved
        bucket[date.fromisoformat(day)] += int(count)
    runs: dict[date, int] = defaultdict(int)
    failed: dict[date, int] = defaultdict(int)
    last_ok: dict[Pair, datetime] = {}  # before the period: the starting point of coverage
    last_by_day: dict[date, list[tuple[Pair, datetime]]] = defaultdict(list)
    for check, target, day_text, status, count, _first, last in activity:
        ok = status == RunStatus.OK.value
        if day_text == BEFORE_PERIOD:
            if ok:
                _merge(last_ok, [((check, target), last)])
            continue
        day = date.fromisoformat(day_text)
        runs[day] += int(count)
        if status in _FAILED:
            failed[day] += int(count)
        elif ok:
            last_by_day[day].append(((check, target), last))
    points = []
    for day in period.days():
        _merge(last_ok, last_by_day.get(day, ()))
        rules = open_rules.get(day, [])
        day_end = period.day_end(day)
        evidenced = [t for t in targets if t in first_ok and first_ok[t] <= day_end]
        scores = posture_scores(evidenced, rules)
        by_severity: dict[Severity, int] = dict.fromkeys(Severity, 0)
        for rule in rules:
            by_severity[rule.severity] += rule.count
        points.append(
            DayPoint(
                day=day,
                open_by_severity=by_severity,
                posture=mean(scores.values()),
                coverage=coverage_at(day_end, expected, last_ok),
                opened=opened[day],
                resolved=resolved[day],
                runs=runs[day],
                failed_runs=failed[day],
            )
        )
    return tuple(points)


def _merge(last_ok: dict[Pair, datetime], entries: Iterable[tuple[Pair, datetime]]) -> None:
    for pair, started in entries:
        if pair not in last_ok or started > last_ok[pair]:
            last_ok[pair] = started


def weekly_counts(period: ReportPeriod, event_rows: Iterable[Any]) -> tuple[WeekCount, ...]:
    """Drift events, inventory changes, opened and resolved findings per ISO week."""
    weeks: dict[date, dict[str, int]] = {}
    for day in period.days():
        weeks.setdefault(day - timedelta(days=day.weekday()), defaultdict(int))
    for day, check, rule_id, kind, count in event_rows:
        monday = date.fromisoformat(day) - timedelta(days=date.fromisoformat(day).weekday())
        counts = weeks.setdefault(monday, defaultdict(int))
        if kind == TransitionKind.OPENED.value:
            counts["opened"] += int(count)
            if check == CheckKind.CONFIG_DRIFT.value and rule_id in DRIFT_RULES:
                counts["drift"] += int(count)
            if check == CheckKind.API_INVENTORY.value and rule_id in INVENTORY_CHANGE_RULES:
                counts["inventory"] += int(count)
        else:
            counts["resolved"] += int(count)
    return tuple(
        WeekCount(
            week="{}-W{:02d}".format(*monday.isocalendar()[:2]),
            start=monday,
            drift_events=counts["drift"],
            inventory_changes=counts["inventory"],
            opened=counts["opened"],
            resolved=counts["resolved"],
        )
        for monday, counts in sorted(weeks.items())
    )


def mean(values: Iterable[float]) -> float | None:
    """The mean, rounded; None for no values (no evidence, not a perfect score)."""
    numbers = list(values)
    return round(sum(numbers) / len(numbers), 2) if numbers else None
