"""Gather the inventory from every source, match it against the advisory index, and read
the end-of-life cycles of the products found. A source that fails is recorded, not fatal."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from checks.http import fetch
from checks.interface import BadInput, CheckContext, CheckError, CheckMisconfigured
from checks.patch_level.advisories import AdvisoryIndex, AdvisoryIndexError, MatchResult
from checks.patch_level.advisories.online import query_osv
from checks.patch_level.eol import EolCatalogue, ReleaseCycle
from checks.patch_level.facts import (
    OperatingSystem,
    PatchRaw,
    SourceInventory,
    SourceMatch,
    SourceUndetermined,
)
from checks.patch_level.packages import UPSTREAM_VERSIONED, InstalledPackage, Undetermined
from checks.patch_level.params import InventorySource, PatchLevelParams
from checks.patch_level.sources import apk, banners, dpkg, python, rpm, sbom
from checks.patch_level.sources.os_release import UnknownDistribution, read_os_release
from monitor.model import Target

# os-release ID -> endoflife.date product slug
OS_PRODUCTS = {
    "debian": "debian",
    "ubuntu": "ubuntu",
    "alpine": "alpine",
    "rhel": "rhel",
    "centos": "centos",
    "rocky": "rocky-linux",
    "almalinux": "almalinux",
    "fedora": "fedora",
    "amzn": "amazon-linux",
    "sles": "sles",
}


def collect(target: Target, params: PatchLevelParams, context: CheckContext) -> PatchRaw:
    inventories, failures = read_inventory(target, params, context)
    matches, notes, undetermined, built = _match(inventories, params, context)
    operating_system = _operating_system(params.os_release, failures)
    eol = _eol_cycles(params.eol_data, inventories, operating_system, failures)
    return PatchRaw(
        sources=tuple(inventories),
        failures=tuple(failures),
        matches=matches,
        match_notes=notes,
        undetermined=undetermined,
        operating_system=operating_system,
        eol=eol,
        advisories_built_at=built[0] if built else None,
        advisory_sources=built[1] if built else (),
    )


def read_inventory(
    target: Target, params: PatchLevelParams, context: CheckContext
) -> tuple[list[SourceInventory], list[tuple[str, str]]]:
    """Every source's inventory, and (source id, reason) for each source that failed."""
    inventories: list[SourceInventory] = []
    failures: list[tuple[str, str]] = []
    for source in params.sources:
        try:
            inventories.append(_read(source, target, params, context))
        except UnknownDistribution as error:
            undetermined = Undetermined(str(error))
            inventories.append(SourceInventory(source.id, undetermined=(undetermined,)))
        except CheckError as error:
            failures.append((source.id, str(error)))
        except OSError as error:
            failures.append((source.id, f"{error.filename or source.id}: {error.strerror}"))
    return inventories, failures


def _read(
    source: InventorySource, target: Target, params: PatchLevelParams, context: CheckContext
) -> SourceInventory:
    os_release = source.operating_system()
    if source.dpkg_status is not None:
        return SourceInventory(source.id, dpkg.read_dpkg_status(source.dpkg_status, os_release))
    if source.rpm_list is not None:
        return SourceInventory(source.id, rpm.read_rpm_list(source.rpm_list, os_release))
    if source.rpm_query:
        timeout = context.io_timeout(params.network_timeout.total_seconds())
        packages = rpm.query_installed_rpms(timeout, os_release=os_release)
        return SourceInventory(source.id, packages)
    if source.apk_installed is not None:
        return SourceInventory(source.id, apk.read_apk_installed(source.apk_installed, os_release))
    if source.site_packages is not None:
        return SourceInventory(source.id, python.read_site_packages(source.site_packages))
    if source.requirements is not None:
        read = python.read_requirements(source.requirements)
        notes = (
            (f"{len(read.unpinned)} unpinned requirement(s) not checked",) if read.unpinned else ()
        )
        return SourceInventory(source.id, read.packages, notes=notes)
    if source.poetry_lock is not None:
        return SourceInventory(source.id, python.read_poetry_lock(source.poetry_lock))
    if source.uv_lock is not None:
        return SourceInventory(source.id, python.read_uv_lock(source.uv_lock))
    if source.sbom is not None:
        return _read_sbom(source, source.sbom, params, context)
    return _read_banners(source, target, params, context)


def _read_sbom(
    source: InventorySource, location: str, params: PatchLevelParams, context: CheckContext
) -> SourceInventory:
    if location.startswith(("https://", "http://")):
        response = fetch(
            location,
            timeout=context.io_timeout(params.network_timeout.total_seconds()),
            max_bytes=params.max_bytes,
            verify=params.verify_tls,
            egress=context.egress,
            deadline=context.deadline,
        )
        if response.status != 200:
            raise BadInput(f"answered HTTP {response.status}", subject=location)
        read = sbom.parse_sbom(response.body, location, max_bytes=params.max_bytes)
    else:
        read = sbom.read_sbom(Path(location), max_bytes=params.max_bytes)
    notes = (f"{read.skipped} component(s) without a usable purl",) if read.skipped else ()
    return SourceInventory(
        source.id,
        read.packages,
        notes=notes,
        undetermined=_unknown_distributions(read, location),
        producer=read.producer,
    )


