"""What patch_level works with: installed packages, advisories and matches. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Ecosystem(StrEnum):
    """OSV ecosystem names (the part before any `:release` suffix)."""

    PYPI = "PyPI"
    NPM = "npm"
    MAVEN = "Maven"
    GO = "Go"
    DEBIAN = "Debian"
    UBUNTU = "Ubuntu"
    ALPINE = "Alpine"
    RED_HAT = "Red Hat"
    ROCKY = "Rocky Linux"
    ALMA = "AlmaLinux"
    CRATES_IO = "crates.io"
    RUBYGEMS = "RubyGems"
    NUGET = "NuGet"
    PACKAGIST = "Packagist"


# Language ecosystems, whose versions follow the upstream release cycles; distributions
# backport fixes, so their package versions say nothing about end-of-life cycles.
UPSTREAM_VERSIONED = frozenset(
    {Ecosystem.PYPI, Ecosystem.NPM, Ecosystem.MAVEN, Ecosystem.GO, Ecosystem.RUBYGEMS}
)


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """One installed component as an inventory source saw it.

    `release` narrows a distribution ecosystem ("12" for Debian 12, "v3.19" for Alpine,
    "22.04" for Ubuntu); `source_name` is the Debian/RPM source package when it differs
    from the binary name (advisories for Debian are filed against source packages).
    """

    ecosystem: Ecosystem
    name: str
    version: str
    source: str  # the file, URL or "banner <header>" it came from
    release: str | None = None
    source_name: str | None = None
    purl: str | None = None


@dataclass(frozen=True, slots=True)
class Undetermined:
    """Something that could not be judged, and why; reported, never taken for clean.

    `package` is None when a whole source could not be judged (its distribution is unknown);
    `advisory_id` names the advisory whose ranges could not be applied to the package.
    """

    reason: str
    package: InstalledPackage | None = None
    advisory_id: str | None = None


@dataclass(frozen=True, slots=True)
class BannerProduct:
    """A product and version disclosed by an HTTP response header (low confidence)."""

    product: str  # endoflife.date product slug where known, e.g. "nginx", "php"
    version: str | None  # None when the header names the product without a version
    header: str  # e.g. "Server"
    raw_value: str


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything one run collected, per source, plus the sources that failed."""

    packages: tuple[InstalledPackage, ...] = ()
    banners: tuple[BannerProduct, ...] = ()
    packages_per_source: tuple[tuple[str, int], ...] = ()
    failed_sources: tuple[tuple[str, str], ...] = ()  # (source, reason)
    os_release: tuple[str, str] | None = (
        None  # (endoflife product slug, version), e.g. ("debian", "12")
    )


class SeveritySource(StrEnum):
    CVSS_V4 = "cvss_v4"
    CVSS_V3 = "cvss_v3"
    ADVISORY = "advisory"  # database_specific / ecosystem_specific severity text
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Advisory:
    """One OSV record, reduced to what matching and reporting need."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    published: datetime | None
    modified: datetime | None
    cvss_vector: str | None
    cvss_score: float | None
    severity_label: str | None  # "critical" | "high" | "medium" | "low" | None
    severity_source: SeveritySource
    references: tuple[str, ...] = field(default=())
    severity_from: str | None = None  # the record (this one or an alias) that gave the severity


@dataclass(frozen=True, slots=True)
class Match:
    """An installed package affected by an advisory."""

    package: InstalledPackage
    advisory: Advisory
    fixed_versions: tuple[str, ...]  # versions that fix it in this package's ecosystem, ascending
    fix_published: datetime | None  # when a fix became known (advisory published/modified)
