"""Where matching reads advisories from: the interface, and an in-memory implementation.

The on-disk implementation is `index.AdvisoryIndex`; the in-memory one serves records that
were just parsed (tests, or records fetched for a single query).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from checks.patch_level.advisories.aliases import group_records, merge_advisories
from checks.patch_level.advisories.model import AffectedEntry, ReducedRecord, reduce_record
from checks.patch_level.advisories.osv_schema import OsvRecord
from checks.patch_level.packages import Advisory


@dataclass(frozen=True, slots=True)
class RecordVulnerability:
    """What one record contributes to a match: its merged group and its fix date."""

    group: Advisory  # merged across the record's alias group; `group.id` is the canonical id
    fix_published: datetime | None  # the record's published date, else its modified date


class AdvisoryCatalogue(Protocol):
    def affected_entries(self, ecosystem: str, name: str) -> Sequence[AffectedEntry]:
        """Affected entries of non-withdrawn records for a base ecosystem and normalised name.

        Returns an empty sequence for unknown names. Raises nothing for well-formed input.
        """
        ...

    def vulnerabilities(self, record_ids: Collection[str]) -> Mapping[str, RecordVulnerability]:
        """The group and fix date of each record id given; ids it does not hold are left out."""
        ...

    def names_folded(
        self, ecosystem: str, folded: Collection[str]
    ) -> Mapping[str, tuple[str, ...]]:
        """For each lower-case name in `folded`, the stored names equal to it but for case."""
        ...


class MemoryCatalogue:
    """An AdvisoryCatalogue over records held in memory; withdrawn records are left out."""

    def __init__(
        self,
        entries: Mapping[tuple[str, str], Sequence[AffectedEntry]],
        vulnerabilities: Mapping[str, RecordVulnerability],
    ) -> None:
        self._entries = entries
        self._vulnerabilities = vulnerabilities

    @classmethod
    def from_records(cls, records: Iterable[OsvRecord]) -> MemoryCatalogue:
        """Reduce, group by aliases and merge `records`; the newest `modified` of an id wins."""
        newest: dict[str, ReducedRecord] = {}
        for record in records:
            reduced = reduce_record(record)
            kept = newest.get(record.id)
            if kept is None or _modified(reduced) >= _modified(kept):
                newest[record.id] = reduced
        live = [reduced for reduced in newest.values() if not reduced.withdrawn]
        canonical = group_records((r.advisory.id, r.advisory.aliases) for r in live)
        members: defaultdict[str, list[Advisory]] = defaultdict(list)
        for reduced in live:
            members[canonical[reduced.advisory.id]].append(reduced.advisory)
        groups = {
            group_id: merge_advisories(group_id, group) for group_id, group in members.items()
        }
        entries: defaultdict[tuple[str, str], list[AffectedEntry]] = defaultdict(list)
        vulnerabilities = {}
        for reduced in live:
            for entry in reduced.affected:
                entries[entry.ecosystem, entry.name].append(entry)
            vulnerabilities[reduced.advisory.id] = RecordVulnerability(
                groups[canonical[reduced.advisory.id]], reduced.fix_published
            )
        return cls(dict(entries), vulnerabilities)

    def affected_entries(self, ecosystem: str, name: str) -> Sequence[AffectedEntry]:
        return self._entries.get((ecosystem, name), ())

    def vulnerabilities(self, record_ids: Collection[str]) -> Mapping[str, RecordVulnerability]:
        return {i: self._vulnerabilities[i] for i in record_ids if i in self._vulnerabilities}

    def names_folded(
        self, ecosystem: str, folded: Collection[str]
    ) -> Mapping[str, tuple[str, ...]]:
        found: defaultdict[str, list[str]] = defaultdict(list)
        for stored_ecosystem, name in self._entries:
            if stored_ecosystem == ecosystem and name.lower() in folded:
                found[name.lower()].append(name)
        return {key: tuple(sorted(names)) for key, names in found.items()}


def _modified(record: ReducedRecord) -> datetime:
    return record.advisory.modified or datetime.min.replace(tzinfo=UTC)
