"""What changed between two versions of an API inventory: breaking changes, weakened or
removed security, additions and deprecations. Pure: no I/O, no clock."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from checks.openapi.inventory import (
    ApiInventory,
    Operation,
    Parameter,
    ParameterLocation,
    SecurityRequirement,
)
from checks.openapi.schemas import escape
from checks.openapi.variants import pair_unmatched
from monitor.model import Severity


class ChangeKind(StrEnum):
    """The rule ids; stable forever."""

    OPERATION_ADDED = "INVENTORY-OPERATION-ADDED"
    OPERATION_REMOVED = "INVENTORY-OPERATION-REMOVED"
    OPERATION_DEPRECATED = "INVENTORY-OPERATION-DEPRECATED"
    BREAKING_CHANGE = "INVENTORY-BREAKING-CHANGE"
    SECURITY_REMOVED = "INVENTORY-SECURITY-REMOVED"
    SECURITY_WEAKENED = "INVENTORY-SECURITY-WEAKENED"
    UNAUTHENTICATED_OPERATION = "INVENTORY-UNAUTHENTICATED-OPERATION"


class Axis(StrEnum):
    BREAKING = "breaking"  # clients written against `before` may fail
    SECURITY = "security"  # more callers can reach the operation than before
    INFO = "info"  # worth knowing, breaks nothing


class BreakingKind(StrEnum):
    """The sub-kind of an INVENTORY-BREAKING-CHANGE; it starts the change's `detail`."""

    REQUIRED_PARAMETER_ADDED = "required parameter added"
    PARAMETER_REMOVED = "parameter removed"
    PARAMETER_TYPE_CHANGED = "parameter type changed"
    PARAMETER_BECAME_REQUIRED = "parameter became required"
    ENUM_VALUE_REMOVED = "enum value removed"
    RESPONSE_STATUS_REMOVED = "response status removed"
    REQUEST_BODY_BECAME_REQUIRED = "request body became required"
    REQUEST_MEDIA_TYPE_REMOVED = "request media type removed"
    REQUEST_VARIANT_REMOVED = "request variant removed"
    REQUEST_VARIANT_ADDED = "request variant added"  # accepts more: info, not breaking
    # Only a digest is kept, so these say "changed", not whether the change is compatible.
    REQUEST_SCHEMA_CHANGED = "request schema changed"
    RESPONSE_SCHEMA_CHANGED = "response schema changed"


@dataclass(frozen=True, slots=True)
class Change:
    """One difference; `before` and `after` show the values that differ, when there are."""

    kind: ChangeKind
    axis: Axis
    severity: Severity
    operation_key: str  # identity across documents: `GET /users/{}`
    detail: str
    before: str | None = None
    after: str | None = None
    # what people read: the operation as its document writes it, `GET /users/{id}`
    operation: str = ""

    @property
    def shown(self) -> str:
        return self.operation or self.operation_key


_ORDER = tuple(ChangeKind)
# Each kind's axis and usual severity. Exceptions: an operation removed after its
# deprecation is medium; a schema digest change is info/low (compatibility is unknown).
_RULES: dict[ChangeKind, tuple[Axis, Severity]] = {
    ChangeKind.OPERATION_ADDED: (Axis.INFO, Severity.LOW),
    ChangeKind.OPERATION_REMOVED: (Axis.BREAKING, Severity.HIGH),
    ChangeKind.OPERATION_DEPRECATED: (Axis.INFO, Severity.LOW),
    ChangeKind.BREAKING_CHANGE: (Axis.BREAKING, Severity.MEDIUM),
    ChangeKind.SECURITY_REMOVED: (Axis.SECURITY, Severity.CRITICAL),
    ChangeKind.SECURITY_WEAKENED: (Axis.SECURITY, Severity.HIGH),
    ChangeKind.UNAUTHENTICATED_OPERATION: (Axis.SECURITY, Severity.HIGH),
}
# A move to a weaker family of scheme (oauth2 -> apiKey) weakens; a move up does not.
_SCHEME_STRENGTH = {"mutualTLS": 3, "oauth2": 2, "openIdConnect": 2, "http": 1, "apiKey": 1}
_DIGEST_ONLY = (
    BreakingKind.REQUEST_SCHEMA_CHANGED,
    BreakingKind.RESPONSE_SCHEMA_CHANGED,
    BreakingKind.REQUEST_VARIANT_ADDED,
)


