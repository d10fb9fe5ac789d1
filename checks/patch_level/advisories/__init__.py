"""OSV advisories for the patch_level check: parsing, the index, version ordering, matching."""

from checks.patch_level.advisories.catalogue import AdvisoryCatalogue, MemoryCatalogue
from checks.patch_level.advisories.dumps import ZipLimits
from checks.patch_level.advisories.errors import AdvisoryIndexError
from checks.patch_level.advisories.index import (
    AdvisoryIndex,
    IndexMetadata,
    IndexRefused,
    build_index,
)
from checks.patch_level.advisories.index_build import IndexStats, RejectedRecord, SourceSummary
from checks.patch_level.advisories.matching import match_inventory
from checks.patch_level.advisories.model import MatchResult
from checks.patch_level.advisories.osv_schema import OsvFormatError, OsvRecord, parse_record
from checks.patch_level.advisories.severity import SeverityRating, choose_severity
from checks.patch_level.advisories.versions import UnorderableVersion, compare, version_key

__all__ = [
    "AdvisoryCatalogue",
    "AdvisoryIndex",
    "AdvisoryIndexError",
    "IndexMetadata",
    "IndexRefused",
    "IndexStats",
    "MatchResult",
    "MemoryCatalogue",
    "OsvFormatError",
    "OsvRecord",
    "RejectedRecord",
    "SeverityRating",
    "SourceSummary",
    "UnorderableVersion",
    "ZipLimits",
    "build_index",
    "choose_severity",
    "compare",
    "match_inventory",
    "parse_record",
    "version_key",
]
