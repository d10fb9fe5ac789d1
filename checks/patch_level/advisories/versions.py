"""Version ordering per ecosystem, delegated to univers' version classes.

Maven versions are first put in the form Maven's ComparableVersion treats as equal, which
univers does not: a qualifier after "." is one after "-" (`9.0.0.M26` == `9.0.0-M26`),
`ga`, `final` and `release` are the release itself (`5.2.20.RELEASE` == `5.2.20`) and `cr`
is `rc`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from univers import versions as univers_versions

from checks.patch_level.packages import Ecosystem

VersionKey = univers_versions.Version

SEMVER = "SemVer"  # the ordering of OSV `SEMVER` ranges, whatever the ecosystem
_CLASSES: dict[str, type[univers_versions.Version]] = {
    SEMVER: univers_versions.SemverVersion,
    Ecosystem.PYPI: univers_versions.PypiVersion,
    Ecosystem.NPM: univers_versions.SemverVersion,
    Ecosystem.MAVEN: univers_versions.MavenVersion,
    Ecosystem.GO: univers_versions.GolangVersion,
    Ecosystem.DEBIAN: univers_versions.DebianVersion,
    Ecosystem.UBUNTU: univers_versions.DebianVersion,
    Ecosystem.ALPINE: univers_versions.AlpineLinuxVersion,
    Ecosystem.RED_HAT: univers_versions.RpmVersion,
    Ecosystem.ROCKY: univers_versions.RpmVersion,
    Ecosystem.ALMA: univers_versions.RpmVersion,
    Ecosystem.CRATES_IO: univers_versions.SemverVersion,
    Ecosystem.RUBYGEMS: univers_versions.RubygemsVersion,
    Ecosystem.NUGET: univers_versions.NugetVersion,
    Ecosystem.PACKAGIST: univers_versions.ComposerVersion,
}
_MAVEN_DOT_QUALIFIER = re.compile(r"\.(?=[a-z])")
_MAVEN_CR = re.compile(r"(?<=[-.\d])cr(?=$|[-.\d])")
_MAVEN_RELEASE_ALIAS = re.compile(r"-(?:ga|final|release)(?=$|-)")
_LIST_SEPARATOR = re.compile(r"[\s,;|]")
_SEMVER_LIKE = frozenset({univers_versions.SemverVersion, univers_versions.GolangVersion})
_CACHE_SIZE = 50_000  # distinct (ordering, version) pairs; bounds a daemon's memory


class UnorderableVersion(Exception):
    """A version string that the ecosystem's ordering cannot place."""

    def __init__(self, ecosystem: str, version: str, problem: str) -> None:
        super().__init__(ecosystem, version, problem)
        self.ecosystem = ecosystem
        self.version = version
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.ecosystem} version {self.version!r} cannot be ordered: {self.problem}"


def version_key(ecosystem: Ecosystem, version: str) -> VersionKey:
    """An orderable value for `version` under `ecosystem`'s rules.

    Raises UnorderableVersion when the string is not a version of that ecosystem.
    """
    return _parse(ecosystem.value, version)


def semver_key(version: str) -> VersionKey:
    """An orderable value under SemVer 2.0 (OSV `SEMVER` ranges); a leading "v" is accepted.

    Raises UnorderableVersion when the string is not a semantic version.
    """
    return _parse(SEMVER, version)


def maven_canonical(version: str) -> str:
    """`version` spelled so that univers orders it as Maven's ComparableVersion does."""
    text = _MAVEN_DOT_QUALIFIER.sub("-", version.strip().lower())
    text = _MAVEN_CR.sub("rc", text)
    return _MAVEN_RELEASE_ALIAS.sub("", text)


def compare(ecosystem: Ecosystem, left: str, right: str) -> int:
    """-1, 0 or 1 as `left` sorts before, equal to or after `right`.

    Raises UnorderableVersion when either string cannot be ordered.
    """
    left_key, right_key = version_key(ecosystem, left), version_key(ecosystem, right)
    return (left_key > right_key) - (left_key < right_key)


@lru_cache(maxsize=_CACHE_SIZE)
def _parse(ordering: str, version: str) -> VersionKey:
    cls = _CLASSES[ordering]
    text = version.strip()
    if cls in _SEMVER_LIKE:
        # Go module versions carry a "v" that OSV omits; SemVer ignores build metadata
        # ("+incompatible", "+build.5") when ordering.
        text = text.removeprefix("v").partition("+")[0]
    elif cls is univers_versions.MavenVersion:
        text = maven_canonical(text)
    if not text:
        raise UnorderableVersion(ordering, version, "empty version")
    if _LIST_SEPARATOR.search(text):
        # univers reads "8.0.3, 7.0.7" as 8.0.3; no ecosystem's versions hold these
        raise UnorderableVersion(ordering, version, "a list of versions, not one version")
    try:
        return cls(text)
    except Exception as error:  # univers' parsers raise ValueError, NuGet's a bare Exception
        raise UnorderableVersion(ordering, version, str(error) or type(error).__name__) from None
