"""Read an OpenAPI document (JSON or YAML) from bytes, a file or a URL, with hard limits:
the size is checked before parsing, and YAML aliases are counted as the nodes they expand
to, so an alias bomb fails before anything walks the expanded tree."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.events import AliasEvent, ScalarEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from checks.egress import EgressPolicy
from checks.http import HttpResponse, fetch
from checks.interface import BadInput, TargetUnreachable
from checks.openapi.fast_yaml import load_plain
from monitor.bounded_files import FileTooLarge, UnsafeFile, read_limited

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BOOL = "tag:yaml.org,2002:bool"
_VALUE = "tag:yaml.org,2002:value"  # YAML 1.1's `=`, which SafeLoader cannot construct


class SpecUnparseable(BadInput):
    """The document is neither JSON nor YAML, or breaks a parsing limit."""


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """Bounds on reading one spec. The defaults load a multi-file spec of a few thousand
    files and tens of MB; each error names the setting it crossed (`limit_name`)."""

    max_bytes: int = 50 * 1024 * 1024  # per document, checked before parsing
    max_total_bytes: int = 256 * 1024 * 1024  # all documents of one spec together
    max_files: int = 5_000  # documents besides the root one
    max_yaml_nodes: int = 10_000_000  # YAML nodes of one document, every alias expanded
    max_ref_depth: int = 64  # $ref -> $ref chains, and $refs followed inside one pointer
    max_resolved_nodes: int = 5_000_000  # nodes walked while resolving $refs
    time_budget: float = 60.0  # seconds for resolving all $refs of one inventory


# The settings' names (per target under `limits:`, on the CLI as `--max-files` ...).
LIMIT_NAMES = {
    "max_bytes": "max_spec_bytes",
    "max_total_bytes": "max_total_bytes",
    "max_files": "max_files",
    "max_yaml_nodes": "max_yaml_nodes",
    "max_ref_depth": "max_ref_depth",
    "max_resolved_nodes": "max_resolved_nodes",
    "time_budget": "time_budget",
}


def limit_name(field: str, value: float) -> str:
    """`(limit max_files = 5000)`: the setting to raise, for error messages."""
    shown = int(value) if float(value).is_integer() else f"{value:g}"
    return f"(limit {LIMIT_NAMES[field]} = {shown})"


def _yaml12_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """YAML 1.1's implicit types minus timestamps, yes/no/on/off booleans and `=`: OpenAPI
    documents are YAML 1.2, where `2024-01-01`, `no` and `=` are strings."""
    return {
        first: [
            (tag, regexp) for tag, regexp in resolvers if tag not in (_TIMESTAMP, _BOOL, _VALUE)
        ]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


class _YamlLoader(_BaseLoader):
    yaml_implicit_resolvers = _yaml12_resolvers()


_YamlLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _SpecLoader(_YamlLoader):
    """Composes in Python over the (C) parser's events, to count every node an alias
    stands for (an alias bomb fails at the alias that crosses the limit), to refuse an
    alias inside its own anchor, and to let an anchor be defined again: YAML 1.2 allows
    it, real specs do it, and PyYAML's composers refuse it."""

    # CParser composes in C, out of reach of compose_node below: use Composer's methods.
    # (Listing Composer as a base instead breaks the MRO of the pure-Python SafeLoader.)
    check_node: Any = Composer.check_node
    get_node: Any = Composer.get_node
    get_single_node: Any = Composer.get_single_node
    compose_document: Any = Composer.compose_document
    compose_scalar_node: Any = Composer.compose_scalar_node
    compose_sequence_node: Any = Composer.compose_sequence_node
    compose_mapping_node: Any = Composer.compose_mapping_node

    def __init__(self, stream: bytes, origin: str, max_nodes: int) -> None:
        super().__init__(stream)
        self.anchors: dict[Any, Node] = {}
        self.origin = origin
        self.max_nodes = max_nodes
        self.expanded_nodes = 0
        self.anchored_sizes: dict[int, int] = {}  # id(anchored node) -> expanded size

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event: Any = self.get_event()  # the stubs' Event has no anchor
            if event.anchor not in self.anchors:
                raise ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                )
            node: Node = self.anchors[event.anchor]
            size = self.anchored_sizes.get(id(node))
            if size is None:
                raise ComposerError(
                    None, None, f"alias {event.anchor!r} is inside its own anchor", event.start_mark
                )
            self._count(size, event.start_mark)
            return node
        event = self.peek_event()
        before = self.expanded_nodes
        self._count(1, event.start_mark)
        self.descend_resolver(parent, index)
        if self.check_event(ScalarEvent):
            node = self.compose_scalar_node(event.anchor)
        elif self.check_event(SequenceStartEvent):
            node = self.compose_sequence_node(event.anchor)
        else:
            node = self.compose_mapping_node(event.anchor)
        self.ascend_resolver()
        if event.anchor is not None:
            self.anchored_sizes[id(node)] = self.expanded_nodes - before
        return node

    def _count(self, nodes: int, mark: Any) -> None:
        self.expanded_nodes += nodes
        if self.expanded_nodes > self.max_nodes:
            raise SpecUnparseable(
                f"YAML aliases expand to more than {self.max_nodes} nodes at line "
                f"{mark.line + 1} column {mark.column + 1} (an alias bomb?) "
                + limit_name("max_yaml_nodes", self.max_nodes),
                subject=self.origin,
            )


