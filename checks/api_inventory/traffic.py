"""What the logged traffic says about the documented API: requests per documented operation,
shadow endpoints (traffic the document does not describe) and zombie endpoints (traffic to
operations deprecated now or removed since a previous document)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from checks.api_inventory.access_log import Request
from checks.api_inventory.inventory import Operation
from checks.api_inventory.routes import RouteMatcher, collapse_ids

MAX_EXAMPLES = 3
DEFAULT_MAX_SHADOW_ENDPOINTS = 1000


class ZombieReason(StrEnum):
    DEPRECATED = "deprecated"  # still in the current document, marked deprecated
    REMOVED = "removed"  # gone from the current document


@dataclass(frozen=True, slots=True)
class ShadowEndpoint:
    method: str
    path: str  # collapse_ids of the requested paths: /files/{n}/raw
    count: int
    success_count: int  # answered 2xx: the server does serve it
    examples: tuple[str, ...]  # up to MAX_EXAMPLES requested paths, first seen first
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class ZombieEndpoint:
    key: str  # the operation's key: GET /users/{}
    path: str  # its template as written: /users/{userId}
    reason: ZombieReason
    count: int
    success_count: int
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class TrafficSummary:
    requests: int
    documented: Mapping[str, int] = field(default_factory=dict)  # operation key -> requests
    shadow: tuple[ShadowEndpoint, ...] = ()  # most requested first
    shadow_omitted: int = 0  # shadow endpoints beyond the limit, left out
    zombie: tuple[ZombieEndpoint, ...] = ()  # most requested first
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class _Tally:
    __slots__ = ("count", "examples", "last_seen", "success_count")

    def __init__(self) -> None:
        self.count = 0
        self.success_count = 0
        self.examples: list[str] = []
        self.last_seen: datetime | None = None

    def add(self, request: Request) -> None:
        self.count += 1
        if 200 <= request.status < 300:
            self.success_count += 1
        when = request.time
        if when is not None and (self.last_seen is None or when > self.last_seen):
            self.last_seen = when


def summarise(
    requests: Iterable[Request],
    matcher: RouteMatcher,
    removed_or_deprecated: Mapping[str, Operation],
    *,
    max_shadow_endpoints: int = DEFAULT_MAX_SHADOW_ENDPOINTS,
) -> TrafficSummary:
    """Counts `requests` by the operation `matcher` finds. `removed_or_deprecated` (operation
    key -> operation) are the zombie operations: deprecated ones of the matcher's document and
    removed ones of a previous document, which a second matcher (current + removed) finds
    where their template is the most specific. Keeps the `max_shadow_endpoints` most
    requested shadow endpoints."""
    current = {id(operation): operation.key for operation in matcher.operations}
    current_keys = set(current.values())
    removed = [op for key, op in removed_or_deprecated.items() if key not in current_keys]
    if removed:
        matcher = matcher.extended(removed)
    zombie_ids = {id(op) for op in matcher.operations if op.key in removed_or_deprecated}
    documented: dict[int, int] = {}
    zombies: dict[int, _Tally] = {}
    shadows: dict[tuple[str, str], _Tally] = {}
    total, first_seen, last_seen = 0, None, None
    match = matcher.match
    for request in requests:
        total += 1
        when = request.time
        if when is not None:
            first_seen = when if first_seen is None or when < first_seen else first_seen
            last_seen = when if last_seen is None or when > last_seen else last_seen
        operation = match(request.method, request.path)
        if operation is None:
            tally = shadows.setdefault((request.method, collapse_ids(request.path)), _Tally())
            tally.add(request)
            if len(tally.examples) < MAX_EXAMPLES and request.path not in tally.examples:
                tally.examples.append(request.path)
            continue
        identity = id(operation)
        if identity in current:
            documented[identity] = documented.get(identity, 0) + 1
        if identity in zombie_ids:
            zombies.setdefault(identity, _Tally()).add(request)
    operations = {id(operation): operation for operation in matcher.operations}
    ranked = sorted(shadows.items(), key=lambda item: (-item[1].count, item[0]))
    return TrafficSummary(
        requests=total,
        documented={current[identity]: count for identity, count in documented.items()},
        shadow=tuple(
            ShadowEndpoint(method, path, t.count, t.success_count, tuple(t.examples), t.last_seen)
            for (method, path), t in ranked[:max_shadow_endpoints]
        ),
        shadow_omitted=max(0, len(ranked) - max_shadow_endpoints),
        zombie=tuple(
            sorted(
                (
                    _zombie(operations[identity], identity in current, tally)
                    for identity, tally in zombies.items()
                ),
                key=lambda zombie: (-zombie.count, zombie.key),
            )
        ),
        first_seen=first_seen,
        last_seen=last_seen,
    )


def _zombie(operation: Operation, still_documented: bool, tally: _Tally) -> ZombieEndpoint:
    return ZombieEndpoint(
        key=operation.key,
        path=operation.path,
        reason=ZombieReason.DEPRECATED if still_documented else ZombieReason.REMOVED,
        count=tally.count,
        success_count=tally.success_count,
        last_seen=tally.last_seen,
    )


# ---------------------------------------------------------------------------- JSON


def to_json(summary: TrafficSummary) -> dict[str, Any]:
    return {
        "requests": summary.requests,
        "documented": dict(summary.documented),
        "shadow": [
            {
                "method": s.method,
                "path": s.path,
                "count": s.count,
                "success_count": s.success_count,
                "examples": list(s.examples),
                "last_seen": _time_json(s.last_seen),
            }
            for s in summary.shadow
        ],
        "shadow_omitted": summary.shadow_omitted,
        "zombie": [
            {
                "key": z.key,
                "path": z.path,
                "reason": z.reason.value,
                "count": z.count,
                "success_count": z.success_count,
                "last_seen": _time_json(z.last_seen),
            }
            for z in summary.zombie
        ],
        "first_seen": _time_json(summary.first_seen),
        "last_seen": _time_json(summary.last_seen),
    }


def from_json(document: Mapping[str, Any]) -> TrafficSummary:
    return TrafficSummary(
        requests=document["requests"],
        documented=dict(document["documented"]),
        shadow=tuple(
            ShadowEndpoint(
                method=s["method"],
                path=s["path"],
                count=s["count"],
                success_count=s["success_count"],
                examples=tuple(s["examples"]),
                last_seen=_time(s["last_seen"]),
            )
            for s in document["shadow"]
        ),
        shadow_omitted=document["shadow_omitted"],
        zombie=tuple(
            ZombieEndpoint(
                key=z["key"],
                path=z["path"],
                reason=ZombieReason(z["reason"]),
                count=z["count"],
                success_count=z["success_count"],
                last_seen=_time(z["last_seen"]),
            )
            for z in document["zombie"]
        ),
        first_seen=_time(document["first_seen"]),
        last_seen=_time(document["last_seen"]),
    )


def _time_json(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
