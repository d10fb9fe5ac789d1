"""API inventory: documented, deprecated, shadow and zombie operations, and inventory changes."""

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
    fixed_colours,
    matrix,
    organize,
    series,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)
from monitor.metric_names import BASELINE_AGE, INVENTORY_CHANGES, INVENTORY_OPERATIONS

UID = "apivigil-api-inventory"

_DAY = 86400
_CHECK = 'check="api_inventory"'
_STATES = ("documented", "deprecated", "shadow", "zombie")
_STATE_COLOURS = {"documented": "blue", "deprecated": "orange", "shadow": "red", "zombie": "purple"}


def dashboard() -> board.Dashboard:
    result = new_dashboard(
        UID,
        "apivigil / API inventory",
        "Operations each API documents (OpenAPI) and those it serves without documenting "
        "(shadow) or after removing or deprecating them (zombie), and how the inventory "
        "changes: added, removed, breaking and security-relevant changes.",
    )
    for variable in target_variables():
        result = result.with_variable(variable)
    for annotation in finding_annotations(_CHECK):
        result = result.annotation(annotation)
    return assemble(result, _panels())


def _panels() -> list[Row | Cell]:
    operations = series(INVENTORY_OPERATIONS, TARGET)
    changes = series(INVENTORY_CHANGES, TARGET)
    retired = series(INVENTORY_OPERATIONS, TARGET, 'state=~"shadow|zombie"')
    return [
        Row("Inventory"),
        Cell(
            stat_panel(
                "Operations by state",
                "All selected targets. Shadow: traffic to paths the spec does not document; "
                "zombie: traffic to removed or deprecated operations.",
                Query(f"sum by (state) ({operations})", "{{state}}", True),
            ).overrides(fixed_colours(_STATE_COLOURS)),
            height=5,
            width=24,
        ),
        Cell(
            table_panel(
                "Operations per target",
                "Operations by target and state.",
                Query(f"sum by (target, state) ({operations})", table=True),
                sort_by="shadow",
                descending=True,
            ).transformations(
                [
                    matrix("target", "state"),
                    organize({"target\\state": "target"}, order=("target\\state", *_STATES)),
                ]
            ),
        ),
        Cell(
            timeseries_panel(
                "Shadow and zombie operations",
                "Undocumented or retired operations that still get traffic, per target.",
                Query(
                    f"sum by (target, state) ({retired})",
                    "{{target}} {{state}}",
                ),
            ),
        ),
        Row("Changes"),
        Cell(
            timeseries_panel(
                "Inventory changes",
                "Changes per interval by kind (operations added, removed, deprecated; breaking "
                "and security-relevant changes).",
                Query(f"sum by (kind) (increase({changes}[$__rate_interval]))", "{{kind}}"),
                stacked=True,
            ),
        ),
        Cell(
            table_panel(
                "Changes since monitoring began",
                "Per target and kind.",
                Query(f"sum by (target, kind) ({changes})", table=True),
                sort_by="changes",
                descending=True,
            ).transformations([organize({"Value": "changes"})]),
        ),
        Cell(
            bargauge_panel(
                "Inventory baseline age",
                "Time since each target's approved inventory was accepted "
                "(`apivigil inventory accept`).",
                Query(
                    f"max by (target) ({series(BASELINE_AGE, TARGET, _CHECK)})", "{{target}}", True
                ),
                unit="s",
            ).thresholds(thresholds("green", (90 * _DAY, "orange"), (365 * _DAY, "red"))),
            width=24,
        ),
    ]
