"""How OSV names ecosystems, releases and packages, and when two of them are the same.

Release rules (OSV writes `Debian:12`, `Alpine:v3.19`, `Ubuntu:22.04:LTS`,
`Ubuntu:Pro:18.04:LTS`, `Red Hat:enterprise_linux:9::appstream`): an advisory without a
release applies to every release; a package whose release is unknown is matched by advisories
of every release, because reporting a vulnerability that may not apply is safer than hiding
one that does. Otherwise the package's release must equal one part of the advisory's release
after normalising both (case, a leading "v", and the `LTS` / `Pro` qualifiers dropped).
"""

from __future__ import annotations

from packaging.utils import canonicalize_name

from checks.patch_level.packages import Ecosystem, InstalledPackage

_BY_NAME = {ecosystem.value: ecosystem for ecosystem in Ecosystem}
_CASE_INSENSITIVE = frozenset({Ecosystem.NUGET, Ecosystem.PACKAGIST, Ecosystem.CRATES_IO})
# Advisories of these ecosystems name the source package (the OSV schema's ecosystem table).
_SOURCE_PACKAGE_ECOSYSTEMS = frozenset({Ecosystem.DEBIAN, Ecosystem.UBUNTU, Ecosystem.ALPINE})
_RELEASE_QUALIFIERS = frozenset({"lts", "pro"})


def split_ecosystem(value: str) -> tuple[str, str | None]:
    """("Debian", "12") for "Debian:12"; ("PyPI", None) for "PyPI"."""
    base, separator, release = value.partition(":")
    return base, (release if separator and release else None)


def known_ecosystem(base: str) -> Ecosystem | None:
    """The Ecosystem for an OSV base ecosystem name, or None when apivigil has no inventory."""
    return _BY_NAME.get(base)


def normalise_name(ecosystem: str, name: str) -> str:
    """The form under which a package name is stored and looked up.

    PyPI names follow PEP 503; crates.io, NuGet and Packagist compare case-insensitively
    (crates.io also treats "-" and "_" alike); everything else compares as written.
    """
    known = known_ecosystem(ecosystem)
    if known is Ecosystem.PYPI:
        return str(canonicalize_name(name))
    if known is Ecosystem.CRATES_IO:
        return name.lower().replace("_", "-")
    if known in _CASE_INSENSITIVE:
        return name.lower()
    return name


def lookup_name(package: InstalledPackage) -> str:
    """The normalised name advisories use for `package` (its source package for Debian/Ubuntu)."""
    if package.ecosystem in _SOURCE_PACKAGE_ECOSYSTEMS and package.source_name:
        return normalise_name(package.ecosystem.value, package.source_name)
    return normalise_name(package.ecosystem.value, package.name)


def releases_match(advisory_release: str | None, package_release: str | None) -> bool:
    """Whether an advisory scoped to `advisory_release` applies to a package of that release."""
    if advisory_release is None or package_release is None:
        return True
    wanted = _normalise_release(package_release)
    return not wanted or wanted in {
        _normalise_release(part) for part in advisory_release.split(":")
    }


def _normalise_release(release: str) -> str:
    text = release.strip().lower()
    if text in _RELEASE_QUALIFIERS:
        return ""
    return text.removeprefix("v")
