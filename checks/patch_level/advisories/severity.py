"""Choose one severity for an OSV record: CVSS v4, else CVSS v3.x, else the advisory's label."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cvss import CVSS3, CVSS4
from cvss.exceptions import CVSSError

from checks.patch_level.advisories.osv_schema import OsvRecord, OsvSeverity
from checks.patch_level.packages import SeveritySource


class SeverityLabel(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"  # a CVSS base score of 0.0


# Higher is worse; an unknown severity (None) ranks below all of these (rank 0).
LABEL_RANK: dict[str, int] = {
    label.value: rank for rank, label in enumerate(reversed(SeverityLabel), start=1)
}

# Advisory vocabularies: GHSA (database_specific.severity), Debian urgency, Ubuntu priority,
# Red Hat / Rocky / Alma severity, Go and others. Unmapped words ("unknown",
# "not yet assigned") leave the severity unknown.
_ADVISORY_WORDS = {
    "critical": SeverityLabel.CRITICAL,
    "important": SeverityLabel.HIGH,
    "high": SeverityLabel.HIGH,
    "moderate": SeverityLabel.MEDIUM,
    "medium": SeverityLabel.MEDIUM,
    "low": SeverityLabel.LOW,
    "negligible": SeverityLabel.LOW,
    "unimportant": SeverityLabel.LOW,
}
_LABEL_KEYS = ("severity", "urgency", "priority")


@dataclass(frozen=True, slots=True)
class SeverityRating:
    label: SeverityLabel | None
    score: float | None
    vector: str | None
    source: SeveritySource


UNKNOWN_SEVERITY = SeverityRating(None, None, None, SeveritySource.UNKNOWN)


def label_for_score(score: float) -> SeverityLabel:
    """CVSS qualitative rating: critical >= 9.0, high >= 7.0, medium >= 4.0, low > 0, else none."""
    if score >= 9.0:
        return SeverityLabel.CRITICAL
    if score >= 7.0:
        return SeverityLabel.HIGH
    if score >= 4.0:
        return SeverityLabel.MEDIUM
    if score > 0:
        return SeverityLabel.LOW
    return SeverityLabel.NONE


def choose_severity(record: OsvRecord) -> SeverityRating:
    """The record's severity from its best source; a vector that does not parse is skipped."""
    entries = [*record.severity, *(s for a in record.affected for s in a.severity)]
    for rating in (_cvss(entries, "CVSS_V4", CVSS4), _cvss(entries, "CVSS_V3", CVSS3)):
        if rating is not None:
            return rating
    return _advisory_label(record, entries)


def _cvss(entries: list[OsvSeverity], kind: str, parser: Any) -> SeverityRating | None:
    source = SeveritySource.CVSS_V4 if kind == "CVSS_V4" else SeveritySource.CVSS_V3
    best: SeverityRating | None = None
    for entry in entries:
        if entry.type != kind:
            continue
        try:
            parsed = parser(entry.score.strip())
            score = float(parsed.base_score)
            vector = str(parsed.clean_vector())
        except (CVSSError, ValueError, ArithmeticError):
            continue
        if best is None or (best.score is not None and score > best.score):
            best = SeverityRating(label_for_score(score), score, vector, source)
    return best


def _advisory_label(record: OsvRecord, entries: list[OsvSeverity]) -> SeverityRating:
    words = [entry.score for entry in entries if entry.type.lower() == "ubuntu"]
    words.extend(_label_words(record.database_specific))
    for affected in record.affected:
        words.extend(_label_words(affected.ecosystem_specific))
        words.extend(_label_words(affected.database_specific))
    labels = [
        _ADVISORY_WORDS[w.strip().lower()] for w in words if w.strip().lower() in _ADVISORY_WORDS
    ]
    if not labels:
        return UNKNOWN_SEVERITY
    worst = max(labels, key=LABEL_RANK.__getitem__)
    return SeverityRating(worst, None, None, SeveritySource.ADVISORY)


def _label_words(fields: Mapping[str, Any] | None) -> Iterator[str]:
    if not fields:
        return
    for key in _LABEL_KEYS:
        value = fields.get(key)
        if isinstance(value, str):
            yield value
