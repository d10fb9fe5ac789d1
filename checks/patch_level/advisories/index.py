"""The advisory index: OSV dumps parsed once into SQLite, read per package at match time.

`build_index` writes a temporary file beside the index and renames it over the old one only
when the whole build succeeded, so a failed update (a zip bomb, a full disk) leaves the
previous index in place. So does an update that would silently lose what the index had: no
valid record at all, or far fewer than the index it would replace (`IndexRefused`).
`AdvisoryIndex.match` reads only the rows of the inventory's names.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from checks.patch_level.advisories import index_codec as codec
from checks.patch_level.advisories.catalogue import RecordVulnerability
from checks.patch_level.advisories.dumps import WHAT_IS_READ, ZipLimits
from checks.patch_level.advisories.errors import AdvisoryIndexError
from checks.patch_level.advisories.index_build import IndexBuilder, IndexStats, SourceSummary
from checks.patch_level.advisories.matching import match_inventory
from checks.patch_level.advisories.model import AffectedEntry, MatchResult
from checks.patch_level.packages import Advisory, InstalledPackage

UPDATE_HINT = "run `apivigil advisories update` to build it"
DEFAULT_MAX_DROP = 0.5
_IDS_PER_QUERY = 500


@dataclass(frozen=True, slots=True)
class IndexMetadata:
    format_version: str
    built_at: datetime
    sources: tuple[str, ...]
    records: int
    vulnerability_groups: int
    records_per_ecosystem: tuple[tuple[str, int], ...]
    withdrawn: int | None = None  # None: an index built before these were kept
    rejected: int | None = None
    source_summaries: tuple[SourceSummary, ...] = ()


class IndexRefused(AdvisoryIndexError):
    """The build succeeded but would lose what the index had; the old index was kept."""

    def __init__(self, path: Path, problem: str, stats: IndexStats) -> None:
        super().__init__(path, problem)
        self.stats = stats


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_index(
    sources: Sequence[Path],
    index_path: Path,
    progress: Callable[[int], None] | None = None,
    *,
    limits: ZipLimits | None = None,
    clock: Callable[[], datetime] = _utc_now,
    max_drop: float = DEFAULT_MAX_DROP,
    force: bool = False,
) -> IndexStats:
    """Parse every OSV record of `sources` into a new index at `index_path`.

    `progress` is called with the number of documents read so far. Invalid records are skipped
    and listed in `IndexStats.rejected`. Raises AdvisoryIndexError when a source is missing
    or a zip is damaged or crosses a limit of `limits`, and IndexRefused (unless `force`) when
    the new index would hold no record, or fewer than `1 - max_drop` times the records of the
    index it replaces; the old index is then left as it was.
    """
    index_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{index_path.name}.", suffix=".building", dir=index_path.parent
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        with contextlib.closing(sqlite3.connect(temporary_path)) as connection:
            stats = IndexBuilder(connection, limits or ZipLimits(), progress).build(
                sources, index_path, clock()
            )
        if not force:
            _refuse_losses(stats, index_path, max_drop)
        with temporary_path.open("rb") as written:  # built with synchronous=OFF: sync once
            os.fsync(written.fileno())
        os.replace(temporary_path, index_path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
    return stats


def _refuse_losses(stats: IndexStats, index_path: Path, max_drop: float) -> None:
    kept = "; the index was not changed (--force replaces it anyway)"
    if stats.records == 0:
        found = "; ".join(
            f"{s.source} as {s.layout}: {s.documents} record file(s), {s.rejected} rejected, "
            f"not read: {s.ignored}"
            for s in stats.sources
        )
        raise IndexRefused(
            index_path,
            f"the update found no valid OSV record ({found}). Read are {WHAT_IS_READ}{kept}",
            stats,
        )
    try:
        with AdvisoryIndex.open(index_path) as old:
            before = old.metadata.records
    except AdvisoryIndexError:  # none yet, or unreadable: nothing to compare with
        return
    if before and stats.records < before * (1 - max_drop):
        drop = 1 - stats.records / before
        raise IndexRefused(
            index_path,
            f"the update would replace {before:,} records with {stats.records:,}, a drop of "
            f"{drop:.0%}, more than the {max_drop:.0%} allowed ({len(stats.rejected):,} "
            f"rejected){kept}",
            stats,
        )


class AdvisoryIndex:
    """A built index, open read-only; an AdvisoryCatalogue for `match_inventory`."""

    def __init__(self, connection: sqlite3.Connection, metadata: IndexMetadata) -> None:
        self._db = connection
        self.metadata = metadata

    @classmethod
    def open(cls, path: Path) -> AdvisoryIndex:
        """Open the index at `path`.

        Raises AdvisoryIndexError when it is missing, not an index, or of another format
        version; the message tells the user to run `apivigil advisories update`.
        """
        if not path.is_file():
            raise AdvisoryIndexError(path, f"there is no advisory index here; {UPDATE_HINT}")
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            metadata = _read_metadata(path, connection)
        except BaseException:
            connection.close()
            raise
        return cls(connection, metadata)

    def match(self, packages: Sequence[InstalledPackage]) -> MatchResult:
        """Every package affected by an indexed advisory, once per vulnerability, plus notes."""
        return match_inventory(packages, self)

    def affected_entries(self, ecosystem: str, name: str) -> Sequence[AffectedEntry]:
        rows = self._db.execute(
            "SELECT record_id, entry FROM affected WHERE ecosystem = ? AND name = ?",
            (ecosystem, name),
        )
        return [codec.decode_entry(ecosystem, name, record, entry) for record, entry in rows]

    def vulnerabilities(self, record_ids: Collection[str]) -> Mapping[str, RecordVulnerability]:
        found: dict[str, RecordVulnerability] = {}
        groups: dict[str, Advisory] = {}
        ids = sorted(record_ids)
        for start in range(0, len(ids), _IDS_PER_QUERY):
            rows = self._db.execute(
                "SELECT r.id, r.fix_published, g.id, g.advisory FROM records AS r"
                " JOIN vulnerability_groups AS g ON g.id = r.group_id"
                " WHERE r.id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids[start : start + _IDS_PER_QUERY]),),
            )
            for record_id, fix_published, group_id, advisory in rows:
                if group_id not in groups:
                    groups[group_id] = codec.decode_advisory(advisory)
                found[record_id] = RecordVulnerability(
                    groups[group_id], codec.decode_time(fix_published)
                )
        return found

    def names_folded(
        self, ecosystem: str, folded: Collection[str]
    ) -> Mapping[str, tuple[str, ...]]:
        # one pass over the ecosystem's rows (the primary key's prefix), not one per name
        rows = self._db.execute(
            "SELECT DISTINCT name FROM affected WHERE ecosystem = ?"
            " AND lower(name) IN (SELECT value FROM json_each(?))",
            (ecosystem, json.dumps(sorted(folded))),
        )
        found: dict[str, list[str]] = {}
        for (name,) in rows:
            found.setdefault(name.lower(), []).append(name)
        return {key: tuple(sorted(names)) for key, names in found.items()}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _read_metadata(path: Path, connection: sqlite3.Connection) -> IndexMetadata:
    try:
        values = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as error:
        raise AdvisoryIndexError(
            path, f"is not an advisory index ({error}); {UPDATE_HINT}"
        ) from None
    version = values.get("format_version")
    if version != codec.FORMAT_VERSION:
        raise AdvisoryIndexError(
            path,
            f"is an advisory index of format {version or 'unknown'}, this apivigil reads "
            f"format {codec.FORMAT_VERSION}; run `apivigil advisories update` to rebuild it",
        )
    try:
        return IndexMetadata(
            format_version=version,
            built_at=datetime.fromisoformat(values["built_at"]),
            sources=tuple(json.loads(values["sources"])),
            records=int(values["records"]),
            vulnerability_groups=int(values["vulnerability_groups"]),
            records_per_ecosystem=tuple(json.loads(values["records_per_ecosystem"]).items()),
            withdrawn=int(values["withdrawn"]) if "withdrawn" in values else None,
            rejected=int(values["rejected"]) if "rejected" in values else None,
            source_summaries=tuple(
                SourceSummary.from_json(summary)
                for summary in json.loads(values.get("source_summaries", "[]"))
            ),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise AdvisoryIndexError(path, f"has damaged metadata ({error!r}); {UPDATE_HINT}") from None
