"""`apivigil advisories update` and `apivigil inventory show`: the patch_level check's CLI."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from checks.interface import CheckContext
from checks.patch_level.params import DEFAULT_ADVISORY_INDEX, PatchLevelParams
from monitor.cli_common import ConfigOption, err, load, out
from monitor.clock import SystemClock
from monitor.model import CheckKind
from monitor.scan import EXIT_USAGE

advisories_app = typer.Typer(help="The offline OSV advisory index.", no_args_is_help=True)
inventory_app = typer.Typer(help="What is installed behind a target.", no_args_is_help=True)


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


@inventory_app.command("show")
def inventory_show(
    target: Annotated[str, typer.Argument(help="target name")],
    config: ConfigOption = None,
) -> None:
    """Print the software inventory patch_level collects for TARGET (no matching)."""
    from checks.patch_level.collect import read_inventory

    settings, _ = load(config, required=True)
    configured = next((t for t in settings.targets if t.name == target), None)
    if configured is None:
        err.print(f"[red]unknown target:[/] {target}")
        raise typer.Exit(EXIT_USAGE)
    params = configured.enabled_checks().get(CheckKind.PATCH_LEVEL)
    if not isinstance(params, PatchLevelParams):
        err.print(f"[red]{target}[/] has no patch_level check configured")
        raise typer.Exit(EXIT_USAGE)
    timeout = params.timeout or timedelta(seconds=120)
    context = CheckContext(
        started_at=SystemClock().now(), deadline=time.monotonic() + timeout.total_seconds()
    )
    inventories, failures = read_inventory(configured.to_target(), params, context)
    table = Table("source", "ecosystem", "name", "version", "source package")
    for inventory in inventories:
        for package in sorted(inventory.packages, key=lambda p: (p.ecosystem, p.name)):
            ecosystem = package.ecosystem.value + (f":{package.release}" if package.release else "")
            table.add_row(
                inventory.source,
                ecosystem,
                package.name,
                package.version,
                package.source_name or "",
            )
        for banner in inventory.banners:
            table.add_row(
                inventory.source,
                f"banner {banner.header}",
                banner.product,
                banner.version or "?",
                "",
            )
    out.print(table)
    for inventory in inventories:
        count = len(inventory.packages) + len(inventory.banners)
        notes = "; ".join(inventory.notes)
        out.print(f"{inventory.source}: {count} item(s)" + (f" — {notes}" if notes else ""))
    for source, reason in failures:
        err.print(f"[red]{source}:[/] {reason}", highlight=False)
    if failures:
        raise typer.Exit(EXIT_USAGE)
