"""Secret-looking values are kept only as keyed hashes, so a diff can say "changed"
without revealing either value."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re

from checks.baseline_diff import SECRET_MARK

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# A key whose last word is one of these names a secret (`api_key`, `X-Auth-Key`, `session`);
# one of the strong ones anywhere in the key's own name does (`jwt_secret_ttl` aside).
_SECRET_WORDS = frozenset(
    {
        *("key", "keys", "private", "auth", "cookie", "session", "sessions", "sessionid"),
        *("signature", "salt", "pass", "pw"),
    }
)
_STRONG_WORDS = frozenset(
    {
        *("password", "passwd", "pwd", "passphrase", "passwords", "secret", "secrets"),
        *("token", "tokens", "apikey", "apikeys", "credential", "credentials", "dsn"),
        *("authorization", "bearer", "jwt", "jwts"),
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
# A key whose last word is one of these is about a secret, not one (`password_file`,
# `PasswordAuthentication`, `password_encryption`, `session.cookie_lifetime`).
_NOT_SECRET_LAST_WORDS = frozenset(
    {
        *("file", "path", "length", "size", "ttl", "type", "id", "name", "enabled", "timeout"),
        *("algorithm", "algorithms", "secure", "httponly", "samesite", "authentication"),
        *("encryption", "command", "cache", "caching", "tickets", "lifetime", "domain"),
        *("dialog", "clients", "methods", "mode", "level", "protocols", "ciphers", "checking"),
        *("realm", "dir", "directory", "provider", "format", "reload", "expire", "limiter"),
        *("handler", "prefix", "bits", "hash", "log", "passwords_allowed", "types", "url"),
    }
)
# Keys that name a setting about secrets, whatever their words (all lower case).
_NOT_SECRET = frozenset(
    {
        *("proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass", "memcached_pass"),
        *("server_tokens", "servertokens", "serversignature", "auth_basic", "auth_request"),
        *("auth_request_set", "permitemptypasswords", "passwordauthentication"),
        *("kbdinteractiveauthentication", "pubkeyauthentication", "hostkeyalgorithms"),
        *("password_encryption", "tls-auth-clients", "keepalive", "pubkeyacceptedalgorithms"),
        *("hostbasedauthentication", "gssapiauthentication", "challengeresponseauthentication"),
        *("permitrootlogin", "authorizedkeysfile", "authorizedkeyscommand", "sslsessioncache"),
        *("ssl_session_cache", "ssl_session_tickets", "sslsessiontickets", "stricthostkeychecking"),
    }
)
# Containers whose every member is secret (`credentials[0].user`).
_SECRET_CONTAINERS = frozenset({"credentials", "secrets", "passwords", "tokens", "api_keys"})
# A value that is a file path is where a key is kept, not the key (`ssl_certificate_key`).
_FILE_PATH = re.compile(r"^(?:/|[A-Za-z]:\\|\./|\.\./)[^\s]*$")
# Values that switch something on or off: shown under any key (`auth: off` is drift to see).
_SWITCHES = frozenset({"", "null", "none", "true", "false", "yes", "no", "on", "off"})
_LAST_SEGMENT = re.compile(r"[.\[\]|:]")
_QUOTED = re.compile(r'\[(?P<json>"(?:\\.|[^"\\])*")\]')
_PLAIN = re.compile(r'[^\[]*(?:\[(?!")[^\]]*\][^\[]*)*')
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
# redis ACL rules `>pw`, `<pw`, `#sha256`; haproxy userlist `password HASH`
_USER_PASSWORD = re.compile(
    r"(?P<name>(?:^|(?<=\s))(?:[><#!]|(?:insecure-)?password\s+))(?P<value>[^\s\]]+)"
)
# crypt(3) hashes ($apr1$, $2y$ bcrypt, $5$/$6$ SHA-crypt, $argon2id$ ...), {SHA}/{SSHA},
# PostgreSQL's md5 and SCRAM verifiers: secret by what they are, whatever their key
_PASSWORD_HASH = re.compile(
    r"^(?:\$(?:apr1|2[abxy]?|1|5|6|y|gy|7|argon2(?:id|i|d)|scrypt|pbkdf2[-\w]*)\$\S+"
    r"|\{S?SHA(?:256|512)?\}\S+|md5[0-9a-f]{32}|SCRAM-SHA-256\$\S+)$"
)
_LINE_KEY = re.compile(r"^line\[(?P<text>.*)\](?P<suffix>#\d+)?$", re.DOTALL)


def is_secret_key(path: str) -> bool:
    """True when the key's own last segment names a secret (`db.password`, `api_key`,
    `proxy_set_header Authorization`, `env AWS_SECRET_ACCESS_KEY`, redis `requirepass`),
    or it sits in a container of secrets (`credentials[0].user`). Parent blocks and file
    paths do not count: nothing under `<Directory /var/www/private>` is secret for that."""
    segments = _segments(path)
    if not segments:
        return False
    if any(segment.lower() in _SECRET_CONTAINERS for segment in segments[:-1]):
        return True
    return _is_secret_segment(segments[-1])


def last_segment(path: str) -> str:
    segments = _segments(path)
    return segments[-1] if segments else ""


def _segments(path: str) -> list[str]:
    """`a.b["c.d"][0]` -> [a, b, c.d, 0]; a directory source's `file.conf:key` -> [.., key]."""
    segments: list[str] = []
    position = 0
    while position < len(path):
        quoted = _QUOTED.match(path, position)
        if quoted:
            try:
                segments.append(str(json.loads(quoted["json"])))
            except ValueError:
                segments.append(quoted["json"].strip('"'))
            position = quoted.end()
            continue
        plain = _PLAIN.match(path, position)
        if plain is None or not plain.group():
            position += 1
            continue
        chunk = plain.group()
        if position == 0 and ":" in chunk:  # a directory source's file: not part of the key
            chunk = chunk.split(":", 1)[1]
        segments.extend(p for p in _LAST_SEGMENT.split(chunk) if p.strip("\"' "))
        position = plain.end()
    return [segment.strip("\"' ") for segment in segments]


