"""Text a target or a log writer chose, made harmless for people (the vocabulary part of
`monitor.display`, free of rich, so that alerts and reports can use it too).

Written raw to a terminal, ESC sequences recolour or rewrite the screen (CSI), plant
hyperlinks (OSC 8) or set the window title; bidi overrides (U+202E) and zero-width
characters make a text read as something it is not. `printable` shows every such character
as a visible escape (`\\x1b`, `\\u202e`); `markdown_escaped` keeps Markdown from turning text
into links, HTML or table cells.

Vocabulary shared with checks, alerts and dashboards: one of the few monitor modules they
may import (the import-linter contracts in pyproject.toml); it imports no other part of
monitor.
"""

from __future__ import annotations

import ast
import re
import unicodedata

# Cc: C0, DEL and C1 controls; Cf: format characters (bidi embeddings, overrides and
# isolates, zero-width space/joiners, BOM, soft hyphen ...); Zl/Zp: line/paragraph separators
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
# what makes links, images, HTML, entities, code and table cells ('*', '_' and '~' only make
# emphasis: left alone to keep the raw Markdown readable); ':' of '://' and '.' of 'www.'
# end GFM's autolinks; no escape ends its e-mail autolinks, a code span around '@' does
_MARKDOWN_SYNTAX = re.compile(r"[\\`\[\]<>|&]")
_AUTOLINK_START = re.compile(r"(?i):(?=//)|\bwww\.")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with control, format and line-separator characters shown as escapes
    (`\\x1b`, `\\u202e`); with `keep_newlines`, a newline stays a line break."""
    if text.isprintable():  # False for every Cc, Cf, Zl and Zp character
        return text
    return "".join(
        character
        if (keep_newlines and character == "\n")
        or unicodedata.category(character) not in _INVISIBLE
        else _escaped(character)
        for character in text
    )


def _escaped(character: str) -> str:
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def markdown_escaped(text: str) -> str:
    """`text` as Markdown that renders as this text (CommonMark and GitHub's extensions):
    no link, autolink, image, HTML, entity, code span or table cell border."""
    escaped = _MARKDOWN_SYNTAX.sub(r"\\\g<0>", text)
    escaped = _AUTOLINK_START.sub(lambda found: found[0][:-1] + "\\" + found[0][-1], escaped)
    return escaped.replace("@", "`@`")


_ITEM = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)"""
# a Python set, list or tuple literal of strings or numbers, as str() of a collection writes
# it: {'TLSv1', 'TLSv1.1'}, ['x'], ('a',); and the empty set()
_COLLECTION_REPR = re.compile(
    rf"\{{\s*{_ITEM}(?:\s*,\s*{_ITEM})*\s*\}}"
    rf"|\[\s*{_ITEM}(?:\s*,\s*{_ITEM})*\s*\]"
    rf"|\(\s*{_ITEM}(?:\s*,\s*{_ITEM})*\s*,?\s*\)"
    r"|\bset\(\)|\[\]"
)


def without_collection_reprs(text: str) -> str:
    """`text` with Python collection reprs a library wrote into it (`{'TLSv1', 'TLSv1.1'}`,
    `['x']`) as plain words: `TLSv1, TLSv1.1`, `x`; an empty one as `none`. A set's items
    are sorted (its order means nothing), a list keeps its order."""
    return _COLLECTION_REPR.sub(_plain_collection, text)


def _plain_collection(match: re.Match[str]) -> str:
    literal = match.group(0)
    if literal in ("set()", "[]"):
        return "none"
    try:
        values = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return literal
    items = [str(value) for value in values]
    return ", ".join(sorted(items) if isinstance(values, set) else items)
