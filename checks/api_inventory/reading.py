"""Read an OpenAPI spec from a file or a URL into an `ApiInventory`, within limits."""

from __future__ import annotations

from pathlib import Path

from checks.egress import EgressPolicy
from checks.interface import BadInput
from checks.openapi.inventory import ApiInventory
from checks.openapi.loading import LoadLimits, fetch_spec, load_document, read_spec_file
from checks.openapi.model import build_inventory
from checks.openapi.refs import RefResolver, RemoteFetcher
from monitor.clock import Clock


def read_inventory_file(
    path: Path,
    limits: LoadLimits | None = None,
    allow_remote_refs: bool = False,
    *,
    clock: Clock | None = None,
) -> ApiInventory:
    """The inventory of the spec in `path`; other files it names must be in its directory.
    A file has no origin, so remote `$ref`s are refused even when `allow_remote_refs`."""
    limits = limits or LoadLimits()
    location = path.resolve()
    data = read_spec_file(location, limits.max_bytes)
    document = load_document(data, str(path), limits)
    fetcher = _no_origin if allow_remote_refs else None
    resolver = RefResolver(
        document,
        str(path),
        str(location),
        limits=limits,
        fetch_remote=fetcher,
        clock=clock,
        root_bytes=len(data),
    )
    return build_inventory(document, str(path), resolver=resolver)


def read_inventory_url(
    url: str,
    *,
    egress: EgressPolicy,
    timeout: float = 30.0,
    limits: LoadLimits | None = None,
    auth_header: str | None = None,
    verify: bool | str = True,
    allow_remote_refs: bool = False,
    clock: Clock | None = None,
    deadline: float | None = None,
) -> ApiInventory:
    """The inventory of the spec at `url`. With `allow_remote_refs`, `$ref`s may name
    other documents on the same origin (fetched with the same Authorization header, no
    redirects followed); anything else is refused. Every request passes `egress` and ends
    by `deadline` (a `time.monotonic()` value), as in `checks.http.fetch`."""
    limits = limits or LoadLimits()
    response = fetch_spec(
        url, timeout, limits.max_bytes, auth_header, verify, egress=egress, deadline=deadline
    )
    document = load_document(response.body, response.url, limits)

    resolver = RefResolver(
        document,
        url,
        response.url,
        limits=limits,
        fetch_remote=_ref_fetcher(timeout, limits.max_bytes, auth_header, verify, egress, deadline)
        if allow_remote_refs
        else None,
        clock=clock,
        root_bytes=len(response.body),
    )
    return build_inventory(document, url, resolver=resolver)


def _no_origin(url: str, _remaining: float) -> bytes:
    """The fetcher of a spec file's resolver: it refuses every remote `$ref` (no URL is on a
    file's origin) before asking for it, so this never runs."""
    raise BadInput("a spec file has no origin to fetch $refs from", subject=url)


def _ref_fetcher(
    timeout: float,
    max_bytes: int,
    auth_header: str | None,
    verify: bool | str,
    egress: EgressPolicy,
    deadline: float | None,
) -> RemoteFetcher:
    def fetch_ref(url: str, remaining: float) -> bytes:
        # No redirects: a $ref must stay on the spec's origin, and so must the auth header.
        response = fetch_spec(
            url,
            min(timeout, remaining),
            max_bytes,
            auth_header,
            verify,
            egress=egress,
            max_redirects=0,
            derived=True,
            deadline=deadline,
        )
        return response.body

    return fetch_ref
