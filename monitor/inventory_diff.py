"""`apivigil inventory diff OLD NEW`: two specs compared without a store, for CI.

The same loader, limits and rules as the api_inventory check; the changes filtered
(`--min-severity`, `--rule`), rendered for people (table, Markdown for a pull request) or
machines (JSON with every change, SARIF), and an exit code a release can be gated on.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from checks.api_inventory.diff import Axis, Change, ChangeGroup, group_changes
from checks.api_inventory.reading import read_inventory_file, read_inventory_url
from checks.egress import EgressPolicy
from checks.interface import BadInput, CheckError
from checks.openapi.inventory import ApiInventory
from checks.openapi.loading import LoadLimits, load_document
from checks.openapi.model import build_inventory
from checks.openapi.refs import RefResolver
from monitor.diff_options import FailOn
from monitor.display import cell
from monitor.model import Severity
from monitor.report.sarif import Failure, sarif_log
from monitor.text import markdown_escaped, printable

STDIN = "-"
MAX_ROWS = 40  # changes listed one per row in a table; more are rolled up


@dataclass(frozen=True, slots=True)
class SpecDiff:
    old_source: str
    new_source: str
    old: ApiInventory
    new: ApiInventory
    changes: tuple[Change, ...]  # filtered, worst first
    groups: tuple[ChangeGroup, ...]


def read_spec(
    source: str, limits: LoadLimits, egress: EgressPolicy, timeout: float, stdin: bytes | None
) -> ApiInventory:
    """The inventory of a file, an http(s) URL or `-` (stdin, given as `stdin`: `$ref`s to
    other files cannot resolve without a location). Raises CheckError subclasses."""
    if source == STDIN:
        data = stdin if stdin is not None else sys.stdin.buffer.read(limits.max_bytes + 1)
        document = load_document(data, "stdin", limits)
        resolver = RefResolver(document, "stdin", limits=limits, root_bytes=len(data))
        return build_inventory(document, "stdin", resolver=resolver)
    if source.startswith(("http://", "https://")):
        return read_inventory_url(source, egress=egress, timeout=timeout, limits=limits)
    path = Path(source)
    if not path.is_file():
        raise BadInput("no such file (give a spec file, an http(s) URL or -)", subject=source)
    return read_inventory_file(path, limits)


def read_specs(
    old: str, new: str, limits: LoadLimits, egress: EgressPolicy, timeout: float
) -> tuple[ApiInventory, ApiInventory]:
    """Both inventories; two files or URLs are read at once, OLD in a forked process and
    NEW in this one (a 5 MB YAML spec takes about a second to read and build, and an
    inventory sent back costs about 0.3 s to pickle and unpickle, so only one is)."""
    if STDIN in (old, new) or "fork" not in multiprocessing.get_all_start_methods():
        stdin = sys.stdin.buffer.read(limits.max_bytes + 1) if STDIN in (old, new) else None
        return (
            read_spec(old, limits, egress, timeout, stdin),
            read_spec(new, limits, egress, timeout, stdin),
        )
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        in_child = pool.submit(_read_or_reason, old, limits, egress, timeout)
        here = _read_or_reason(new, limits, egress, timeout)
        results = (in_child.result(), here)
    inventories: list[ApiInventory] = []
    for source, result in zip((old, new), results, strict=True):
        if isinstance(result, str):
            raise BadInput(result, subject=None if source in result else source)
        inventories.append(result)
    return inventories[0], inventories[1]


def _read_or_reason(
    source: str, limits: LoadLimits, egress: EgressPolicy, timeout: float
) -> ApiInventory | str:
    """The inventory, or why it cannot be read (a CheckError's text: exceptions with
    keyword arguments do not survive pickling from the child)."""
    try:
        return read_spec(source, limits, egress, timeout, None)
    except CheckError as error:
        return str(error)


def compare(
    old_source: str,
    new_source: str,
    old: ApiInventory,
    new: ApiInventory,
    changes: Iterable[Change],
    min_severity: Severity,
    rules: Sequence[str],
) -> SpecDiff:
    """The changes at or above `min_severity` whose rule id starts with one of `rules`
    (all when empty), and their roll-ups."""
    wanted = tuple(rule.upper() for rule in rules)
    kept = tuple(
        change
        for change in changes
        if change.severity.at_least(min_severity)
        and (not wanted or change.kind.value.startswith(wanted))
    )
    paths = [op.path for inventory in (old, new) for op in inventory.operations]
    return SpecDiff(old_source, new_source, old, new, kept, group_changes(kept, paths=paths))


def fails(changes: Iterable[Change], fail_on: FailOn) -> bool:
    if fail_on is FailOn.NEVER:
        return False
    if fail_on is FailOn.BREAKING:
        return any(c.axis is Axis.BREAKING or c.severity.at_least(Severity.HIGH) for c in changes)
    threshold = Severity(fail_on.value)
    return any(c.severity.at_least(threshold) for c in changes)


# ------------------------------------------------------------------------------ JSON


def as_json(diff: SpecDiff, failed: bool) -> dict[str, Any]:
    """Every change, the roll-ups with every operation, and the verdict."""
    return {
        "old": _spec_json(diff.old_source, diff.old),
        "new": _spec_json(diff.new_source, diff.new),
        "failed": failed,
        "summary": dict(Counter(c.kind.value for c in diff.changes)),
        "changes": [
            {
                "rule_id": c.kind.value,
                "axis": c.axis.value,
                "severity": c.severity.value,
                "operation": c.shown,
                "operation_key": c.operation_key,
                "detail": c.detail,
                "before": c.before,
                "after": c.after,
            }
            for c in diff.changes
        ],
        "groups": [
            {
                "rule_id": g.kind.value,
                "sub_kind": g.sub_kind or None,
                "path_prefix": g.path_prefix,
                "severity": g.severity.value,
                "summary": g.headline(),
                "count": g.count,
                "operations": sorted({c.shown for c in g.members}),
            }
            for g in diff.groups
        ],
    }


def _spec_json(source: str, inventory: ApiInventory) -> dict[str, Any]:
    return {
        "source": source,
        "title": inventory.title,
        "version": inventory.version,
        "openapi_version": inventory.openapi_version,
        "operations": len(inventory.operations),
        "problems": list(inventory.problems),
    }


# ------------------------------------------------------------------------------ table


def print_table(console: Console, diff: SpecDiff, failed: bool) -> None:
    """One row per change while there are few, else one per roll-up with examples."""
    console.print(_headline(diff, failed, printable), highlight=False, markup=False)
    if not diff.changes:
        return
    if len(diff.changes) <= MAX_ROWS:
        table = Table("severity", "rule", "operation", "change", "before", "after")
        for change in diff.changes:
            table.add_row(
                change.severity.value,
                change.kind.value,
                cell(change.shown),
                cell(change.detail),
                cell(change.before or ""),
                cell(change.after or ""),
            )
    else:
        table = Table("severity")
        table.add_column("rule", no_wrap=True)
        table.add_column("summary")
        table.add_column("examples")
        for group in diff.groups:
            lines = [printable(f"{c.shown}: {c.detail}") for c in group.examples]
            if group.more:
                lines.append(f"… and {group.more} more (--format json lists all)")
            table.add_row(
                group.severity.value,
                group.kind.value,
                cell(group.headline()),
                Text("\n".join(lines)),
            )
    console.print(table)


def _headline(diff: SpecDiff, failed: bool, escape: Any) -> str:
    verdict = "FAIL" if failed else "pass"
    return (
        f"{escape(diff.old.title)} {escape(diff.old.version)} -> {escape(diff.new.version)}: "
        f"{len(diff.changes)} change(s) in {len(diff.groups)} group(s), "
        f"{len(diff.old.operations)} -> {len(diff.new.operations)} operation(s) [{verdict}]"
    )


# --------------------------------------------------------------------------- Markdown


def as_markdown(diff: SpecDiff, failed: bool) -> str:
    """For a pull request comment: a summary table of roll-ups, each with its operations
    folded in a `<details>` block. Every remote string is escaped."""

    def md(text: str) -> str:
        return markdown_escaped(printable(text))

    lines = [f"### API changes: {_headline(diff, failed, md)}", ""]
    if not diff.changes:
        return "\n".join([*lines, "No changes.", ""])
    lines += ["| severity | rule | summary |", "|---|---|---|"]
    lines += [
        f"| {g.severity.value} | `{g.kind.value}` | {md(g.headline())} |" for g in diff.groups
    ]
    lines.append("")
    for group in diff.groups:
        lines += [f"<details><summary>{md(group.headline())}</summary>", ""]
        lines += [
            f"- {md(c.shown)}: {md(c.detail)}"
            + (
                f" ({md(c.before or '')} → {md(c.after or '')})"
                if c.before is not None or c.after is not None
                else ""
            )
            for c in group.members
        ]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ SARIF


def as_sarif(diff: SpecDiff, started: datetime) -> dict[str, Any]:
    """One result per change, located at the new spec."""
    failures = [
        Failure(
            check="api_inventory",
            target=diff.new_source,
            rule_id=c.kind.value,
            severity=c.severity,
            title=f"{c.shown}: {c.detail}",
            subject=f"{c.kind.value}|{c.operation_key}|{c.detail}",
            evidence=f"before: {c.before or 'nothing'}; after: {c.after or 'nothing'}",
            remediation="Check the change with the API's clients; breaking changes need a new "
            "version or a deprecation period, weaker security a review.",
            fingerprint=hashlib.sha256(
                f"{c.kind.value}|{c.operation_key}|{c.detail}".encode()
            ).hexdigest(),
        )
        for c in diff.changes
    ]
    return sarif_log(failures, [], {}, [], {}, started, datetime.now(UTC))


def dumps(document: object) -> str:
    return json.dumps(document, indent=2)
