"""Patch levels: known vulnerabilities, overdue patches, inventory and advisory freshness."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board

from dashboards.layout import Cell, Row, assemble, target_dashboard
from dashboards.panels import (
    DAY,
    SEVERITIES,
    TARGET,
    Query,
    age_per_target_bargauge,
    organize,
    series,
    severity_colours,
    stat_panel,
    table_panel,
    target_matrix_table,
    timeseries_panel,
)
from monitor.metric_names import (
    PATCH_ADVISORIES_AGE,
    PATCH_OLDEST_UNPATCHED_AGE,
    PATCH_OVERDUE,
    PATCH_PACKAGES,
    PATCH_UNDETERMINED,
    PATCH_VULNERABILITIES,
)

UID = "apivigil-patch-levels"


def dashboard() -> board.Dashboard:
    result = target_dashboard(
        UID,
        "apivigil / Patch levels",
        "Known vulnerabilities in the software each target runs (OSV advisories), patches "
        "past their deadline (NIST SP 800-40), the inventory and the advisory data's age.",
        'check="patch_level"',
    )
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
            target_matrix_table(
                "Vulnerabilities per target",
                "Vulnerable packages by target and severity.",
                vulnerable,
                "severity",
                SEVERITIES,
                sort_by="critical",
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
        Cell(
            timeseries_panel(
                "Undetermined",
                "Per target: packages (per advisory) and sources that could be neither matched "
                "nor ruled out - an unorderable version, an unknown distribution. Never clean: "
                "see the PATCH-UNDETERMINED findings.",
                Query(f"sum by (target) ({series(PATCH_UNDETERMINED, TARGET)})", "{{target}}"),
            ),
            width=24,
        ),
        Row("Inventory and advisory data"),
        Cell(
            age_per_target_bargauge(
                "Oldest unpatched vulnerability",
                "Time since the fix was published, for each target's oldest open one.",
                series(PATCH_OLDEST_UNPATCHED_AGE, TARGET),
                orange_after=15 * DAY,
                red_after=30 * DAY,
            ),
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
            age_per_target_bargauge(
                "Advisory data age",
                "Age of the advisory index each target was checked against; refresh it with "
                "`apivigil advisories update`.",
                series(PATCH_ADVISORIES_AGE, TARGET),
                orange_after=DAY,
                red_after=7 * DAY,
            ),
            width=8,
        ),
    ]
