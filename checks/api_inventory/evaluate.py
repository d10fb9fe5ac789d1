"""Pure judgement of an api_inventory run: changes against the approved inventory, shadow
and zombie endpoints, spec problems; observations and the snapshot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from checks.api_inventory import traffic_json
from checks.api_inventory.diff import (
    Axis,
    Change,
    ChangeGroup,
    diff_inventories,
    group_changes,
)
from checks.api_inventory.facts import (
    ACCEPTED,
    POSTURE,
    UNREVIEWED,
    InventoryRaw,
    LogHealth,
    ProbeResult,
    Unreliable,
)
from checks.api_inventory.history import recent
from checks.api_inventory.params import ApiInventoryParams, TrafficIgnoreRule
from checks.api_inventory.posture import (
    PLAINTEXT_SERVER,
    PlaintextServer,
    plaintext_servers,
    standing_risks,
)
from checks.api_inventory.traffic import ShadowEndpoint, TrafficSummary, ZombieEndpoint
from checks.interface import baseline_subject, source_prefix
from checks.openapi.inventory import ApiInventory, to_json
from monitor.model import BaselineUpdate, CheckOutput, Finding, Observation, Severity

INVENTORY = "inventory"  # the one source of this check's baseline; prefix of change subjects
STANDING = "standing"  # subjects of a first observation's risks: `inventory|standing|...`
MAX_ONE_BY_ONE = 10  # security changes of one kind reported one by one, at most
_MAX_PROBLEMS_SHOWN = 10
_ACCEPT = "approve it with `apivigil inventory accept {target} --reason ...`"


def evaluate(raw: InventoryRaw, params: ApiInventoryParams, now: datetime) -> CheckOutput:
    target = raw.target
    findings: list[Finding] = []
    undetermined: list[str] = []
    update: BaselineUpdate | None = None
    if raw.unparseable is not None:
        findings.append(_unparseable(raw.unparseable))
        undetermined.append(source_prefix(INVENTORY))
    if raw.current is not None:
        if raw.current.problems:
            findings.append(_invalid(raw.current.problems))
        if raw.baseline is None:
            first = {INVENTORY: to_json(raw.current), POSTURE: UNREVIEWED}
            update = BaselineUpdate(first, "first observation")
        else:
            changes = diff_inventories(raw.baseline, raw.current)
            findings.extend(change_findings(changes, target, _paths(raw.baseline, raw.current)))
        if raw.baseline is None or not raw.baseline_reviewed:
            findings.extend(_posture(raw.current, target))
    window = recent(raw.traffic, now - params.traffic_window) if raw.traffic else None
    shadows = _unignored_shadows(window, params.ignore, now)
    findings.extend(_shadow(s) for s in shadows)
    if window is not None:
        findings.extend(
            _zombie(z)
            for z in window.zombie
            if not _ignored(z.key.split(" ", 1)[0], (z.path,), params.ignore, now)
        )
    findings.extend(_probed(p) for p in raw.probes if _still_answers(p))
    findings.extend(_log_unavailable(path, reason) for path, reason in raw.log_failures)
    findings.extend(_unreliable(health) for health in raw.log_health if health.problems)
    changes_total = Counter(raw.changes_total)
    if raw.current is not None and raw.previous is not None:
        changes_total.update(c.kind.value for c in diff_inventories(raw.previous, raw.current))
    return CheckOutput(
        observations=tuple(_observations(raw, window, shadows, changes_total, now)),
        findings=tuple(_unique(findings)),
        snapshot=_snapshot(raw, changes_total),
        undetermined=tuple(undetermined),
        baseline_update=update,
    )


def _unique(findings: list[Finding]) -> list[Finding]:
    """One finding per (rule, subject): probes and traffic may name the same zombie."""
    seen: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        key = (finding.rule_id, finding.subject)
        if key not in seen or finding.severity.rank > seen[key].severity.rank:
            seen[key] = finding
    return sorted(seen.values(), key=lambda f: (-f.severity.rank, f.rule_id, f.subject))


def change_findings(
    changes: Sequence[Change], target: str, paths: Sequence[str], *, standing: bool = False
) -> list[Finding]:
    """Security changes one by one while there are few of a kind (each matters), else
    rolled up like the others: one finding per kind and path prefix, so one spec update
    with hundreds of changes stays readable, each listing every operation in its evidence.
    `standing`: the changes are risks of a first observation, not differences."""
    per_kind = Counter(c.kind for c in changes if c.axis is Axis.SECURITY)
    one_by_one = [
        c for c in changes if c.axis is Axis.SECURITY and per_kind[c.kind] <= MAX_ONE_BY_ONE
    ]
    findings = [_security(c, target, standing) for c in one_by_one]
    chosen = set(map(id, one_by_one))
    others = [c for c in changes if id(c) not in chosen]
    findings.extend(_group(g, target, standing) for g in group_changes(others, paths=paths))
    return findings


def _paths(*inventories: ApiInventory) -> list[str]:
    return [op.path for inventory in inventories for op in inventory.operations]


def _posture(inventory: ApiInventory, target: str) -> list[Finding]:
    findings = change_findings(standing_risks(inventory), target, _paths(inventory), standing=True)
    findings.extend(_plaintext(server, target) for server in plaintext_servers(inventory))
    return findings


def _plaintext(server: PlaintextServer, target: str) -> Finding:
    return Finding(
        rule_id=PLAINTEXT_SERVER,
        severity=server.severity,
        title=f"The API is served over plain HTTP: {server.url}",
        subject=f"{INVENTORY}|{STANDING}|{PLAINTEXT_SERVER}|{server.url}",
        evidence=(
            f"servers lists {server.url}; {server.operations} operation(s) there, "
            f"{server.authenticated} of them sending credentials in clear text"
        ),
        remediation=(
            "Serve the API over HTTPS only and drop the http:// server, or, if it is "
            "intended, " + _ACCEPT.format(target=target) + "."
        ),
    )


def _security(change: Change, target: str, standing: bool = False) -> Finding:
    before_after = (
        f"; before: {change.before or 'nothing'}; after: {change.after or 'nothing'}"
        if change.before is not None or change.after is not None
        else ""
    )
    tag = f"{STANDING}|" if standing else ""
    return Finding(
        rule_id=change.kind.value,
        severity=change.severity,
        title=f"{change.shown}: {change.detail}",
        subject=baseline_subject(
            INVENTORY, f"{tag}{change.kind.value}|{change.operation_key}|{change.detail}"
        ),
        evidence=(
            f"{'first observation' if standing else 'compared with the approved inventory'}: "
            f"{change.detail}{before_after}"
        ),
        remediation=(
            (
                f"Require authentication on {change.shown}"
                if standing
                else f"Restore the security requirement of {change.shown}"
            )
            + ", or, if intended, "
            + _ACCEPT.format(target=target)
            + "."
        ),
    )


def _group(group: ChangeGroup, target: str, standing: bool = False) -> Finding:
    listed = "; ".join(
        f"{c.shown}: {c.detail}"
        + (
            f" ({c.before or 'nothing'} -> {c.after or 'nothing'})"
            if c.before is not None or c.after is not None
            else ""
        )
        for c in group.members
    )
    tag = f"{STANDING}|" if standing else ""
    sub_kind = f"|{group.sub_kind}" if group.sub_kind else ""
    return Finding(
        rule_id=group.kind.value,
        severity=group.severity,
        title=group.titled(),
        subject=baseline_subject(
            INVENTORY, f"{tag}{group.kind.value}|{group.path_prefix}{sub_kind}"
        ),
        evidence=f"{group.count} change(s): {listed}",
        remediation=(
            (
                "Require authentication where it is missing and retire deprecated operations"
                if standing
                else "Check the change with the API's clients (breaking changes need a new "
                "version or a deprecation period)"
            )
            + "; "
            + _ACCEPT.format(target=target)
            + " once it is intended."
        ),
    )


def _unignored_shadows(
    window: TrafficSummary | None, rules: tuple[TrafficIgnoreRule, ...], now: datetime
) -> list[ShadowEndpoint]:
    if window is None:
        return []
    return [s for s in window.shadow if not _ignored(s.method, (s.path, *s.examples), rules, now)]


def _ignored(
    method: str, paths: tuple[str, ...], rules: tuple[TrafficIgnoreRule, ...], now: datetime
) -> bool:
    return any(rule.hides(method, paths, now) for rule in rules)


def _shadow(shadow: ShadowEndpoint) -> Finding:
    served = shadow.served
    refused = shadow.count - shadow.served_count - shadow.auth_count
    return Finding(
        rule_id="INVENTORY-SHADOW-ENDPOINT",
        severity=Severity.HIGH if served else Severity.LOW,
        title=f"Undocumented endpoint {shadow.method} {shadow.path} "
        + ("is served" if served else "exists behind authentication"),
        subject=f"shadow|{shadow.method} {shadow.path}",
        evidence=(
            f"{shadow.count} request(s): {shadow.served_count} answered 2xx/3xx, "
            f"{shadow.auth_count} 401/403, {refused} other; e.g. {', '.join(shadow.examples)} "
            f"(identifiers and query strings redacted); first seen {_when(shadow.first_seen)}, "
            f"last seen {_when(shadow.last_seen)}"
        ),
        remediation=(
            "Document the endpoint in the spec (and review its authentication), or remove it; "
            "if it is meant to stay undocumented (a health check, static files), add an "
            "`ignore:` rule with the reason."
            if served
            else "The route exists but refuses these clients; document it, or remove the route."
        ),
    )


def _zombie(zombie: ZombieEndpoint) -> Finding:
    served = zombie.success_count > 0
    return Finding(
        rule_id="INVENTORY-ZOMBIE-ENDPOINT",
        severity=Severity.HIGH if served else Severity.MEDIUM,
        title=(
            f"{zombie.reason.value.capitalize()} operation {_written(zombie.key, zombie.path)} "
            "still receives traffic"
        ),
        subject=f"zombie|{zombie.key}",
        evidence=(
            f"{zombie.count} request(s) to {zombie.path}, {zombie.success_count} answered 2xx/3xx; "
            f"last seen {_when(zombie.last_seen)}"
        ),
        remediation="Move the clients off it, then turn the route off at the server.",
    )


def _written(key: str, path: str) -> str:
    """`GET /users/{id}` from the key `GET /users/{}` and the path as written."""
    return f"{key.split(' ', 1)[0]} {path}"


def _still_answers(probe: ProbeResult) -> bool:
    return probe.status is not None and probe.status not in (404, 405, 410) and probe.status < 500


def _probed(probe: ProbeResult) -> Finding:
    served = probe.status is not None and 200 <= probe.status < 300
    what = "An older API version" if probe.older_version else "A removed operation"
    return Finding(
        rule_id="INVENTORY-ZOMBIE-ENDPOINT",
        severity=Severity.HIGH if served else Severity.MEDIUM,
        title=f"{what} still answers: {probe.key}",
        subject=f"zombie|{probe.key}",
        evidence=f"probe GET {probe.path} answered HTTP {probe.status}",
        remediation="Turn the retired route off at the server (or document it again).",
    )


def _unparseable(reason: str) -> Finding:
    return Finding(
        rule_id="INVENTORY-SPEC-UNPARSEABLE",
        severity=Severity.MEDIUM,
        title="The API spec could not be read",
        subject="spec",
        evidence=f"{reason}; the previous inventory stands until the spec reads again",
        remediation="Fix the spec so it parses as JSON or YAML (OpenAPI 2.0, 3.0 or 3.1).",
    )


def _invalid(problems: tuple[str, ...]) -> Finding:
    shown = "; ".join(problems[:_MAX_PROBLEMS_SHOWN])
    more = len(problems) - _MAX_PROBLEMS_SHOWN
    return Finding(
        rule_id="INVENTORY-SPEC-INVALID",
        severity=Severity.LOW,
        title=f"The API spec has {len(problems)} validation problem(s)",
        subject="spec",
        evidence=shown + (f"; and {more} more" if more > 0 else ""),
        remediation="Validate the spec against the OpenAPI schema in CI and fix what it reports.",
    )


def _log_unavailable(path: str, reason: str) -> Finding:
    return Finding(
        rule_id="INVENTORY-LOG-UNAVAILABLE",
        severity=Severity.MEDIUM,
        title=f"Access log {path} could not be read",
        subject=f"log|{path}",
        evidence=reason,
        remediation="Make the log readable by apivigil; shadow and zombie traffic is not seen.",
    )


def _unreliable(health: LogHealth) -> Finding:
    reasons = ", ".join(reason.value for reason, _ in health.problems)
    what = "The endpoint tally" if health.log == "templates" else f"Access log {health.log}"
    return Finding(
        rule_id="INVENTORY-TRAFFIC-UNRELIABLE",
        severity=Severity.MEDIUM,
        title=f"{what} cannot be trusted: {reasons}",
        subject=f"traffic|{health.log}",
        evidence="; ".join(detail for _, detail in health.problems)
        + "; shadow and zombie endpoints may be missing",
        remediation=(
            "Check the log's rotation (rotate less often than apivigil runs, keep the previous "
            "file uncompressed as .1), that the server still writes it, and its configured "
            "format; raise max_templates if answered templates were dropped."
        ),
    )


def _observations(
    raw: InventoryRaw,
    window: TrafficSummary | None,
    shadows: list[ShadowEndpoint],
    changes_total: Counter[str],
    now: datetime,
) -> list[Observation]:
    inventory = raw.current or raw.previous
    observations: list[Observation] = []
    if inventory is not None:
        observations.extend(_operation_states(inventory, window, shadows))
    if raw.traffic is not None:
        unmatched = {"4xx": 0, "5xx": 0, **raw.traffic.unmatched}  # the usual ones from 0
        observations.extend(
            Observation("inventory_unmatched_requests_total", float(n), {"status_class": label})
            for label, n in sorted(unmatched.items())
        )
        observations.append(
            Observation("inventory_templates_evicted_total", float(raw.traffic.evicted), {})
        )
    observations.extend(
        Observation(
            "inventory_traffic_unreliable",
            float(any(reason is problem for problem, _ in health.problems)),
            {"log": health.log, "reason": reason.value},
        )
        for health in raw.log_health
        for reason in Unreliable
    )
    observations.extend(
        Observation("inventory_changes_total", float(n), {"kind": kind})
        for kind, n in sorted(changes_total.items())
    )
    if raw.baseline_approved_at is not None:
        age = max(0.0, (now - raw.baseline_approved_at).total_seconds())
        observations.append(Observation("baseline_age_seconds", age, {"check": "api_inventory"}))
    return observations


def _operation_states(
    inventory: ApiInventory, window: TrafficSummary | None, shadows: list[ShadowEndpoint]
) -> list[Observation]:
    """One meaning per state: documented (not deprecated), deprecated, shadow (undocumented
    templates the server answered, not ignored), zombie (retired or deprecated, called)."""
    deprecated = sum(1 for op in inventory.operations if op.deprecated)
    counts = {
        "documented": len(inventory.operations) - deprecated,
        "deprecated": deprecated,
        "shadow": sum(1 for s in shadows if s.served),
        "zombie": len(window.zombie) if window else 0,
    }
    return [
        Observation("inventory_operations", float(n), {"state": state})
        for state, n in counts.items()
    ]


def _snapshot(raw: InventoryRaw, changes_total: Counter[str]) -> dict[str, Any]:
    inventory = raw.current or raw.previous
    retired = ApiInventory("retired operations", "", "", operations=raw.retired)
    return {
        INVENTORY: to_json(inventory) if inventory else None,
        "retired": to_json(retired) if raw.retired else None,
        "traffic": traffic_json.to_json(raw.traffic) if raw.traffic else None,
        "cursors": dict(raw.cursors),
        "changes_total": dict(changes_total),
        POSTURE: ACCEPTED,
    }


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "unknown"
