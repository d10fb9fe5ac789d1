"""`apivigil inventory show|diff|accept TARGET`: what is installed behind a target
(patch_level) and which API operations it documents (api_inventory)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from checks.interface import CheckContext
from monitor.cli_common import ConfigOption, StoreOption, err, load, opened_store, out
from monitor.clock import SystemClock
from monitor.display import cell
from monitor.model import CheckKind
from monitor.scan import EXIT_USAGE

if TYPE_CHECKING:
    from checks.api_inventory.inventory import ApiInventory
    from checks.egress import EgressPolicy
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
    target: Annotated[str, typer.Argument(help="target name")],
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """The latest observed API inventory against the approved one."""
    from checks.api_inventory.diff import diff_inventories

    with opened_store(config, store) as sql_store:
        approved = sql_store.approved_baseline(CheckKind.API_INVENTORY, target)
        observed = _inventory(sql_store.latest_snapshot(CheckKind.API_INVENTORY, target))
    if approved is None or observed is None:
        err.print(f"{target}: no approved or observed API inventory yet")
        raise typer.Exit(EXIT_USAGE)
    approved_inventory = _inventory(approved.content)
    assert approved_inventory is not None
    changes = diff_inventories(approved_inventory, observed)
    if not changes:
        out.print(f"{target}: the observed inventory is the approved one (v{approved.version})")
        return
    table = Table("severity", "rule", "operation", "change", "before", "after")
    for change in changes:
        table.add_row(
            change.severity.value,
            change.kind.value,
            cell(change.operation_key),
            cell(change.detail),
            cell(change.before or ""),
            cell(change.after or ""),
        )
    out.print(table)


@inventory_app.command("accept")
def inventory_accept(
    target: Annotated[str, typer.Argument(help="target name")],
    reason: Annotated[str, typer.Option("--reason", help="why this inventory is approved")],
    by: Annotated[str | None, typer.Option("--by", help="approver [default: OS user]")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Approve the latest observed API inventory; its change findings resolve."""
    from checks.api_inventory.evaluate import INVENTORY, POSTURE
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
    from checks.api_inventory.inventory import from_json

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
        notes = "; ".join(inventory.notes)
        out.print(f"{inventory.source}: {count} item(s)" + (f" — {notes}" if notes else ""))
    for source, reason in failures:
        err.print(f"[red]{source}:[/] {reason}", highlight=False)
    return bool(failures)