def diff_inventories(before: ApiInventory, after: ApiInventory) -> tuple[Change, ...]:
    """Every change from `before` to `after`, worst first. Operations are matched by
    `Operation.key`, so renaming a path parameter is no change."""
    old, new = before.by_key(), after.by_key()
    changes = [_removed(operation) for key, operation in old.items() if key not in new]
    for key, operation in new.items():
        previous = old.get(key)
        if previous is None:
            changes.extend(_added(operation))
        else:
            changes.extend(_changed(previous, operation))
            changes.extend(_security_changes(previous, operation, before, after))
    changes.sort(key=lambda c: (-c.severity.rank, _ORDER.index(c.kind), c.operation_key, c.detail))
    return tuple(changes)


def _change(
    kind: ChangeKind,
    operation: Operation,
    detail: str,
    before: str | None = None,
    after: str | None = None,
    *,
    rated: tuple[Axis, Severity] | None = None,
) -> Change:
    axis, severity = rated or _RULES[kind]
    return Change(kind, axis, severity, operation.key, detail, before, after, written(operation))


def written(operation: Operation) -> str:
    """The operation as its document writes it: `GET /users/{id}`."""
    return f"{operation.method.upper()} {operation.path}"


def _removed(operation: Operation) -> Change:
    kind = ChangeKind.OPERATION_REMOVED
    if not operation.deprecated:
        return _change(kind, operation, "removed without prior deprecation", operation.path)
    rated = (Axis.BREAKING, Severity.MEDIUM)
    return _change(kind, operation, "removed after deprecation", _sunset(operation), rated=rated)


def _added(operation: Operation) -> Iterator[Change]:
    yield _change(ChangeKind.OPERATION_ADDED, operation, "operation added", after=operation.path)
    if operation.public:
        detail, security = "new operation without authentication", operation.security
        yield _change(
            ChangeKind.UNAUTHENTICATED_OPERATION, operation, detail, after=render_security(security)
        )


def _changed(old: Operation, new: Operation) -> Iterator[Change]:
    if new.deprecated and not old.deprecated:
        detail = f"deprecated ({_sunset(new)})"
        yield _change(ChangeKind.OPERATION_DEPRECATED, new, detail, None, new.sunset)
    for sub_kind, subject, was, now in _breaking(old, new):
        rated = (Axis.INFO, Severity.LOW) if sub_kind in _DIGEST_ONLY else None
        detail = f"{sub_kind}: {subject}"
        yield _change(ChangeKind.BREAKING_CHANGE, new, detail, was, now, rated=rated)


_Breaking = tuple[BreakingKind, str, str | None, str | None]


def _breaking(old: Operation, new: Operation) -> Generator[_Breaking, None, None]:
    old_parameters, new_parameters = _parameters(old), _parameters(new)
    for identity, parameter in new_parameters.items():
        was = old_parameters.get(identity)
        subject = f"{parameter.location} {parameter.name}"
        if was is None:
            if parameter.required:
                yield BreakingKind.REQUIRED_PARAMETER_ADDED, subject, None, parameter.type
            continue
        if parameter.required and not was.required:
            yield BreakingKind.PARAMETER_BECAME_REQUIRED, subject, "optional", "required"
        if not _accepts(parameter.type, was.type):
            yield BreakingKind.PARAMETER_TYPE_CHANGED, subject, was.type, parameter.type
        yield from _enum_removed(subject, was.enum, parameter.enum)
    for identity, parameter in old_parameters.items():
        if identity not in new_parameters:
            subject = f"{parameter.location} {parameter.name}"
            yield BreakingKind.PARAMETER_REMOVED, subject, parameter.type, None

    if new.request_body_required and not old.request_body_required:
        yield BreakingKind.REQUEST_BODY_BECAME_REQUIRED, "request body", "optional", "required"
    for media_type in old.request_media_types:
        if media_type not in new.request_media_types:
            yield BreakingKind.REQUEST_MEDIA_TYPE_REMOVED, media_type, media_type, None
    renamed = yield from _variant_changes(old, new)
    new_enums = dict(new.request_enums)
    for path, values in old.request_enums:
        now = new_enums.get(_renamed(path, renamed), ())
        yield from _enum_removed(f"request body {path}", values, now)
    if old.request_schema and new.request_schema and old.request_schema != new.request_schema:
        yield (
            BreakingKind.REQUEST_SCHEMA_CHANGED,
            "request body",
            old.request_schema,
            new.request_schema,
        )

    new_responses = dict(new.responses)
    for status, digest in old.responses:
        if status not in new_responses:
            yield BreakingKind.RESPONSE_STATUS_REMOVED, status, status, None
        elif digest and new_responses[status] and digest != new_responses[status]:
            yield BreakingKind.RESPONSE_SCHEMA_CHANGED, status, digest, new_responses[status]


