"""Configuration drift: keys drifted from the approved baselines, and the baselines' age."""

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
    table_panel,
    thresholds,
    timeseries_panel,
)
from monitor.metric_names import BASELINE_AGE, DRIFT_ITEMS, FINDINGS_OPEN

UID = "apivigil-config-drift"

_DAY = 86400
_DRIFT_CHECK = 'check="config_drift"'


def dashboard() -> board.Dashboard:
    result = new_dashboard(
        UID,
        "apivigil / Configuration drift",
        "Configuration keys added, removed or changed against the approved baselines "
        "(NIST SP 800-128 change control), and how old each baseline is.",
    )
    for variable in target_variables():
        result = result.with_variable(variable)
    for annotation in finding_annotations(_DRIFT_CHECK):
        result = result.annotation(annotation)
    return assemble(result, _panels())


def _panels() -> list[Row | Cell]:
    drift = series(DRIFT_ITEMS, TARGET)
    return [
        Row("Drift"),
        Cell(
            bargauge_panel(
                "Drifted keys per target",
                "Keys that differ from the approved baseline, all sources together.",
                Query(f"sum by (target) ({drift})", "{{target}}", True),
            ).thresholds(thresholds("green", (1, "orange"))),
            width=8,
        ),
        Cell(
            timeseries_panel(
                "Drifted keys by source",
                "Per target and source; drops to zero when the configuration returns to the "
                "baseline or a new baseline is approved.",
                Query(f"sum by (target, source) ({drift})", "{{target}} {{source}}"),
            ),
            width=16,
        ),
        Cell(
            table_panel(
                "Open drift findings",
                "Open config_drift findings by target and severity (DRIFT-ADDED, "
                "DRIFT-REMOVED, DRIFT-CHANGED, DRIFT-SOURCE-UNAVAILABLE).",
                Query(
                    f"sum by (target, severity) ({series(FINDINGS_OPEN, TARGET, _DRIFT_CHECK)})",
                    table=True,
                ),
                sort_by="high",
                descending=True,
            ).transformations(
                [
                    matrix("target", "severity"),
                    organize(
                        {"target\\severity": "target"},
                        order=("target\\severity", "critical", "high", "medium", "low", "info"),
                    ),
                ]
            ),
        ),
        Cell(
            bargauge_panel(
                "Baseline age",
                "Time since each target's current baseline was approved "
                "(`apivigil baseline accept`).",
                Query(
                    f"max by (target) ({series(BASELINE_AGE, TARGET, _DRIFT_CHECK)})",
                    "{{target}}",
                    True,
                ),
                unit="s",
            ).thresholds(thresholds("green", (90 * _DAY, "orange"), (365 * _DAY, "red"))),
        ),
    ]
