"""OSV records reduced to what matching needs, independent of pydantic and of the index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from checks.patch_level.advisories.ecosystems import normalise_name, split_ecosystem
from checks.patch_level.advisories.osv_schema import EventKind, OsvRecord, RangeType
from checks.patch_level.advisories.severity import choose_severity
from checks.patch_level.packages import Advisory, Match, SeveritySource, Undetermined


@dataclass(frozen=True, slots=True)
class RangeEvent:
    kind: EventKind
    version: str


@dataclass(frozen=True, slots=True)
class AffectedRange:
    type: RangeType  # ECOSYSTEM or SEMVER; GIT ranges are dropped when a record is reduced
    events: tuple[RangeEvent, ...]


@dataclass(frozen=True, slots=True)
class AffectedEntry:
    """One `affected[]` element of a record, keyed for lookup."""

    record_id: str
    ecosystem: str  # the base ecosystem ("Debian" of "Debian:12")
    release: str | None  # "12" of "Debian:12"
    name: str  # normalised with ecosystems.normalise_name
    versions: tuple[str, ...]
    ranges: tuple[AffectedRange, ...]


@dataclass(frozen=True, slots=True)
class ReducedRecord:
    advisory: Advisory  # this record alone, before alias merging
    withdrawn: bool
    affected: tuple[AffectedEntry, ...]

    @property
    def fix_published(self) -> datetime | None:
        return self.advisory.published or self.advisory.modified


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: tuple[Match, ...]
    notes: tuple[str, ...]  # what could not be evaluated fully, e.g. unorderable versions
    # (package, advisory) pairs that could be neither matched nor ruled out
    undetermined: tuple[Undetermined, ...] = ()


def reduce_record(record: OsvRecord) -> ReducedRecord:
    """The parts of `record` that matching and reporting use."""
    severity = choose_severity(record)
    advisory = Advisory(
        id=record.id,
        aliases=tuple(dict.fromkeys(a for a in record.aliases if a != record.id)),
        summary=record.summary or _first_line(record.details),
        published=record.published,
        modified=record.modified,
        cvss_vector=severity.vector,
        cvss_score=severity.score,
        severity_label=severity.label.value if severity.label else None,
        severity_source=severity.source,
        references=tuple(dict.fromkeys(reference.url for reference in record.references)),
        severity_from=record.id if severity.source is not SeveritySource.UNKNOWN else None,
    )
    entries = []
    for affected in record.affected:
        if affected.package is None:  # GIT-only entries name no package
            continue
        ecosystem, release = split_ecosystem(affected.package.ecosystem)
        ranges = tuple(
            AffectedRange(
                type=osv_range.type,
                events=tuple(RangeEvent(event.kind, event.version) for event in osv_range.events),
            )
            for osv_range in affected.ranges
            if osv_range.type is not RangeType.GIT
        )
        entries.append(
            AffectedEntry(
                record_id=record.id,
                ecosystem=ecosystem,
                release=release,
                name=normalise_name(ecosystem, affected.package.name),
                versions=tuple(affected.versions),
                ranges=ranges,
            )
        )
    return ReducedRecord(advisory, record.withdrawn is not None, tuple(entries))


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:200]
