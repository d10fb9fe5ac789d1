"""What people read: remote-controlled text made harmless for terminals and documents.

Finding titles, subjects and evidence, access-log paths, certificate names and error
messages all carry text a target or a log writer chose. Written raw to a terminal, ESC
sequences recolour or rewrite the screen (CSI), plant hyperlinks (OSC 8) or set the window
title; bidi overrides (U+202E) and zero-width characters make a text read as something it
is not. `printable` shows every such character as a visible escape (`\\x1b`, `\\u202e`);
every human output (terminal tables and messages, Markdown and HTML reports, console
logs) goes through it. Machine formats (JSON, SARIF) keep the data and escape it their way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.errors import MarkupError
from rich.markup import escape
from rich.segment import Segment
from rich.text import Text

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


def cell(value: object) -> Text:
    """A table cell or message part showing `value` as it is: no control characters and
    no rich markup (a title like `[link=http://evil]x[/]` stays text)."""
    return Text(printable(str(value)))


def markup_safe(value: object) -> str:
    """`value` for a rich markup string: printable, with its `[` escaped."""
    return escape(printable(str(value)))


class HumanConsole(Console):
    """A rich console for people: every string (messages, table cells) is made printable
    before rendering, and nothing it prints is a hyperlink (apivigil makes none, so any is
    markup that came with the data; markup that does not parse is shown as text). The last
    line of defence for text that reached `print` without `cell`."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        shown = printable(text, keep_newlines=True)
        try:
            return super().render_str(shown, **kwargs)
        except MarkupError:  # a `[/x]` that came with the data: show the text as it is
            return super().render_str(shown, **{**kwargs, "markup": False})

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            style = segment.style
            if style is not None and style.link:
                yield Segment(segment.text, style.update_link(None), segment.control)
            else:
                yield segment
