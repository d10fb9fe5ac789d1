"""build_report_data: read the store once (a few aggregate queries) into a ReportData."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from checks.controls import CONTROLS_BY_RULE_PREFIX, controls_for
from monitor.model import CheckKind, Severity
from monitor.posture import posture_scores
from monitor.report import queries
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
from monitor.report.queries import BEFORE
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
from monitor.store.interface import StoreError, StoreUnavailable
from monitor.store.sql import SqlStore
from monitor.store.tables import FindingRow, TargetRow

CERTIFICATE_WARNING_DAYS = 30


def build_report_data(
    store: SqlStore,
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
    scope = queries.Scope(
        store.engine.dialect.name, period, frozenset(targets) if targets else None
    )
    with _reading(store) as session:
        rows = _with_configured(queries.targets(session, scope), expectations, targets)
        names = [row.name for row in rows]
        expected: dict[str, list[Expectation]] = defaultdict(list)
        for expectation in expectations:
            if expectation.target in names:
                expected[expectation.target].append(expectation)
        widest = max((e.allowed_age for e in expectations), default=None)
        since = period.start - widest if widest is not None else period.start
        activity = [
            (check, target, day, status, count, utc(first), utc(last))
            for check, target, day, status, count, first, last in queries.run_activity(
                session, scope, since
            )
        ]
        run_rows = [(c, t, st, n, f, la) for c, t, d, st, n, f, la in activity if d != BEFORE]
        last_ok = {(c, t): utc(at) for c, t, at in queries.last_evaluated(session, scope)}
        first_ok = {t: utc(at) for t, at in queries.first_evaluated(session, scope)}
        finding_rows = queries.open_findings(session, scope)
        event_rows = queries.event_counts(session, scope)
        day_ends = [(day, period.day_end(day)) for day in period.days()]
        open_rows = queries.open_at_day_ends(session, scope, day_ends)
        days = daily_points(
            period,
            names,
            expected,
            open_rows,
            event_rows,
            activity,
            first_ok,
        )
        remediation = tuple(
            RemediationTime(Severity(severity), int(count), round(float(seconds or 0) / 3600, 2))
            for severity, count, seconds in sorted(
                queries.remediation_times(session, scope), key=lambda r: -Severity(r[0]).rank
            )
        )
        certificates = certificates_of_samples(
            queries.latest_samples(
                session, scope, CheckKind.CERT_EXPIRY, ["cert_not_after_timestamp_seconds"]
            ),
            period.end,
        )
        grades = {
            target: json.loads(labels).get("grade", "")
            for target, _name, labels, _value in queries.latest_samples(
                session, scope, CheckKind.TLS_POSTURE, ["tls_grade_info"]
            )
        }
        http_grades = http_posture_grades(
            queries.latest_samples(
                session,
                scope,
                CheckKind.HTTP_POSTURE,
                ["http_posture_grade_info", "http_posture_score"],
            )
        )
        known: dict[CheckKind, list[str]] = defaultdict(list)
        for check, rule_id in queries.known_rules(session, scope):
            if check in CheckKind.__members__.values():
                known[CheckKind(check)].append(rule_id)
        audit = tuple(
            AuditRecord(row.at, row.actor, row.action, row.subject, row.detail)
            for row in queries.audit_entries(session, scope)
            if targets is None or "/" not in row.subject or row.subject.split("/")[-1] in names
        )

    all_open = [f for f in (_finding(row) for row in finding_rows) if f is not None]
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
            json.loads(row.labels),
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
    rows: Sequence[TargetRow],
    expectations: Sequence[Expectation],
    only: Collection[str] | None,
) -> list[TargetRow]:
    """The stored targets plus every target the config schedules that has no row yet (it never
    ran: it appears with 0 % coverage rather than not at all), by name."""
    stored = {row.name for row in rows}
    configured: dict[str, str | None] = {}
    for expectation in expectations:
        if expectation.target not in stored and (only is None or expectation.target in only):
            configured.setdefault(expectation.target, expectation.url)
    added = [TargetRow(name=name, url=url) for name, url in configured.items()]
    return sorted([*rows, *added], key=lambda row: row.name)


def known_frameworks() -> list[str]:
    """Every framework some rule gives evidence for (the values --framework takes)."""
    return sorted({c.framework for group in CONTROLS_BY_RULE_PREFIX.values() for c in group})


@contextmanager
def _reading(store: SqlStore) -> Iterator[Session]:
    try:
        with Session(store.engine) as session:
            yield session
    except (OperationalError, DBAPIError) as error:
        if isinstance(error, OperationalError) or error.connection_invalidated:
            raise StoreUnavailable(f"store {store.describe()} unavailable: {error.orig}") from error
        raise StoreError(f"store {store.describe()}: {error.orig}") from error
    except SQLAlchemyError as error:
        raise StoreError(f"store {store.describe()}: {error}") from error


def _finding(row: FindingRow) -> ReportFinding | None:
    if not is_known_check(row.check):
        return None
    return ReportFinding(
        fingerprint=row.fingerprint,
        check=CheckKind(row.check),
        target=row.target,
        rule_id=row.rule_id,
        severity=Severity(row.severity),
        title=row.title,
        subject=row.subject,
        evidence=row.evidence,
        remediation=row.remediation,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        controls=controls_for(row.rule_id),
    )


def _in_framework(finding: ReportFinding, framework: str | None) -> ReportFinding:
    if framework is None:
        return finding
    return replace(finding, controls=tuple(c for c in finding.controls if c.framework == framework))
