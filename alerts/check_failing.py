"""The "check failing" alert: a check that keeps failing on a target updates no finding, so
alerting says so itself. Pure."""

from __future__ import annotations

from alerts.model import Alert, AlertCandidate, AlertState, FailingCheck
from monitor.model import Severity, finding_fingerprint

CHECK_FAILING_RULE = "CHECK-FAILING"


def check_failing_candidate(failing: FailingCheck) -> AlertCandidate:
    """The alert for one (check, target) whose latest runs all failed."""
    alert = Alert(
        fingerprint=finding_fingerprint(
            failing.check, failing.target, CHECK_FAILING_RULE, failing.check
        ),
        check=failing.check,
        target=failing.target,
        rule_id=CHECK_FAILING_RULE,
        severity=Severity.HIGH,
        title=(
            f"{failing.check} has failed {failing.failed_runs} times in a row on {failing.target}"
        ),
        subject=failing.check,
        evidence=failing.last_error or "no error message",
        remediation="Findings are not updated while the check fails: fix what the error names.",
        state=AlertState.FIRING,
        started_at=failing.since,
        labels=failing.labels,
    )
    return AlertCandidate(alert, open=True, seen_streak=failing.failed_runs, missing_streak=0)
