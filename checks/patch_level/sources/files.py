"""Bounded reads of inventory files, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

from checks.interface import BadInput

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's content; raises BadInput when it cannot be read or exceeds `max_bytes`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise BadInput(
            f"cannot read the file: {error.strerror or error}", subject=str(path)
        ) from None
    if len(data) > max_bytes:
        raise BadInput(f"larger than the limit of {max_bytes} bytes", subject=str(path))
    return data


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
