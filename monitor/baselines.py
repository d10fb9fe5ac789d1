"""Baseline change control (NIST SP 800-128): approve the observed state, compare versions."""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from checks.baseline_diff import DriftItem, diff
from checks.interface import source_prefix
from monitor.model import Baseline, CheckKind
from monitor.store.interface import ApprovalResult, BaselineApproval, Store


class BaselineError(Exception):
    """A baseline request cannot be carried out; `str()` says why and what to do."""


def default_approver() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def accept(
    store: Store,
    check: CheckKind,
    target: str,
    sources: Sequence[str],
    reason: str,
    approved_by: str,
    now: datetime,
) -> ApprovalResult:
    """Approve the latest observed state of `sources` (all observed ones when empty)."""
    if not reason.strip():
        raise BaselineError("a reason is required for every approval")
    observed = store.latest_snapshot(check, target)
    if observed is None:
        raise BaselineError(
            f"no {check} run of {target!r} has been recorded yet: run the daemon or "
            "wait for the next run, then accept"
        )
    unknown = [source for source in sources if source not in observed]
    if unknown:
        raise BaselineError(
            f"the latest {check} run of {target!r} has no state for "
            f"{', '.join(map(repr, unknown))}; observed sources: {', '.join(sorted(observed))}"
        )
    chosen = list(sources) or sorted(observed)
    current = store.approved_baseline(check, target)
    content: dict[str, Any] = dict(current.content) if current else {}
    content.update({source: observed[source] for source in chosen})
    return store.approve_baseline(
        BaselineApproval(
            check=check,
            target=target,
            content=content,
            approved_by=approved_by,
            reason=reason.strip(),
            at=now,
            resolves=tuple(source_prefix(source) for source in chosen),
        )
    )


def document_diff(approved: Mapping[str, Any], observed: Mapping[str, Any]) -> list[DriftItem]:
    """Per-source drift items from `approved` to `observed` (both source -> flat mapping)."""
    items: list[DriftItem] = []
    for source in sorted(approved.keys() | observed.keys()):
        items.extend(diff(source, approved.get(source, {}), observed.get(source, {})))
    return items


def observed_drift(store: Store, check: CheckKind, target: str) -> list[DriftItem]:
    approved = store.approved_baseline(check, target)
    observed = store.latest_snapshot(check, target)
    if approved is None or observed is None:
        raise BaselineError(f"{target!r} has no approved {check} baseline or observation yet")
    # Sources the latest run could not read are left out, not shown as removed.
    return document_diff({s: approved.content.get(s, {}) for s in observed}, observed)


def version(store: Store, check: CheckKind, target: str, number: int) -> Baseline:
    for baseline in store.baseline_history(check, target):
        if baseline.version == number:
            return baseline
    raise BaselineError(f"{target!r} has no {check} baseline version {number}")
