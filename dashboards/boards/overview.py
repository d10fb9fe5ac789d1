"""Overview: posture per target, open findings, failing checks, coverage, last scans."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import common

from dashboards.layout import Cell, Row, assemble, target_dashboard
from dashboards.panels import (
    SEVERITIES,
    TARGET,
    Query,
    bargauge_panel,
    organize,
    problem_count_stat,
    series,
    severity_colours,
    stat_panel,
    table_panel,
    target_matrix_table,
    thresholds,
    timeseries_panel,
    value_text,
)
from monitor.metric_names import (
    BUILD_INFO,
    CHECK_DURATION,
    CHECK_INTERVAL,
    CHECK_LAST_RUN,
    CHECK_RUNS,
    CHECK_UP,
    FINDINGS_OPEN,
    POSTURE_SCORE,
    RETENTION_PRUNED,
    STORE_BYTES,
    STORE_ROWS,
    STORE_UP,
    TARGET_INFO,
)

UID = "apivigil-overview"

_SCORE_COLOURS = thresholds("red", (50, "orange"), (75, "yellow"), (90, "green"))
_LAST_RUN = series(CHECK_LAST_RUN, TARGET)
_UP = series(CHECK_UP, TARGET)
# (check, target) pairs whose latest evaluated run is at most one interval old (plus a quarter
# for jitter and the run itself): 1, else 0
_LAST_OK = series(CHECK_LAST_RUN, TARGET, 'status="ok"')
_INTERVAL = series(CHECK_INTERVAL, TARGET)
_FRESH = (
    f"(time() - max by (check, target) ({_LAST_OK})"
    f" <= bool on (check, target) (1.25 * max by (check, target) ({_INTERVAL})))"
    f" or on (check, target) (0 * {_UP})"
)


def dashboard() -> board.Dashboard:
    result = target_dashboard(
        UID,
        "apivigil / Overview",
        "Security posture of every monitored API: score, open findings, failing checks, "
        "coverage and when each check last ran.",
    )
    return assemble(result, _panels())


def _panels() -> list[Row | Cell]:
    findings = series(FINDINGS_OPEN, TARGET)
    return [
        Row("Posture"),
        Cell(
            bargauge_panel(
                "Posture score",
                "100 minus 40/15/5/1 per distinct open rule at its worst severity "
                "(critical/high/medium/low).",
                Query(f"min by (target) ({series(POSTURE_SCORE, TARGET)})", "{{target}}", True),
            )
            .min(0)
            .max(100)
            .thresholds(_SCORE_COLOURS),
            width=8,
        ),
        Cell(
            timeseries_panel(
                "Posture score over time",
                "Each target's score; a drop means new or worse findings.",
                Query(f"min by (target) ({series(POSTURE_SCORE, TARGET)})", "{{target}}"),
            )
            .min(0)
            .max(100),
            width=16,
        ),
        Row("Findings"),
        Cell(
            timeseries_panel(
                "Open findings by severity",
                "Open findings of the selected targets, stacked by severity.",
                Query(f"sum by (severity) ({findings})", "{{severity}}"),
                stacked=True,
            ).overrides(severity_colours()),
        ),
        Cell(
            target_matrix_table(
                "Open findings per target",
                "Open findings by target and severity.",
                findings,
                "severity",
                SEVERITIES,
                sort_by="critical",
            ),
        ),
        Row("Checks"),
        Cell(
            stat_panel(
                "Coverage",
                "Share of targets whose every check evaluated them within its configured "
                "interval (+25 % for jitter and run time); a target counts once all its "
                "checks did.",
                Query(f"avg(min by (target) ({_FRESH}))", instant=True),
                unit="percentunit",
            )
            .thresholds(thresholds("red", (0.9, "orange"), (0.99, "green")))
            .min(0)
            .max(1),
            width=6,
            height=6,
        ),
        Cell(
            problem_count_stat(
                "Failing checks",
                "Checks whose latest run could not evaluate its target (unreachable, "
                "timeout, misconfigured ...).",
                f"sum(1 - {_UP})",
            ),
            width=6,
            height=6,
        ),
        Cell(
            stat_panel(
                "Store",
                "Whether the daemon could read its store at the last scrape.",
                Query(f"min({series(STORE_UP)})", instant=True),
            )
            .mappings(value_text(("1", "reachable", "green"), ("0", "unreachable", "red")))
            .thresholds(thresholds("red", (1, "green"))),
            width=6,
            height=6,
        ),
        Cell(
            stat_panel(
                "apivigil version",
                "Version of the daemon being scraped.",
                Query(f"max by (version) ({series(BUILD_INFO)})", "{{version}}", True),
            )
            .text_mode(common.BigValueTextMode.NAME)
            .color_mode(common.BigValueColorMode.NONE),
            width=6,
            height=6,
        ),
        Cell(
            table_panel(
                "Checks that cannot evaluate",
                "Check and target of every latest run that did not evaluate, with its "
                "outcome and when it finished.",
                Query(
                    f"1000 * (max by (check, target, status) ({_LAST_RUN})"
                    f" == on (check, target) group_left () max by (check, target) ({_LAST_RUN}))"
                    f" and on (check, target) ({_UP} == 0)",
                    table=True,
                ),
                unit="dateTimeFromNow",
                sort_by="since",
                descending=True,
            ).transformations([organize({"Value": "since"})]),
        ),
        Cell(
            table_panel(
                "Last scan times",
                "When each check last finished on each target, whatever the outcome; oldest first.",
                Query(f"1000 * max by (check, target) ({_LAST_RUN})", table=True),
                unit="dateTimeFromNow",
                sort_by="last run",
            ).transformations([organize({"Value": "last run"})]),
        ),
        Cell(
            timeseries_panel(
                "Check runs by outcome",
                "Runs finished per interval: ok, error, timeout, skipped.",
                Query(
                    f"sum by (status) (increase({series(CHECK_RUNS, TARGET)}[$__rate_interval]))",
                    "{{status}}",
                ),
                stacked=True,
            ),
        ),
        Cell(
            table_panel(
                "Targets",
                "Every monitored target with its configured labels (env, team ...).",
                Query(f"max by (target, env, team) ({series(TARGET_INFO, TARGET)})", table=True),
                sort_by="target",
            ).transformations([organize({"Value": "active"})]),
        ),
        Cell(
            timeseries_panel(
                "Check duration (95th percentile)",
                "How long runs of each check take (all targets).",
                Query(
                    "histogram_quantile(0.95, sum by (check, le) (rate("
                    f"{series(CHECK_DURATION, sample=CHECK_DURATION.samples[0])}"
                    "[$__rate_interval])))",
                    "{{check}}",
                ),
                unit="s",
            ),
        ),
        Row("Store"),
        Cell(
            timeseries_panel(
                "Store size",
                "Bytes of the store, measured after each retention pass; flat once retention "
                "deletes as much as checks write.",
                Query(f"max({series(STORE_BYTES)})", "bytes"),
                unit="bytes",
            ),
            width=8,
        ),
        Cell(
            timeseries_panel(
                "Rows per table",
                "Rows of each store table after each retention pass (PostgreSQL: estimates).",
                Query(f"max by (table) ({series(STORE_ROWS)})", "{{table}}"),
            ),
            width=8,
        ),
        Cell(
            timeseries_panel(
                "Rows pruned",
                "Rows retention deleted per interval, by table (rolled up first where the "
                "report needs them).",
                Query(
                    f"sum by (table) (increase({series(RETENTION_PRUNED)}[$__rate_interval]))",
                    "{{table}}",
                ),
                stacked=True,
            ),
            width=8,
        ),
    ]
