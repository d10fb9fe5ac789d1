"""Where a probe goes: a path the spec names, on the target's own origin and nowhere else.

A spec is remote content. Glued onto the target URL as text, a base path `@evil:80` makes
the target's host the userinfo of a URL to `evil`; backslashes, tabs and odd IP spellings
are other ways out. So paths are checked, percent-encoded and put under the target's
scheme, host and port, and the result is compared with the target's origin once more.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

_PATH_SAFE = "/:@!$&'()*+,;=-._~%"  # RFC 3986 pchar (plus '%': escapes are kept as written)


def path_problem(path: str) -> str | None:
    """Why `path` (a base path or an operation path of a spec) is not a path on the
    target's origin, or None when it is."""
    if not path.startswith("/"):
        return "must start with '/'"
    if path.startswith("//"):
        return "starts with '//', which names another host"
    if "\\" in path:
        return "contains a backslash"
    if any(unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") for character in path):
        return "contains a control character"
    if "#" in path or "?" in path:
        return "contains '?' or '#'"
    return None


def probe_url(target_url: str, base_path: str, path: str) -> str | None:
    """`base_path` + `path` on `target_url`'s origin (under its own path), or None when
    either is not a plain path (see `path_problem`)."""
    if (base_path and path_problem(base_path)) or path_problem(path):
        return None
    target = urlsplit(target_url)
    joined = target.path.rstrip("/") + base_path.rstrip("/") + path
    url = urlunsplit((target.scheme, target.netloc, quote(joined, safe=_PATH_SAFE), "", ""))
    origin = _origin(target_url)
    return url if origin is not None and _origin(url) == origin else None


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    return parsed.scheme, parsed.host, parsed.port