def _variant_changes(old: Operation, new: Operation) -> Generator[_Breaking, None, dict[str, str]]:
    """Variants added or removed, matched by key wherever they sit in their list; returns
    the old pointer prefixes of variants that changed shape -> their new prefixes."""
    renamed: dict[str, str] = {}
    new_lists = dict(new.request_variants)
    for path, old_keys in old.request_variants:
        new_keys = new_lists.get(path)
        if new_keys is None:  # the list itself is gone: its schema's digest says so
            continue
        pairs = pair_unmatched(old_keys, new_keys)
        renamed.update((f"{path}/{escape(a)}", f"{path}/{escape(b)}") for a, b in pairs.items())
        for key in old_keys:
            if key not in new_keys and key not in pairs:
                yield BreakingKind.REQUEST_VARIANT_REMOVED, f"request body {path} {key}", key, None
        for key in new_keys:
            if key not in old_keys and key not in pairs.values():
                yield BreakingKind.REQUEST_VARIANT_ADDED, f"request body {path} {key}", None, key
    return renamed


def _renamed(path: str, renamed: dict[str, str]) -> str:
    for before, after in renamed.items():
        if path == before or path.startswith(before + "/"):
            return after + path[len(before) :]
    return path


def _parameters(operation: Operation) -> dict[tuple[str, str], Parameter]:
    """Parameters by identity: path parameters by their position in the template (their
    names may change freely), header names without case, others by name."""
    names = [part[1:-1] for part in operation.path.split("/") if part[:1] == "{"]
    identities: dict[tuple[str, str], Parameter] = {}
    for parameter in operation.parameters:
        name = parameter.name
        if parameter.location is ParameterLocation.PATH and name in names:
            name = f"#{names.index(name)}"
        elif parameter.location is ParameterLocation.HEADER:
            name = name.lower()
        identities[(parameter.location, name)] = parameter
    return identities


def _accepts(new: str | None, old: str | None) -> bool:
    """Whether every value of type `old` is still a value of type `new`."""
    if new is None or new == old:
        return True
    if old is None:
        return False
    accepted = set(new.split("|"))
    if "number" in accepted:
        accepted.add("integer")
    return set(old.split("|")) <= accepted


def _enum_removed(subject: str, old: Sequence[str], new: Sequence[str]) -> Iterator[_Breaking]:
    # An empty list is no restriction at all: dropping the enum removes nothing.
    gone = [value for value in old if new and value not in new]
    if gone:
        yield (
            BreakingKind.ENUM_VALUE_REMOVED,
            f"{subject} {', '.join(gone)}",
            ", ".join(old),
            ", ".join(new),
        )


def _security_changes(
    old: Operation, new: Operation, before: ApiInventory, after: ApiInventory
) -> Iterator[Change]:
    if old.public:
        return
    was, now = render_security(old.security), render_security(new.security)
    if new.public:
        detail = "authentication removed: the operation is public"
        yield _change(ChangeKind.SECURITY_REMOVED, new, detail, was, now)
        return
    old_requirements, new_requirements = old.security or (), new.security or ()
    for requirement in new_requirements:
        if not any(_at_least(requirement, earlier) for earlier in old_requirements):
            why = _weakening(requirement, old_requirements, new_requirements)
            detail = f"{why}: {_render_requirement(requirement)}"
            yield _change(ChangeKind.SECURITY_WEAKENED, new, detail, was, now)
    old_names = {name for r in old_requirements for name, _ in r.schemes}
    for name in sorted({name for r in new_requirements for name, _ in r.schemes} & old_names):
        old_type, new_type = before.security_schemes.get(name), after.security_schemes.get(name)
        if old_type and new_type and old_type != new_type and not _stronger(new_type, old_type):
            detail = f"security scheme type changed: {name}"
            yield _change(ChangeKind.SECURITY_WEAKENED, new, detail, old_type, new_type)


