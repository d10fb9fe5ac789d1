"""Where the configured credentials may go: never in clear text over a network."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def in_clear(url: str) -> bool:
    """Whether a request to `url` would carry credentials unencrypted over a network: plain
    http to anything but a loopback host (traffic that never leaves the machine, which W3C
    Secure Contexts §3.1 counts as potentially trustworthy too)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
