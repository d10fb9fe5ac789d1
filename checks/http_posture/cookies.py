"""A small Set-Cookie parser over raw header lines (RFC 6265bis), keeping every attribute as
sent: SameSite typos and prefixes must stay visible, which cookie jars normalise away."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

SAMESITE_VALUES = frozenset({"strict", "lax", "none"})


@dataclass(frozen=True, slots=True)
class SetCookie:
    name: str
    attributes: tuple[tuple[str, str | None], ...]  # lower-cased name, raw value (None: flag)
    raw: str

    def has(self, attribute: str) -> bool:
        return any(name == attribute for name, _ in self.attributes)

    def value(self, attribute: str) -> str | None:
        """The last value of `attribute` (the one a user agent applies), or None."""
        found = [value for name, value in self.attributes if name == attribute]
        return found[-1] if found else None

    @property
    def secure(self) -> bool:
        return self.has("secure")

    @property
    def http_only(self) -> bool:
        return self.has("httponly")

    @property
    def same_site(self) -> str | None:
        """SameSite as a jar keeps it: strict, lax, none, or None (absent or unknown value)."""
        if not self.has("samesite"):
            return None
        value = (self.value("samesite") or "").strip().lower()
        return value if value in SAMESITE_VALUES else None

    @property
    def same_site_invalid(self) -> bool:
        """A SameSite attribute without a value or with one other than strict/lax/none."""
        return self.has("samesite") and (
            (self.value("samesite") or "").strip().lower() not in SAMESITE_VALUES
        )

    def deletes(self, now: datetime) -> bool:
        """The header removes the cookie (Max-Age <= 0 or Expires in the past): a logout's
        or a cleanup's `name=; Max-Age=0` carries nothing to protect."""
        max_age = (self.value("max-age") or "").strip()
        if max_age.lstrip("-").isdigit():
            return int(max_age) <= 0
        expires = self.value("expires")
        if not expires:
            return False
        try:
            when = parsedate_to_datetime(expires)
        except (TypeError, ValueError, IndexError):
            return False
        return when.tzinfo is not None and when <= now

    def prefix_violation(self) -> str | None:
        """Why the cookie breaks its `__Secure-`/`__Host-` name prefix, or None."""
        if self.name.startswith("__Secure-") and not self.secure:
            return "a __Secure- cookie without Secure"
        if self.name.startswith("__Host-"):
            if not self.secure:
                return "a __Host- cookie without Secure"
            if self.has("domain"):
                return "a __Host- cookie with a Domain attribute"
            if (self.value("path") or "") != "/":
                return "a __Host- cookie whose Path is not /"
        return None


def parse_set_cookie(raw: str) -> SetCookie | None:
    """One Set-Cookie header value, or None when it names no cookie."""
    pair, *attributes = raw.split(";")
    name, separator, _value = pair.partition("=")
    name = name.strip() if separator else ""
    if not name:
        return None
    parsed: list[tuple[str, str | None]] = []
    for attribute in attributes:
        key, equals, value = attribute.strip().partition("=")
        if key.strip():
            parsed.append((key.strip().lower(), value.strip() if equals else None))
    return SetCookie(name, tuple(parsed), raw)


def session_like(name: str, markers: tuple[str, ...]) -> bool:
    lowered = name.lower()
    return any(marker.lower() in lowered for marker in markers)
