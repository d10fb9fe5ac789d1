"""Roll-ups computed at scrape time: a posture score per target and the status of each
control (framework requirement) apivigil gives evidence for. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from enum import StrEnum

from checks.controls import controls_for, controls_of_check
from monitor.model import CheckKind, Severity
from monitor.store.interface import OpenRule

# Deducted once per distinct open rule at its worst severity, so ten thousand low findings
# of one rule do not outweigh one critical problem.
SEVERITY_WEIGHT: Mapping[Severity, float] = {
    Severity.CRITICAL: 40,
    Severity.HIGH: 15,
    Severity.MEDIUM: 5,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class ControlStatus(StrEnum):
    PASSING = "passing"  # evidence collected, no open finding against it
    FAILING = "failing"  # at least one open finding against it


def posture_scores(targets: Iterable[str], open_rules: Iterable[OpenRule]) -> dict[str, float]:
    """0-100 per target: 100 minus the weight of each distinct open rule's worst severity."""
    worst: dict[tuple[str, str], Severity] = {}
    for rule in open_rules:
        key = (rule.target, rule.rule_id)
        if key not in worst or rule.severity.rank > worst[key].rank:
            worst[key] = rule.severity
    penalty: dict[str, float] = defaultdict(float)
    for (target, _rule), severity in worst.items():
        penalty[target] += SEVERITY_WEIGHT[severity]
    return {target: max(0.0, 100.0 - penalty[target]) for target in targets}


def control_statuses(
    evaluated_checks: Iterable[CheckKind], open_rules: Iterable[OpenRule]
) -> dict[tuple[str, str], ControlStatus]:
    """(framework, control) -> status, for controls of checks that evaluated some target."""
    statuses: dict[tuple[str, str], ControlStatus] = {}
    for check in set(evaluated_checks):
        for control in controls_of_check(check.value):
            statuses[(control.framework, control.control)] = ControlStatus.PASSING
    for rule in open_rules:
        for control in controls_for(rule.rule_id):
            statuses[(control.framework, control.control)] = ControlStatus.FAILING
    return statuses