def _at_least(requirement: SecurityRequirement, earlier: SecurityRequirement) -> bool:
    """Whether `requirement` demands everything `earlier` did: each scheme, each scope."""
    scopes = dict(requirement.schemes)
    return all(
        name in scopes and set(needed) <= set(scopes[name]) for name, needed in earlier.schemes
    )


def _weakening(
    requirement: SecurityRequirement,
    old: Sequence[SecurityRequirement],
    new: Sequence[SecurityRequirement],
) -> str:
    names = {name for name, _ in requirement.schemes}
    for earlier in old:
        earlier_names = {name for name, _ in earlier.schemes}
        if earlier_names == names:
            return "scopes reduced"
        if names < earlier_names:
            return f"scheme removed from requirement ({', '.join(sorted(earlier_names - names))})"
    if len(new) > len(old) or any(earlier in new for earlier in old):
        return "alternative requirement added"
    return "requirement replaced"


def _stronger(new_type: str, old_type: str) -> bool:
    return _SCHEME_STRENGTH.get(new_type, 0) > _SCHEME_STRENGTH.get(old_type, 0)


def _render_requirement(requirement: SecurityRequirement) -> str:
    if not requirement.schemes:
        return "{}"
    return " + ".join(
        f"{name}[{' '.join(scopes)}]" if scopes else name for name, scopes in requirement.schemes
    )


def render_security(security: tuple[SecurityRequirement, ...] | None) -> str:
    """Evidence text: `oauth2[read] or anonymous`, `none (an empty security list)`."""
    if security is None:
        return "none declared"
    if not security:
        return "none (an empty security list)"
    return " or ".join(_render_requirement(r) if r.schemes else "anonymous" for r in security)


def _sunset(operation: Operation) -> str:
    return f"sunset {operation.sunset}" if operation.sunset else "no sunset date"


# ---------------------------------------------------------------------------- grouping


OTHER_PATHS = "*"  # the prefix of a group gathering the less busy prefixes of one kind
# What a group of each kind says, after its count of operations.
_ROLL_UP = {
    ChangeKind.OPERATION_ADDED: "operation(s) added",
    ChangeKind.OPERATION_REMOVED: "operation(s) removed",
    ChangeKind.OPERATION_DEPRECATED: "operation(s) deprecated",
    ChangeKind.BREAKING_CHANGE: "operation(s) changed",
    ChangeKind.SECURITY_REMOVED: "operation(s) lost their security requirement",
    ChangeKind.SECURITY_WEAKENED: "operation(s) with weaker security",
    ChangeKind.UNAUTHENTICATED_OPERATION: "operation(s) without authentication",
}


@dataclass(frozen=True, slots=True)
class ChangeGroup:
    kind: ChangeKind
    path_prefix: str  # the prefix that splits the API (`/v1/customers`), or OTHER_PATHS
    severity: Severity  # the worst in the group
    count: int
    examples: tuple[Change, ...]  # worst first
    # a breaking change's sub-kind (`enum value removed`), an unauthenticated operation's
    # detail (reads and writes rate differently), else ""
    sub_kind: str = ""
    members: tuple[Change, ...] = ()  # every change of the group, worst first

    @property
    def more(self) -> int:
        return self.count - len(self.examples)

    @property
    def operations(self) -> int:
        return len({c.operation_key for c in self.members})

    def headline(self) -> str:
        """`208 operation(s) lost their security requirement under /v1/customers`."""
        where = "other paths" if self.path_prefix == OTHER_PATHS else self.path_prefix
        what = _ROLL_UP[self.kind]
        if self.sub_kind:
            joined = ": " if self.kind is ChangeKind.BREAKING_CHANGE else " — "
            what += joined + self.sub_kind
        return f"{self.operations} {what} under {where}"

    def titled(self, shown: int = 3) -> str:
        """The headline naming its first operations, as a finding's title:
        `2 operation(s) removed under /users: GET /users/{id}, DELETE /users/{id}`."""
        names = list(dict.fromkeys(c.shown for c in self.members))
        more = len(names) - shown
        listed = ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
        return f"{self.headline()}: {listed}" if listed else self.headline()

    def describe(self) -> str:
        where = "other paths" if self.path_prefix == OTHER_PATHS else self.path_prefix
        lines = [f"{self.kind} ({self.severity}) {where}: {self.count} change(s)"]
        lines += [f"  {c.shown}: {c.detail}" for c in self.examples]
        if self.more:
            lines.append(f"  and {self.more} more")
        return "\n".join(lines)


