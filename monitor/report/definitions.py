"""How each number in a report is computed: printed in every format, so an auditor can check
them against the store. Keep in step with build.py, trends.py and monitor/posture.py."""

from __future__ import annotations

DEFINITIONS: tuple[tuple[str, str], ...] = (
    (
        "posture score",
        "Per target, 0-100: 100 minus 40 / 15 / 5 / 1 for each distinct rule open on the "
        "target at its worst severity (critical / high / medium / low), floored at 0. Overall: "
        "the mean of the selected targets' scores.",
    ),
    (
        "coverage",
        "Share of targets whose every scheduled check evaluated them (a run with status ok) "
        "within its interval plus grace (jitter + timeout), at the end of the period or of "
        "each day in the trend.",
    ),
    (
        "findings opened / resolved",
        "Finding transitions recorded in the period (after hysteresis: a finding opens after "
        "open_after sightings and resolves after resolve_after absences or an approval).",
    ),
    (
        "mean time to remediate",
        "For findings resolved in the period: mean time from first sighting to resolution, "
        "by the severity they had when resolved.",
    ),
    (
        "TLS baseline",
        "A target meets it when its newest tls_posture run evaluated it and no tls_posture "
        "finding of medium severity or above (RFC 7525 / NIST SP 800-52r2 rules) is open.",
    ),
    (
        "certificates expiring",
        "Distinct certificates (leaf and chain) served in the newest cert_expiry run of each "
        "target whose not-after is within 30 days of the period end; expired ones are counted "
        "apart.",
    ),
    (
        "drift events / inventory changes",
        "config_drift findings opened (DRIFT-ADDED, -REMOVED, -CHANGED) and api_inventory "
        "change findings opened (operations added, removed or deprecated, breaking and "
        "security changes), per ISO week.",
    ),
    (
        "check error rate",
        "Runs that ended in error or timeout divided by all runs that were not skipped.",
    ),
)
