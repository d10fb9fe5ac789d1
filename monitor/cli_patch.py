"""`apivigil advisories update`: the offline advisory index of the patch_level check."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli_common import err, out
from monitor.scan import EXIT_USAGE

# checks.patch_level.params.DEFAULT_ADVISORY_INDEX (tests/test_startup_imports.py keeps them
# equal), spelled out here: importing the params models only to show --help costs ~10 ms
DEFAULT_ADVISORY_INDEX = Path("apivigil-advisories.db")

advisories_app = typer.Typer(help="The offline OSV advisory index.", no_args_is_help=True)


@advisories_app.command("update")
def advisories_update(
    sources: Annotated[
        list[Path],
        typer.Option("--from", help="OSV JSON directory or OSV zip dump (repeatable)"),
    ],
    index: Annotated[
        Path, typer.Option("--index", help="index file to (re)build")
    ] = DEFAULT_ADVISORY_INDEX,
) -> None:
    """Build the advisory index from OSV dumps; the old index stays if the build fails."""
    from checks.patch_level.advisories import AdvisoryIndexError, build_index

    started = time.monotonic()
    last_report = [started]

    def progress(documents: int) -> None:
        now = time.monotonic()
        if now - last_report[0] >= 2:
            last_report[0] = now
            err.print(f"  {documents:,} records read …")

    try:
        stats = build_index(sources, index, progress)
    except AdvisoryIndexError as error:
        err.print(f"[red]advisory index not updated:[/] {error}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    for rejected in stats.rejected[:50]:
        err.print(
            f"[yellow]skipped[/] {rejected.origin}"
            + (f" ({rejected.record_id})" if rejected.record_id else "")
            + f": {rejected.problem}",
            highlight=False,
        )
    if len(stats.rejected) > 50:
        err.print(f"[yellow]… and {len(stats.rejected) - 50} more skipped records[/]")
    per_ecosystem = ", ".join(f"{name} {count:,}" for name, count in stats.records_per_ecosystem)
    out.print(
        f"{index}: {stats.records:,} records ({stats.vulnerability_groups:,} vulnerabilities "
        f"after merging aliases; {stats.withdrawn:,} withdrawn, {len(stats.rejected):,} "
        f"rejected) in {time.monotonic() - started:.1f} s\n  {per_ecosystem}",
        highlight=False,
    )
