"""Which installed packages an advisory affects: the OSV schema's evaluation algorithm.

A package is affected by an `affected[]` entry of its ecosystem, release and name when its
version is listed in `versions` or falls in one of the ECOSYSTEM / SEMVER ranges (GIT ranges
need the repository and are not evaluated). A version that cannot be ordered leaves only the
explicit `versions` list to decide; when that list does not settle it, the (package, advisory)
pair is undetermined, with the reason, never clean. Records of one alias group yield one
Match per package.

npm and Go names are matched as written, and also case-insensitively when the inventory's
name is all lower case: producers and purl libraries lower-case them (npm's legacy mixed-case
packages such as `Haraka`, Go module paths such as `github.com/BurntSushi/toml`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from checks.patch_level.advisories.catalogue import AdvisoryCatalogue, RecordVulnerability
from checks.patch_level.advisories.ecosystems import lookup_name, releases_match
from checks.patch_level.advisories.model import AffectedEntry, AffectedRange, MatchResult
from checks.patch_level.advisories.osv_schema import EventKind, RangeType
from checks.patch_level.advisories.versions import (
    UnorderableVersion,
    VersionKey,
    semver_key,
    version_key,
)
from checks.patch_level.packages import Ecosystem, InstalledPackage, Match, Undetermined

KeyFunction = Callable[[str], VersionKey]

# At equal versions "introduced" is walked first, so introduced X + fixed X affects nothing.
_TIE_ORDER = {EventKind.INTRODUCED: 0, EventKind.LAST_AFFECTED: 1, EventKind.FIXED: 2}
_BEGINNING = "0"  # an `introduced` of "0" sorts before every version
_UNLIMITED = "*"
_CASE_FOLDED = frozenset({Ecosystem.NPM, Ecosystem.GO})


@dataclass(frozen=True, slots=True)
class _Hit:
    record_id: str
    fixed_versions: tuple[str, ...]  # fixed events later than the installed version


def match_inventory(
    packages: Sequence[InstalledPackage], catalogue: AdvisoryCatalogue
) -> MatchResult:
    """Every (package, vulnerability) pair affected, each once, with notes on what was skipped
    and the pairs that could not be judged."""
    notes: dict[str, None] = {}  # an ordered set
    undetermined: list[Undetermined] = []
    hits_per_package: list[tuple[InstalledPackage, list[_Hit]]] = []
    folded = _folded_names(packages, catalogue)
    for package in packages:
        name = lookup_name(package)
        names = dict.fromkeys([name, *folded.get((package.ecosystem.value, name), ())])
        entries = [
            entry
            for each in names
            for entry in catalogue.affected_entries(package.ecosystem.value, each)
        ]
        hits = package_hits(package, entries, notes, undetermined) if entries else []
        if hits:
            hits_per_package.append((package, hits))
    vulnerabilities = catalogue.vulnerabilities(
        {hit.record_id for _, hits in hits_per_package for hit in hits}
    )
    matches = [
        match
        for package, hits in hits_per_package
        for match in _merge_hits(package, hits, vulnerabilities)
    ]
    return MatchResult(tuple(matches), tuple(notes), tuple(dict.fromkeys(undetermined)))


def package_hits(
    package: InstalledPackage,
    entries: Sequence[AffectedEntry],
    notes: dict[str, None],
    undetermined: list[Undetermined],
) -> list[_Hit]:
    """The entries (already selected by ecosystem and name) that affect `package`.

    An entry that neither lists the version nor has a range that could be evaluated for it
    adds an Undetermined naming the record and why.
    """
    hits = []
    for entry in entries:
        if not releases_match(entry.release, package.release):
            continue
        listed = _explicitly_listed(package.ecosystem, package.version, entry.versions)
        in_range, fixed, problems = _evaluate_ranges(package, entry, notes)
        if listed or in_range:
            hits.append(_Hit(entry.record_id, fixed))
        elif problems:
            undetermined.append(Undetermined("; ".join(problems), package, entry.record_id))
    return hits


def _folded_names(
    packages: Sequence[InstalledPackage], catalogue: AdvisoryCatalogue
) -> Mapping[tuple[str, str], tuple[str, ...]]:
    """(ecosystem, lower-case name) -> the names advisories spell it with, for npm and Go."""
    wanted: dict[str, set[str]] = {}
    for package in packages:
        name = lookup_name(package)
        if package.ecosystem in _CASE_FOLDED and name == name.lower():
            wanted.setdefault(package.ecosystem.value, set()).add(name)
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for ecosystem, names in wanted.items():
        for folded, spellings in catalogue.names_folded(ecosystem, names).items():
            found[ecosystem, folded] = spellings
    return found


def range_includes(installed: VersionKey, osv_range: AffectedRange, key_of: KeyFunction) -> bool:
    """Whether `installed` is in `osv_range`. Raises UnorderableVersion for a bad event version."""
    limits = [event.version for event in osv_range.events if event.kind is EventKind.LIMIT]
    if limits and not any(_UNLIMITED in limit or installed < key_of(limit) for limit in limits):
        return False
    timeline = sorted(
        (
            (False, None, 0, event.kind)
            if event.kind is EventKind.INTRODUCED and event.version == _BEGINNING
            else (True, key_of(event.version), _TIE_ORDER[event.kind], event.kind)
        )
        for event in osv_range.events
        if event.kind is not EventKind.LIMIT
    )
    vulnerable = False
    for _, key, _, kind in timeline:
        if kind is EventKind.INTRODUCED:
            vulnerable = vulnerable or key is None or installed >= key
        elif key is not None and (installed >= key if kind is EventKind.FIXED else installed > key):
            vulnerable = False  # fixed closes before its version, last_affected after it
    return vulnerable


def _evaluate_ranges(
    package: InstalledPackage, entry: AffectedEntry, notes: dict[str, None]
) -> tuple[bool, tuple[str, ...], list[str]]:
    """(affected by a range, later fixed versions, why ranges could not be evaluated)."""
    affected = False
    fixed: list[str] = []
    problems: list[str] = []
    for osv_range in entry.ranges:
        key_of = _key_function(package.ecosystem, osv_range.type)
        fixed_events = [e.version for e in osv_range.events if e.kind is EventKind.FIXED]
        try:
            installed = key_of(package.version)
        except UnorderableVersion as error:
            notes[f"{_describe(package)}: {error}; only explicit version lists were checked"] = None
            problems.append(f"the installed version cannot be ordered: {error}")
            fixed.extend(fixed_events)  # which of them are later is unknown: offer all
            continue
        try:
            affected = range_includes(installed, osv_range, key_of) or affected
            fixed.extend(v for v in fixed_events if key_of(v) > installed)
        except UnorderableVersion as error:
            notes[f"{entry.record_id}: a range for {_describe(package)} was skipped: {error}"] = (
                None
            )
            problems.append(f"a range of the advisory cannot be evaluated: {error}")
    return affected, tuple(fixed), problems


def _merge_hits(
    package: InstalledPackage,
    hits: Sequence[_Hit],
    vulnerabilities: Mapping[str, RecordVulnerability],
) -> list[Match]:
    groups: dict[str, list[tuple[_Hit, RecordVulnerability]]] = {}
    for hit in hits:
        vulnerability = vulnerabilities.get(hit.record_id)
        if vulnerability is not None:
            groups.setdefault(vulnerability.group.id, []).append((hit, vulnerability))
    matches = []
    for members in groups.values():
        fixed = {version for hit, _ in members for version in hit.fixed_versions}
        dates = [v.fix_published for _, v in members if v.fix_published is not None]
        matches.append(
            Match(
                package=package,
                advisory=members[0][1].group,
                fixed_versions=sorted_versions(package.ecosystem, fixed),
                fix_published=min(dates, default=None),
            )
        )
    return matches


def sorted_versions(ecosystem: Ecosystem, versions: set[str]) -> tuple[str, ...]:
    """`versions` ascending and without duplicates by the ecosystem's ordering (2.2 == 2.2.0).

    Falls back to text order when one of them cannot be ordered.
    """
    try:
        keyed = sorted((version_key(ecosystem, v), v) for v in versions)
    except UnorderableVersion:
        return tuple(sorted(versions))
    unique: list[tuple[VersionKey, str]] = []
    for key, version in keyed:
        if not unique or unique[-1][0] != key:
            unique.append((key, version))
    return tuple(version for _, version in unique)


def _key_function(ecosystem: Ecosystem, range_type: RangeType) -> KeyFunction:
    if range_type is RangeType.SEMVER:
        return semver_key
    return partial(version_key, ecosystem)


def _explicitly_listed(ecosystem: Ecosystem, version: str, listed: Sequence[str]) -> bool:
    if version in listed:
        return True
    # Go module versions carry a "v" prefix that OSV's lists omit.
    return ecosystem is Ecosystem.GO and version.removeprefix("v") in listed


def _describe(package: InstalledPackage) -> str:
    return f"{package.ecosystem.value} {package.name} {package.version}"
