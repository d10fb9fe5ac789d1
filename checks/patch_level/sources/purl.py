"""Package URLs (purl) to installed packages in OSV's ecosystems and naming.

Producers spell the same package differently, and each spelling is read here:
- the epoch of a Debian or RPM version: in the version (`1:9.2p1-2`, Syft, cdxgen) or in an
  `epoch` qualifier (Trivy), never both counted;
- the distribution: the purl's namespace, its `distro` qualifier (`debian-12.5`,
  `ubuntu-22.04`), cdxgen's `distro_name` code name, else what the SBOM says of its operating
  system (`Distribution`, from an operating-system component);
- the source package: the `upstream` qualifier (Syft), or component properties (Trivy's
  `aquasecurity:trivy:SrcName` / `SrcVersion` / `SrcRelease` / `SrcEpoch`, Syft's
  `syft:metadata:source` / `sourceVersion` / `sourceRpm`, cdxgen's `source`);
- npm names keep the case they were written with (the purl library lower-cases them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

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
# distribution ids as purl namespaces, `distro` qualifiers and os-release IDs write them
DISTRIBUTIONS = {
    "debian": Ecosystem.DEBIAN,
    "ubuntu": Ecosystem.UBUNTU,
    "alpine": Ecosystem.ALPINE,
    "redhat": Ecosystem.RED_HAT,
    "rhel": Ecosystem.RED_HAT,
    "centos": Ecosystem.RED_HAT,
    "rocky": Ecosystem.ROCKY,
    "almalinux": Ecosystem.ALMA,
    "alma": Ecosystem.ALMA,
}
_DATABASE_FAMILIES = {
    "deb": frozenset({Ecosystem.DEBIAN, Ecosystem.UBUNTU}),
    "rpm": frozenset({Ecosystem.RED_HAT, Ecosystem.ROCKY, Ecosystem.ALMA}),
    "apk": frozenset({Ecosystem.ALPINE}),
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
_TRIVY = "aquasecurity:trivy:"
_DPKG_SOURCE = re.compile(r"(\S+)(?:\s+\((\S+)\))?")


@dataclass(frozen=True, slots=True)
class Distribution:
    """The operating system an SBOM says its OS packages belong to."""

    id: str  # as written, lower case: "ubuntu", "debian", "fedora"
    release: str | None  # as written: "22.04", "12.4"


@dataclass(frozen=True, slots=True)
class UnknownDistribution:
    """An OS package whose distribution is unknown or not one OSV covers: not judgeable."""

    purl: str
    distribution: str  # what was said about it, "" when nothing


def package_from_purl(
    purl: str,
    origin: str,
    *,
    properties: Mapping[str, str] | None = None,
    distribution: Distribution | None = None,
) -> InstalledPackage | UnknownDistribution | None:
    """The installed package a purl names, or None when it cannot be matched against OSV.

    None means a type without an OSV ecosystem here, or no version. An OS package (deb, rpm,
    apk) of no known distribution is an UnknownDistribution. `properties` are the
    component's (name -> value); `distribution` is what the SBOM says of its OS.
    Raises ValueError for a string that is not a valid purl.
    """
    parsed = PackageURL.from_string(purl)
    if not parsed.version:
        return None
    properties = properties or {}
    qualifiers = parsed.qualifiers if isinstance(parsed.qualifiers, dict) else {}
    if parsed.type in _LANGUAGE_ECOSYSTEMS:
        ecosystem = _LANGUAGE_ECOSYSTEMS[parsed.type]
        namespace, name = parsed.namespace, parsed.name
        if ecosystem is Ecosystem.NPM:
            as_written = PackageURL.from_string(purl, normalize_purl=False)
            namespace = unquote(as_written.namespace) if as_written.namespace else None
            name = unquote(as_written.name)
        language_name = _language_name(ecosystem, namespace, name)
        return InstalledPackage(ecosystem, language_name, parsed.version, origin, purl=purl)
    if parsed.type not in _DATABASE_FAMILIES:
        return None
    found = _distribution(parsed.type, parsed.namespace, qualifiers, distribution)
    if not isinstance(found, tuple):
        return UnknownDistribution(purl, found)
    ecosystem, release = found
    version = _with_epoch(parsed.version, qualifiers.get("epoch"))
    source_name, source_version = _source(parsed.type, qualifiers.get("upstream"), properties)
    if parsed.type == "deb" and source_version:
        version = source_version  # Debian advisories are filed against the source's version
    return InstalledPackage(
        ecosystem=ecosystem,
        name=parsed.name,
        version=version,
        source=origin,
        release=release,
        source_name=source_name if source_name and source_name != parsed.name else None,
        purl=purl,
    )


def distribution_ecosystem(distribution_id: str) -> Ecosystem | None:
    return DISTRIBUTIONS.get(distribution_id.lower())


def _distribution(
    purl_type: str,
    namespace: str | None,
    qualifiers: Mapping[str, str],
    stated: Distribution | None,
) -> tuple[Ecosystem, str | None] | str:
    """(ecosystem, release), or a description of the unknown distribution."""
    distro = qualifiers.get("distro", "").lower()
    named = (namespace or distro.split("-")[0] or (stated.id if stated else "")).lower()
    ecosystem = DISTRIBUTIONS.get(named)
    if ecosystem is None or ecosystem not in _DATABASE_FAMILIES[purl_type]:
        return named or (f"{stated.id} {stated.release or ''}".strip() if stated else "")
    number = _release_number(distro) or _release_number(qualifiers.get("distro_name", ""))
    if number is None and stated is not None and DISTRIBUTIONS.get(stated.id) is ecosystem:
        number = _release_number(stated.release or "")
    return ecosystem, _release(ecosystem, number)


def _release_number(text: str) -> str | None:
    """The release in `debian-12.4`, `rhel-9.3`, `3.19.1`, `bookworm` or `12 (bookworm)`."""
    word = text.lower().split(" ")[0].rsplit("-", 1)[-1]
    number = _CODENAMES.get(word, word)
    return number if _NUMBER.fullmatch(number) else None


def _release(ecosystem: Ecosystem, number: str | None) -> str | None:
    if number is None:
        return None
    match ecosystem:
        case Ecosystem.UBUNTU:
            return ".".join(number.split(".")[:2])  # 22.04.3 is a point release of 22.04
        case Ecosystem.ALPINE:
            return "v" + ".".join(number.split(".")[:2])
        case _:
            return number.split(".")[0]


def _with_epoch(version: str, epoch: str | None) -> str:
    return f"{epoch}:{version}" if epoch and ":" not in version else version


def _source(
    purl_type: str, upstream: str | None, properties: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The source package's name and, where stated, its full version."""
    if name := properties.get(f"{_TRIVY}SrcName"):
        version = properties.get(f"{_TRIVY}SrcVersion")
        if version:
            if release := properties.get(f"{_TRIVY}SrcRelease"):
                version = f"{version}-{release}"
            version = _with_epoch(version, properties.get(f"{_TRIVY}SrcEpoch"))
        return name, version or None
    if purl_type == "rpm":
        source_rpm = properties.get("syft:metadata:sourceRpm") or upstream
        return _source_rpm_name(source_rpm), None
    name, version = _split_upstream(upstream)
    if name is None:
        stated = properties.get("syft:metadata:source") or properties.get("source") or ""
        # cdxgen copies dpkg's `Source:` field as it is: `libssh2 (1.10.0-3)`
        if match := _DPKG_SOURCE.fullmatch(stated.strip()):
            name, version = match.group(1), match.group(2)
    version = version or properties.get("syft:metadata:sourceVersion")
    return name, version


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
