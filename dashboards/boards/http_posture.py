"""HTTP posture: both grades per target (Observatory-compatible and API profile), which
security headers each target's answer carries, and the scores over time."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import dashboard as model

from dashboards.layout import Cell, Row, assemble, target_dashboard
from dashboards.panels import (
    TARGET,
    Query,
    coloured_cells,
    matrix,
    organize,
    problem_count_stat,
    series,
    table_panel,
    thresholds,
    timeseries_panel,
    value_text,
)
from monitor.metric_names import (
    HTTP_HEADER_PRESENT,
    HTTP_POSTURE_GRADE_INFO,
    HTTP_POSTURE_REQUESTS,
    HTTP_POSTURE_SCORE,
)

UID = "apivigil-http-posture"


def dashboard() -> board.Dashboard:
    result = target_dashboard(
        UID,
        "apivigil / HTTP posture",
        "Security headers, CORS, cookies, error pages and security.txt per API (http_posture): "
        "the MDN HTTP Observatory's grade (algorithm version in the run's snapshot) beside "
        "apivigil's API-profile grade, and which headers each target's answer carries.",
        'check="http_posture"',
    )
    return assemble(result, _panels())


def _panels() -> list[Row | Cell]:
    score = series(HTTP_POSTURE_SCORE, TARGET)
    grade = series(HTTP_POSTURE_GRADE_INFO, TARGET)
    present = series(HTTP_HEADER_PRESENT, TARGET)
    requests = series(HTTP_POSTURE_REQUESTS, TARGET)
    api_score = series(HTTP_POSTURE_SCORE, TARGET, 'profile="api"')
    return [
        Row("Grades"),
        Cell(
            table_panel(
                "Grade per target and profile",
                "observatory: the Observatory's website grade, emulated; api: the API profile "
                "(no penalty for HTML-only headers, plain HTTP refused rewarded, error pages "
                "judged too). The HTTP-POSTURE-GRADE findings list each modifier.",
                Query(
                    f"max by (target, profile, grade) ({score} * on (target, profile) "
                    f"group_left (grade) {grade})",
                    table=True,
                ),
                sort_by="score",
            )
            .transformations(
                [organize({"Value": "score"}, order=("target", "profile", "grade", "Value"))]
            )
            .thresholds(thresholds("red", (50, "orange"), (80, "green"))),
            width=12,
        ),
        Cell(
            problem_count_stat(
                "Targets under B on the API profile",
                "Targets whose API-profile score is below 70.",
                f"count({api_score} < 70) or vector(0)",
            ),
            width=12,
        ),
        Row("Headers"),
        Cell(
            table_panel(
                "Security headers on each target's answer",
                "Whether the answer to the target URL carries each header; a header that "
                "disappears also opens DRIFT-REMOVED when config_drift watches the "
                "http_posture snapshot.",
                Query(f"max by (target, header) ({present})", table=True),
            )
            .transformations([matrix("target", "header"), organize({"target\\header": "target"})])
            .mappings(value_text(("1", "present", "green"), ("0", "absent", "text")))
            .override_by_regexp(
                "server|x-powered-by",
                [
                    model.DynamicConfigValue(
                        id_val="mappings",
                        value=value_text(("1", "present", "orange"), ("0", "absent", "green")),
                    ),
                    model.DynamicConfigValue(id_val="custom.cellOptions", value=coloured_cells()),
                ],
            ),
            width=24,
            height=8,
        ),
        Row("History"),
        Cell(
            timeseries_panel(
                "Scores over time",
                "Both profiles' scores per target (the Observatory's can exceed 100).",
                Query(f"max by (target, profile) ({score})", "{{target}} {{profile}}"),
            ).min(0),
            width=16,
        ),
        Cell(
            timeseries_panel(
                "Requests per run",
                "Requests each target's last run sent (GET, HEAD, OPTIONS only), within its "
                "request_budget (default 20): proof of how light the probing is.",
                Query(f"max by (target) ({requests})", "{{target}}"),
                unit="none",
            ).min(0),
            width=8,
        ),
    ]
