"""Opening and reading files that must be regular files, within a size limit.

A path named in the config may be (or be a symlink to) a FIFO, a device or a socket:
opening a FIFO blocks until someone writes to it, and `/dev/zero` reports a size of 0
and never ends. So the file is opened without blocking (O_NONBLOCK), the *opened*
descriptor is checked to be a regular file (symlinks to regular files are fine), and
at most limit + 1 bytes are read: `stat()` sizes are never trusted.

Vocabulary shared with checks, alerts and dashboards: one of the few monitor modules they
may import (the import-linter contracts in pyproject.toml); it imports no other part of
monitor.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


class UnsafeFile(OSError):
    """A path that is not read: `problem` (also `strerror`) says why, `filename` is the path."""

    def __init__(self, code: int, problem: str, path: Path | str) -> None:
        super().__init__(code, problem, str(path))
        self.problem = problem


class NotARegularFile(UnsafeFile):
    pass


class FileTooLarge(UnsafeFile):
    def __init__(self, path: Path | str, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than the limit of {limit} bytes", path)
        self.limit = limit


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def _refused(path: Path | str, mode: int) -> NotARegularFile:
    return NotARegularFile(errno.EINVAL, f"{_kind(mode)}, not a regular file", path)


def _mode(path: Path | str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def open_regular(path: Path | str) -> BinaryIO:
    """`path` opened for reading in binary mode, if it is (or links to) a regular file.

    Raises NotARegularFile for a FIFO, device, socket or directory (without blocking), or
    the OSError of opening it (no such file, permission denied ...), with `filename` set."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno in (errno.ENXIO, errno.EISDIR):  # a socket, a directory
            mode = _mode(path)
            if mode is not None:
                raise _refused(path, mode) from None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _refused(path, mode)
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_limited(path: Path | str, limit: int) -> bytes:
    """The content of the regular file at `path`, reading at most `limit` + 1 bytes (none
    when its size is already over `limit`).

    Raises FileTooLarge over `limit`, NotARegularFile, or the OSError of opening or
    reading, each with `filename` and a `strerror` that says the problem."""
    with open_regular(path) as handle:
        if os.fstat(handle.fileno()).st_size > limit:  # a regular file's size may be low, not high
            raise FileTooLarge(path, limit)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(path, limit)
    return data
