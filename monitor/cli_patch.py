"""`apivigil advisories update|status`: the offline advisory index of the patch_level check."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli_common import err, out
from monitor.scan import EXIT_USAGE

if TYPE_CHECKING:
    from checks.patch_level.advisories import IndexStats

# checks.patch_level.params.DEFAULT_ADVISORY_INDEX (tests/test_startup_imports.py keeps them
# equal), spelled out here: importing the params models only to show --help costs ~10 ms
DEFAULT_ADVISORY_INDEX = Path("apivigil-advisories.db")
SKIPPED_SHOWN = 50

advisories_app = typer.Typer(help="The offline OSV advisory index.", no_args_is_help=True)
IndexOption = Annotated[Path, typer.Option("--index", help="the index file")]


@advisories_app.command("update")
def advisories_update(
    sources: Annotated[
        list[Path],
        typer.Option(
            "--from",
            help="OSV records: a directory of JSON/YAML files, a zip dump, a record file, or a "
            "checkout of pypa/advisory-database, github/advisory-database, golang/vulndb or "
            "the RustSec OSV export (repeatable, mixed)",
        ),
    ],
    index: IndexOption = DEFAULT_ADVISORY_INDEX,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="write what was built and every skipped record (JSON)"),
    ] = None,
    max_drop: Annotated[
        float,
        typer.Option(
            "--max-drop",
            min=0.0,
            max=1.0,
            help="refuse an update with this fraction fewer records than the current index",
        ),
    ] = 0.5,
    force: Annotated[
        bool, typer.Option("--force", help="replace the index even with no or far fewer records")
    ] = False,
) -> None:
    """Build the advisory index from OSV sources; the old index stays if the build fails."""
    from checks.patch_level.advisories import AdvisoryIndexError, IndexRefused, build_index

    started = time.monotonic()
    last_report = [started]

    def progress(documents: int) -> None:
        now = time.monotonic()
        if now - last_report[0] >= 2:
            last_report[0] = now
            err.print(f"  {documents:,} records read …")

    try:
        stats = build_index(sources, index, progress, max_drop=max_drop, force=force)
    except IndexRefused as refused:
        _print_skipped(refused.stats)
        _write_report(report, refused.stats, time.monotonic() - started, str(refused))
        err.print(f"[red]advisory index not updated:[/] {refused}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except AdvisoryIndexError as error:
        err.print(f"[red]advisory index not updated:[/] {error}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    seconds = time.monotonic() - started
    _print_skipped(stats)
    _write_report(report, stats, seconds, None)
    out.print(_built(stats, seconds), highlight=False)


def _print_skipped(stats: IndexStats) -> None:
    for rejected in stats.rejected[:SKIPPED_SHOWN]:
        err.print(f"[yellow]skipped[/] {rejected}", highlight=False)
    if len(stats.rejected) > SKIPPED_SHOWN:
        hidden = len(stats.rejected) - SKIPPED_SHOWN
        err.print(f"[yellow]… and {hidden:,} more skipped records (--report lists all)[/]")


def _built(stats: IndexStats, seconds: float) -> str:
    per_ecosystem = ", ".join(f"{name} {count:,}" for name, count in stats.records_per_ecosystem)
    lines = [
        f"{stats.index_path}: {stats.records:,} records in {seconds:.1f} s",
        f"  per ecosystem: {per_ecosystem or 'none'}",
        f"  {stats.vulnerability_groups:,} vulnerabilities ({stats.aliases_merged:,} records "
        f"merged as aliases), {stats.withdrawn:,} withdrawn, {len(stats.rejected):,} skipped, "
        f"{stats.superseded:,} older copies",
    ]
    lines.extend(
        f"  from {s.source} as {s.layout}: {s.valid:,} valid of {s.documents:,} read, "
        f"not read: {s.ignored}"
        for s in stats.sources
    )
    return "\n".join(lines)


def _write_report(
    path: Path | None, stats: IndexStats, seconds: float, refused: str | None
) -> None:
    if path is None:
        return
    document = {
        "index": str(stats.index_path),
        "updated": refused is None,
        "refused": refused,
        "built_at": stats.built_at.isoformat(),
        "seconds": round(seconds, 3),
        "records": stats.records,
        "records_per_ecosystem": dict(stats.records_per_ecosystem),
        "vulnerabilities": stats.vulnerability_groups,
        "aliases_merged": stats.aliases_merged,
        "withdrawn": stats.withdrawn,
        "superseded": stats.superseded,
        "sources": [summary.as_json() for summary in stats.sources],
        "skipped": [
            {"id": r.record_id, "file": r.origin, "reason": r.problem} for r in stats.rejected
        ],
    }
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        err.print(f"[red]cannot write the report {path}:[/] {error.strerror}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None


@advisories_app.command("status")
def advisories_status(index: IndexOption = DEFAULT_ADVISORY_INDEX) -> None:
    """Show the index's age, the sources it was built from and what it holds."""
    from checks.patch_level.advisories import AdvisoryIndex, AdvisoryIndexError

    try:
        with AdvisoryIndex.open(index) as opened:
            meta = opened.metadata
    except AdvisoryIndexError as error:
        err.print(f"[red]no usable advisory index:[/] {error}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    age = datetime.now(UTC) - meta.built_at
    per_ecosystem = ", ".join(f"{name} {count:,}" for name, count in meta.records_per_ecosystem)
    lines = [
        f"{index}: built {meta.built_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"{age.days} d {age.seconds // 3600} h ago",
        f"  {meta.records:,} records, {meta.vulnerability_groups:,} vulnerabilities"
        + (f", {meta.withdrawn:,} withdrawn" if meta.withdrawn is not None else "")
        + (f", {meta.rejected:,} skipped" if meta.rejected is not None else ""),
        f"  per ecosystem: {per_ecosystem or 'none'}",
    ]
    summaries = {summary.source: summary for summary in meta.source_summaries}
    for source in meta.sources:
        summary = summaries.get(source)
        if summary is None:
            lines.append(f"  source {source}")
            continue
        newest = (
            f", newest record modified {summary.newest_modified:%Y-%m-%d}"
            if summary.newest_modified
            else ""
        )
        lines.append(
            f"  source {source} as {summary.layout}: {summary.valid:,} valid, "
            f"{summary.rejected:,} skipped{newest}"
        )
    out.print("\n".join(lines), highlight=False)
