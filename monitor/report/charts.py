"""The report's charts, from ReportData to inline SVG (svg.py)."""

from __future__ import annotations

from monitor.report.model import SEVERITIES_WORST_FIRST, ReportData
from monitor.report.svg import (
    Series,
    grouped_bars,
    lines,
    nice_max,
    severity_colors,
    stacked_bars,
)

POSTURE_COLOR = "#1b7f5b"
COVERAGE_COLOR = "#6a3d9a"
OPENED_COLOR = "#e8590c"
RESOLVED_COLOR = "#1971c2"
ERROR_COLOR = "#862e9c"


def charts(data: ReportData) -> dict[str, str]:
    """name -> SVG: open_findings, posture, coverage, opened_resolved, error_rate."""
    labels = [d.day.strftime("%m-%d") for d in data.days]
    colors = severity_colors()
    error_rates = [round(100 * d.failed_runs / d.runs, 2) if d.runs else None for d in data.days]
    bottom_up = list(reversed(SEVERITIES_WORST_FIRST))
    return {
        "open_findings": stacked_bars(
            "Open findings by severity (end of day)",
            labels,
            [
                Series(s.value, colors[s.value], [d.open_by_severity.get(s, 0) for d in data.days])
                for s in bottom_up
            ],
        ),
        "posture": lines(
            "Posture score, mean of targets (end of day)",
            labels,
            [Series("posture score", POSTURE_COLOR, [d.posture for d in data.days])],
            top=100,
        ),
        "coverage": lines(
            "Coverage: targets checked within their interval (end of day)",
            labels,
            [
                Series(
                    "coverage",
                    COVERAGE_COLOR,
                    [None if d.coverage is None else round(d.coverage * 100, 1) for d in data.days],
                )
            ],
            top=100,
            unit="%",
        ),
        "opened_resolved": grouped_bars(
            "Findings opened and resolved per day",
            labels,
            [
                Series("opened", OPENED_COLOR, [d.opened for d in data.days]),
                Series("resolved", RESOLVED_COLOR, [d.resolved for d in data.days]),
            ],
        ),
        "error_rate": lines(
            "Check error rate per day",
            labels,
            [Series("errors and timeouts", ERROR_COLOR, error_rates)],
            top=min(100.0, nice_max(max((r for r in error_rates if r is not None), default=0))),
            unit="%",
        ),
    }
