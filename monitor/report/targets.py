"""The per-target part of a report: coverage of each scheduled check, certificates, the TLS
baseline and the target's findings. Pure."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.model import CheckKind, Severity
from monitor.report.model import (
    CertificateExpiry,
    CheckCoverage,
    Expectation,
    ReportFinding,
    TargetReport,
)
from monitor.report.rollups import by_severity, is_known_check
from monitor.report.trends import within

# A target meets the TLS baseline (RFC 7525 / NIST SP 800-52r2 rules of tls_posture) when its
# newest tls_posture run evaluated it and no tls_posture finding at or above this is open.
TLS_BASELINE_SEVERITY = Severity.MEDIUM


def per_target(findings: Sequence[ReportFinding]) -> dict[str, list[ReportFinding]]:
    grouped: dict[str, list[ReportFinding]] = defaultdict(list)
    for finding in findings:
        grouped[finding.target].append(finding)
    return grouped


def check_coverage(
    names: Sequence[str],
    expected: dict[str, list[Expectation]],
    per_pair: dict[tuple[str, str], dict[str, Any]],
    last_ok: dict[tuple[str, str], datetime],
    end: datetime,
) -> dict[str, tuple[CheckCoverage, ...]]:
    result: dict[str, tuple[CheckCoverage, ...]] = {}
    for name in names:
        intervals = {e.check.value: e for e in expected.get(name, ())}
        checks = sorted(
            set(intervals) | {c for (c, t) in per_pair if t == name and is_known_check(c)}
        )
        result[name] = tuple(
            CheckCoverage(
                check=CheckKind(check),
                target=name,
                interval=intervals[check].interval if check in intervals else None,
                last_evaluated=last_ok.get((check, name)),
                within_interval=check in intervals
                and within(end, last_ok.get((check, name)), intervals[check]),
                runs=per_pair[(check, name)]["ok"] + per_pair[(check, name)]["failed"]
                if (check, name) in per_pair
                else 0,
                failed_runs=per_pair[(check, name)]["failed"] if (check, name) in per_pair else 0,
            )
            for check in checks
        )
    return result


def certificates(rows: Sequence[Any], end: datetime) -> tuple[CertificateExpiry, ...]:
    seen: dict[tuple[str, str, str, str], CertificateExpiry] = {}
    for target, _name, labels_text, value in rows:
        labels = json.loads(labels_text)
        not_after = datetime.fromtimestamp(float(value), UTC)
        entry = CertificateExpiry(
            target=target,
            address=labels.get("address", ""),
            subject=labels.get("subject", ""),
            issuer=labels.get("issuer", ""),
            serial=labels.get("serial", ""),
            position=labels.get("position", ""),
            not_after=not_after,
            days_left=round((not_after - end).total_seconds() / 86400, 2),
        )
        seen.setdefault(certificate_key(entry), entry)
    return tuple(sorted(seen.values(), key=lambda c: (c.days_left, c.target, c.subject)))


def certificate_key(certificate: CertificateExpiry) -> tuple[str, str, str, str]:
    return (certificate.target, certificate.issuer, certificate.serial, certificate.subject)


def target_report(
    name: str,
    url: str | None,
    labels: dict[str, str],
    posture: float | None,
    checks: tuple[CheckCoverage, ...],
    expected: list[Expectation] | None,
    last_ok: dict[tuple[str, str], datetime],
    all_open: list[ReportFinding],
    shown: list[ReportFinding],
    certificates: list[CertificateExpiry],
    grade: str | None,
) -> TargetReport:
    tls_evaluated = (CheckKind.TLS_POSTURE.value, name) in last_ok
    tls_met = not any(
        f.check is CheckKind.TLS_POSTURE and f.severity.at_least(TLS_BASELINE_SEVERITY)
        for f in all_open
    )
    return TargetReport(
        name=name,
        url=url,
        labels=labels,
        posture=posture,
        open_by_severity=by_severity(all_open),
        covered=all(c.within_interval for c in checks if c.interval is not None)
        if expected
        else None,
        checks=checks,
        runs=sum(c.runs for c in checks),
        failed_runs=sum(c.failed_runs for c in checks),
        tls_baseline_met=tls_met if tls_evaluated else None,
        tls_grade=grade,
        certificates=tuple(certificates),
        findings=tuple(shown),
    )
