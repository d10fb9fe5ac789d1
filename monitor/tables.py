"""Tables that never cut what people look things up by.

Key columns (rule ids, targets, subjects) are never shortened with "…": they get the width of
their longest value when it fits, and fold onto more lines when it does not. When the console
(or a pipe's 80 columns) is too narrow, low-value columns are left out first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

_PADDING = 3  # a column's borders and padding, in cells
_NARROWEST = 6
_KEY_FLOOR = 16
_OTHER_CAP = 12  # a column that is not a key column, when the table must be squeezed


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    key: bool = False  # looked things up by: as wide as its longest value when that fits
    drop: int = 0  # 0: always shown; when too narrow, the highest `drop` goes first
    # when dropped, its text goes under this (shown) column's, dimmed: a title dropped at 80
    # columns still says under the subject what the finding is about
    fold_into: str | None = None


def fitted_table(
    width: int,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Text | str]],
    title: str | None = None,
) -> Table:
    """A table of `rows` (one value per column) for a console `width` cells wide."""
    texts = [[v if isinstance(v, Text) else Text.from_markup(v) for v in row] for row in rows]
    longest = [
        max([len(c.header), *(_longest_line(row[i]) for row in texts)])
        for i, c in enumerate(columns)
    ]
    minimum = [min(longest[i], _NARROWEST) for i in range(len(columns))]
    shown = list(range(len(columns)))
    keys = [i for i, c in enumerate(columns) if c.key]
    droppable = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    for index in droppable:  # low-value columns go first, while the key columns do not fit
        if _needed(shown, minimum, longest, keys) <= width:
            break
        shown.remove(index)
    fixed: dict[int, int] = {}
    if 1 + sum(longest[i] + _PADDING for i in shown) > width:
        # too narrow for every value on one line: fixed widths that add up to `width`; the key
        # columns share what the others leave, the shortest whole first as long as the rest
        # keep _KEY_FLOOR cells each; whatever does not fit folds onto more lines
        for i in shown:
            if i not in keys:
                fixed[i] = min(longest[i], _OTHER_CAP)
        room = width - 1 - sum(fixed[i] + _PADDING for i in fixed) - _PADDING * len(keys)
        ordered = [i for i in sorted(keys, key=lambda i: longest[i]) if i in shown]
        for position, i in enumerate(ordered):
            others = len(ordered) - position - 1
            fixed[i] = max(_NARROWEST, min(longest[i], room - others * _KEY_FLOOR))
            room -= fixed[i]
    texts = _folded(columns, shown, texts)
    table = Table(title=title)
    for i in shown:
        table.add_column(columns[i].header, overflow="fold", width=fixed.get(i))
    for row in texts:
        table.add_row(*(row[i] for i in shown))
    return table


def _folded(
    columns: Sequence[Column], shown: list[int], texts: list[list[Text]]
) -> list[list[Text]]:
    headers = [c.header for c in columns]
    moves = [
        (i, headers.index(c.fold_into))
        for i, c in enumerate(columns)
        if i not in shown and c.fold_into in headers and headers.index(c.fold_into) in shown
    ]
    if not moves:
        return texts
    folded = []
    for texts_of_row in texts:
        row = [text.copy() for text in texts_of_row]
        for source, into in moves:
            if row[source].plain:
                dimmed = row[source].copy()
                dimmed.stylize("dim")
                row[into].append("\n")
                row[into].append_text(dimmed)
        folded.append(row)
    return folded


def _needed(shown: list[int], minimum: list[int], longest: list[int], keys: list[int]) -> int:
    return 1 + sum((longest[i] if i in keys else minimum[i]) + _PADDING for i in shown)


def _longest_line(text: Text) -> int:
    return max((len(line) for line in text.plain.splitlines()), default=0)
