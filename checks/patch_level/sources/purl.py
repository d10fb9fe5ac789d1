"""Package URLs (purl) to installed packages in OSV's ecosystems and naming."""

from __future__ import annotations

import re

from packageurl import PackageURL
from packaging.utils import canonicalize_name

from checks.patch_level.packages import Ecosystem, InstalledPackage

_LANGUAGE_ECOSYSTEMS = {
    "pypi": Ecosystem.PYPI,
    "npm": Ecosystem.NPM,
    "maven": Ecosystem.MAVEN,
    "golang": Ecosystem.GO,
    "cargo": Ecosystem.CRATES_IO,
    "gem": Ecosystem.RUBYGEMS,
    "nuget": Ecosystem.NUGET,
    "composer": Ecosystem.PACKAGIST,
}
_DEB_NAMESPACES = {"debian": Ecosystem.DEBIAN, "ubuntu": Ecosystem.UBUNTU}
_RPM_NAMESPACES = {
    "redhat": Ecosystem.RED_HAT,
    "rhel": Ecosystem.RED_HAT,
    "centos": Ecosystem.RED_HAT,
    "rocky": Ecosystem.ROCKY,
    "almalinux": Ecosystem.ALMA,
    "alma": Ecosystem.ALMA,
}
# some generators write the release's code name instead of its number
_CODENAMES = {
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "focal": "20.04",
    "jammy": "22.04",
    "noble": "24.04",
}
_NUMBER = re.compile(r"\d+(\.\d+)*")
_SOURCE_RPM_SUFFIX = ".src.rpm"


def package_from_purl(purl: str, origin: str) -> InstalledPackage | None:
    """The installed package a purl names, or None when it cannot be matched against OSV.

    None means a type (or distribution) without an OSV ecosystem here, or no version.
    Raises ValueError for a string that is not a valid purl.
    """
    parsed = PackageURL.from_string(purl)
    if not parsed.version:
        return None
    qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
    if parsed.type in _LANGUAGE_ECOSYSTEMS:
        ecosystem = _LANGUAGE_ECOSYSTEMS[parsed.type]
        name = _language_name(ecosystem, parsed.namespace, parsed.name)
        return InstalledPackage(ecosystem, name, parsed.version, origin, purl=purl)
    distro = qualifiers.get("distro", "").lower()
    upstream = qualifiers.get("upstream")
    match parsed.type:
        case "deb":
            namespace = (parsed.namespace or distro.split("-")[0]).lower()
            ecosystem_or_none = _DEB_NAMESPACES.get(namespace)
            release = _release(distro, major_only=ecosystem_or_none is Ecosystem.DEBIAN)
            source_name, source_version = _split_upstream(upstream)
            version = source_version or parsed.version
        case "rpm":
            namespace = (parsed.namespace or distro.split("-")[0]).lower()
            ecosystem_or_none = _RPM_NAMESPACES.get(namespace)
            release = _release(distro, major_only=True)
            source_name = _source_rpm_name(upstream)
            epoch = qualifiers.get("epoch")
            has_epoch = epoch and ":" not in parsed.version
            version = f"{epoch}:{parsed.version}" if has_epoch else parsed.version
        case "apk":
            namespace = (parsed.namespace or "alpine").lower()
            ecosystem_or_none = Ecosystem.ALPINE if namespace == "alpine" else None
            number = _release(distro, major_only=False)
            release = "v" + ".".join(number.split(".")[:2]) if number else None
            source_name, version = _split_upstream(upstream)[0], parsed.version
        case _:
            return None
    if ecosystem_or_none is None:
        return None
    return InstalledPackage(
        ecosystem=ecosystem_or_none,
        name=parsed.name,
        version=version,
        source=origin,
        release=release,
        source_name=source_name if source_name and source_name != parsed.name else None,
        purl=purl,
    )


def _language_name(ecosystem: Ecosystem, namespace: str | None, name: str) -> str:
    match ecosystem:
        case Ecosystem.PYPI:
            return canonicalize_name(name)
        case Ecosystem.NPM if namespace:
            return f"{namespace if namespace.startswith('@') else '@' + namespace}/{name}"
        case Ecosystem.MAVEN if namespace:
            return f"{namespace}:{name}"
        case Ecosystem.GO | Ecosystem.PACKAGIST if namespace:
            return f"{namespace}/{name}"
        case _:
            return name


def _release(distro: str, *, major_only: bool) -> str | None:
    """The release in a `distro` qualifier: `debian-12.4`, `rhel-9.3`, `3.19.1`, `bookworm`."""
    word = distro.rsplit("-", 1)[-1]
    number = _CODENAMES.get(word, word)
    if not _NUMBER.fullmatch(number):
        return None
    return number.split(".")[0] if major_only else number


def _split_upstream(upstream: str | None) -> tuple[str | None, str | None]:
    """`openssl` or `glibc@2.36-9` (a Debian source package, with its version when it differs)."""
    if not upstream:
        return None, None
    name, _, version = upstream.partition("@")
    return name or None, version or None


def _source_rpm_name(upstream: str | None) -> str | None:
    """`openssl-3.0.7-24.el9.src.rpm` -> `openssl`."""
    if not upstream:
        return None
    stem = upstream.removesuffix(_SOURCE_RPM_SUFFIX)
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else stem
