"""What people read: remote-controlled text made harmless for terminals and documents.

Finding titles, subjects and evidence, access-log paths, certificate names and error
messages all carry text a target or a log writer chose. Written raw to a terminal, ESC
sequences recolour or rewrite the screen (CSI), plant hyperlinks (OSC 8) or set the window
title; bidi overrides (U+202E) and zero-width characters make a text read as something it
is not. `monitor.text.printable` shows every such character as a visible escape; every
human output (terminal tables and messages, Markdown and HTML reports, console
logs) goes through it. Machine formats (JSON, SARIF) keep the data and escape it their way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.errors import MarkupError
from rich.markup import escape
from rich.segment import Segment
from rich.text import Text

from monitor.text import printable


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
