"""Configuration drift: keys drifted from the approved baselines, and the baselines' age."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board

from dashboards.layout import Cell, Row, assemble, target_dashboard
from dashboards.panels import (
    DAY,
    SEVERITIES,
    TARGET,
    Query,
    age_per_target_bargauge,
    bargauge_panel,
    series,
    target_matrix_table,
    thresholds,
    timeseries_panel,
)
from monitor.metric_names import BASELINE_AGE, DRIFT_ITEMS, FINDINGS_OPEN

UID = "apivigil-config-drift"

_DRIFT_CHECK = 'check="config_drift"'


def dashboard() -> board.Dashboard:
    result = target_dashboard(
        UID,
        "apivigil / Configuration drift",
        "Configuration keys added, removed or changed against the approved baselines "
        "(NIST SP 800-128 change control), and how old each baseline is.",
        _DRIFT_CHECK,
    )
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
            target_matrix_table(
                "Open drift findings",
                "Open config_drift findings by target and severity (DRIFT-ADDED, "
                "DRIFT-REMOVED, DRIFT-CHANGED, DRIFT-SOURCE-UNAVAILABLE).",
                series(FINDINGS_OPEN, TARGET, _DRIFT_CHECK),
                "severity",
                SEVERITIES,
                sort_by="high",
            ),
        ),
        Cell(
            age_per_target_bargauge(
                "Baseline age",
                "Time since each target's current baseline was approved "
                "(`apivigil baseline accept`).",
                series(BASELINE_AGE, TARGET, _DRIFT_CHECK),
                orange_after=90 * DAY,
                red_after=365 * DAY,
            ),
        ),
    ]
