"""Products and versions that HTTP response headers disclose (`Server`, `X-Powered-By`, ...).

Banners are weak evidence: anyone can write anything in them, and proxies rewrite them. The
parser is forgiving and never raises; a header it cannot read yields no product.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from checks.interface import BadInput, TargetUnreachable
from checks.patch_level.packages import BannerProduct
from monitor import __version__

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
MAX_REDIRECTS = 3
USER_AGENT = f"apivigil/{__version__} (patch level)"

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
    verify_tls: bool = True,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    transport: httpx.BaseTransport | None = None,
) -> FetchedBanners:
    """GET `url` and parse the response headers; no body is read, redirects' included.

    Follows at most MAX_REDIRECTS redirects and reads the last response's headers, whatever
    its status. Raises TargetUnreachable naming the URL when no response arrives (connection,
    TLS, timeout, too many redirects) and BadInput when the headers exceed `max_header_bytes`.
    """
    try:
        with httpx.Client(
            verify=verify_tls,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        ) as client:
            return _fetch(client, url, max_header_bytes)
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise TargetUnreachable(f"GET failed: {reason}", subject=url) from None
    except httpx.InvalidURL as error:
        raise TargetUnreachable(f"not a URL to GET: {error}", subject=url) from None


def _fetch(client: httpx.Client, url: str, max_header_bytes: int) -> FetchedBanners:
    # httpx reads a redirect's body when it follows redirects itself, so follow them here
    request = client.build_request("GET", url)
    for _ in range(MAX_REDIRECTS + 1):
        response = client.send(request, stream=True)
        response.close()
        if response.next_request is None:
            break
        request = response.next_request
    else:
        raise TargetUnreachable(f"more than {MAX_REDIRECTS} redirects", subject=url)
    raw_headers = tuple(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers.raw
    )
    size = sum(len(name) + len(value) + 4 for name, value in raw_headers)
    if size > max_header_bytes:
        raise BadInput(
            f"response headers of {size} bytes exceed the limit of {max_header_bytes}",
            subject=url,
        )
    return FetchedBanners(
        str(response.url), response.status_code, parse_banners(raw_headers), raw_headers
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
