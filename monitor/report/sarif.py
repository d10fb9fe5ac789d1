"""SARIF 2.1.0 from a report (open findings in the store) or from a one-off scan.

Rules carry a description, the help text (remediation and controls) and GitHub's
`security-severity`; results are `fail` for each finding and `pass` for each rule of a check
that evaluated a target without reporting it there; the endpoint is the location. Runs that
could not evaluate a target become tool execution notifications.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from checks.controls import controls_for
from monitor import __version__
from monitor.model import CheckKind, CheckRun, Finding, RunStatus, Severity
from monitor.report.model import ReportData, ReportFinding

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "apivigil/v1"
# GitHub code scanning's bands: critical >= 9.0, high 7.0-8.9, medium 4.0-6.9, low < 4.0
SECURITY_SEVERITY: Mapping[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
LEVEL: Mapping[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


@dataclass(frozen=True, slots=True)
class Failure:
    check: str
    target: str
    rule_id: str
    severity: Severity
    title: str
    subject: str
    evidence: str
    remediation: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Evaluated:
    """A check that judged a target: every known rule of it not failing there passed."""

    check: str
    target: str


@dataclass(frozen=True, slots=True)
class CouldNotRun:
    check: str
    target: str
    reason: str
    message: str


def _failure(
    check: CheckKind, target: str, finding: Finding | ReportFinding, fingerprint: str
) -> Failure:
    return Failure(
        check.value,
        target,
        finding.rule_id,
        finding.severity,
        finding.title,
        finding.subject,
        finding.evidence,
        finding.remediation,
        fingerprint,
    )


def sarif_from_report(data: ReportData) -> dict[str, Any]:
    failures = [_failure(f.check, f.target, f, f.fingerprint) for f in data.findings]
    evaluated = [
        Evaluated(c.check.value, t.name)
        for t in data.targets
        for c in t.checks
        if c.last_evaluated is not None and c.last_evaluated >= data.period.start
    ]
    known = {check.value: rules for check, rules in data.known_rules.items()}
    return sarif_log(
        failures,
        evaluated,
        known,
        [],
        {t.name: t.url for t in data.targets},
        data.period.start,
        data.period.end,
    )


def sarif_from_scan(
    runs: Sequence[CheckRun], urls: Mapping[str, str | None], now: datetime | None = None
) -> dict[str, Any]:
    failures: list[Failure] = []
    evaluated: list[Evaluated] = []
    errors: list[CouldNotRun] = []
    for run in runs:
        if run.status is RunStatus.OK and run.output is not None:
            evaluated.append(Evaluated(run.check.value, run.target))
            failures.extend(
                _failure(run.check, run.target, f, f.fingerprint(run.check, run.target))
                for f in run.output.findings
            )
        elif run.status is not RunStatus.SKIPPED:
            reason = run.error_reason.value if run.error_reason else run.status.value
            errors.append(
                CouldNotRun(run.check.value, run.target, reason, run.error_message or reason)
            )
    start = min((run.started_at for run in runs), default=now or datetime.now(UTC))
    end = max((run.finished_at for run in runs), default=now or datetime.now(UTC))
    return sarif_log(failures, evaluated, {}, errors, urls, start, end)


def sarif_log(
    failures: Sequence[Failure],
    evaluated: Sequence[Evaluated],
    known_rules: Mapping[str, Sequence[str]],
    errors: Sequence[CouldNotRun],
    urls: Mapping[str, str | None],
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    rules_of_check: dict[str, set[str]] = {c: set(r) for c, r in known_rules.items()}
    for failure in failures:
        rules_of_check.setdefault(failure.check, set()).add(failure.rule_id)
    check_of_rule = {rule: check for check, rules in rules_of_check.items() for rule in rules}
    worst: dict[str, Failure] = {}
    for failure in failures:
        known = worst.get(failure.rule_id)
        if known is None or failure.severity.rank > known.severity.rank:
            worst[failure.rule_id] = failure
    rule_ids = sorted(check_of_rule)
    index = {rule: number for number, rule in enumerate(rule_ids)}
    results = [_fail(f, index[f.rule_id], urls) for f in failures]
    failing = {(f.check, f.target, f.rule_id) for f in failures}
    for pair in sorted(set(evaluated), key=lambda e: (e.target, e.check)):
        for rule in sorted(rules_of_check.get(pair.check, ())):
            if (pair.check, pair.target, rule) not in failing:
                results.append(_pass(pair, rule, index[rule], urls))
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "apivigil",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule(r, check_of_rule[r], worst.get(r)) for r in rule_ids],
                    }
                },
                "invocations": [_invocation(errors, urls, start, end)],
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _rule(rule_id: str, check: str, worst: Failure | None) -> dict[str, Any]:
    controls = [str(c) for c in controls_for(rule_id)]
    severity = worst.severity if worst else Severity.INFO
    evidence_for = "; ".join(controls) or "no mapped requirement"
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in rule_id.split("-")),
        "shortDescription": {"text": worst.title if worst else f"{rule_id} ({check})"},
        "fullDescription": {
            "text": f"apivigil {check} rule {rule_id}; gives evidence for: {evidence_for}."
        },
        "help": {
            "text": (worst.remediation + "\n" if worst else "") + f"Requirements: {evidence_for}."
        },
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[severity],
            "tags": ["security", check, *controls],
            "check": check,
        },
    }


def _fail(failure: Failure, rule_index: int, urls: Mapping[str, str | None]) -> dict[str, Any]:
    return {
        "ruleId": failure.rule_id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVEL[failure.severity],
        "message": {"text": f"{failure.title} ({failure.subject}). {failure.evidence}"},
        "locations": [_location(failure.target, failure.subject, urls)],
        "partialFingerprints": {FINGERPRINT_KEY: failure.fingerprint},
        "properties": {
            "check": failure.check,
            "target": failure.target,
            "severity": failure.severity.value,
            "security-severity": SECURITY_SEVERITY[failure.severity],
            "remediation": failure.remediation,
            "controls": [str(c) for c in controls_for(failure.rule_id)],
        },
    }


def _pass(
    pair: Evaluated, rule_id: str, rule_index: int, urls: Mapping[str, str | None]
) -> dict[str, Any]:
    return {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "kind": "pass",
        "level": "none",
        "message": {"text": f"{pair.check} evaluated {pair.target}: {rule_id} not reported."},
        "locations": [_location(pair.target, None, urls)],
        "properties": {"check": pair.check, "target": pair.target},
    }


def _location(target: str, subject: str | None, urls: Mapping[str, str | None]) -> dict[str, Any]:
    logical: dict[str, Any] = {"name": target, "kind": "resource"}
    if subject:
        logical = {"name": subject, "fullyQualifiedName": f"{target}/{subject}", "kind": "resource"}
    return {
        "physicalLocation": {"artifactLocation": {"uri": urls.get(target) or target}},
        "logicalLocations": [logical],
    }


def _invocation(
    errors: Sequence[CouldNotRun], urls: Mapping[str, str | None], start: datetime, end: datetime
) -> dict[str, Any]:
    return {
        "executionSuccessful": not errors,
        "startTimeUtc": _utc(start),
        "endTimeUtc": _utc(end),
        "toolExecutionNotifications": [
            {
                "level": "error",
                "message": {
                    "text": f"{e.check} could not evaluate {e.target} ({e.reason}): {e.message}"
                },
                "locations": [_location(e.target, None, urls)],
                "properties": {"check": e.check, "target": e.target, "reason": e.reason},
            }
            for e in errors
        ],
    }


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
