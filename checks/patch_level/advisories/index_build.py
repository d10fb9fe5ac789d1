"""Writing the advisory index: stage every record, keep the newest copies, group aliases.

Records are staged in TEMP tables (duplicates and withdrawn records included), then the
final tables of `index_codec.SCHEMA` are filled in one pass each, so memory stays bounded
by the ids and aliases, not by the records.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from checks.patch_level.advisories import index_codec as codec
from checks.patch_level.advisories.aliases import group_records, merge_advisories
from checks.patch_level.advisories.dumps import SourceCensus, Unreadable, ZipLimits, read_sources
from checks.patch_level.advisories.model import reduce_record
from checks.patch_level.advisories.osv_schema import OsvFormatError, parse_record
from checks.patch_level.packages import Advisory

PROGRESS_EVERY = 1000
_BATCH = 2000


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    origin: str
    record_id: str | None
    problem: str

    def __str__(self) -> str:
        return str(OsvFormatError(self.origin, self.record_id, self.problem))


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """What one `--from` source gave: how it was read, and what it held."""

    source: str
    layout: str  # "files", "zip dump", or the advisory repositories recognised
    documents: int  # record files (or zip members) read, valid or not
    valid: int
    rejected: int
    newest_modified: datetime | None  # the newest `modified` of its valid records
    ignored: str  # files that are not read, by suffix ("12 .md, 3 .py")

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "layout": self.layout,
            "documents": self.documents,
            "valid": self.valid,
            "rejected": self.rejected,
            "newest_modified": codec.encode_time(self.newest_modified),
            "ignored": self.ignored,
        }

    @classmethod
    def from_json(cls, value: dict[str, object]) -> SourceSummary:
        newest = value.get("newest_modified")
        return cls(
            source=str(value["source"]),
            layout=str(value["layout"]),
            documents=int(str(value["documents"])),
            valid=int(str(value["valid"])),
            rejected=int(str(value["rejected"])),
            newest_modified=codec.decode_time(newest if isinstance(newest, str) else None),
            ignored=str(value["ignored"]),
        )


@dataclass(frozen=True, slots=True)
class IndexStats:
    index_path: Path
    built_at: datetime
    records: int  # indexed: the newest copy of each id, withdrawn ones left out
    withdrawn: int
    superseded: int  # older copies of an id that another source also held
    vulnerability_groups: int
    records_per_ecosystem: tuple[tuple[str, int], ...]
    rejected: tuple[RejectedRecord, ...]
    sources: tuple[SourceSummary, ...] = ()

    @property
    def aliases_merged(self) -> int:
        """Records reported under another record's id because they alias each other."""
        return self.records - self.vulnerability_groups


