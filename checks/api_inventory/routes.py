"""Which documented operation a logged request reached.

`RouteMatcher` compiles the operations' templates into a trie of path segments. At every
segment a literal beats a partial parameter (`{}.json`), which beats a whole parameter, so
`/users/me` matches `/users/me` before `/users/{}`; a branch that does not lead to the
request's method falls back to the next one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from checks.openapi.inventory import Operation

_PARAMETER = re.compile(r"\{[^{}/]*\}")


class _Node:
    __slots__ = ("literals", "operations", "parameter", "patterns", "query_methods")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.patterns: dict[str, tuple[re.Pattern[str], _Node]] = {}
        self.parameter: _Node | None = None
        self.operations: dict[str, Operation] = {}  # upper-case method -> operation
        self.query_methods: set[str] = set()  # whose operation's template has a ?query


class RouteMatcher:
    """Matches (method, path) to an operation. Paths are `Request.path`s: no query string.
    The longest base path (e.g. `/v1`) the path starts with is stripped first."""

    def __init__(
        self,
        operations: Sequence[Operation],
        base_paths: Sequence[str] = (),
        *,
        trailing_slash_tolerant: bool = True,
    ) -> None:
        self.operations = tuple(operations)
        bases = {"/" + base.strip("/") for base in base_paths} - {"/"}
        self.base_paths = tuple(sorted(bases, key=len, reverse=True))
        self.trailing_slash_tolerant = trailing_slash_tolerant
        self._root = _Node()
        self._literal_paths: dict[str, _Node] = {}  # templates without parameters, a shortcut
        for operation in self.operations:
            self._add(operation)

    def extended(self, operations: Sequence[Operation]) -> RouteMatcher:
        """A matcher of these operations as well, with the same settings. On equal keys the
        operations already here win."""
        return RouteMatcher(
            (*self.operations, *operations),
            self.base_paths,
            trailing_slash_tolerant=self.trailing_slash_tolerant,
        )

    def match(self, method: str, path: str) -> Operation | None:
        """The operation the request reached, or None for an undocumented one. HEAD falls
        back to GET where no HEAD is documented; OPTIONS (a CORS preflight) to the path's
        GET, else its first documented method."""
        if path[:1] != "/":
            return None
        method = method.upper()
        for base in self.base_paths:  # strip_base, inlined: this runs once per request
            if path.startswith(base):
                rest = path[len(base) :]
                if not rest or rest[0] == "/":
                    return self._match(method, rest or "/")
        return self._match(method, path)

    def strip_base(self, path: str) -> str:
        """`path` without the longest base path it starts with (`/v1/x` -> `/x`)."""
        for base in self.base_paths:
            if path.startswith(base):
                rest = path[len(base) :]
                if not rest or rest[0] == "/":
                    return rest or "/"
        return path

    def _match(self, method: str, path: str) -> Operation | None:
        if self.trailing_slash_tolerant and path[-1] == "/" and len(path) > 1:
            path = path.rstrip("/") or "/"
        node: _Node | None = self._literal_paths.get(path)
        if node is not None and (operation := _operation(node, method)) is not None:
            return operation
        segments = path[1:].split("/")
        # the greedy walk (literal, else parameter) is the answer when it arrives; a dead
        # end, or partial parameters on the way, need the full walk
        node = self._root
        for segment in segments:
            child = node.literals.get(segment)
            if child is None:
                if node.patterns or not segment:
                    break
                child = node.parameter
                if child is None:
                    break
            node = child
        else:
            operation = node.operations.get(method)
            if operation is not None:
                return operation
        return _walk(self._root, segments, 0, method)

    def _add(self, operation: Operation) -> None:
        template, _, query = _PARAMETER.sub("{}", operation.template).partition("?")
        if self.trailing_slash_tolerant and len(template) > 1:
            template = template.rstrip("/") or "/"
        node = self._root
        for segment in template[1:].split("/"):
            if segment == "{}":
                node.parameter = node.parameter or _Node()
                node = node.parameter
            elif "{}" in segment:
                if segment not in node.patterns:
                    pattern = "(.+?)".join(re.escape(part) for part in segment.split("{}"))
                    node.patterns[segment] = (re.compile(pattern), _Node())
                node = node.patterns[segment][1]
            else:
                node = node.literals.setdefault(segment, _Node())
        if "{}" not in template:
            self._literal_paths[template] = node
        method = operation.method.upper()
        # the path part is all that is matched: prefer the template without a query
        if method not in node.operations or (method in node.query_methods and not query):
            node.operations[method] = operation
            if query:
                node.query_methods.add(method)
            else:
                node.query_methods.discard(method)


def _operation(node: _Node, method: str) -> Operation | None:
    operation = node.operations.get(method)
    if operation is None and method == "HEAD":
        return node.operations.get("GET")
    if operation is None and method == "OPTIONS" and node.operations:
        return node.operations.get("GET") or node.operations[min(node.operations)]
    return operation


def _walk(node: _Node, segments: list[str], index: int, method: str) -> Operation | None:
    if index == len(segments):
        return _operation(node, method)
    segment = segments[index]
    child = node.literals.get(segment)
    if child is not None:
        found = _walk(child, segments, index + 1, method)
        if found is not None:
            return found
    if not segment:  # parameters are never empty
        return None
    for pattern, child in node.patterns.values():
        if pattern.fullmatch(segment):
            found = _walk(child, segments, index + 1, method)
            if found is not None:
                return found
    if node.parameter is not None:
        return _walk(node.parameter, segments, index + 1, method)
    return None
