"""`apivigil inventory show|diff|accept TARGET`: what is installed behind a target
(patch_level) and which API operations it documents (api_inventory)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from checks.interface import CheckContext
from monitor.cli_common import ConfigOption, StoreOption, err, load, opened_store, out
from monitor.clock import SystemClock
from monitor.diff_options import DiffFormat, FailOn
from monitor.display import cell
from monitor.model import CheckKind, Severity
from monitor.scan import EXIT_FINDINGS, EXIT_USAGE

if TYPE_CHECKING:
    from checks.egress import EgressPolicy
    from checks.openapi.inventory import ApiInventory
    from checks.patch_level.params import PatchLevelParams
    from monitor.settings import Settings, TargetConfig

inventory_app = typer.Typer(
    help="Software and API inventory of a target: show, diff, accept.", no_args_is_help=True
)


@inventory_app.command("show")
def inventory_show(
    target: Annotated[str, typer.Argument(help="target name")],
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """The software inventory patch_level collects now, and the API operations of the
    latest api_inventory run."""
    from checks.patch_level.params import PatchLevelParams

    settings, _ = load(config, required=True)
    configured = _target(settings, target)
    checks = configured.enabled_checks()
    if CheckKind.PATCH_LEVEL not in checks and CheckKind.API_INVENTORY not in checks:
        err.print(f"[red]{target}[/] has neither patch_level nor api_inventory configured")
        raise typer.Exit(EXIT_USAGE)
    failed = False
    software = checks.get(CheckKind.PATCH_LEVEL)
    if isinstance(software, PatchLevelParams):
        failed = _show_software(configured, software, settings.egress.policy())
    if CheckKind.API_INVENTORY in checks:
        with opened_store(config, store) as sql_store:
            observed = sql_store.latest_snapshot(CheckKind.API_INVENTORY, target)
        _show_operations(target, _inventory(observed))
    if failed:
        raise typer.Exit(EXIT_USAGE)


@inventory_app.command("diff")
def inventory_diff(
    specs: Annotated[
        list[str],
        typer.Argument(
            help="TARGET (observed against approved, from the store), or OLD NEW: two spec "
            "files or http(s) URLs, - for stdin",
            metavar="TARGET | OLD NEW",
        ),
    ],
    format: Annotated[DiffFormat, typer.Option("--format", "-f")] = DiffFormat.TABLE,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            help="exit 1 on: breaking (a breaking change, or any change rated high or worse), "
            "a severity, or never"
        ),
    ] = FailOn.BREAKING,
    min_severity: Annotated[
        Severity, typer.Option(help="show only changes at or above this")
    ] = Severity.INFO,
    rule: Annotated[
        list[str] | None,
        typer.Option("--rule", help="only these rule ids (a prefix such as INVENTORY-SECURITY)"),
    ] = None,
    max_spec_bytes: Annotated[int, typer.Option(min=1, help="per file")] = 50 * 1024 * 1024,
    max_total_bytes: Annotated[int, typer.Option(min=1, help="all files")] = 256 * 1024 * 1024,
    max_files: Annotated[int, typer.Option(min=0, help="files besides the root")] = 5_000,
    max_ref_depth: Annotated[int, typer.Option(min=1, help="$ref -> $ref chains")] = 64,
    max_yaml_nodes: Annotated[
        int, typer.Option(min=1, help="YAML nodes of one file, aliases expanded")
    ] = 10_000_000,
    max_resolved_nodes: Annotated[
        int, typer.Option(min=1, help="nodes walked resolving $refs")
    ] = 5_000_000,
    time_budget: Annotated[float, typer.Option(min=0.0, help="seconds for resolving $refs")] = 60.0,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds per URL fetch")] = 30.0,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Compare two specs (for CI: no store needed), or a target's observed API inventory
    with the approved one. Exit 0 when nothing reaches --fail-on, 1 when something does,
    2 for usage errors and specs that cannot be read."""
    from checks.api_inventory.diff import diff_inventories
    from checks.egress import EgressPolicy
    from checks.interface import CheckError
    from checks.openapi.loading import LoadLimits
    from monitor.inventory_diff import (
        STDIN,
        as_json,
        as_markdown,
        as_sarif,
        compare,
        dumps,
        fails,
        print_table,
        read_specs,
    )

    limits = LoadLimits(
        max_bytes=max_spec_bytes,
        max_total_bytes=max_total_bytes,
        max_files=max_files,
        max_yaml_nodes=max_yaml_nodes,
        max_ref_depth=max_ref_depth,
        max_resolved_nodes=max_resolved_nodes,
        time_budget=time_budget,
    )
    started = datetime.now(UTC)
    if len(specs) == 1:
        old_source, new_source = "approved", "observed"
        old, new = _stored(specs[0], config, store)
    elif len(specs) == 2:
        if specs.count(STDIN) > 1:
            err.print("[red]usage:[/] only one of OLD and NEW can be - (stdin)")
            raise typer.Exit(EXIT_USAGE)
        old_source, new_source = specs
        try:
            old, new = read_specs(old_source, new_source, limits, EgressPolicy(), timeout)
        except CheckError as error:
            err.print(cell(f"cannot read: {error}"))
            raise typer.Exit(EXIT_USAGE) from None
    else:
        err.print("[red]usage:[/] apivigil inventory diff TARGET, or OLD NEW")
        raise typer.Exit(EXIT_USAGE)
    changes = diff_inventories(old, new)
    result = compare(old_source, new_source, old, new, changes, min_severity, rule or [])
    failed = fails(result.changes, fail_on)
    if format is DiffFormat.JSON:
        print(dumps(as_json(result, failed)))
    elif format is DiffFormat.SARIF:
        print(dumps(as_sarif(result, started)))
    elif format is DiffFormat.MARKDOWN:
        print(as_markdown(result, failed))
    elif len(specs) == 1 and not result.changes:
        out.print(cell(f"{specs[0]}: the observed inventory is the approved one"))
    else:
        print_table(out, result, failed)
    raise typer.Exit(EXIT_FINDINGS if failed else 0)


