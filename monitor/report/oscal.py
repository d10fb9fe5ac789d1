"""The OSCAL form of a report: an assessment-results document built with compliance-trestle's
models (which validate it as it is built).

One result for the report period; one observation per check kind that ran (its executions);
one finding per failing rule, targeting the rule's control (the first in the selected
framework), with every mapped control as a property; one risk per failing rule, rated from
its worst open severity. Identifiers are UUIDv5 of the report's inputs, so the same store and
period give the same document.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from trestle.oscal import OSCAL_VERSION
from trestle.oscal import assessment_results as ar
from trestle.oscal import common as oscal

from checks.controls import Control
from monitor import __version__
from monitor.model import Severity
from monitor.report.model import CheckActivity, ReportData, ReportFinding

NAMESPACE = "urn:apivigil:oscal"
NIST_NAMESPACE = "http://csrc.nist.gov/ns/oscal"
_RISK_LEVEL = {
    Severity.CRITICAL: "very-high",
    Severity.HIGH: "high",
    Severity.MEDIUM: "moderate",
    Severity.LOW: "low",
    Severity.INFO: "very-low",
}
_UUID_ROOT = uuid.uuid5(uuid.NAMESPACE_URL, "urn:apivigil:report")


def assessment_results(data: ReportData) -> ar.AssessmentResults:
    ids = _Ids(data)
    tool = ids.of("component", "apivigil")
    subjects = {t.name: ids.of("target", t.name) for t in data.targets}
    observations = {a.check.value: _observation(a, data, ids, tool, subjects) for a in data.checks}
    by_rule: dict[str, list[ReportFinding]] = defaultdict(list)
    for finding in data.findings:
        by_rule[finding.rule_id].append(finding)
    findings, risks = [], []
    for rule_id, open_findings in sorted(by_rule.items()):
        risk = _risk(rule_id, open_findings, ids, tool, observations)
        risks.append(risk)
        findings.append(_finding(rule_id, open_findings, ids, tool, observations, risk, data))
    result = ar.Result(
        uuid=ids.of("result"),
        title=f"Continuous monitoring {_day(data.period.start)} to {_day(data.period.end)}",
        description=(
            f"apivigil checks of {data.summary.targets} API target(s) between "
            f"{data.period.start.isoformat()} and {data.period.end.isoformat()}: "
            f"posture score {_score(data.summary.posture)}, coverage "
            f"{_share(data.summary.coverage)}, {data.summary.open_total} open finding(s)."
        ),
        start=data.period.start,
        end=data.period.end,
        props=[
            _prop("posture-score", _score(data.summary.posture)),
            _prop("coverage", _share(data.summary.coverage)),
            _prop("check-error-rate", f"{data.summary.error_rate:.4f}"),
        ],
        local_definitions=ar.LocalDefinitions1(
            inventory_items=[
                oscal.InventoryItem(
                    uuid=subjects[t.name],
                    description=f"API target {t.name}" + (f" at {t.url}" if t.url else ""),
                    props=[_prop("asset-id", t.name, NIST_NAMESPACE)],
                )
                for t in data.targets
            ]
            or None,
            assessment_assets=oscal.AssessmentAssets(
                components=[
                    oscal.SystemComponent(
                        uuid=tool,
                        type="software",
                        title="apivigil",
                        description="Continuous security monitoring of APIs (NIST SP 800-137).",
                        props=[_prop("version", __version__, NIST_NAMESPACE)],
                        status=oscal.Status(state="operational"),
                    )
                ],
                assessment_platforms=[
                    oscal.AssessmentPlatform(
                        uuid=ids.of("platform"),
                        title="apivigil daemon",
                        uses_components=[oscal.UsesComponent(component_uuid=tool)],
                    )
                ],
            ),
        ),
        reviewed_controls=_reviewed_controls(data),
        observations=list(observations.values()) or None,
        risks=risks or None,
        findings=findings or None,
    )
    plan = ids.of("assessment-plan")
    return ar.AssessmentResults(
        uuid=ids.of("document"),
        metadata=oscal.Metadata(
            title="apivigil continuous monitoring assessment results",
            last_modified=data.generated_at,
            version=__version__,
            oscal_version=OSCAL_VERSION,
        ),
        import_ap=ar.ImportAp(href=f"#{plan}"),
        results=[result],
        back_matter=oscal.BackMatter(
            resources=[
                oscal.Resource(
                    uuid=plan,
                    title="apivigil configuration",
                    description=(
                        "The monitoring plan: the targets, checks and intervals of the apivigil "
                        "configuration that produced these results."
                    ),
                )
            ]
        ),
    )


def oscal_json(data: ReportData) -> str:
    """The document as OSCAL JSON ({"assessment-results": ...})."""
    return assessment_results(data).oscal_serialize_json(pretty=True, wrapped=True) + "\n"


def control_token(control: Control) -> str:
    """An OSCAL token for a control: the NIST SP 800-53 catalog id (sc-8, ia-5.2), else a slug
    of framework and control."""
    if control.framework == "NIST SP 800-53":
        match = re.fullmatch(r"([A-Z]{2})-(\d+)(?:\((\d+)\))?", control.control)
        if match:
            family, number, enhancement = match.groups()
            return f"{family.lower()}-{number}" + (f".{enhancement}" if enhancement else "")
    slug = re.sub(r"[^a-z0-9.]+", "-", f"{control.framework} {control.control}".lower())
    return slug.strip("-")


class _Ids:
    def __init__(self, data: ReportData) -> None:
        self.root = uuid.uuid5(
            _UUID_ROOT,
            "|".join(
                (
                    data.period.start.isoformat(),
                    data.period.end.isoformat(),
                    ",".join(data.target_filter),
                    data.framework or "",
                )
            ),
        )

    def of(self, *parts: str) -> str:
        return str(uuid.uuid5(self.root, "|".join(parts)))


def _observation(
    activity: CheckActivity,
    data: ReportData,
    ids: _Ids,
    tool: str,
    subjects: dict[str, str],
) -> oscal.Observation:
    evaluated = sorted(
        t.name for t in data.targets for c in t.checks if c.check is activity.check and c.runs
    )
    return oscal.Observation(
        uuid=ids.of("observation", activity.check.value),
        title=f"{activity.check.value} executions",
        description=(
            f"{activity.runs} automated {activity.check.value} run(s) on {activity.targets} "
            f"target(s): {activity.evaluated} evaluated, {activity.failed} could not evaluate "
            f"(error rate {activity.error_rate:.2%})."
        ),
        props=[
            _prop("check", activity.check.value),
            _prop("runs", str(activity.runs)),
            _prop("evaluated", str(activity.evaluated)),
            _prop("failed", str(activity.failed)),
        ],
        methods=["TEST"],
        types=["finding"] if any(f.check is activity.check for f in data.findings) else None,
        origins=[_origin(tool)],
        subjects=[
            oscal.SubjectReference(subject_uuid=subjects[name], type="inventory-item", title=name)
            for name in evaluated
        ]
        or None,
        relevant_evidence=[
            oscal.RelevantEvidence(
                description=(
                    f"check_run, sample and finding rows of {activity.check.value} in the "
                    "apivigil store; snapshots are kept content-addressed."
                )
            )
        ],
        collected=activity.last_run or data.generated_at,
    )


def _risk(
    rule_id: str,
    findings: Sequence[ReportFinding],
    ids: _Ids,
    tool: str,
    observations: dict[str, oscal.Observation],
) -> oscal.Risk:
    worst = max(findings, key=lambda f: f.severity.rank)
    related = observations.get(worst.check.value)
    return oscal.Risk(
        uuid=ids.of("risk", rule_id),
        title=f"{rule_id}: {worst.title}",
        description=(
            f"{len(findings)} open finding(s) of {rule_id} on "
            f"{len({f.target for f in findings})} target(s); worst severity {worst.severity}."
        ),
        statement=worst.remediation,
        status=oscal.RiskStatus("open"),
        origins=[_origin(tool)],
        characterizations=[
            oscal.Characterization(
                origin=_origin(tool),
                facets=[
                    oscal.Facet(
                        name="risk", system=NIST_NAMESPACE, value=_RISK_LEVEL[worst.severity]
                    ),
                    oscal.Facet(name="severity", system=NAMESPACE, value=worst.severity.value),
                ],
            )
        ],
        related_observations=(
            [oscal.RelatedObservation(observation_uuid=related.uuid)] if related else None
        ),
    )


def _finding(
    rule_id: str,
    findings: Sequence[ReportFinding],
    ids: _Ids,
    tool: str,
    observations: dict[str, oscal.Observation],
    risk: oscal.Risk,
    data: ReportData,
) -> oscal.Finding:
    worst = max(findings, key=lambda f: f.severity.rank)
    controls = worst.controls
    primary = next(
        (c for c in controls if c.framework == data.framework),
        controls[0] if controls else Control("apivigil", rule_id, "no mapped requirement"),
    )
    related = observations.get(worst.check.value)
    lines = [f"- {f.target}: {f.subject} ({f.severity}) — {f.evidence}" for f in findings[:50]]
    if len(findings) > 50:
        lines.append(f"- and {len(findings) - 50} more")
    return oscal.Finding(
        uuid=ids.of("finding", rule_id),
        title=f"{rule_id}: {worst.title}",
        description=f"{len(findings)} open finding(s):\n" + "\n".join(lines),
        props=[_prop("rule-id", rule_id), _prop("severity", worst.severity.value)]
        + [_prop("control", str(c)) for c in controls],
        origins=[_origin(tool)],
        target=oscal.FindingTarget(
            type="objective-id",
            target_id=control_token(primary),
            title=f"{primary} {primary.title}",
            status=oscal.ObjectiveStatus(state="not-satisfied"),
        ),
        related_observations=(
            [oscal.RelatedObservation(observation_uuid=related.uuid)] if related else None
        ),
        related_risks=[oscal.AssociatedRisk(risk_uuid=risk.uuid)],
    )


def _reviewed_controls(data: ReportData) -> oscal.ReviewedControls:
    tokens = sorted({control_token(r.control) for r in data.controls})
    return oscal.ReviewedControls(
        description="Controls apivigil's checks give evidence for"
        + (f" ({data.framework})." if data.framework else "."),
        control_selections=[
            oscal.ControlSelections(
                include_controls=[oscal.SelectControlById(control_id=t) for t in tokens]
            )
            if tokens
            else oscal.ControlSelectionsAll(include_all=oscal.IncludeAll())
        ],
    )


def _origin(tool: str) -> oscal.Origin:
    return oscal.Origin(actors=[oscal.OriginActor(type="tool", actor_uuid=tool)])


def _prop(name: str, value: str, namespace: str = NAMESPACE) -> oscal.Property:
    return oscal.Property(name=name, value=value, ns=namespace)


def _score(posture: float | None) -> str:
    return "n/a" if posture is None else str(posture)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _day(moment: datetime) -> str:
    return moment.date().isoformat()
