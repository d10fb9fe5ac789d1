"""How the advisory index stores things: its SQLite schema and compact JSON row values.

Rows hold plain JSON arrays (no pickle: an index file must never be able to run code).
Bump FORMAT_VERSION whenever the schema or an encoding changes; older indexes are then
refused and rebuilt by `apivigil advisories update`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from checks.patch_level.advisories.model import AffectedEntry, AffectedRange, RangeEvent
from checks.patch_level.advisories.osv_schema import EventKind, RangeType
from checks.patch_level.packages import Advisory, SeveritySource

FORMAT_VERSION = "1"
_ZERO = timedelta(0)

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE affected (
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    record_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (ecosystem, name, record_id, position)
) WITHOUT ROWID;
CREATE TABLE records (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    fix_published TEXT
) WITHOUT ROWID;
CREATE TABLE vulnerability_groups (id TEXT PRIMARY KEY, advisory TEXT NOT NULL) WITHOUT ROWID;
"""

# Every record read, including duplicates and withdrawn ones; `kept` is decided at the end.
STAGING_SCHEMA = """
CREATE TEMP TABLE staged_records (
    id TEXT NOT NULL,
    modified TEXT NOT NULL,
    withdrawn INTEGER NOT NULL,
    aliases TEXT NOT NULL,
    advisory TEXT NOT NULL,
    fix_published TEXT,
    group_id TEXT
);
CREATE TEMP TABLE staged_affected (
    record_row INTEGER NOT NULL,
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    record_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    entry TEXT NOT NULL
);
"""


def encode_time(value: datetime | None) -> str | None:
    """Fixed-width UTC text (years 1-9999 as four digits), so that text order is time order."""
    if value is None:
        return None
    utc = value if value.utcoffset() == _ZERO else value.astimezone(UTC)
    # Not strftime("%Y"): it writes the year 1 as "1", which fromisoformat cannot read back.
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


def decode_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def encode_entry(entry: AffectedEntry) -> str:
    """The parts of an entry that its row's key columns do not already hold."""
    ranges = [
        [osv_range.type.value, [[event.kind.value, event.version] for event in osv_range.events]]
        for osv_range in entry.ranges
    ]
    return _dumps([entry.release, list(entry.versions), ranges])


def decode_entry(ecosystem: str, name: str, record_id: str, text: str) -> AffectedEntry:
    release, versions, ranges = json.loads(text)
    return AffectedEntry(
        record_id=record_id,
        ecosystem=ecosystem,
        name=name,
        release=release,
        versions=tuple(versions),
        ranges=tuple(
            AffectedRange(
                type=RangeType(range_type),
                events=tuple(RangeEvent(EventKind(kind), version) for kind, version in events),
            )
            for range_type, events in ranges
        ),
    )


def encode_advisory(advisory: Advisory) -> str:
    return _dumps(
        [
            advisory.id,
            list(advisory.aliases),
            advisory.summary,
            encode_time(advisory.published),
            encode_time(advisory.modified),
            advisory.cvss_vector,
            advisory.cvss_score,
            advisory.severity_label,
            advisory.severity_source.value,
            list(advisory.references),
            advisory.severity_from,
        ]
    )


def decode_advisory(text: str) -> Advisory:
    fields: list[Any] = json.loads(text)
    (identifier, aliases, summary, published, modified, vector, score, label, source, refs) = (
        fields[:10]
    )
    severity_from = fields[10] if len(fields) > 10 else None  # indexes built before it was kept
    return Advisory(
        id=identifier,
        aliases=tuple(aliases),
        summary=summary,
        published=decode_time(published),
        modified=decode_time(modified),
        cvss_vector=vector,
        cvss_score=score,
        severity_label=label,
        severity_source=SeveritySource(source),
        references=tuple(refs),
        severity_from=severity_from,
    )


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
