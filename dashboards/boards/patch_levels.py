"""Patch levels: known vulnerabilities, overdue patches, inventory and advisory freshness."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board

from dashboards.layout import (
    Cell,
    Row,
    assemble,
    finding_annotations,
    new_dashboard,
    target_variables,
)
from dashboards.panels import (
    TARGET,
    Query,
    bargauge_panel,
    matrix,
    organize,
    series,
    severity_colours,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)
from monitor.metric_names import (
    PATCH_ADVISORIES_AGE,
    PATCH_OLDEST_UNPATCHED_AGE,
    PATCH_OVERDUE,
    PATCH_PACKAGES,
    PATCH_VULNERABILITIES,
)

UID = "apivigil-patch-levels"

_DAY = 86400
_SEVERITIES = ("critical", "high", "medium", "low", "info")


def dashboard() -> board.Dashboard:
    result = new_dashboard(
        UID,
        "apivigil / Patch levels",
        "Known vulnerabilities in the software each target runs (OSV advisories), patches "
        "past their deadline (NIST SP 800-40), the inventory and the advisory data's age.",
    )
    for variable in target_variables():
        result = result.with_variable(variable)
    for annotation in finding_annotations('check="patch_level"'):
        result = result.annotation(annotation)
    return assemble(result, _panels())


def _panels() -> list[Row | Cell]:
    vulnerable = series(PATCH_VULNERABILITIES, TARGET)
    overdue = series(PATCH_OVERDUE, TARGET)
    return [
        Row("Vulnerabilities"),
        Cell(
            stat_panel(
                "Vulnerabilities by severity",
                "Distinct vulnerabilities of installed packages, all selected targets.",
                Query(f"sum by (severity) ({vulnerable})", "{{severity}}", True),
            ).overrides(severity_colours()),
            height=5,
        ),
        Cell(
            stat_panel(
                "Past the patch deadline",
                "Vulnerabilities whose fix has been out longer than the deadline for their "
                "severity (default critical 15, high 30, medium 90, low 180 days).",
                Query(f"sum by (severity) ({overdue})", "{{severity}}", True),
            ).overrides(severity_colours()),
            height=5,
        ),
        Cell(
            table_panel(
                "Vulnerabilities per target",
                "Vulnerable packages by target and severity.",
                Query(f"sum by (target, severity) ({vulnerable})", table=True),
                sort_by="critical",
                descending=True,
            ).transformations(
                [
                    matrix("target", "severity"),
                    organize(
                        {"target\\severity": "target"},
                        order=("target\\severity", *_SEVERITIES),
                    ),
                ]
            ),
            width=24,
        ),
        Cell(
            timeseries_panel(
                "Vulnerabilities over time",
                "Per target; falls when packages are patched.",
                Query(f"sum by (target) ({vulnerable})", "{{target}}"),
            ),
        ),
        Cell(
            timeseries_panel(
                "Overdue over time",
                "Per target: vulnerabilities past their patch deadline.",
                Query(f"sum by (target) ({overdue})", "{{target}}"),
            ),
        ),
        Row("Inventory and advisory data"),
        Cell(
            bargauge_panel(
                "Oldest unpatched vulnerability",
                "Time since the fix was published, for each target's oldest open one.",
                Query(
                    f"max by (target) ({series(PATCH_OLDEST_UNPATCHED_AGE, TARGET)})",
                    "{{target}}",
                    True,
                ),
                unit="s",
            ).thresholds(thresholds("green", (15 * _DAY, "orange"), (30 * _DAY, "red"))),
            width=8,
        ),
        Cell(
            table_panel(
                "Packages inventoried",
                "Packages read per target and inventory source (dpkg, rpm, apk, Python, SBOM ...).",
                Query(f"sum by (target, source) ({series(PATCH_PACKAGES, TARGET)})", table=True),
                sort_by="packages",
                descending=True,
            ).transformations([organize({"Value": "packages"})]),
            width=8,
        ),
        Cell(
            bargauge_panel(
                "Advisory data age",
                "Age of the advisory index each target was checked against; refresh it with "
                "`apivigil advisories update`.",
                Query(
                    f"max by (target) ({series(PATCH_ADVISORIES_AGE, TARGET)})", "{{target}}", True
                ),
                unit="s",
            ).thresholds(thresholds("green", (_DAY, "orange"), (7 * _DAY, "red"))),
            width=8,
        ),
    ]
