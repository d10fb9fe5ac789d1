"""Secrets kept in files (`*_file` config keys), so they stay out of the config itself."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr


def read_secret_file(path: Path, key: str) -> SecretStr:
    """The file's text without surrounding whitespace; raises ValueError naming `key` and
    `path` when the file cannot be read or is empty."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ValueError(f"{key}: cannot read {path}: {error.strerror}") from None
    if not value:
        raise ValueError(f"{key}: {path} is empty")
    return SecretStr(value)
