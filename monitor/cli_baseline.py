"""`apivigil baseline accept|show|history|diff`: change control for approved baselines."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from monitor.cli_common import (
    ConfigOption,
    OutputFormat,
    StoreOption,
    err,
    opened_store,
    out,
)
from monitor.clock import SystemClock
from monitor.display import cell
from monitor.model import CheckKind
from monitor.scan import EXIT_USAGE

baseline_app = typer.Typer(
    help="Approved baselines: accept the observed state, show, history, diff.",
    no_args_is_help=True,
)

CheckOption = Annotated[CheckKind, typer.Option("--check", help="whose baseline")]
_DEFAULT_CHECK = CheckKind.CONFIG_DRIFT


@baseline_app.command("accept")
def baseline_accept(
    target: Annotated[str, typer.Argument(help="target name")],
    reason: Annotated[str, typer.Option("--reason", help="why this state is approved")],
    source: Annotated[
        list[str] | None, typer.Option("--source", help="only this source (repeatable)")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="approver [default: OS user]")] = None,
    check: CheckOption = _DEFAULT_CHECK,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Approve the latest observed state as the new baseline version."""
    from monitor.baselines import BaselineError, accept, default_approver
    from monitor.store.interface import StoreError

    with opened_store(config, store) as sql_store:
        try:
            result = accept(
                sql_store,
                check,
                target,
                source or [],
                reason,
                by or default_approver(),
                SystemClock().now(),
            )
        except (BaselineError, StoreError) as error:
            err.print(f"[red]cannot accept:[/] {error}", highlight=False)
            raise typer.Exit(EXIT_USAGE) from None
    if result.baseline is None:
        out.print(f"{target}: the observed state already is the approved baseline")
    else:
        out.print(
            f"{target}: baseline version {result.baseline.version} approved by "
            f"{result.baseline.approved_by}",
            highlight=False,
        )
    if result.transitions:
        out.print(f"{len(result.transitions)} drift finding(s) resolved")


@baseline_app.command("show")
def baseline_show(
    target: Annotated[str, typer.Argument(help="target name")],
    check: CheckOption = _DEFAULT_CHECK,
    config: ConfigOption = None,
    store: StoreOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE,
) -> None:
    """Print the approved baseline (secret values appear only as keyed hashes)."""
    with opened_store(config, store) as sql_store:
        baseline = sql_store.approved_baseline(check, target)
    if baseline is None:
        err.print(f"{target}: no approved {check} baseline yet")
        raise typer.Exit(EXIT_USAGE)
    if format is OutputFormat.JSON:
        print(json.dumps({"version": baseline.version, "content": baseline.content}, indent=2))
        return
    out.print(
        f"{target} {check} baseline v{baseline.version}, approved by {baseline.approved_by} "
        f"at {baseline.approved_at:%Y-%m-%d %H:%M:%S} UTC: {baseline.reason}",
        highlight=False,
    )
    table = Table("source", "path", "value")
    for source, entries in sorted(baseline.content.items()):
        if isinstance(entries, dict):
            for path, value in sorted(entries.items()):
                table.add_row(cell(source), cell(path), cell(value))
        else:
            table.add_row(cell(source), "", cell(json.dumps(entries)))
    out.print(table)


@baseline_app.command("history")
def baseline_history(
    target: Annotated[str, typer.Argument(help="target name")],
    check: CheckOption = _DEFAULT_CHECK,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Every approved version with approver, time and reason."""
    with opened_store(config, store) as sql_store:
        versions = sql_store.baseline_history(check, target)
    table = Table("version", "approved at (UTC)", "approved by", "reason", "sources")
    for baseline in versions:
        table.add_row(
            str(baseline.version),
            f"{baseline.approved_at:%Y-%m-%d %H:%M:%S}",
            cell(baseline.approved_by),
            cell(baseline.reason),
            str(len(baseline.content)),
        )
    out.print(table)


@baseline_app.command("diff")
def baseline_diff(
    target: Annotated[str, typer.Argument(help="target name")],
    from_version: Annotated[
        int | None, typer.Option("--from", help="older version [default: observed vs approved]")
    ] = None,
    to_version: Annotated[int | None, typer.Option("--to", help="newer version")] = None,
    check: CheckOption = _DEFAULT_CHECK,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Observed state vs the approved baseline, or two versions (no ignore rules applied)."""
    from monitor.baselines import BaselineError, document_diff, observed_drift, version
    from monitor.store.interface import StoreError

    with opened_store(config, store) as sql_store:
        try:
            if from_version is None and to_version is None:
                items = observed_drift(sql_store, check, target)
            else:
                if from_version is None or to_version is None:
                    raise BaselineError("--from and --to go together")
                older = version(sql_store, check, target, from_version)
                newer = version(sql_store, check, target, to_version)
                items = document_diff(older.content, newer.content)
        except (BaselineError, StoreError) as error:
            err.print(f"[red]cannot diff:[/] {error}", highlight=False)
            raise typer.Exit(EXIT_USAGE) from None
    if not items:
        out.print("no differences")
        return
    table = Table("source", "path", "change", "before", "after")
    for item in items:
        table.add_row(
            cell(item.source),
            cell(item.path),
            item.change.value,
            cell(item.before or ""),
            cell(item.after or ""),
        )
    out.print(table)
