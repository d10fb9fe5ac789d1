"""Raw data of a patch_level run: the inventory per source, its matches, EOL cycles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from checks.patch_level.eol import ReleaseCycle
from checks.patch_level.packages import BannerProduct, InstalledPackage, Match, Undetermined


@dataclass(frozen=True, slots=True)
class SourceInventory:
    source: str  # the source's id from the config
    packages: tuple[InstalledPackage, ...] = ()
    banners: tuple[BannerProduct, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. unpinned requirements, skipped SBOM components
    undetermined: tuple[Undetermined, ...] = ()  # e.g. OS packages of an unknown distribution
    producer: str | None = None  # the tool that wrote an SBOM, e.g. "trivy 0.50.1"


@dataclass(frozen=True, slots=True)
class SourceMatch:
    source: str
    match: Match


@dataclass(frozen=True, slots=True)
class SourceUndetermined:
    source: str
    undetermined: Undetermined


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    product: str  # endoflife.date slug, e.g. "debian"
    version: str  # VERSION_ID, e.g. "12"


@dataclass(frozen=True, slots=True)
class PatchRaw:
    sources: tuple[SourceInventory, ...]
    failures: tuple[tuple[str, str], ...]  # (source id, reason)
    matches: tuple[SourceMatch, ...]
    match_notes: tuple[str, ...]
    undetermined: tuple[SourceUndetermined, ...]  # (package, advisory) pairs not judgeable
    operating_system: OperatingSystem | None
    eol: Mapping[str, tuple[ReleaseCycle, ...]]  # product slug -> cycles, where data exists
    advisories_built_at: datetime | None
    advisory_sources: tuple[str, ...] = ()  # the sources the index was built from