class IndexBuilder:
    """Fills a new, empty SQLite database; `build` commits and returns the statistics."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        limits: ZipLimits,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._db = connection
        self._limits = limits
        self._progress = progress
        self._rejected: list[RejectedRecord] = []
        self._census: dict[str, SourceCensus] = {}
        self._documents: Counter[str] = Counter()
        self._valid: Counter[str] = Counter()
        self._newest: dict[str, datetime] = {}

    def build(self, sources: Sequence[Path], index_path: Path, built_at: datetime) -> IndexStats:
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            + codec.SCHEMA
            + codec.STAGING_SCHEMA
        )
        staged = self._stage(sources)
        withdrawn = self._keep_newest()
        groups = self._group()
        per_ecosystem = tuple(
            self._db.execute(
                "SELECT ecosystem, COUNT(DISTINCT record_id) FROM affected GROUP BY ecosystem"
            )
        )
        (records,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        kept = records + withdrawn
        summaries = tuple(self._summary(str(source)) for source in sources)
        metadata = {
            "format_version": codec.FORMAT_VERSION,
            "built_at": codec.encode_time(built_at),
            "sources": json.dumps([str(source) for source in sources]),
            "records": str(records),
            "vulnerability_groups": str(groups),
            "records_per_ecosystem": json.dumps(dict(per_ecosystem)),
            "withdrawn": str(withdrawn),
            "rejected": str(len(self._rejected)),
            "source_summaries": json.dumps([summary.as_json() for summary in summaries]),
        }
        self._db.executemany("INSERT INTO meta VALUES (?, ?)", metadata.items())
        self._db.executescript("DROP TABLE temp.staged_records; DROP TABLE temp.staged_affected;")
        self._db.commit()
        return IndexStats(
            index_path=index_path,
            built_at=built_at,
            records=records,
            withdrawn=withdrawn,
            superseded=staged - kept,
            vulnerability_groups=groups,
            records_per_ecosystem=per_ecosystem,
            rejected=tuple(self._rejected),
            sources=summaries,
        )

    def _summary(self, source: str) -> SourceSummary:
        census = self._census.get(source, SourceCensus(source))
        return SourceSummary(
            source=source,
            layout=census.layout,
            documents=self._documents[source],
            valid=self._valid[source],
            rejected=self._documents[source] - self._valid[source],
            newest_modified=self._newest.get(source),
            ignored=census.describe_ignored(),
        )

    def _stage(self, sources: Sequence[Path]) -> int:
        """Parse and store every record read; returns how many were valid.

        `progress` hears the number of documents read, valid or not.
        """
        record_rows: list[tuple[object, ...]] = []
        affected_rows: list[tuple[object, ...]] = []
        count = read = 0
        for document in read_sources(sources, self._limits, self._census):
            read += 1
            self._documents[document.source] += 1
            if self._progress is not None and read % PROGRESS_EVERY == 0:
                self._progress(read)
            if isinstance(document, Unreadable):
                self._rejected.append(RejectedRecord(document.origin, None, document.problem))
                continue
            try:
                record = parse_record(document.data, document.origin, is_yaml=document.yaml)
            except OsvFormatError as error:
                self._rejected.append(RejectedRecord(error.origin, error.record_id, error.problem))
                continue
            try:
                reduced = reduce_record(record)
            except (ValueError, ArithmeticError, RecursionError) as error:
                problem = f"cannot be read ({type(error).__name__}: {error})"
                self._rejected.append(RejectedRecord(document.origin, record.id, problem))
                continue
            count += 1
            self._valid[document.source] += 1
            newest = self._newest.get(document.source)
            if newest is None or record.modified > newest:
                self._newest[document.source] = record.modified
            advisory = reduced.advisory
            record_rows.append(
                (
                    count,
                    advisory.id,
                    codec.encode_time(record.modified),
                    reduced.withdrawn,
                    json.dumps(advisory.aliases),
                    codec.encode_advisory(advisory),
                    codec.encode_time(reduced.fix_published),
                )
            )
            affected_rows.extend(
                (count, e.ecosystem, e.name, e.record_id, position, codec.encode_entry(e))
                for position, e in enumerate(reduced.affected)
            )
            if len(record_rows) >= _BATCH:
                self._flush(record_rows, affected_rows)
        self._flush(record_rows, affected_rows)
        if self._progress is not None:
            self._progress(read)
        return count

    def _flush(self, records: list[tuple[object, ...]], affected: list[tuple[object, ...]]) -> None:
        self._db.executemany(
            "INSERT INTO staged_records (rowid, id, modified, withdrawn, aliases, advisory,"
            " fix_published) VALUES (?, ?, ?, ?, ?, ?, ?)",
            records,
        )
        self._db.executemany("INSERT INTO staged_affected VALUES (?, ?, ?, ?, ?, ?)", affected)
        records.clear()
        affected.clear()

    def _keep_newest(self) -> int:
        """Drop all but the newest copy of each id (the last read wins a tie); count withdrawn."""
        self._db.execute(
            "DELETE FROM staged_records WHERE rowid NOT IN (SELECT rowid FROM ("
            " SELECT rowid, ROW_NUMBER() OVER (PARTITION BY id ORDER BY modified DESC,"
            " rowid DESC) AS newness FROM staged_records) WHERE newness = 1)"
        )
        (withdrawn,) = self._db.execute(
            "SELECT COUNT(*) FROM staged_records WHERE withdrawn"
        ).fetchone()
        self._db.execute("DELETE FROM staged_records WHERE withdrawn")
        return int(withdrawn)

    def _group(self) -> int:
        """Assign alias groups, write the final tables; returns the number of groups."""
        rows = self._db.execute("SELECT rowid, id, aliases FROM staged_records").fetchall()
        canonical = group_records(
            (record_id, json.loads(aliases)) for _, record_id, aliases in rows
        )
        self._db.executemany(
            "UPDATE staged_records SET group_id = ? WHERE rowid = ?",
            ((canonical[record_id], row) for row, record_id, _ in rows),
        )
        del rows
        self._db.execute(
            "INSERT INTO records SELECT id, group_id, fix_published FROM staged_records"
        )
        self._db.execute(
            "INSERT INTO affected SELECT a.ecosystem, a.name, a.record_id, a.position, a.entry"
            " FROM staged_affected AS a JOIN staged_records AS s ON s.rowid = a.record_row"
            " ORDER BY 1, 2, 3, 4"
        )
        members = self._db.execute(
            "SELECT group_id, advisory FROM staged_records ORDER BY group_id"
        )
        merged = (
            (group_id, codec.encode_advisory(merge_advisories(group_id, advisories)))
            for group_id, advisories in _grouped(members)
        )
        self._db.executemany("INSERT INTO vulnerability_groups VALUES (?, ?)", merged)
        (groups,) = self._db.execute("SELECT COUNT(*) FROM vulnerability_groups").fetchone()
        return int(groups)


def _grouped(rows: Iterator[tuple[str, str]]) -> Iterator[tuple[str, list[Advisory]]]:
    for group_id, members in itertools.groupby(rows, key=lambda row: row[0]):
        yield group_id, [codec.decode_advisory(advisory) for _, advisory in members]
