"""Read the spec, the earlier inventories, new access-log lines and (optionally) probe
retired operations. A spec that cannot be parsed is recorded, not raised: the run still
reports on traffic, and the previous inventory stands."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from checks.api_inventory.facts import POSTURE, UNREVIEWED, InventoryRaw, ProbeResult
from checks.api_inventory.params import ApiInventoryParams, ProbeConfig
from checks.api_inventory.reading import read_inventory_file, read_inventory_url
from checks.api_inventory.traffic_reading import (
    read_traffic,
    retired_operations,
    zombie_candidates,
)
from checks.files import read_secret_input
from checks.http import fetch
from checks.interface import BadInput, CheckContext, CheckError, CheckMisconfigured
from checks.openapi.inventory import ApiInventory, Operation, from_json
from checks.openapi.loading import SpecUnparseable
from checks.openapi.probe_urls import probe_url
from monitor.model import CheckKind, Target

_VERSION_SEGMENT = re.compile(r"^/v(\d+)(?=/|$)")
_SAFE = ("get", "head")


def collect(target: Target, params: ApiInventoryParams, context: CheckContext) -> InventoryRaw:
    history = context.history
    snapshot = history.latest_snapshot(CheckKind.API_INVENTORY, target.name) if history else None
    approved = history.approved_baseline(CheckKind.API_INVENTORY, target.name) if history else None
    previous = _inventory(snapshot)
    baseline = _inventory(approved.content) if approved else None
    current, unparseable = _read_spec(target, params, context)
    known = current or previous
    retired = retired_operations(snapshot, known, baseline, previous)
    traffic = read_traffic(params, snapshot, known, retired, context.started_at)
    probes = _probe(target, params, known, retired, context) if params.probe else ()
    return InventoryRaw(
        target=target.name,
        current=current,
        unparseable=unparseable,
        previous=previous,
        baseline=baseline,
        baseline_approved_at=approved.approved_at if approved else None,
        traffic=traffic.traffic,
        cursors=traffic.cursors,
        log_failures=traffic.failures,
        log_health=traffic.health,
        retired=retired,
        probes=probes,
        changes_total=dict((snapshot or {}).get("changes_total", {})),
        # baselines from before posture reviews existed count as reviewed
        baseline_reviewed=approved is not None and approved.content.get(POSTURE) != UNREVIEWED,
    )


def _inventory(document: Mapping[str, Any] | None) -> ApiInventory | None:
    if not document or not document.get("inventory"):
        return None
    return from_json(document["inventory"])


def _read_spec(
    target: Target, params: ApiInventoryParams, context: CheckContext
) -> tuple[ApiInventory | None, str | None]:
    limits = params.limits.load_limits(params.max_spec_bytes)
    auth = (
        read_secret_input(params.auth_header_file, "auth_header_file")
        if params.auth_header_file
        else None
    )
    try:
        if params.spec_path is not None:
            if target.url is None:
                raise CheckMisconfigured("spec_path needs a target with a url")
            url = target.url.rstrip("/") + params.spec_path
        else:
            assert params.spec is not None
            url = params.spec
        if url.startswith(("http://", "https://")):
            inventory = read_inventory_url(
                url,
                timeout=context.io_timeout(params.network_timeout.total_seconds()),
                limits=limits,
                auth_header=auth,
                verify=params.verify_tls,
                allow_remote_refs=params.allow_remote_refs,
                egress=context.egress,
                deadline=context.deadline,
            )
        else:
            inventory = read_inventory_file(Path(url), limits, params.allow_remote_refs)
    except SpecUnparseable as error:
        return None, str(error)
    except OSError as error:
        raise BadInput(error.strerror or str(error), subject=str(error.filename)) from None
    return inventory, None


def _probe(
    target: Target,
    params: ApiInventoryParams,
    known: ApiInventory | None,
    retired: tuple[Operation, ...],
    context: CheckContext,
) -> tuple[ProbeResult, ...]:
    probe = params.probe
    if probe is None or target.url is None or known is None:
        return ()
    planned: list[tuple[str, str, bool]] = []
    if probe.removed:
        for key, operation in zombie_candidates(known, retired).items():
            if operation.method in _SAFE and not operation.deprecated:
                planned.append((key, _concrete(operation.path), False))
    if probe.older_versions:
        planned.extend(_older_versions(known))
    results = []
    for key, path, older in planned:
        url = probe_url(target.url, known.base_path, path)
        if url is None:  # not a path on the target: reported with the spec's problems
            continue
        results.append(ProbeResult(key, path, _status(url, probe, params, context), older))
        if len(results) == probe.max_requests:
            break
    return tuple(results)


def _older_versions(known: ApiInventory) -> list[tuple[str, str, bool]]:
    documented = {op.template for op in known.operations}
    planned: list[tuple[str, str, bool]] = []
    for operation in known.operations:
        found = _VERSION_SEGMENT.match(operation.path)
        if operation.method != "get" or found is None or int(found[1]) < 2:
            continue
        older = f"/v{int(found[1]) - 1}" + operation.path[found.end() :]
        if older.replace("{", "").replace("}", "") in documented or older in documented:
            continue
        planned.append((f"GET {older}", _concrete(older), True))
    return planned


def _concrete(path: str) -> str:
    """A path template made requestable: each parameter becomes `1`."""
    return re.sub(r"\{[^{}]*\}", "1", path.split("?", 1)[0])


def _status(
    url: str, probe: ProbeConfig, params: ApiInventoryParams, context: CheckContext
) -> int | None:
    try:
        response = fetch(
            url,
            timeout=context.io_timeout(probe.timeout.total_seconds()),
            max_bytes=0,
            max_redirects=0,
            verify=params.verify_tls,
            read_body=False,
            derived=True,  # the path came from the spec
            egress=context.egress,
            deadline=context.deadline,
        )
    except CheckError:
        return None
    return response.status
