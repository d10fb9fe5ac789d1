"""What the logged traffic says about the documented API: requests per documented operation,
shadow endpoints (undocumented templates the server answers), zombie endpoints (traffic to
operations deprecated now or removed from an approved or earlier document) and the refused
rest, counted by status class.

`TrafficAggregator` takes requests one at a time and keeps one tally per endpoint template,
never the requests: memory is bounded by `max_templates`. When the table is full, templates
are evicted by a score that keeps served and recent ones over refused noise; templates already
reported (`pinned`) are never evicted, and every eviction is counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from checks.api_inventory.access_log import Request
from checks.api_inventory.routes import RouteMatcher
from checks.api_inventory.templates import infer_template
from checks.openapi.inventory import Operation

MAX_EXAMPLES = 3
MAX_UNMATCHED_SHOWN = 20  # the top-N refused templates kept in the snapshot
DEFAULT_MAX_TEMPLATES = 5000  # templates tallied in one read, at most (pinned ones aside)
DEFAULT_MAX_SHADOW_ENDPOINTS = 1000  # shadow endpoints kept across runs
_EVICT_TO = 0.8  # a full table is cut to this share of its bound, so eviction is rare


class ZombieReason(StrEnum):
    DEPRECATED = "deprecated"  # still in the current document, marked deprecated
    REMOVED = "removed"  # gone from the current document


def status_class(status: int) -> str:
    """`2xx` ... `5xx`, or `none` for a log without a status."""
    return f"{status // 100}xx" if 100 <= status < 600 else "none"


def is_served(status: int) -> bool:
    """2xx and 3xx: the server has a route and answered it."""
    return 200 <= status < 400


def proves_route(status: int) -> bool:
    """401 and 403: refused by authentication or authorisation, which a route does."""
    return status in (401, 403)


@dataclass(frozen=True, slots=True)
class ShadowEndpoint:
    method: str
    path: str  # the inferred template, base path stripped: /admin/users/{param}
    count: int  # every request to it, refused ones included
    served_count: int  # answered 2xx/3xx
    auth_count: int  # answered 401/403
    examples: tuple[str, ...]  # requested paths with identifiers redacted, first seen first
    first_seen: datetime | None
    last_seen: datetime | None

    @property
    def served(self) -> bool:
        return self.served_count > 0


@dataclass(frozen=True, slots=True)
class UnmatchedPath:
    """A template no documented operation matches that was only refused (404, 405, 400 ...)."""

    method: str
    path: str
    count: int


@dataclass(frozen=True, slots=True)
class ZombieEndpoint:
    key: str  # the operation's key: GET /users/{}
    path: str  # its template as written: /users/{userId}
    reason: ZombieReason
    count: int
    success_count: int  # answered 2xx/3xx
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class TrafficSummary:
    requests: int
    documented: Mapping[str, int] = field(default_factory=dict)  # operation key -> requests
    shadow: tuple[ShadowEndpoint, ...] = ()  # most requested first
    unmatched: Mapping[str, int] = field(default_factory=dict)  # status class -> refused requests
    unmatched_top: tuple[UnmatchedPath, ...] = ()  # most requested first
    evicted: int = 0  # templates dropped to stay within the bound (refused noise, mostly)
    evicted_served: int = 0  # ... of which the server had answered: a shadow endpoint lost
    zombie: tuple[ZombieEndpoint, ...] = ()  # most requested first
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class _Tally:
    __slots__ = ("auth", "count", "examples", "first_seen", "last_seen", "served")

    def __init__(self) -> None:
        self.count = 0
        self.served = 0
        self.auth = 0
        self.examples: list[str] = []
        self.first_seen: datetime | None = None
        self.last_seen: datetime | None = None

    def add(self, request: Request) -> None:
        self.count += 1
        status = request.status
        if 200 <= status < 400:
            self.served += 1
        elif status in (401, 403):
            self.auth += 1
        when = request.time
        if when is not None:
            if self.last_seen is None or when > self.last_seen:
                self.last_seen = when
            if self.first_seen is None or when < self.first_seen:
                self.first_seen = when


class TrafficAggregator:
    """Counts requests by the operation `matcher` finds. `removed_or_deprecated` (operation
    key -> operation) are the zombie operations: deprecated ones of the matcher's document and
    removed ones of earlier documents, which a second matcher (current + removed) finds where
    their template is the most specific."""

    def __init__(
        self,
        matcher: RouteMatcher,
        removed_or_deprecated: Mapping[str, Operation],
        *,
        max_templates: int = DEFAULT_MAX_TEMPLATES,
        pinned: Iterable[tuple[str, str]] = (),
    ) -> None:
        self._current = {id(operation): operation.key for operation in matcher.operations}
        current_keys = set(self._current.values())
        removed = [op for key, op in removed_or_deprecated.items() if key not in current_keys]
        self._matcher = matcher.extended(removed) if removed else matcher
        self._match = self._matcher.match
        self._when: datetime | None = None
        self._zombie_ids = {
            id(op) for op in self._matcher.operations if op.key in removed_or_deprecated
        }
        self._max_templates = max(1, max_templates)
        self._pinned = frozenset(pinned)
        self._documented: dict[int, int] = {}
        self._zombies: dict[int, _Tally] = {}
        self._templates: dict[tuple[str, str], _Tally] = {}
        self._unmatched: dict[str, int] = {}
        self.requests = 0
        self.evicted = 0
        self.evicted_served = 0
        self._first_seen: datetime | None = None
        self._last_seen: datetime | None = None

    def add(self, request: Request) -> None:
        self.requests += 1
        when = request.time
        if when is not None and when is not self._when:  # parsed times are shared per stamp
            self._when = when
            if self._first_seen is None or when < self._first_seen:
                self._first_seen = when
            if self._last_seen is None or when > self._last_seen:
                self._last_seen = when
        operation = self._match(request.method, request.path)
        if operation is None:
            self._undocumented(request)
            return
        identity = id(operation)
        if identity in self._current:
            self._documented[identity] = self._documented.get(identity, 0) + 1
        if identity in self._zombie_ids:
            tally = self._zombies.get(identity)
            if tally is None:
                tally = self._zombies[identity] = _Tally()
            tally.add(request)

    def _undocumented(self, request: Request) -> None:
        status = request.status
        if request.method == "OPTIONS":
            # CORS middleware answers preflights for any path: no proof of a route
            request = Request("OPTIONS", request.path, 0, request.time)
        if not (200 <= status < 400 or status in (401, 403)) or request.status == 0:
            label = status_class(status)
            self._unmatched[label] = self._unmatched.get(label, 0) + 1
        path = request.path
        stripped = self._matcher.strip_base(path)
        template = infer_template(stripped)
        # the example keeps the base path as requested; identifiers are redacted the same way
        if stripped == path:
            example = template
        else:  # path is its base path and more, or the base path alone (then stripped is /)
            example = (path[: -len(stripped)] if path.endswith(stripped) else path) + template
        key = (request.method, template)
        tally = self._templates.get(key)
        if tally is None:
            if len(self._templates) >= self._max_templates + len(self._pinned):
                self._evict()
            tally = self._templates[key] = _Tally()
        tally.add(request)
        if len(tally.examples) < MAX_EXAMPLES and example not in tally.examples:
            tally.examples.append(example)

    def _evict(self) -> None:
        """Cuts the table to a share of its bound (pinned templates come on top of it):
        refused templates first, least recent and least requested first; pinned (already
        reported) templates never."""
        keep = int(self._max_templates * _EVICT_TO) + len(self._pinned)
        candidates = sorted(
            (key for key in self._templates if key not in self._pinned),
            key=lambda key: _score(self._templates[key]),
        )
        for key in candidates[: max(0, len(self._templates) - keep)]:
            tally = self._templates.pop(key)
            self.evicted += 1
            if tally.served or tally.auth:
                self.evicted_served += 1

    def summary(self) -> TrafficSummary:
        operations = {id(operation): operation for operation in self._matcher.operations}
        shadows = [
            ShadowEndpoint(
                method,
                path,
                t.count,
                t.served,
                t.auth,
                tuple(t.examples),
                t.first_seen,
                t.last_seen,
            )
            for (method, path), t in self._templates.items()
            if t.served or t.auth
        ]
        refused = [
            UnmatchedPath(method, path, t.count - t.served - t.auth)
            for (method, path), t in self._templates.items()
            if t.count > t.served + t.auth
        ]
        current = self._current
        return TrafficSummary(
            requests=self.requests,
            documented={current[identity]: count for identity, count in self._documented.items()},
            shadow=tuple(sorted(shadows, key=lambda s: (-s.count, s.method, s.path))),
            unmatched=dict(sorted(self._unmatched.items())),
            unmatched_top=top_unmatched(refused),
            evicted=self.evicted,
            evicted_served=self.evicted_served,
            zombie=tuple(
                sorted(
                    (
                        _zombie(operations[identity], identity in current, tally)
                        for identity, tally in self._zombies.items()
                    ),
                    key=lambda zombie: (-zombie.count, zombie.key),
                )
            ),
            first_seen=self._first_seen,
            last_seen=self._last_seen,
        )


def _score(tally: _Tally) -> tuple[bool, float, int]:
    """Lower is evicted first: refused before answered, then older, then rarer."""
    last = tally.last_seen.timestamp() if tally.last_seen else 0.0
    return (bool(tally.served or tally.auth), last, tally.count)


def top_unmatched(paths: Iterable[UnmatchedPath]) -> tuple[UnmatchedPath, ...]:
    ranked = sorted(paths, key=lambda u: (-u.count, u.method, u.path))
    return tuple(ranked[:MAX_UNMATCHED_SHOWN])


def summarise(
    requests: Iterable[Request],
    matcher: RouteMatcher,
    removed_or_deprecated: Mapping[str, Operation],
    *,
    max_templates: int = DEFAULT_MAX_TEMPLATES,
) -> TrafficSummary:
    """A TrafficAggregator's summary of `requests`."""
    aggregator = TrafficAggregator(matcher, removed_or_deprecated, max_templates=max_templates)
    add = aggregator.add
    for request in requests:
        add(request)
    return aggregator.summary()


def _zombie(operation: Operation, still_documented: bool, tally: _Tally) -> ZombieEndpoint:
    return ZombieEndpoint(
        key=operation.key,
        path=operation.path,
        reason=ZombieReason.DEPRECATED if still_documented else ZombieReason.REMOVED,
        count=tally.count,
        success_count=tally.served,
        last_seen=tally.last_seen,
    )
