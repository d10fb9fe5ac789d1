"""The JSON form of a report (`apivigil report --format json`): ReportData, with times in
ISO 8601 and the same sections as the HTML and Markdown forms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checks.controls import Control
from monitor import __version__
from monitor.model import Severity
from monitor.report.definitions import DEFINITIONS
from monitor.report.model import (
    SEVERITIES_WORST_FIRST,
    CertificateExpiry,
    ReportData,
    ReportFinding,
    TargetReport,
)


def report_document(data: ReportData) -> dict[str, Any]:
    summary = data.summary
    return {
        "apivigil_version": __version__,
        "generated_at": data.generated_at.isoformat(),
        "period": {"start": data.period.start.isoformat(), "end": data.period.end.isoformat()},
        "framework": data.framework,
        "targets_filter": list(data.target_filter),
        "summary": {
            "targets": summary.targets,
            "posture_score": summary.posture,
            "coverage": summary.coverage,
            "open_findings": {
                **severity_counts(summary.open_by_severity),
                "total": summary.open_total,
            },
            "findings_opened": summary.opened,
            "findings_resolved": summary.resolved,
            "mean_time_to_remediate_hours": {
                r.severity.value: {"resolved": r.resolved, "mean_hours": r.mean_hours}
                for r in summary.remediation
            },
            "tls_baseline": {
                "met": summary.tls_baseline_met,
                "evaluated": summary.tls_baseline_evaluated,
                "share": summary.tls_baseline_share,
            },
            "certificates_expiring_30d": summary.certificates_expiring_30d,
            "certificates_expired": summary.certificates_expired,
            "drift_events": summary.drift_events,
            "inventory_changes": summary.inventory_changes,
            "check_runs": summary.runs,
            "check_runs_failed": summary.failed_runs,
            "check_error_rate": round(summary.error_rate, 4),
        },
        "trends": {
            "days": [
                {
                    "day": d.day.isoformat(),
                    "open_findings": severity_counts(d.open_by_severity),
                    "posture_score": d.posture,
                    "coverage": d.coverage,
                    "opened": d.opened,
                    "resolved": d.resolved,
                    "runs": d.runs,
                    "failed_runs": d.failed_runs,
                }
                for d in data.days
            ],
            "weeks": [
                {
                    "week": w.week,
                    "start": w.start.isoformat(),
                    "drift_events": w.drift_events,
                    "inventory_changes": w.inventory_changes,
                    "opened": w.opened,
                    "resolved": w.resolved,
                }
                for w in data.weeks
            ],
        },
        "checks": [
            {
                "check": c.check.value,
                "runs": c.runs,
                "evaluated": c.evaluated,
                "failed": c.failed,
                "error_rate": round(c.error_rate, 4),
                "targets": c.targets,
                "first_run": c.first_run.isoformat() if c.first_run else None,
                "last_run": c.last_run.isoformat() if c.last_run else None,
            }
            for c in data.checks
        ],
        "controls": [
            {
                **control_document(r.control),
                "status": r.status.value,
                "open_findings": r.open_findings,
                "targets": list(r.targets),
                "rules": list(r.rules),
            }
            for r in data.controls
        ],
        "findings": [finding_document(f) for f in data.findings],
        "certificates": [certificate_document(c) for c in data.certificates],
        "http_posture": [
            {
                "target": g.target,
                "profile": g.profile,
                "grade": g.grade,
                "score": g.score,
                "version": g.version,
            }
            for g in data.http_posture
        ],
        "targets": [target_document(t) for t in data.targets],
        "audit": [
            {
                "at": a.at.isoformat(),
                "actor": a.actor,
                "action": a.action,
                "subject": a.subject,
                "detail": a.detail,
            }
            for a in data.audit
        ],
        "definitions": dict(DEFINITIONS),
    }


def severity_counts(counts: Mapping[Severity, int]) -> dict[str, int]:
    return {s.value: counts.get(s, 0) for s in SEVERITIES_WORST_FIRST}


def control_document(control: Control) -> dict[str, str]:
    return {"framework": control.framework, "control": control.control, "title": control.title}


def finding_document(finding: ReportFinding) -> dict[str, Any]:
    return {
        "fingerprint": finding.fingerprint,
        "check": finding.check.value,
        "target": finding.target,
        "rule_id": finding.rule_id,
        "severity": finding.severity.value,
        "title": finding.title,
        "subject": finding.subject,
        "evidence": finding.evidence,
        "remediation": finding.remediation,
        "first_seen": finding.first_seen.isoformat(),
        "last_seen": finding.last_seen.isoformat(),
        "controls": [control_document(c) for c in finding.controls],
    }


def certificate_document(certificate: CertificateExpiry) -> dict[str, Any]:
    return {
        "target": certificate.target,
        "address": certificate.address,
        "subject": certificate.subject,
        "issuer": certificate.issuer,
        "serial": certificate.serial,
        "position": certificate.position,
        "not_after": certificate.not_after.isoformat(),
        "days_left": certificate.days_left,
    }


def target_document(target: TargetReport) -> dict[str, Any]:
    return {
        "name": target.name,
        "url": target.url,
        "labels": dict(target.labels),
        "posture_score": target.posture,
        "open_findings": severity_counts(target.open_by_severity),
        "covered": target.covered,
        "runs": target.runs,
        "failed_runs": target.failed_runs,
        "tls_baseline_met": target.tls_baseline_met,
        "tls_grade": target.tls_grade,
        "checks": [
            {
                "check": c.check.value,
                "interval_seconds": c.interval.total_seconds() if c.interval else None,
                "last_evaluated": c.last_evaluated.isoformat() if c.last_evaluated else None,
                "within_interval": c.within_interval,
                "runs": c.runs,
                "failed_runs": c.failed_runs,
            }
            for c in target.checks
        ],
        "certificates": [certificate_document(c) for c in target.certificates],
        "findings": [f.fingerprint for f in target.findings],
    }
