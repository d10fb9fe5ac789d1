"""Compliance: the status of each control (framework requirement) apivigil gives evidence for."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import dashboard as model

from dashboards.layout import (
    Cell,
    Row,
    assemble,
    label_dashboard,
    label_variable,
)
from dashboards.panels import (
    Query,
    bargauge_panel,
    coloured_cells,
    organize,
    problem_count_stat,
    series,
    table_panel,
    thresholds,
    timeseries_panel,
    value_text,
)
from monitor.metric_names import CONTROL_STATUS

UID = "apivigil-compliance"

_FRAMEWORK = 'framework=~"$framework"'


def dashboard() -> board.Dashboard:
    frameworks = f"label_values({CONTROL_STATUS.name}, framework)"
    result = label_dashboard(
        UID,
        "apivigil / Compliance",
        "Each control of each framework (NIST SP 800-53, PCI DSS, RFC 7525 ...) that "
        "apivigil's checks give evidence for: passing (evaluated, no open finding) or failing.",
        label_variable("framework", "Framework", frameworks),
    )
    return assemble(result, _panels())


def _panels() -> list[Row | Cell]:
    failing = series(CONTROL_STATUS, _FRAMEWORK, 'status="failing"')
    passing = series(CONTROL_STATUS, _FRAMEWORK, 'status="passing"')
    return [
        Row("Frameworks"),
        Cell(
            problem_count_stat(
                "Failing controls",
                "Controls with at least one open finding against them.",
                f"sum({failing})",
            ),
            width=6,
        ),
        Cell(
            bargauge_panel(
                "Controls passing per framework",
                "Share of each framework's evidenced controls with no open finding.",
                Query(
                    f"sum by (framework) ({passing}) / count by (framework) ({passing})",
                    "{{framework}}",
                    True,
                ),
                unit="percentunit",
            )
            .min(0)
            .max(1)
            .thresholds(thresholds("red", (0.8, "orange"), (1, "green"))),
            width=18,
        ),
        Cell(
            timeseries_panel(
                "Failing controls over time",
                "Per framework.",
                Query(f"sum by (framework) ({failing})", "{{framework}}"),
            ),
            width=24,
        ),
        Row("Controls"),
        Cell(
            table_panel(
                "Control status",
                "Every evidenced control; failing ones first.",
                Query(f"max by (framework, control) ({failing})", table=True),
                sort_by="status",
                descending=True,
            )
            .transformations(
                [organize({"Value": "status"}, order=("framework", "control", "Value"))]
            )
            .override_by_name(
                "status",
                [
                    model.DynamicConfigValue(
                        id_val="mappings",
                        value=value_text(("1", "failing", "red"), ("0", "passing", "green")),
                    ),
                    model.DynamicConfigValue(id_val="custom.cellOptions", value=coloured_cells()),
                ],
            ),
            width=24,
            height=14,
        ),
    ]
