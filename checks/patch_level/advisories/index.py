"""The advisory index: OSV dumps parsed once into SQLite, read per package at match time.

`build_index` writes a temporary file beside the index and renames it over the old one only
when the whole build succeeded, so a failed update (a zip bomb, a full disk) leaves the
previous index in place. `AdvisoryIndex.match` reads only the rows of the inventory's names.
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
from checks.patch_level.advisories.dumps import ZipLimits
from checks.patch_level.advisories.errors import AdvisoryIndexError
from checks.patch_level.advisories.index_build import IndexBuilder, IndexStats
from checks.patch_level.advisories.matching import match_inventory
from checks.patch_level.advisories.model import AffectedEntry, MatchResult
from checks.patch_level.packages import Advisory, InstalledPackage

UPDATE_HINT = "run `apivigil advisories update` to build it"
_IDS_PER_QUERY = 500


@dataclass(frozen=True, slots=True)
class IndexMetadata:
    format_version: str
    built_at: datetime
    sources: tuple[str, ...]
    records: int
    vulnerability_groups: int
    records_per_ecosystem: tuple[tuple[str, int], ...]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_index(
    sources: Sequence[Path],
    index_path: Path,
    progress: Callable[[int], None] | None = None,
    *,
    limits: ZipLimits | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> IndexStats:
    """Parse every OSV record of `sources` into a new index at `index_path`.

    `progress` is called with the number of documents read so far. Invalid records are skipped
    and listed in `IndexStats.rejected`. Raises AdvisoryIndexError when a source is missing
    or a zip is damaged or crosses a limit of `limits`, or when every record was rejected; the
    old index is then left as it was.
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
        if stats.records == 0 and stats.rejected:
            raise AdvisoryIndexError(
                ", ".join(str(source) for source in sources),
                f"no record could be indexed: all {len(stats.rejected)} were rejected, "
                f"e.g. {stats.rejected[0]}",
            )
        with temporary_path.open("rb") as written:  # built with synchronous=OFF: sync once
            os.fsync(written.fileno())
        os.replace(temporary_path, index_path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
    return stats


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
        )
    except (KeyError, ValueError, TypeError) as error:
        raise AdvisoryIndexError(path, f"has damaged metadata ({error!r}); {UPDATE_HINT}") from None