def load_document(data: bytes, origin: str, limits: LoadLimits) -> Any:
    """The document in `data` (JSON when it starts with `{`, else YAML).

    Raises SpecUnparseable naming `origin`: over `limits.max_bytes` (refused before
    parsing), a parse error (with line and column), or YAML expanding to more than
    `limits.max_yaml_nodes` nodes.
    """
    if len(data) > limits.max_bytes:
        raise SpecUnparseable(
            f"{len(data)} bytes is over the limit of {limits.max_bytes}; not parsed "
            + limit_name("max_bytes", limits.max_bytes),
            subject=origin,
        )
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        try:
            return _load_json(data, origin)
        except SpecUnparseable as json_error:
            try:  # JSON-looking YAML: `{openapi: 3.0.0, ...}`
                return _load_yaml(data, origin, limits)
            except SpecUnparseable:
                raise json_error from None
    return _load_yaml(data, origin, limits)


def _load_json(data: bytes, origin: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as error:
        raise SpecUnparseable(
            f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
            subject=origin,
        ) from None
    except RecursionError:
        raise SpecUnparseable("JSON nested too deeply", subject=origin) from None
    except ValueError as error:  # e.g. not UTF-8, or more digits than int() allows
        raise SpecUnparseable(f"invalid JSON: {error}", subject=origin) from None


def _load_yaml(data: bytes, origin: str, limits: LoadLimits) -> Any:
    parsed = load_plain(data, lambda tokens: _load_pyyaml(tokens, origin, limits))
    return parsed.value if parsed is not None else _load_pyyaml(data, origin, limits)


def _load_pyyaml(data: bytes, origin: str, limits: LoadLimits) -> Any:
    # Without an `&` there are no anchors, so no aliases: the C composer is safe and faster.
    aliased = b"&" in data
    loader = _SpecLoader(data, origin, limits.max_yaml_nodes) if aliased else _YamlLoader(data)
    try:
        if aliased:  # PyYAML's constructor shares what aliases name instead of copying it
            return loader.get_single_data()
        node = loader.get_single_node()
        return None if node is None else _construct(loader, node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "unreadable"
        raise SpecUnparseable(f"invalid YAML{where}: {problem}", subject=origin) from None
    except yaml.YAMLError as error:
        raise SpecUnparseable(f"invalid YAML: {error}", subject=origin) from None
    except RecursionError:
        raise SpecUnparseable("YAML nested too deeply", subject=origin) from None
    finally:
        loader.dispose()


_STR, _SEQ, _MAP = (f"tag:yaml.org,2002:{name}" for name in ("str", "seq", "map"))
_MERGE = "tag:yaml.org,2002:merge"


def _construct(loader: Any, node: Node) -> Any:
    """PyYAML's safe construction, about three times faster for plain strings, lists and
    mappings (a 5 MB spec is mostly those); anything else goes to the loader's own."""
    if isinstance(node, ScalarNode) and node.tag == _STR:
        return node.value
    if isinstance(node, SequenceNode) and node.tag == _SEQ:
        return [_construct(loader, child) for child in node.value]
    if (
        isinstance(node, MappingNode)
        and node.tag == _MAP
        and not any(key.tag == _MERGE for key, _ in node.value)
    ):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node)
            try:
                mapping[key] = _construct(loader, value_node)
            except TypeError:
                raise ComposerError(
                    None, None, "found an unhashable key", key_node.start_mark
                ) from None
        return mapping
    return loader.construct_object(node, deep=True)


def read_spec_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path`; SpecUnparseable over `max_bytes` (at most `max_bytes` + 1 bytes
    are read), BadInput when it is not a regular file (a FIFO, a device, a socket) or
    cannot be read."""
    try:
        return read_limited(path, max_bytes)
    except FileTooLarge:
        raise SpecUnparseable(
            f"over the limit of {max_bytes}; not read " + limit_name("max_bytes", max_bytes),
            subject=str(path),
        ) from None
    except UnsafeFile as error:
        raise BadInput(error.problem, subject=str(path)) from None
    except OSError as error:
        raise BadInput(f"cannot read: {error.strerror or error}", subject=str(path)) from None


def fetch_spec(
    url: str,
    timeout: float,
    max_bytes: int,
    auth_header: str | None = None,
    verify: bool | str = True,
    *,
    egress: EgressPolicy,
    max_redirects: int = 5,
    derived: bool = False,
    deadline: float | None = None,
) -> HttpResponse:
    """GET the document at `url`; `auth_header` is the Authorization header's value.
    `derived`: `url` came from remote content (a `$ref`), so `egress` applies to it as well
    as to every redirect.

    Raises TargetUnreachable (no answer, a 5xx answer) or BadInput (another non-2xx
    answer, a body over `max_bytes`, an address the egress policy denies), each naming
    the URL.
    """
    headers = {"Accept": "application/json, application/yaml;q=0.9, */*;q=0.5"}
    if auth_header is not None:
        headers["Authorization"] = auth_header
    response = fetch(
        url,
        timeout=timeout,
        max_bytes=max_bytes,
        max_redirects=max_redirects,
        verify=verify,
        headers=headers,
        derived=derived,
        egress=egress,
        deadline=deadline,
    )
    if response.status >= 500:
        raise TargetUnreachable(f"HTTP {response.status}", subject=response.url)
    if not 200 <= response.status < 300:
        raise BadInput(f"HTTP {response.status}, not the document", subject=response.url)
    return response
