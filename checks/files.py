"""Reading a file a check was pointed at: a regular file (symlinks to one are fine), at
most a limit of bytes, and errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

from checks.interface import BadInput, CheckMisconfigured
from monitor.bounded_files import UnsafeFile, read_limited
from monitor.secret_files import read_secret_file


def read_input_file(path: Path, max_bytes: int) -> bytes:
    """The file's content. Raises BadInput naming `path` when it is not a regular file (a
    FIFO, a device, a socket: refused without blocking), is over `max_bytes` (at most
    `max_bytes` + 1 bytes are read) or cannot be read."""
    try:
        return read_limited(path, max_bytes)
    except UnsafeFile as error:
        raise BadInput(error.problem, subject=str(path)) from None
    except OSError as error:
        raise BadInput(
            f"cannot read the file: {error.strerror or error}", subject=str(path)
        ) from None


def read_secret_input(path: Path, key: str) -> str:
    """The secret kept in `path` (config key `key`), as `monitor.secret_files` reads it;
    CheckMisconfigured naming both when it cannot be used."""
    try:
        return read_secret_file(path, key).get_secret_value()
    except ValueError as error:
        raise CheckMisconfigured(str(error)) from None
