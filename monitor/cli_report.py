"""`apivigil report`: evidence for auditors from the store, as HTML, Markdown, JSON, OSCAL
assessment-results or SARIF."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli_common import ConfigOption, StoreOption, err, load, store_session
from monitor.durations import parse_duration
from monitor.report.formats import ReportFormat
from monitor.scan import EXIT_USAGE

if TYPE_CHECKING:
    from monitor.report.model import Expectation
    from monitor.settings import Settings


def report(
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.HTML,
    since: Annotated[str, typer.Option(help="how far back the period reaches, e.g. 30d, 12w")] = (
        "30d"
    ),
    target: Annotated[
        list[str] | None, typer.Option("--target", help="only these targets (repeatable)")
    ] = None,
    framework: Annotated[
        str | None, typer.Option(help='only this framework, e.g. "NIST SP 800-53" or "PCI DSS"')
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here [default: stdout]")
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Report posture, coverage, SP 800-137 metrics, findings and controls for a period.

    Coverage is measured against the checks and intervals the config schedules.
    """
    from monitor.report.build import build_report_data, known_frameworks
    from monitor.report.model import ReportPeriod
    from monitor.report.render import render_report

    try:
        length = parse_duration(since)
        if length.total_seconds() <= 0:
            raise ValueError("must be longer than zero")
    except ValueError as error:
        err.print(f"[red]--since:[/] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    chosen = _framework(framework, known_frameworks())
    settings, config_file = load(config)
    with store_session(settings, store, config_file) as sql_store:
        data = build_report_data(
            sql_store,
            ReportPeriod.ending(datetime.now(UTC), length),
            _expectations(settings),
            targets=target,
            framework=chosen,
        )
    unknown = set(target or ()) - {t.name for t in data.targets}
    if unknown:
        err.print(f"[red]unknown target(s):[/] {', '.join(sorted(unknown))}")
        raise typer.Exit(EXIT_USAGE)
    text = render_report(data, format)
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output} ({format.value}, {len(data.targets)} target(s))")


def _framework(name: str | None, known: list[str]) -> str | None:
    if name is None:
        return None
    match = next((k for k in known if k.casefold() == name.casefold()), None)
    if match is None:
        err.print(f"[red]unknown framework {name!r}:[/] one of {', '.join(known)}")
        raise typer.Exit(EXIT_USAGE)
    return match


def _expectations(settings: Settings) -> list[Expectation]:
    from monitor.jobs import scheduled_checks
    from monitor.report.model import Expectation

    return [
        Expectation(
            check=planned.job.check,
            target=planned.job.target.name,
            interval=planned.interval,
            grace=planned.jitter + planned.job.timeout,
            url=planned.job.target.url,
        )
        for planned in scheduled_checks(settings)
    ]