def group_changes(
    changes: Iterable[Change],
    max_per_group: int = 5,
    max_prefixes_per_kind: int = 4,
    paths: Iterable[str] = (),
) -> tuple[ChangeGroup, ...]:
    """Changes grouped by kind (a breaking change also by its sub-kind), then by the path
    prefix that splits the API: the paths' longest common prefix and one segment more
    (`/v1/customers`, not `/v1`). `paths` are the API's paths (default: the changes'
    own). Within a kind the busiest `max_prefixes_per_kind - 1` prefixes get their own
    group and the rest share one (OTHER_PATHS). Groups come worst first, a kind's
    OTHER_PATHS group after its others; each keeps every member, and `max_per_group`
    examples."""
    changes = list(changes)
    common = common_prefix([*paths] or [_path(c.operation_key) for c in changes])
    by_kind: dict[tuple[ChangeKind, str], dict[str, list[Change]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for change in changes:
        sub_kind = _sub_kind(change)
        by_kind[(change.kind, sub_kind)][_split_prefix(change.operation_key, common)].append(change)
    groups: list[ChangeGroup] = []
    for (kind, sub_kind), by_prefix in by_kind.items():
        ranked = sorted(by_prefix.items(), key=lambda item: (-len(item[1]), item[0]))
        if len(ranked) > max_prefixes_per_kind:
            keep = max(max_prefixes_per_kind - 1, 0)
            rest = [change for _, members in ranked[keep:] for change in members]
            ranked = [*ranked[:keep], (OTHER_PATHS, rest)]
        groups.extend(
            _group(kind, sub_kind, prefix, members, max_per_group) for prefix, members in ranked
        )
    groups.sort(
        key=lambda g: (
            -g.severity.rank,
            _ORDER.index(g.kind),
            g.sub_kind,
            g.path_prefix == OTHER_PATHS,
            -g.count,
            g.path_prefix,
        )
    )
    return tuple(groups)


def _group(
    kind: ChangeKind, sub_kind: str, prefix: str, members: list[Change], max_per_group: int
) -> ChangeGroup:
    worst_first = sorted(members, key=lambda c: (-c.severity.rank, c.operation_key, c.detail))
    return ChangeGroup(
        kind=kind,
        path_prefix=prefix,
        severity=worst_first[0].severity,
        count=len(members),
        examples=tuple(worst_first[:max_per_group]),
        sub_kind=sub_kind,
        members=tuple(worst_first),
    )


def _sub_kind(change: Change) -> str:
    if change.kind is ChangeKind.BREAKING_CHANGE:
        return change.detail.partition(":")[0]
    if change.kind is ChangeKind.UNAUTHENTICATED_OPERATION:  # reads and writes apart
        return change.detail
    return ""


def _path(operation_key: str) -> str:
    return operation_key.partition(" ")[2]


def _segments(path: str) -> list[str]:
    return [part for part in path.split("?", 1)[0].strip("/").split("/") if part]


def common_prefix(paths: Iterable[str]) -> tuple[str, ...]:
    """The literal path segments every path starts with (a `{parameter}` ends it)."""
    common: list[str] | None = None
    for path in paths:
        segments = _segments(path)
        if common is None:
            common = segments
            continue
        length = 0
        for mine, theirs in zip(common, segments, strict=False):
            if mine != theirs:
                break
            length += 1
        common = common[:length]
    literal: list[str] = []
    for segment in common or []:
        if segment.startswith("{"):
            break
        literal.append(segment)
    return tuple(literal)


def _split_prefix(operation_key: str, common: tuple[str, ...]) -> str:
    segments = _segments(_path(operation_key))
    kept = list(common[: len(segments)])
    if len(segments) > len(kept) and not segments[len(kept)].startswith("{"):
        kept.append(segments[len(kept)])
    return "/" + "/".join(kept)
