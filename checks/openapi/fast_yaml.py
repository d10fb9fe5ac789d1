"""A fast path for plain YAML documents, with exactly the loader's results.

PyYAML's C composer spends about 3 s on a 5 MB spec (420,000 nodes, each with marks and a
resolver call back into Python); yaml-rs (Rust) builds the same Python objects in about
0.2 s. But it reads YAML 1.2 with a schema of its own (`0o17` and `1e3` are numbers, `1:30`
is a string), ignores tags, expands aliases by copying them, is laxer about tabs, and
recurses on block nesting (a few thousand levels crash the process). So it reads a document
only when the text has none of the constructs on which the two could differ, or that could
hurt: anchors and aliases, tags, directives, several documents, complex keys, tabs in
indentation, characters or surrogate escapes PyYAML refuses, nesting deeper than
`_MAX_PREFIX`, an empty block scalar or no line break at the end, and plain scalars that
the two resolve differently (checked by resolving every number-like token both ways); and
only when its result has no flow collection as a key. Anything else, and any yaml-rs
error, is left to PyYAML (`None`), which gives the loader's own results, limits and error
messages.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

try:
    import yaml_rs
except ImportError:  # no wheel for this platform: PyYAML reads everything
    yaml_rs = None  # type: ignore[assignment]

_BOM = b"\xef\xbb\xbf"

# Longest run of indentation and compact indicators (`- - - x`) at a line's start that
# yaml-rs reads. Block nesting deepens by at most one level per column of that run, and
# yaml-rs refuses flow collections over 256 levels deep, so what it reads nests at most
# about 460 levels: far inside its stack, and inside Python's recursion limit for the
# recursive code downstream (PyYAML's path reads such a document too).
_MAX_PREFIX = 200

# The patterns run over the document after a "\n", so every node's text follows one of
# `_AFTER` and every line follows a line break (YAML breaks lines at \r too). Each starts
# with the character it looks for and checks what precedes it after: much faster than a
# leading look-behind (or one alternation of them all) over megabytes.
_AFTER = rb"(?<=[\s\[{,:].)"
_DECLINE = tuple(
    re.compile(pattern)
    for pattern in (
        # an anchor, a tag, an explicit (complex) key; an alias names no anchor then, and
        # yaml-rs refuses it (limit 0) for PyYAML to name
        rb"[&!?]" + _AFTER + rb"(?:(?<=&)[^\s,\[\]{}]|(?<=!)|(?<=\?)(?=\s|\Z))",
        # a directive, a document end or a second start
        rb"[\r\n](?:%|\.\.\.(?=\s|\Z)|---(?=\s|\Z))",
        # deep nesting
        rb"[\r\n][ \t?:-]{" + str(_MAX_PREFIX).encode() + rb"}",
        # a surrogate escape: yaml-rs joins a pair into one character, PyYAML refuses it
        rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}",
    )
)
_TAB_INDENT = re.compile(rb"[\r\n][ ?:-]*\t")
# What PyYAML's reader refuses; NEL, LS and PS, which break lines in YAML 1.1 and not in
# 1.2; a byte order mark after the start.
_ODD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")

# Tokens that may be plain scalars resolving to a number (or a merge key) in either
# schema: a sign, digit, dot, underscore or `<` first, between delimiters. A superset;
# the tokens the two schemas read differently are then looked for where a plain scalar
# can stand (`_at_node`), so `16:9` or `10:30` in a description costs nothing.
_NUMBER_LIKE = re.compile(rb"[-+._0-9<]" + _AFTER + rb"[-+._:0-9a-zA-Z<=]*(?=[\s,\]}#]|\Z)")
# Bounds on that check, so that it stays a small part of the read: beyond them PyYAML
# reads the document (the 5 MB benchmark spec has 5 distinct number-like tokens)
_MAX_TOKENS = 20_000
_MAX_DIFFERING = 100
# where a node starts: after indentation and compact indicators, a `:`, or in a flow
_NODE_START = rb"(?:[\r\n][ \t]*(?:[-?:][ \t]+)*|:[ \t]*|[\[{,][ \t]*)"
# and where a plain scalar ends: a line break, a comment, a flow indicator, a key's `:`
_NODE_END = rb"(?=[ \t]*(?:[\r\n]|\Z|#|[,\]}]|:(?:\s|\Z)))"


@dataclass(frozen=True, slots=True)
class Parsed:
    value: Any


def load_plain(data: bytes, pyyaml_load: Any) -> Parsed | None:
    """The document in `data` when yaml-rs can read it with the same result as
    `pyyaml_load` (the loader's PyYAML path, called here on a small document of the
    number-like tokens); None when PyYAML must read it."""
    if yaml_rs is None:
        return None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if data.startswith((b"---\n", b"---\r")):  # a document start on the first line alone
        data = data[3:]
    if not data.endswith((b"\n", b"\r")) and data.strip():
        return None  # yaml-rs ends a block scalar at the end of the text with a line break
    scanned = b"\n" + data
    if any(pattern.search(scanned) for pattern in _DECLINE):
        return None
    if b"\t" in data and _TAB_INDENT.search(scanned):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _ODD_CHARACTER.search(text):
        return None
    differing = _differing_scalars(scanned, pyyaml_load)
    if differing is None or len(differing) > _MAX_DIFFERING:
        return None
    if differing and _at_node(differing, scanned):
        return None
    try:
        value = yaml_rs.loads(
            text,
            parse_datetime=False,
            alias_limits=yaml_rs.AliasLimits(max_total_replayed_events=0),
            duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.LastWins,
        )
    except Exception:  # any refusal: PyYAML reads it and names the problem
        return None
    return None if _read_differently(value) else Parsed(value)


def _differing_scalars(scanned: bytes, pyyaml_load: Any) -> set[bytes] | None:
    """The number-like tokens that, as plain scalars, mean something else to each parser;
    None when that is not worth finding out (one of them refuses a token, such as a merge
    key `<<`, or there are more distinct tokens than `_MAX_TOKENS`). A token ending in `:`
    is also checked as the key it may be."""
    distinct: set[bytes] = set()
    for match in _NUMBER_LIKE.finditer(scanned):
        token = match.group()
        distinct.add(token)
        if token.endswith(b":"):
            distinct.add(token.rstrip(b":"))
        if len(distinct) > _MAX_TOKENS:
            return None
    distinct.discard(b"")
    ordered = sorted(distinct)
    try:
        theirs, ours = _as_plain(ordered, _yaml_rs_load), _as_plain(ordered, pyyaml_load)
    except Exception:  # a token one of them refuses
        return None
    if len(theirs) != len(ours):
        return None
    return {
        token
        for token, one, other in zip(ordered, theirs, ours, strict=True)
        if _typed(one) != _typed(other)
    }


def _as_plain(tokens: list[bytes], load: Any) -> list[Any]:
    values = load(b"".join(b"- " + token + b"\n" for token in tokens))
    return list(values) if values is not None else []


def _yaml_rs_load(data: bytes) -> Any:
    return yaml_rs.loads(data.decode("ascii"), parse_datetime=False)


def _at_node(tokens: set[bytes], scanned: bytes) -> bool:
    """Whether one of `tokens` stands where a plain scalar can (a superset)."""
    alternatives = b"|".join(re.escape(token) for token in sorted(tokens, key=len, reverse=True))
    pattern = _NODE_START + rb"(?:" + alternatives + rb")" + _NODE_END
    return re.search(pattern, scanned) is not None


def _read_differently(value: Any) -> bool:
    """Whether yaml-rs's `value` has what PyYAML reads otherwise: a flow collection as a
    key (`[a]: x`, `{a: 1}: x`; yaml-rs makes it a tuple or frozenset, PyYAML refuses it),
    or a string of line breaks alone (yaml-rs reads an empty block scalar `|` as "\n",
    PyYAML as "")."""
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            if any(type(key) in (tuple, frozenset) for key in node):
                return True
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
        elif type(node) is str and node and not node.strip("\r\n"):
            return True
    return False


def _typed(value: Any) -> Any:
    """`value` with each scalar as (type, value), NaN comparable."""
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, dict):
        return [(_typed(key), _typed(item)) for key, item in value.items()]
    if isinstance(value, float) and math.isnan(value):
        return (float, "nan")
    return (type(value), value)