@functools.lru_cache(maxsize=65536)
def _is_secret_segment(segment: str) -> bool:
    """A segment is a directive and its naming arguments (`stats auth`, `add_header X`):
    the last word says what it is."""
    words_of_segment = segment.split()
    name = words_of_segment[-1] if words_of_segment else segment
    if words_of_segment and words_of_segment[0].lower() in _NOT_SECRET:
        return False
    if len(words_of_segment) > 1 and words_of_segment[0].lower() == "auth_http_header":
        return True
    lowered = name.lower()
    if lowered in _NOT_SECRET or "keepalive" in lowered:
        return False
    words = [word.lower() for word in _WORDS.findall(name)]
    if words and words[-1] in _NOT_SECRET_LAST_WORDS:
        return False
    if any(part in lowered for part in _SECRET_PARTS):
        return True
    if lowered in _SECRET_WORDS or lowered in _STRONG_WORDS:
        return True
    return bool(words) and (words[-1] in _SECRET_WORDS or bool(set(words) & _STRONG_WORDS))


def _names_a_password(path: str) -> bool:
    words = {word.lower() for word in _WORDS.findall(last_segment(path))}
    return bool(words & (_STRONG_WORDS | {"pass", "pw"}))


class SecretMasker:
    """Replaces secret values by `<secret hmac:…>` digests keyed with the instance key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, path: str, value: str) -> str:
        mac = hmac.new(self._key, f"{path}\0{value}".encode(), hashlib.sha256).hexdigest()
        return f"{SECRET_MARK}{mac[:32]}>"

    def mask(self, path: str, value: str) -> str:
        if _PASSWORD_HASH.match(value):  # a hash is a secret under any key (htpasswd lines)
            return self.digest(path, value)
        if is_secret_key(path) and value.lower() not in _SWITCHES:
            if _FILE_PATH.match(value) and not _names_a_password(path):
                return value  # where the key is kept (ssl_certificate_key /etc/ssl/x.key)
            return self.digest(path, value)
        directive = last_segment(path).split(" ", 1)[0].lower()
        if directive == "user":  # redis ACL `>password`, haproxy userlist `password HASH`
            value = _USER_PASSWORD.sub(lambda m: m["name"] + self.digest(path, m["value"]), value)
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
