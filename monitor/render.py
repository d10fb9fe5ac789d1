"""Terminal rendering of scan results and findings (rich tables)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from monitor.display import cell, markup_safe
from monitor.model import CheckRun, RunStatus, Severity, StoredFinding

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
_GRADE_STYLE = {"A+": "bold green", "A": "green", "B": "yellow", "C": "yellow"}


def severity_cell(severity: Severity) -> str:
    return f"[{SEVERITY_STYLE[severity]}]{severity.value}[/]"


def print_scan(console: Console, runs: Sequence[CheckRun]) -> None:
    """Per-endpoint TLS grades (when scanned), every finding, and what could not run."""
    _print_grades(console, runs)
    table = Table("severity", "target", "check", "rule", "title", "subject", title="findings")
    count = 0
    for run in runs:
        for finding in sorted(
            run.output.findings if run.output else (), key=lambda f: -f.severity.rank
        ):
            count += 1
            table.add_row(
                severity_cell(finding.severity),
                cell(run.target),
                run.check.value,
                cell(finding.rule_id),
                cell(finding.title),
                cell(finding.subject),
            )
    if count:
        console.print(table)
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
    table = Table(
        "severity",
        "target",
        "rule",
        "title",
        "subject",
        "status",
        "first seen",
        title=f"{len(found)} finding(s)",
    )
    for f in found:
        table.add_row(
            severity_cell(f.severity),
            cell(f.target),
            cell(f.rule_id),
            cell(f.title),
            cell(f.subject),
            f.status.value,
            f.first_seen.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