def _unknown_distributions(read: sbom.SbomRead, location: str) -> tuple[Undetermined, ...]:
    """One Undetermined per distribution an SBOM's OS packages name but OSV does not know."""
    per_distribution: dict[str, list[str]] = {}
    for unknown in read.unknown_distribution:
        per_distribution.setdefault(unknown.distribution, []).append(unknown.purl)
    found = []
    for named, purls in per_distribution.items():
        which = (
            f"distribution {named!r}, which has no OSV advisories here"
            if named
            else ("no distribution (neither the purl nor the SBOM names one)")
        )
        found.append(
            Undetermined(
                f"{len(purls)} OS package(s) in {location} of {which}: they cannot be "
                f"judged, e.g. {purls[0]}"
            )
        )
    return tuple(found)


def _read_banners(
    source: InventorySource, target: Target, params: PatchLevelParams, context: CheckContext
) -> SourceInventory:
    url = source.banner if isinstance(source.banner, str) else target.url
    if url is None:
        raise CheckMisconfigured("a banner source needs a URL, or a target with a url")
    fetched = banners.fetch_banners(
        url,
        context.io_timeout(params.network_timeout.total_seconds()),
        verify_tls=params.verify_tls,
        egress=context.egress,
        deadline=context.deadline,
    )
    return SourceInventory(source.id, banners=fetched.banners)


def _match(
    inventories: Iterable[SourceInventory], params: PatchLevelParams, context: CheckContext
) -> tuple[
    tuple[SourceMatch, ...],
    tuple[str, ...],
    tuple[SourceUndetermined, ...],
    tuple[datetime, tuple[str, ...]] | None,
]:
    packages: dict[InstalledPackage, list[str]] = {}
    for inventory in inventories:
        for package in inventory.packages:
            packages.setdefault(package, []).append(inventory.source)
    index_path = params.advisories
    if not index_path.exists() and params.osv_api is None:
        raise CheckMisconfigured(
            f"advisory index {index_path} does not exist: build it with "
            "`apivigil advisories update --from SOURCE`"
        )
    results: list[MatchResult] = []
    built = None
    if index_path.exists():
        try:
            with AdvisoryIndex.open(index_path) as index:
                results.append(index.match(list(packages)))
                built = (index.metadata.built_at, index.metadata.sources)
        except AdvisoryIndexError as error:
            raise CheckMisconfigured(str(error)) from None
    if params.osv_api is not None:
        timeout = context.io_timeout(params.osv_api.timeout.total_seconds())
        results.append(
            query_osv(
                params.osv_api.url,
                list(packages),
                timeout,
                params.verify_tls,
                egress=context.egress,
                deadline=context.deadline,
            )
        )
    seen: set[tuple[InstalledPackage, str]] = set()
    matches: list[SourceMatch] = []
    for result in results:
        for match in result.matches:
            if (match.package, match.advisory.id) in seen:
                continue
            seen.add((match.package, match.advisory.id))
            matches.extend(SourceMatch(source, match) for source in packages[match.package])
    notes = tuple(dict.fromkeys(note for result in results for note in result.notes))
    matched = {(match.package, match.advisory.id) for match in (m.match for m in matches)}
    matched_records = {
        (match.package, record)
        for result in results
        for match in result.matches
        for record in (match.advisory.id, *match.advisory.aliases)
    }
    undetermined = [
        SourceUndetermined(source, item)
        for result in results
        for item in dict.fromkeys(result.undetermined)
        if item.package is not None
        and (item.package, item.advisory_id) not in matched_records | matched
        for source in packages[item.package]
    ]
    return tuple(matches), notes, tuple(dict.fromkeys(undetermined)), built


def _operating_system(
    os_release: Path | None, failures: list[tuple[str, str]]
) -> OperatingSystem | None:
    if os_release is None:
        return None
    try:
        release = read_os_release(os_release)
    except (CheckError, OSError) as error:
        failures.append((f"os_release:{os_release}", str(error)))
        return None
    product = OS_PRODUCTS.get(release.id)
    if product is None or not release.version_id:
        return None
    return OperatingSystem(product, release.version_id)


def _eol_cycles(
    directory: Path | None,
    inventories: Iterable[SourceInventory],
    operating_system: OperatingSystem | None,
    failures: list[tuple[str, str]],
) -> dict[str, tuple[ReleaseCycle, ...]]:
    if directory is None:
        return {}
    wanted: set[str] = set()
    if operating_system is not None:
        wanted.add(operating_system.product)
    for inventory in inventories:
        wanted.update(banner.product for banner in inventory.banners if banner.version)
        wanted.update(
            package.name.lower()
            for package in inventory.packages
            if package.ecosystem in UPSTREAM_VERSIONED
        )
    catalogue = EolCatalogue(directory)
    cycles: dict[str, tuple[ReleaseCycle, ...]] = {}
    for product in sorted(wanted):
        try:
            found = catalogue.cycles(product)
        except CheckError as error:
            failures.append((f"eol:{product}", str(error)))
            continue
        if found is not None:
            cycles[product] = found
    return cycles
