"""Terminal rendering of scan results and findings (rich tables)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.table import Table

from monitor.display import cell, markup_safe
from monitor.model import CheckRun, RunStatus, Severity, StoredFinding
from monitor.tables import Column, fitted_table

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
SCAN_COLUMNS = (
    Column("severity"),
    Column("target", key=True),
    Column("check", drop=2),
    Column("rule", key=True),
    Column("title", drop=1, fold_into="subject"),
    Column("subject", key=True),
)
FINDING_COLUMNS = (
    Column("severity"),
    Column("target", key=True),
    Column("rule", key=True),
    Column("title", drop=2, fold_into="subject"),
    Column("subject", key=True),
    Column("status", drop=1),
    Column("first seen", drop=3),
)
_GRADE_STYLE = {"A+": "bold green", "A": "green", "B": "yellow", "C": "yellow"}


def severity_cell(severity: Severity) -> str:
    return f"[{SEVERITY_STYLE[severity]}]{severity.value}[/]"


def print_scan(console: Console, runs: Sequence[CheckRun]) -> None:
    """Per-endpoint TLS grades (when scanned), every finding, and what could not run."""
    _print_grades(console, runs)
    rows = [
        [
            severity_cell(finding.severity),
            cell(run.target),
            run.check.value,
            cell(finding.rule_id),
            cell(finding.title),
            cell(finding.subject),
        ]
        for run in runs
        for finding in sorted(
            run.output.findings if run.output else (), key=lambda f: -f.severity.rank
        )
    ]
    count = len(rows)
    if count:
        console.print(fitted_table(console.width, SCAN_COLUMNS, rows, title="findings"))
    failed = [run for run in runs if run.status is not RunStatus.OK]
    for run in failed:
        reason = run.error_reason.value if run.error_reason else run.status.value
        console.print(
            f"[red]{run.check.value} on {markup_safe(run.target)} could not run[/] ({reason}): "
            f"{markup_safe(run.error_message)}",
            highlight=False,
        )
    console.print(f"{len(runs)} run(s), {count} finding(s), {len(failed)} could not run")


def _print_grades(console: Console, runs: Sequence[CheckRun]) -> None:
    graded = []
    for run in runs:
        if run.output is None:
            continue
        letter = next(
            (o.labels["grade"] for o in run.output.observations if o.name == "tls_grade_info"), None
        )
        if letter is None:
            continue
        score = next(o.value for o in run.output.observations if o.name == "tls_grade_score")
        worst = sorted(run.output.findings, key=lambda f: -f.severity.rank)[:3]
        graded.append((run.target, letter, int(score), worst))
    if not graded:
        return
    table = Table("target", "grade", "score", "worst findings", title="TLS posture")
    for target, letter, score, worst in graded:
        style = _GRADE_STYLE.get(letter, "bold red")
        table.add_row(
            cell(target),
            f"[{style}]{markup_safe(letter)}[/]",
            str(score),
            "\n".join(f"{severity_cell(f.severity)} {markup_safe(f.rule_id)}" for f in worst)
            or "none",
        )
    console.print(table)


def print_findings(console: Console, found: Sequence[StoredFinding]) -> None:
    """Worst first; a `resolved` column when some finding is resolved."""
    ordered = sorted(found, key=lambda f: (-f.severity.rank, f.target, f.rule_id, f.subject))
    resolved = any(f.resolved_at is not None for f in ordered)
    columns = [*FINDING_COLUMNS, *([Column("resolved")] if resolved else [])]
    rows = [
        [
            severity_cell(f.severity),
            cell(f.target),
            cell(f.rule_id),
            cell(f.title),
            cell(f.subject),
            f.status.value,
            f.first_seen.strftime("%Y-%m-%d %H:%M"),
            *(
                [f.resolved_at.strftime("%Y-%m-%d %H:%M") if f.resolved_at else "-"]
                if resolved
                else []
            ),
        ]
        for f in ordered
    ]
    console.print(fitted_table(console.width, columns, rows, title=f"{len(found)} finding(s)"))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"
