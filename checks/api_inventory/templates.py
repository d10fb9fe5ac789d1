"""Endpoint templates inferred from logged paths: segments that look like identifiers become
`{param}`, so `/articles/my-first-post` and `/articles/42` are one endpoint,
`/articles/{param}`, and an example URL shown in evidence carries no identifier."""

from __future__ import annotations

import itertools
import re

PARAM = "{param}"

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_HEX = re.compile(r"[0-9a-f]{8,}|[0-9A-F]{8,}")
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")  # Crockford base32
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}={0,2}")  # base64 / base64url
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_.=~+-]{40,}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T[0-9:.]+Z?)?|\d{8}")
_NUMBERISH = re.compile(r"[+-]?\d+(?:[.,]\d+)*")
_EMAIL = re.compile(r"[^@/\s]+@[^@/\s]+")
_SLUG_WORD = re.compile(r"[a-z0-9]+")
_ESCAPED = re.compile(r"%[0-9A-Fa-f]{2}")


def infer_template(path: str) -> str:
    """`path` with each identifier-like segment replaced by `{param}`. Words and kebab-case
    names of one or two words (`user-preferences`) stay: those are route names."""
    if path[:1] != "/":
        return path
    return "/".join(PARAM if _is_identifier(segment) else segment for segment in path.split("/"))


def _is_identifier(segment: str) -> bool:
    if not segment:
        return False
    if segment.isdigit():
        return True
    if segment.isalpha() and segment.islower() and len(segment) < 40:
        return False  # a word: the usual route segment
    if _NUMBERISH.fullmatch(segment) or _DATE.fullmatch(segment):
        return True
    if _ESCAPED.search(segment):
        return True  # percent-encoded characters: a name or a search term, not a route
    if "@" in segment and _EMAIL.fullmatch(segment):
        return True
    if _UUID.fullmatch(segment) or _LONG_TOKEN.fullmatch(segment):
        return True
    has_digit = any(char.isdigit() for char in segment)
    if has_digit and (_HEX.fullmatch(segment) or _ULID.fullmatch(segment)):
        return True
    if _is_slug(segment, has_digit):
        return True
    return bool(_TOKEN.fullmatch(segment)) and _looks_random(segment.rstrip("="))


def _is_slug(segment: str, has_digit: bool) -> bool:
    """`my-first-post`, `order-1234`: three or more lower-case words, or words and a number."""
    words = segment.split("-")
    if len(words) < 2 or not all(_SLUG_WORD.fullmatch(word) for word in words):
        return False
    return len(words) >= 3 or has_digit


def _looks_random(token: str) -> bool:
    """Random base64 changes character class (lower, upper, digit, other) at about two of
    three positions; words, kebab-case and camelCase at fewer than one in four."""
    classes = [
        0 if char.islower() else 1 if char.isupper() else 2 if char.isdigit() else 3
        for char in token
    ]
    changes = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    digits = classes.count(2)
    if digits >= 3 and 3 not in classes and (0 in classes or 1 in classes):
        return True  # lower-case (or upper-case) alphanumerics: letters and digits mixed
    if digits == 0 and not (0 in classes and 1 in classes):
        return False
    return changes / (len(token) - 1) >= 0.4
