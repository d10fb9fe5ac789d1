"""Secret-looking values are kept only as keyed hashes, so a diff can say "changed"
without revealing either value."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re

SECRET_MARK = "<secret hmac:"  # noqa: S105 - a marker, not a password
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "key",
        "apikey",
        "credential",
        "credentials",
        "private",
        "dsn",
        "authorization",
        "cookie",
        "signature",
        "salt",
    }
)
# Keys named like these are not secrets although they contain a secret word.
_NOT_SECRET_SUFFIXES = ("_file", "_path", "_length", "_size", "_ttl", "_type", "_id", "_name")
_LAST_SEGMENT = re.compile(r"[.\[\]|]")
_URL_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@/\s]+)@")


def is_secret_key(path: str) -> bool:
    """True when the last segment of `path` names a secret (password, api_key, token ...)."""
    return _is_secret_segment(_LAST_SEGMENT.split(path.rstrip("]"))[-1].strip("\"' "))


@functools.lru_cache(maxsize=65536)
def _is_secret_segment(last: str) -> bool:
    lowered = last.lower()
    if lowered.endswith(_NOT_SECRET_SUFFIXES) or "keepalive" in lowered:
        return False
    words = {word.lower() for word in _WORDS.findall(last)}
    return bool(words & _SECRET_WORDS) or lowered in _SECRET_WORDS


def is_masked(value: str) -> bool:
    return value.startswith(SECRET_MARK) or SECRET_MARK in value


class SecretMasker:
    """Replaces secret values by `<secret hmac:…>` digests keyed with the instance key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, path: str, value: str) -> str:
        mac = hmac.new(self._key, f"{path}\0{value}".encode(), hashlib.sha256).hexdigest()
        return f"{SECRET_MARK}{mac[:32]}>"

    def mask(self, path: str, value: str) -> str:
        if is_secret_key(path) and value not in ("", "null"):
            return self.digest(path, value)
        if "://" not in value:
            return value
        return _URL_CREDENTIALS.sub(
            lambda m: m.group("head") + self.digest(path, m.group("pw")) + "@", value
        )

    def mask_all(self, flat: dict[str, str]) -> dict[str, str]:
        return {path: self.mask(path, value) for path, value in flat.items()}
