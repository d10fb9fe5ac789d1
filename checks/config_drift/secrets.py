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
        "passwords",
        "pw",
        "pass",
        "secret",
        "secrets",
        "token",
        "tokens",
        "key",
        "keys",
        "apikey",
        "apikeys",
        "credential",
        "credentials",
        "private",
        "dsn",
        "authorization",
        "cookie",
        "signature",
        "salt",
        "auth",
        "bearer",
        "jwt",
        "jwts",
        "session",
        "sessions",
        "sessionid",
    }
)
# Substrings that make any key secret (requirepass, masterauth, PGPASSWORD, bindpw ...).
_SECRET_PARTS = (
    "password",
    "passwd",
    "secret",
    "credential",
    "apikey",
    "api_key",
    "requirepass",
    "masterauth",
    "bindpw",
    "privatekey",
    "private_key",
    "access_key",
    "accesskey",
)
# Keys named like these are not secrets although they contain a secret word.
_NOT_SECRET_SUFFIXES = (
    *("_file", "_path", "_length", "_size", "_ttl", "_type", "_id", "_name"),
    *("_enabled", "_timeout", "_algorithm", "_algorithms", "_secure", "_httponly", "_samesite"),
)
# Values that switch something on or off: shown under any key (`auth: off` is drift to see).
_SWITCHES = frozenset({"", "null", "none", "true", "false", "yes", "no", "on", "off"})
# Directives that merely contain a secret word (nginx proxy_pass is an upstream URL).
_NOT_SECRET = frozenset(
    {"proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass", "server_tokens"}
)
_LAST_SEGMENT = re.compile(r"[.\[\]|]")
# scheme://user:password@host — the password runs to the last "@" (it may hold "@" or "/")
_URL_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>\S*)@")
# NAME=value and name: value inside a value (environment lists, connection strings, a
# command line); an Authorization scheme (Bearer, Basic ...) stays, its credential not
_INLINE_SECRET = re.compile(
    r"(?i)(?P<name>\b[\w.-]*(?:pass(?:word|wd)?|secret|token|api[_-]?key|pwd|credential"
    r"|auth(?![a-z])|authorization|bearer|jwt|session|cookie|private[_-]?key)"
    r"[\w.-]*[\"']?\s*[=:]\s*[\"']?(?:(?:bearer|basic|digest|negotiate|token)\s+)?)"
    r"(?P<value>(?!<secret hmac:)[^\s,;&\]\)'\"]+)"
)
# a credential after its scheme without a name: `-H "Bearer eyJ..."`
_BEARER = re.compile(r"(?i)(?P<name>\bbearer\s+)(?P<value>(?!<secret hmac:)[^\s,;'\"]+)")
# `requirepass foobared`, `set PGPASSWORD x`: a line whose first or second word names a
# secret that the rest of the line is
_FIRST_WORD = re.compile(r"^(?P<name>(?P<word>[\w.-]+)\s+)(?P<value>\S.*)$", re.DOTALL)
_SECOND_WORD = re.compile(r"^(?P<name>[\w-]+\s+(?P<word>[\w.-]+)\s+)(?P<value>\S.*)$", re.DOTALL)
_LINE_KEY = re.compile(r"^line\[(?P<text>.*)\](?P<suffix>#\d+)?$", re.DOTALL)


def is_secret_key(path: str) -> bool:
    """True when a segment of `path` names a secret (password, api_key, token ...):
    `credentials[0].user` is as secret as `password`."""
    return any(
        _is_secret_segment(segment.strip("\"' "))
        for segment in _LAST_SEGMENT.split(path)
        if segment.strip("\"' ")
    )


@functools.lru_cache(maxsize=65536)
def _is_secret_segment(last: str) -> bool:
    lowered = last.lower()
    if lowered.endswith(_NOT_SECRET_SUFFIXES) or "keepalive" in lowered:
        return False
    if lowered.split(" ")[0] in _NOT_SECRET:
        return False
    if any(part in lowered for part in _SECRET_PARTS):
        return True
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
        if is_secret_key(path) and value.lower() not in _SWITCHES:
            return self.digest(path, value)
        return self._mask_inside(path, value)

    def mask_key(self, path: str) -> str:
        """`path` with the secrets it holds masked: a text line that is not `key = value`
        is keyed by its own text (`line[export DB_PASSWORD=...]`), and a key of a
        structured file may be any text. Stable: the same secret masks the same way."""
        line = _LINE_KEY.match(path)
        if line is None:
            return self._mask_inside("key", path)
        text = line["text"]
        for pattern in (_FIRST_WORD, _SECOND_WORD):
            directive = pattern.match(text)
            if directive and is_secret_key(directive["word"]):
                text = directive["name"] + self.digest("key", directive["value"])
                break
        return f"line[{self._mask_inside('key', text)}]{line['suffix'] or ''}"

    def _mask_inside(self, path: str, value: str) -> str:
        """Secrets inside a text: URL passwords, `NAME=value`, `Bearer credential`."""
        if "://" in value:
            value = _URL_CREDENTIALS.sub(
                lambda m: m.group("head") + self.digest(path, m.group("pw")) + "@", value
            )
        for pattern in (_INLINE_SECRET, _BEARER):
            value = pattern.sub(lambda m: self._masked_match(path, m), value)
        return value

    def _masked_match(self, path: str, match: re.Match[str]) -> str:
        secret = match.group("value")
        if secret.lower() in _SWITCHES:
            return match[0]
        return match.group("name") + self.digest(path, secret)

    def mask_all(self, flat: dict[str, str]) -> dict[str, str]:
        return {self.mask_key(path): self.mask(path, value) for path, value in flat.items()}
