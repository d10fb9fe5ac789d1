"""Products and versions that HTTP response headers disclose (`Server`, `X-Powered-By`, ...).

Banners are weak evidence: anyone can write anything in them, and proxies rewrite them. The
parser is forgiving and never raises; a header it cannot read yields no product.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from checks.egress import EgressPolicy
from checks.http import fetch
from checks.patch_level.packages import BannerProduct

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
MAX_REDIRECTS = 3

# lowercased product token -> endoflife.date product slug; unknown tokens stay lowercased
_SLUGS = {
    "apache": "apache-http-server",
    "httpd": "apache-http-server",
    "microsoft-iis": "iis",
    "cpython": "python",
    "node.js": "nodejs",
    "node": "nodejs",
    "apache-tomcat": "tomcat",
    "tomcat": "tomcat",
    "jetty": "jetty",
}
# header (lowercased) -> product it names when its value is a bare version
_VERSION_HEADERS = {
    "x-aspnet-version": "dotnetfx",  # the CLR version, e.g. 4.0.30319 for every .NET 4.x
    "x-aspnetmvc-version": "aspnet-mvc",
}
_PRODUCT_LIST_HEADERS = frozenset({"server", "x-powered-by"})
_GENERATOR_HEADER = "x-generator"
# a product token, optionally /version, or Jetty's Name(version) form; or a (comment)
_TOKEN = re.compile(r"\([^)]*\)|([^\s/(),;]+)(?:/([^\s(),;]+)|\(([^)\s]+)\))?")
_VERSION = re.compile(r"\d[\w.+~-]*")


@dataclass(frozen=True, slots=True)
class FetchedBanners:
    """What one GET disclosed: the parsed products and every header as received."""

    url: str  # the URL finally answered, after redirects
    status_code: int
    banners: tuple[BannerProduct, ...]
    headers: tuple[tuple[str, str], ...]


def parse_banner(header: str, value: str) -> tuple[BannerProduct, ...]:
    """The products one header names; empty for a header that names none."""
    key = header.lower()
    raw_value = value.strip()
    if key in _VERSION_HEADERS:
        version = raw_value if _VERSION.fullmatch(raw_value) else None
        return (BannerProduct(_VERSION_HEADERS[key], version, header, raw_value),)
    if key == _GENERATOR_HEADER:
        return _generator(header, raw_value)
    if key not in _PRODUCT_LIST_HEADERS:
        return ()
    products: list[BannerProduct] = []
    for match in _TOKEN.finditer(raw_value):
        name, slash_version, parenthesised_version = match.groups()
        if name is None or _VERSION.fullmatch(name):
            continue  # a (comment) such as "(Ubuntu)", or a stray number
        version = slash_version or parenthesised_version
        products.append(BannerProduct(_slug(name), version, header, raw_value))
    return tuple(products)


def parse_banners(headers: Iterable[tuple[str, str]]) -> tuple[BannerProduct, ...]:
    """The products every header names, in header order; header names are case-insensitive."""
    return tuple(product for name, value in headers for product in parse_banner(name, value))


def fetch_banners(
    url: str,
    timeout: float,
    *,
    egress: EgressPolicy,
    verify_tls: bool = True,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    deadline: float | None = None,
) -> FetchedBanners:
    """GET `url` and parse the response headers; no body is read, redirects' included.

    Follows at most MAX_REDIRECTS redirects and reads the last response's headers, whatever
    its status. Raises TargetUnreachable naming the URL when no response arrives (connection,
    TLS, timeout, `deadline` passed, too many redirects) and BadInput when the headers exceed
    `max_header_bytes`.
    """
    response = fetch(
        url,
        timeout=timeout,
        max_bytes=0,
        max_redirects=MAX_REDIRECTS,
        verify=verify_tls,
        read_body=False,
        max_header_bytes=max_header_bytes,
        egress=egress,
        deadline=deadline,
    )
    return FetchedBanners(
        response.url, response.status, parse_banners(response.headers), response.headers
    )


def _generator(header: str, raw_value: str) -> tuple[BannerProduct, ...]:
    """`Drupal 10 (https://www.drupal.org)`, `WordPress 6.4.2` or `Hugo/0.120.0`."""
    words = raw_value.split()
    if not words:
        return ()
    name, _, version = words[0].partition("/")
    if not version and len(words) > 1 and _VERSION.fullmatch(words[1]):
        version = words[1]
    return (BannerProduct(_slug(name), version or None, header, raw_value),)


def _slug(name: str) -> str:
    lowered = name.lower()
    return _SLUGS.get(lowered, lowered)
