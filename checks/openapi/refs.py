"""Resolve `$ref`s of an OpenAPI document: internal JSON pointers, files beside the spec
(never outside its directory) and, when enabled, URLs on the spec's own origin.

Schemas are resolved into shared views: each `$ref` target is resolved and digested once,
and every view that refers to it holds the same object. Cycles are cut the same way
whichever operation reaches them first: the targets are grouped into strongly connected
components (Tarjan), and a `$ref` between members of one component becomes a marker
`{"$ref": name, "x-apivigil-cycle": true}`; a member's digest covers the whole component.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit
from urllib.request import url2pathname

from checks.interface import BadInput, CheckError
from checks.openapi.loading import LoadLimits, limit_name, load_document, read_spec_file
from monitor.clock import Clock, SystemClock

CYCLE_MARK = "x-apivigil-cycle"
UNRESOLVED_MARK = "x-apivigil-unresolved"
RemoteFetcher = Callable[[str, float], bytes]  # (url, timeout in seconds) -> body


@dataclass(frozen=True, slots=True)
class RefTarget:
    document: str  # absolute file path or URL; "" for a root document without a location
    pointer: str  # JSON pointer, escaped ("" is the whole document)


class RefResolver:
    """Resolves the `$ref`s of one root document. Limits come from `limits`; the time
    budget starts when the resolver is made. `fetch_remote` None: remote refs refused."""

    def __init__(
        self,
        root: Any,
        origin: str,
        location: str | None = None,
        *,
        limits: LoadLimits | None = None,
        fetch_remote: RemoteFetcher | None = None,
        clock: Clock | None = None,
        root_bytes: int = 0,
    ) -> None:
        self.origin = origin
        self.problems: list[str] = []
        self._limits = limits or LoadLimits()
        self._fetch_remote = fetch_remote
        self._clock = clock or SystemClock()
        self._deadline = self._clock.monotonic() + self._limits.time_budget
        self._root_id = location or ""
        self._remote_root = _is_url(self._root_id)
        self._root_dir = None if self._remote_root or not location else Path(location).parent
        self._documents: dict[str, Any] = {self._root_id: root}
        self._targets: dict[tuple[str, str], RefTarget | None] = {}
        self._resolving: set[tuple[str, str]] = set()
        self._views: dict[RefTarget, Any] = {}
        self._digests: dict[int, tuple[Any, str]] = {}  # id(view) -> (view, digest)
        self._names: dict[int, tuple[Any, str]] = {}  # id(view) -> (view, its $ref's name)
        self._nodes = 0  # resolved (view) nodes made or kept
        self._steps = 0  # any node looked at
        self._bytes = root_bytes  # read so far, the root document's included

    @property
    def root_document(self) -> str:
        return self._root_id

    def deref(self, node: Any, document: str) -> tuple[Any, str]:
        """`node` with `$ref`s followed (siblings of `$ref` ignored), and the document it
        lives in. A `$ref` that leads nowhere is recorded in `problems` and gives None."""
        for _ in range(self._limits.max_ref_depth + 1):
            if not _is_ref(node):
                return node, document
            target = self._resolve(node["$ref"], document)
            if target is None:
                return None, document
            node, document = self._content(target), target.document
        raise BadInput(
            f"$refs nested deeper than {self._limits.max_ref_depth} "
            + limit_name("max_ref_depth", self._limits.max_ref_depth),
            subject=self.origin,
        )

    def schema_view(self, node: Any, document: str) -> Any:
        """`node` with every `$ref` replaced by its target's shared view."""
        try:
            return self._view(node, document, None)
        except RecursionError:
            raise BadInput("a schema is nested too deeply", subject=self.origin) from None

    def digest(self, view: Any) -> str:
        """sha256 of a view's canonical JSON, each nested object or array standing for its
        own digest: stable across key order, and computed once per `$ref` target."""
        try:
            return self._digest(view)
        except RecursionError:
            raise BadInput("a schema is nested too deeply", subject=self.origin) from None

    def ref_name(self, view: Any) -> str | None:
        """The `$ref` target `view` was resolved from (`#/components/schemas/Card`), if any."""
        known = self._names.get(id(view))
        return known[1] if known is not None and known[0] is view else None

    def _digest(self, view: Any) -> str:
        known = self._digests.get(id(view))
        if known is not None and known[0] is view:
            return known[1]
        if isinstance(view, dict):
            items = sorted(((str(key), value) for key, value in view.items()), key=_first)
            text = "{" + ",".join(f"{json.dumps(k)}:{self._token(v)}" for k, v in items) + "}"
        elif isinstance(view, list):
            text = "[" + ",".join(self._token(item) for item in view) + "]"
        else:
            text = _scalar(view)
        return hashlib.sha256(text.encode()).hexdigest()

    def name(self, target: RefTarget) -> str:
        """`target` as written relative to the root document: `#/a/b`, `common.yaml#/X`."""
        if target.document == self._root_id:
            return f"#{target.pointer}"
        if self._root_dir is not None:
            relative = Path(target.document).relative_to(self._root_dir)
            return f"{relative.as_posix()}#{target.pointer}"
        parts = urlsplit(target.document)
        return f"{parts.path}{'?' + parts.query if parts.query else ''}#{target.pointer}"

    def _token(self, value: Any) -> str:
        if isinstance(value, dict | list):
            return "#" + self._digest(value)
        return _scalar(value)

    def _view(self, node: Any, document: str, component: frozenset[RefTarget] | None) -> Any:
        self._tick()
        if isinstance(node, list):
            items = [self._view(item, document, component) for item in node]
            return node if all(a is b for a, b in zip(items, node, strict=True)) else items
        if not isinstance(node, dict):
            return node
        if not _is_ref(node):
            values = {key: self._view(value, document, component) for key, value in node.items()}
            return node if all(values[key] is node[key] for key in node) else values
        target = self._resolve(node["$ref"], document)
        if target is None:
            resolved: Any = {"$ref": node["$ref"], UNRESOLVED_MARK: True}
        elif component is not None and target in component:
            resolved = {"$ref": self.name(target), CYCLE_MARK: True}
        else:
            self._ensure_view(target)
            resolved = self._views[target]
        siblings = {
            key: self._view(value, document, component)
            for key, value in node.items()
            if key != "$ref"
        }
        if not siblings:
            return resolved
        all_of = siblings.get("allOf")
        siblings["allOf"] = [*(all_of if isinstance(all_of, list) else []), resolved]
        return siblings

    def _ensure_view(self, start: RefTarget) -> None:
        """Tarjan's algorithm, iteratively: components come out sinks first, so a
        component's views are built when every view outside it already exists."""
        if start in self._views:
            return
        index: dict[RefTarget, int] = {}
        lowest: dict[RefTarget, int] = {}
        successors: dict[RefTarget, list[RefTarget]] = {}
        stack: list[RefTarget] = []
        on_stack: set[RefTarget] = set()
        work: list[tuple[RefTarget, int]] = [(start, 0)]
        while work:
            target, position = work.pop()
            if position == 0:
                index[target] = lowest[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                successors[target] = self._successors(target)
            pending = successors[target]
            while position < len(pending):
                successor = pending[position]
                position += 1
                if successor in self._views:
                    continue
                if successor not in index:
                    work.append((target, position))
                    work.append((successor, 0))
                    break
                if successor in on_stack:
                    lowest[target] = min(lowest[target], index[successor])
            else:
                if work:
                    parent = work[-1][0]
                    lowest[parent] = min(lowest[parent], lowest[target])
                if lowest[target] == index[target]:
                    members = stack[stack.index(target) :]
                    del stack[-len(members) :]
                    on_stack.difference_update(members)
                    self._finish(members, len(members) > 1 or target in pending)

    def _finish(self, members: list[RefTarget], cyclic: bool) -> None:
        component = frozenset(members) if cyclic else None
        for member in members:
            self._views[member] = self._view(self._content(member), member.document, component)
        local = {member: self._digest(self._views[member]) for member in members}
        group = hashlib.sha256(
            "".join(sorted(f"{self.name(m)}={d};" for m, d in local.items())).encode()
        ).hexdigest()
        for member in members:
            view = self._views[member]
            self._names[id(view)] = (view, self.name(member))
            own = hashlib.sha256(f"cycle:{local[member]}:{group}".encode()).hexdigest()
            self._digests[id(view)] = (view, own if cyclic else local[member])

    def _successors(self, target: RefTarget) -> list[RefTarget]:
        found: dict[RefTarget, None] = {}
        stack = [self._content(target)]
        while stack:
            node = stack.pop()
            self._tick(resolved=0)
            if isinstance(node, dict):
                if _is_ref(node) and (resolved := self._resolve(node["$ref"], target.document)):
                    found[resolved] = None
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return list(found)

    def _resolve(self, ref: str, document: str, depth: int = 0) -> RefTarget | None:
        """The target of `ref` after following refs that are nothing but a ref."""
        key = (document, ref)
        if key in self._targets:
            return self._targets[key]
        if key in self._resolving:
            raise BadInput(f"$ref cycle with no content through '{ref}'", subject=self.origin)
        self._resolving.add(key)
        try:
            target = self._follow(ref, document, depth)
        finally:
            self._resolving.discard(key)
        self._targets[key] = target
        return target

    def _follow(self, ref: str, document: str, depth: int) -> RefTarget | None:
        chain: list[RefTarget] = []
        current_ref, current_document = ref, document
        while True:
            target = self._locate(current_ref, current_document, depth + len(chain))
            if target is None:
                self.problems.append(
                    f"$ref '{current_ref}' in {self._label(current_document)} does not resolve"
                )
                break
            if target in chain:
                names = " -> ".join(self.name(t) for t in [*chain, target])
                raise BadInput(f"$ref cycle with no content: {names}", subject=self.origin)
            chain.append(target)
            content = self._content(target)
            if not (isinstance(content, dict) and len(content) == 1 and _is_ref(content)):
                break
            current_ref, current_document = content["$ref"], target.document
        return target

    def _locate(self, ref: str, referrer: str, depth: int) -> RefTarget | None:
        if depth > self._limits.max_ref_depth:
            raise BadInput(
                f"$ref '{ref}' is at the end of a chain of more than "
                f"{self._limits.max_ref_depth} $refs "
                + limit_name("max_ref_depth", self._limits.max_ref_depth),
                subject=self.origin,
            )
        location, _, fragment = ref.partition("#")
        document = self._document_id(location, referrer, ref) if location else referrer
        if fragment and not fragment.startswith("/"):
            return None
        node = self._load(document, ref)
        segments = [
            unquote(part).replace("~1", "/").replace("~0", "~") for part in fragment.split("/")[1:]
        ]
        walked: list[str] = []
        for segment in segments:
            if _is_ref(node) and segment not in node:
                inner = self._resolve(node["$ref"], document, depth + 1)
                if inner is None:
                    return None
                document, node = inner.document, self._content(inner)
                walked = inner.pointer.split("/")[1:] if inner.pointer else []
            node = _child(node, segment)
            if node is _MISSING:
                return None
            walked.append(segment.replace("~", "~0").replace("/", "~1"))
        return RefTarget(document, "".join(f"/{segment}" for segment in walked))

    def _content(self, target: RefTarget) -> Any:
        node = self._documents[target.document]
        for segment in target.pointer.split("/")[1:]:
            node = _child(node, segment.replace("~1", "/").replace("~0", "~"))
        return node

    def _document_id(self, location: str, referrer: str, ref: str) -> str:
        if _is_url(referrer) or _is_url(location):
            url = urldefrag(urljoin(referrer, location)).url
            self._check_remote(url, ref, referrer)
            return url
        if not referrer:
            raise BadInput(
                f"$ref '{ref}' names another file, but the document has no location",
                subject=self.origin,
            )
        parts = urlsplit(location)
        if parts.scheme not in ("", "file"):
            raise BadInput(f"$ref '{ref}': unsupported scheme {parts.scheme!r}", subject=referrer)
        relative = url2pathname(parts.path) if parts.scheme else unquote(location)
        path = (Path(referrer).parent / relative).resolve()
        assert self._root_dir is not None
        if not path.is_relative_to(self._root_dir):
            raise BadInput(
                f"$ref '{ref}' points to {path}, outside the spec's directory {self._root_dir}",
                subject=referrer,
            )
        return str(path)

    def _check_remote(self, url: str, ref: str, referrer: str) -> None:
        if self._fetch_remote is None:
            raise BadInput(
                f"$ref '{ref}' names {url}, and remote $refs are disabled", subject=referrer
            )
        allowed = _origin(self._root_id) if self._remote_root else None
        if _origin(url) != allowed:
            raise BadInput(
                f"$ref '{ref}' names {url}, which is not on the spec's origin "
                f"({allowed or 'a local file'})",
                subject=referrer,
            )

    def _load(self, document: str, ref: str) -> Any:
        if document in self._documents:
            return self._documents[document]
        limits = self._limits
        if len(self._documents) > limits.max_files:
            raise BadInput(
                f"$ref '{ref}' would read more than {limits.max_files} other files "
                + limit_name("max_files", limits.max_files),
                subject=self.origin,
            )
        try:
            if _is_url(document):
                assert self._fetch_remote is not None
                timeout = max(0.001, self._deadline - self._clock.monotonic())
                data = self._fetch_remote(document, timeout)
            else:
                data = read_spec_file(Path(document), limits.max_bytes)
            self._bytes += len(data)
            if self._bytes > limits.max_total_bytes:
                raise BadInput(
                    f"the spec's files add up to more than {limits.max_total_bytes} bytes "
                    + limit_name("max_total_bytes", limits.max_total_bytes),
                    subject=self.origin,
                )
            parsed = load_document(data, document, limits)
        except CheckError as error:
            raise type(error)(
                f"$ref '{ref}' cannot be read: {error.message}", subject=error.subject
            ) from None
        self._documents[document] = parsed
        self._tick(resolved=0)
        self._check_deadline()  # parsing a file can take far longer than 1,024 steps
        return parsed

    def _label(self, document: str) -> str:
        return (
            "the root document" if document == self._root_id else self.name(RefTarget(document, ""))
        )

    def _tick(self, resolved: int = 1) -> None:
        self._steps += 1
        self._nodes += resolved
        if self._nodes > self._limits.max_resolved_nodes:
            raise BadInput(
                f"resolving $refs walked more than {self._limits.max_resolved_nodes} nodes "
                + limit_name("max_resolved_nodes", self._limits.max_resolved_nodes),
                subject=self.origin,
            )
        if self._steps % 1024 == 0:
            self._check_deadline()

    def _check_deadline(self) -> None:
        if self._clock.monotonic() > self._deadline:
            raise BadInput(
                f"resolving $refs took longer than {self._limits.time_budget:g} s "
                + limit_name("time_budget", self._limits.time_budget),
                subject=self.origin,
            )


_MISSING = object()


def _child(node: Any, segment: str) -> Any:
    if isinstance(node, dict):
        if segment in node:
            return node[segment]
        if segment.isdigit() and int(segment) in node:  # YAML reads `200:` as an int
            return node[int(segment)]
    elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
        return node[int(segment)]
    return _MISSING


def _is_ref(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("$ref"), str)


def _is_url(location: str) -> bool:
    return urlsplit(location).scheme in ("http", "https")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _scalar(value: Any) -> str:
    return json.dumps(value, default=str)
