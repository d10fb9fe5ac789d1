"""build_report_data: read the store once (a few aggregate queries) into a ReportData."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import fields, replace
from typing import Any

from checks.controls import CONTROLS_BY_RULE_PREFIX, controls_for
from monitor.model import CheckKind, Severity, StoredFinding, Target
from monitor.posture import posture_scores
from monitor.report.model import (
    AuditRecord,
    CertificateExpiry,
    Expectation,
    HttpPostureGrade,
    RemediationTime,
    ReportData,
    ReportFinding,
    ReportPeriod,
    Summary,
)
from monitor.report.rollups import (
    by_severity,
    check_activity,
    control_rollups,
    is_known_check,
    run_totals,
    utc,
)
from monitor.report.rollups import (
    open_rules as open_rules_of,
)
from monitor.report.targets import certificate_key, check_coverage, per_target, target_report
from monitor.report.targets import certificates as certificates_of_samples
from monitor.report.trends import coverage_at, daily_points, mean, weekly_counts
from monitor.store.interface import BEFORE_PERIOD, ReportQuery, Store

CERTIFICATE_WARNING_DAYS = 30
REPORT_SAMPLES = {
    CheckKind.CERT_EXPIRY: ("cert_not_after_timestamp_seconds",),
    CheckKind.TLS_POSTURE: ("tls_grade_info",),
    CheckKind.HTTP_POSTURE: ("http_posture_grade_info", "http_posture_score"),
}


def build_report_data(
    store: Store,
    period: ReportPeriod,
    expectations: Sequence[Expectation],
    targets: Collection[str] | None = None,
    framework: str | None = None,
) -> ReportData:
    """Everything a report shows for `period`; current state is as of the period's end.

    `expectations` are the scheduled (check, target) pairs with their intervals (coverage);
    `targets` narrows to those targets; `framework` narrows findings and controls to one
    framework. Raises StoreUnavailable or StoreError.
    """
    widest = max((e.allowed_age for e in expectations), default=None)
    read = store.report_rows(
        ReportQuery(
            start=period.start,
            end=period.end,
            targets=frozenset(targets) if targets else None,
            runs_since=period.start - widest if widest is not None else period.start,
            day_ends=tuple((day, period.day_end(day)) for day in period.days()),
            samples=REPORT_SAMPLES,
        )
    )
    rows = _with_configured(read.targets, expectations, targets)
    names = [row.name for row in rows]
    expected: dict[str, list[Expectation]] = defaultdict(list)
    for expectation in expectations:
        if expectation.target in names:
            expected[expectation.target].append(expectation)
    activity = [
        (check, target, day, status, count, utc(first), utc(last))
        for check, target, day, status, count, first, last in read.run_activity
    ]
    run_rows = [(c, t, st, n, f, la) for c, t, d, st, n, f, la in activity if d != BEFORE_PERIOD]
    last_ok = {(c, t): utc(at) for c, t, at in read.last_evaluated}
    first_ok = {t: utc(at) for t, at in read.first_evaluated}
    event_rows = read.event_counts
    days = daily_points(
        period,
        names,
        expected,
        read.open_at_day_ends,
        event_rows,
        activity,
        first_ok,
    )
    remediation = tuple(
        RemediationTime(Severity(severity), int(count), round(float(seconds or 0) / 3600, 2))
        for severity, count, seconds in sorted(
            read.remediation_times, key=lambda r: -Severity(r[0]).rank
        )
    )
    certificates = certificates_of_samples(read.samples[CheckKind.CERT_EXPIRY], period.end)
    grades = {
        target: json.loads(labels).get("grade", "")
        for target, _name, labels, _value in read.samples[CheckKind.TLS_POSTURE]
    }
    http_grades = http_posture_grades(read.samples[CheckKind.HTTP_POSTURE])
    known: dict[CheckKind, list[str]] = defaultdict(list)
    for check, rule_id in read.known_rules:
        if check in CheckKind.__members__.values():
            known[CheckKind(check)].append(rule_id)
    audit = tuple(
        AuditRecord(entry.at, entry.actor, entry.action, entry.subject, json.dumps(entry.detail))
        for entry in read.audit
        if targets is None or "/" not in entry.subject or entry.subject.split("/")[-1] in names
    )

    all_open = [_finding(finding) for finding in read.open_findings]
    open_rules = open_rules_of(all_open)
    scores = posture_scores([n for n in names if n in first_ok], open_rules)
    shown = [_in_framework(f, framework) for f in all_open]
    findings = tuple(
        sorted(
            (f for f in shown if f.controls or framework is None),
            key=lambda f: (-f.severity.rank, f.target, f.rule_id, f.subject),
        )
    )
    per_pair = run_totals(run_rows)
    coverage = check_coverage(names, expected, per_pair, last_ok, period.end)
    evaluated_checks = {
        CheckKind(c) for (c, _t), n in per_pair.items() if n["ok"] and is_known_check(c)
    }
    weeks = weekly_counts(period, event_rows)
    open_of, shown_of = per_target(all_open), per_target(findings)
    certificates_of: dict[str, list[CertificateExpiry]] = {}
    for certificate in certificates:
        certificates_of.setdefault(certificate.target, []).append(certificate)
    target_reports = tuple(
        target_report(
            row.name,
            row.url,
            dict(row.labels),
            scores.get(row.name),
            coverage.get(row.name, ()),
            expected.get(row.name),
            last_ok,
            open_of.get(row.name, []),
            shown_of.get(row.name, []),
            certificates_of.get(row.name, []),
            grades.get(row.name),
        )
        for row in rows
    )
    expiring = tuple(c for c in certificates if c.days_left < CERTIFICATE_WARNING_DAYS)
    tls_evaluated = [t for t in target_reports if t.tls_baseline_met is not None]
    summary = Summary(
        targets=len(names),
        posture=mean(scores.values()),
        coverage=coverage_at(period.end, expected, last_ok),
        open_by_severity=by_severity(all_open),
        opened=sum(d.opened for d in days),
        resolved=sum(d.resolved for d in days),
        remediation=remediation,
        tls_baseline_met=sum(1 for t in tls_evaluated if t.tls_baseline_met),
        tls_baseline_evaluated=len(tls_evaluated),
        certificates_expiring_30d=len({certificate_key(c) for c in expiring if c.days_left >= 0}),
        certificates_expired=len({certificate_key(c) for c in expiring if c.days_left < 0}),
        drift_events=sum(w.drift_events for w in weeks),
        inventory_changes=sum(w.inventory_changes for w in weeks),
        runs=sum(n["ok"] + n["failed"] for n in per_pair.values()),
        failed_runs=sum(n["failed"] for n in per_pair.values()),
    )
    return ReportData(
        generated_at=period.end,
        period=period,
        framework=framework,
        target_filter=tuple(sorted(targets or ())),
        summary=summary,
        days=days,
        weeks=weeks,
        checks=check_activity(run_rows),
        targets=target_reports,
        controls=control_rollups(evaluated_checks, open_rules, all_open, framework),
        findings=findings,
        certificates=expiring,
        audit=audit,
        known_rules={check: tuple(sorted(rules)) for check, rules in sorted(known.items())},
        http_posture=http_grades,
    )


def http_posture_grades(samples: Sequence[Any]) -> tuple[HttpPostureGrade, ...]:
    """Both profiles' grade, score and scoring version per target, from the newest ok run."""
    scores: dict[tuple[str, str], float] = {}
    infos: dict[tuple[str, str], dict[str, str]] = {}
    for target, name, labels, value in samples:
        parsed = json.loads(labels)
        key = (target, parsed.get("profile", ""))
        if name == "http_posture_score":
            scores[key] = float(value)
        else:
            infos[key] = parsed
    return tuple(
        HttpPostureGrade(
            target,
            profile,
            info.get("grade", ""),
            scores.get((target, profile), 0.0),
            info.get("version", ""),
        )
        for (target, profile), info in sorted(infos.items())
    )


