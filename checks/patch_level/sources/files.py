"""Bounded reads of inventory files, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

from checks.files import read_input_file

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's content; raises BadInput when it is not a regular file, cannot be read
    or exceeds `max_bytes`."""
    return read_input_file(path, max_bytes)


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The file as UTF-8 text.

    Undecodable bytes are replaced rather than rejected: they turn up in free-text fields
    (old package descriptions) and never in the names and versions that are read.
    """
    return read_bytes(path, max_bytes).decode("utf-8", errors="replace")


def quote_line(line: str, limit: int = 80) -> str:
    """A line shortened for an error message."""
    shown = line if len(line) <= limit else line[: limit - 3] + "..."
    return repr(shown)
