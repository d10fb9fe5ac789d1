"""Roll-ups over the period's runs and the open findings: per check kind, per severity and
per control (framework requirement). Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from checks.controls import CONTROLS_BY_RULE_PREFIX, Control
from monitor.model import CheckKind, RunStatus, Severity
from monitor.posture import control_statuses
from monitor.report.model import CheckActivity, ControlRollup, ReportFinding
from monitor.store.interface import OpenRule


def utc(value: datetime | str) -> datetime:
    """A timestamp from an aggregate (SQLite returns text) as an aware UTC datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def is_known_check(check: str) -> bool:
    """False for rows written by a newer apivigil or a removed plugin: not ours to show."""
    return check in CheckKind.__members__.values()


def open_rules(findings: Sequence[ReportFinding]) -> list[OpenRule]:
    counts: dict[tuple[CheckKind, str, str, Severity], int] = defaultdict(int)
    for f in findings:
        counts[(f.check, f.target, f.rule_id, f.severity)] += 1
    return [OpenRule(c, t, r, s, n) for (c, t, r, s), n in sorted(counts.items())]


def by_severity(findings: Sequence[ReportFinding]) -> dict[Severity, int]:
    counts = dict.fromkeys(Severity, 0)
    for f in findings:
        counts[f.severity] += 1
    return counts


def run_totals(run_rows: Sequence[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    totals: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"ok": 0, "failed": 0, "first": None, "last": None}
    )
    for check, target, status, count, first_started, last_started in run_rows:
        entry = totals[(check, target)]
        entry["ok" if status == RunStatus.OK.value else "failed"] += int(count)
        first, last = utc(first_started), utc(last_started)
        entry["first"] = first if entry["first"] is None else min(entry["first"], first)
        entry["last"] = last if entry["last"] is None else max(entry["last"], last)
    return totals


def check_activity(run_rows: Sequence[Any]) -> tuple[CheckActivity, ...]:
    per_check: dict[str, dict[str, Any]] = defaultdict(lambda: {"targets": set()})
    for (check, target), entry in run_totals(run_rows).items():
        if not is_known_check(check):
            continue
        totals = per_check[check]
        totals["targets"].add(target)
        for key in ("ok", "failed"):
            totals[key] = totals.get(key, 0) + entry[key]
        for key, pick in (("first", min), ("last", max)):
            totals[key] = entry[key] if key not in totals else pick(totals[key], entry[key])
    return tuple(
        CheckActivity(
            check=CheckKind(check),
            runs=t["ok"] + t["failed"],
            evaluated=t["ok"],
            failed=t["failed"],
            targets=len(t["targets"]),
            first_run=t["first"],
            last_run=t["last"],
        )
        for check, t in sorted(per_check.items())
    )


def control_rollups(
    evaluated: set[CheckKind],
    open_rules: list[OpenRule],
    findings: list[ReportFinding],
    framework: str | None,
) -> tuple[ControlRollup, ...]:
    statuses = control_statuses(evaluated, open_rules)
    titles: dict[tuple[str, str], Control] = {}
    for group in CONTROLS_BY_RULE_PREFIX.values():
        for control in group:
            titles.setdefault((control.framework, control.control), control)
    against_control: dict[tuple[str, str], list[ReportFinding]] = defaultdict(list)
    for finding in findings:
        for key in {(c.framework, c.control) for c in finding.controls}:
            against_control[key].append(finding)
    rollups = []
    for key, status in statuses.items():
        if framework is not None and key[0] != framework:
            continue
        against = against_control.get(key, [])
        rollups.append(
            ControlRollup(
                control=titles[key],
                status=status,
                open_findings=len(against),
                targets=tuple(sorted({f.target for f in against})),
                rules=tuple(sorted({f.rule_id for f in against})),
            )
        )
    return tuple(
        sorted(rollups, key=lambda r: (r.status.value, r.control.framework, r.control.control))
    )
