"""Secrets kept in files (`*_file` config keys), so they stay out of the config itself.

Vocabulary shared with checks, alerts and dashboards: one of the few monitor modules they
may import (the import-linter contracts in pyproject.toml); it imports no other part of
monitor but monitor.bounded_files.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from monitor.bounded_files import read_limited

MAX_SECRET_BYTES = 64 * 1024


def read_secret_file(path: Path, key: str) -> SecretStr:
    """The file's text without surrounding whitespace; raises ValueError naming `key` and
    `path` when the file is not a regular file (a FIFO, a device: refused without waiting),
    is over MAX_SECRET_BYTES, cannot be read, is not UTF-8 or is empty."""
    try:
        value = read_limited(path, MAX_SECRET_BYTES).decode("utf-8").strip()
    except OSError as error:
        raise ValueError(f"{key}: cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{key}: {path} is not UTF-8 text") from None
    if not value:
        raise ValueError(f"{key}: {path} is empty")
    return SecretStr(value)