def _with_configured(
    rows: Sequence[Target],
    expectations: Sequence[Expectation],
    only: Collection[str] | None,
) -> list[Target]:
    """The stored targets plus every target the config schedules that has no row yet (it never
    ran: it appears with 0 % coverage rather than not at all), by name."""
    stored = {row.name for row in rows}
    configured: dict[str, str | None] = {}
    for expectation in expectations:
        if expectation.target not in stored and (only is None or expectation.target in only):
            configured.setdefault(expectation.target, expectation.url)
    added = [Target(name=name, url=url) for name, url in configured.items()]
    return sorted([*rows, *added], key=lambda row: row.name)


def known_frameworks() -> list[str]:
    """Every framework some rule gives evidence for (the values --framework takes)."""
    return sorted({c.framework for group in CONTROLS_BY_RULE_PREFIX.values() for c in group})


_FINDING_FIELDS = tuple(f.name for f in fields(ReportFinding) if f.name != "controls")


def _finding(stored: StoredFinding) -> ReportFinding:
    shared = {name: getattr(stored, name) for name in _FINDING_FIELDS}
    return ReportFinding(**shared, controls=controls_for(stored.rule_id))


def _in_framework(finding: ReportFinding, framework: str | None) -> ReportFinding:
    if framework is None:
        return finding
    return replace(finding, controls=tuple(c for c in finding.controls if c.framework == framework))