def _stored(
    target: str, config: Path | None, store: str | None
) -> tuple[ApiInventory, ApiInventory]:
    with opened_store(config, store) as sql_store:
        approved = sql_store.approved_baseline(CheckKind.API_INVENTORY, target)
        observed = _inventory(sql_store.latest_snapshot(CheckKind.API_INVENTORY, target))
    approved_inventory = _inventory(approved.content) if approved else None
    if approved_inventory is None or observed is None:
        err.print(cell(f"{target}: no approved or observed API inventory yet"))
        raise typer.Exit(EXIT_USAGE)
    return approved_inventory, observed


@inventory_app.command("accept")
def inventory_accept(
    target: Annotated[str, typer.Argument(help="target name")],
    reason: Annotated[str, typer.Option("--reason", help="why this inventory is approved")],
    by: Annotated[str | None, typer.Option("--by", help="approver [default: OS user]")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Approve the latest observed API inventory; its change findings resolve."""
    from checks.api_inventory.evaluate import INVENTORY
    from checks.api_inventory.facts import POSTURE
    from monitor.baselines import BaselineError, accept, default_approver
    from monitor.store.interface import StoreError

    with opened_store(config, store) as sql_store:
        observed = sql_store.latest_snapshot(CheckKind.API_INVENTORY, target) or {}
        # the posture part: the standing risks a first observation reported are accepted too
        sources = [INVENTORY, *([POSTURE] if POSTURE in observed else [])]
        try:
            result = accept(
                sql_store,
                CheckKind.API_INVENTORY,
                target,
                sources,
                reason,
                by or default_approver(),
                SystemClock().now(),
            )
        except (BaselineError, StoreError) as error:
            err.print(f"[red]cannot accept:[/] {error}", highlight=False)
            raise typer.Exit(EXIT_USAGE) from None
    version = result.baseline.version if result.baseline else "unchanged"
    out.print(
        f"{target}: API inventory approved (version {version}); "
        f"{len(result.transitions)} finding(s) resolved",
        highlight=False,
    )


def _target(settings: Settings, name: str) -> TargetConfig:
    configured = next((t for t in settings.targets if t.name == name), None)
    if configured is None:
        err.print(f"[red]unknown target:[/] {name}")
        raise typer.Exit(EXIT_USAGE)
    return configured


def _inventory(document: object) -> ApiInventory | None:
    from checks.api_inventory.evaluate import INVENTORY
    from checks.openapi.inventory import from_json

    if not isinstance(document, dict) or not document.get(INVENTORY):
        return None
    return from_json(document[INVENTORY])


def _show_operations(target: str, inventory: ApiInventory | None) -> None:
    if inventory is None:
        out.print(f"{target}: no api_inventory run has been recorded yet")
        return
    out.print(
        f"{inventory.title} {inventory.version} (OpenAPI {inventory.openapi_version}), "
        f"{len(inventory.operations)} operation(s)",
        highlight=False,
    )
    table = Table("method", "path", "security", "deprecated")
    for operation in sorted(inventory.operations, key=lambda op: (op.path, op.method)):
        security = (
            "public"
            if operation.public
            else " | ".join(
                " + ".join(name for name, _ in requirement.schemes)
                for requirement in operation.security or ()
            )
        )
        table.add_row(
            operation.method.upper(),
            cell(operation.path),
            cell(security),
            "yes" if operation.deprecated else "",
        )
    out.print(table)


def _show_software(
    configured: TargetConfig, params: PatchLevelParams, egress: EgressPolicy
) -> bool:
    """Print the software inventory; True when a source failed."""
    from checks.patch_level.collect import read_inventory

    timeout = params.timeout or timedelta(seconds=120)
    context = CheckContext(
        started_at=SystemClock().now(),
        deadline=time.monotonic() + timeout.total_seconds(),
        egress=egress,
    )
    inventories, failures = read_inventory(configured.to_target(), params, context)
    table = Table("source", "ecosystem", "name", "version", "source package")
    for inventory in inventories:
        for package in sorted(inventory.packages, key=lambda p: (p.ecosystem, p.name)):
            ecosystem = package.ecosystem.value + (f":{package.release}" if package.release else "")
            table.add_row(
                cell(inventory.source),
                cell(ecosystem),
                cell(package.name),
                cell(package.version),
                cell(package.source_name or ""),
            )
        for banner in inventory.banners:
            table.add_row(
                cell(inventory.source),
                cell(f"banner {banner.header}"),
                cell(banner.product),
                cell(banner.version or "?"),
                "",
            )
    out.print(table)
    for inventory in inventories:
        count = len(inventory.packages) + len(inventory.banners)
        producer = (f"written by {inventory.producer}",) if inventory.producer else ()
        notes = "; ".join([*producer, *inventory.notes])
        out.print(f"{inventory.source}: {count} item(s)" + (f" — {notes}" if notes else ""))
        for undetermined in inventory.undetermined:
            err.print(f"[yellow]{inventory.source}:[/] {undetermined.reason}", highlight=False)
    for source, reason in failures:
        err.print(f"[red]{source}:[/] {reason}", highlight=False)
    return bool(failures)
