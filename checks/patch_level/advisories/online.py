"""The OSV API (`/v1/querybatch`, then `/v1/vulns/{id}`), for installations that allow it.

The offline index stays the default; this adds advisories newer than the last index build.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote

from checks.egress import EgressPolicy
from checks.http import fetch, post_json
from checks.interface import BadInput
from checks.patch_level.advisories.catalogue import MemoryCatalogue
from checks.patch_level.advisories.ecosystems import lookup_name
from checks.patch_level.advisories.matching import match_inventory
from checks.patch_level.advisories.model import MatchResult
from checks.patch_level.advisories.osv_schema import OsvFormatError, OsvRecord, parse_record
from checks.patch_level.packages import InstalledPackage

BATCH_SIZE = 1000  # the API's limit on queries per batch
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def query_osv(
    base_url: str,
    packages: Sequence[InstalledPackage],
    timeout: float,
    verify: bool = True,
    *,
    egress: EgressPolicy,
    deadline: float | None = None,
) -> MatchResult:
    """Ask the OSV API which advisories affect `packages`, fetch them, and match locally
    (so version ordering and alias merging are the same as with the offline index). Every
    request ends by `deadline` (a `time.monotonic()` value), as in `checks.http.fetch`."""
    base = base_url.rstrip("/")
    ids: set[str] = set()
    for start in range(0, len(packages), BATCH_SIZE):
        ids.update(
            _batch_ids(base, packages[start : start + BATCH_SIZE], timeout, verify, deadline)
        )
    records: list[OsvRecord] = []
    for vulnerability_id in sorted(ids):
        url = f"{base}/v1/vulns/{quote(vulnerability_id, safe='')}"
        response = fetch(
            url,
            timeout=timeout,
            max_bytes=MAX_RESPONSE_BYTES,
            verify=verify,
            egress=egress,
            deadline=deadline,
        )
        if response.status != 200:
            raise BadInput(f"answered HTTP {response.status}", subject=url)
        try:
            records.append(parse_record(response.body, url))
        except OsvFormatError as error:
            raise BadInput(str(error), subject=url) from None
    return match_inventory(packages, MemoryCatalogue.from_records(records))


def _batch_ids(
    base: str,
    packages: Sequence[InstalledPackage],
    timeout: float,
    verify: bool,
    deadline: float | None,
) -> set[str]:
    url = f"{base}/v1/querybatch"
    queries = [
        {
            "package": {"name": lookup_name(package), "ecosystem": _ecosystem(package)},
            "version": package.version,
        }
        for package in packages
    ]
    response = post_json(
        url,
        {"queries": queries},
        timeout=timeout,
        max_bytes=MAX_RESPONSE_BYTES,
        verify=verify,
        deadline=deadline,
    )
    if response.status != 200:
        raise BadInput(f"answered HTTP {response.status}", subject=url)
    try:
        results = json.loads(response.body)["results"]
        return {
            vulnerability["id"]
            for result in results
            for vulnerability in (result or {}).get("vulns", [])
        }
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise BadInput(f"unexpected querybatch answer: {error!r}", subject=url) from None


def _ecosystem(package: InstalledPackage) -> str:
    if package.release:
        return f"{package.ecosystem.value}:{package.release}"
    return package.ecosystem.value
