"""One vulnerability, reported once: records grouped by id and aliases, then merged.

PYSEC-, GHSA- and CVE- records of one vulnerability alias each other only partly (A names
B, C names B), so groups are the connected components of the alias graph (union-find).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from checks.patch_level.advisories.severity import LABEL_RANK
from checks.patch_level.packages import Advisory

_ID_PREFERENCE = ("CVE-", "GHSA-")


def id_preference(identifier: str) -> tuple[int, str]:
    """Sort key: CVE ids first, then GHSA ids, then the rest; alphabetical within each."""
    for rank, prefix in enumerate(_ID_PREFERENCE):
        if identifier.startswith(prefix):
            return rank, identifier
    return len(_ID_PREFERENCE), identifier


def group_records(records: Iterable[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """Map each record id of `(id, aliases)` pairs to the canonical id of its group.

    The canonical id may be an alias without a record of its own (usually the CVE).
    """
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = parent.setdefault(node, node)
        while root != parent[root]:
            root = parent[root]
        while node != root:  # path compression keeps later finds O(1)
            parent[node], node = root, parent[node]
        return root

    record_ids = []
    for record_id, aliases in records:
        record_ids.append(record_id)
        find(record_id)
        for alias in aliases:
            left, right = find(record_id), find(alias)
            if left != right:
                parent[right] = left
    members: defaultdict[str, list[str]] = defaultdict(list)
    for node in parent:
        members[find(node)].append(node)
    canonical = {root: min(names, key=id_preference) for root, names in members.items()}
    return {record_id: canonical[find(record_id)] for record_id in record_ids}


def merge_advisories(canonical_id: str, members: Sequence[Advisory]) -> Advisory:
    """One Advisory for a group: all aliases, the worst severity, the earliest publication.

    A record without a rating of its own (most PYSEC records) so takes the one of an alias
    (a GHSA or CVE record); `severity_from` names the record that gave it.
    """
    ordered = sorted(members, key=lambda advisory: id_preference(advisory.id))
    names = {name for advisory in ordered for name in (advisory.id, *advisory.aliases)}
    names.discard(canonical_id)
    worst = max(ordered, key=_severity_rank)
    published = [advisory.published for advisory in ordered if advisory.published]
    modified = [advisory.modified for advisory in ordered if advisory.modified]
    summary = next(
        (a.summary for a in ordered if a.id == canonical_id and a.summary),
        next((a.summary for a in ordered if a.summary), ""),
    )
    return Advisory(
        id=canonical_id,
        aliases=tuple(sorted(names, key=id_preference)),
        summary=summary,
        published=min(published, default=None),
        modified=max(modified, default=None),
        cvss_vector=worst.cvss_vector,
        cvss_score=worst.cvss_score,
        severity_label=worst.severity_label,
        severity_source=worst.severity_source,
        references=tuple(dict.fromkeys(url for a in ordered for url in a.references)),
        severity_from=worst.severity_from,
    )


def _severity_rank(advisory: Advisory) -> tuple[int, float]:
    rank = LABEL_RANK.get(advisory.severity_label or "", 0)
    return rank, advisory.cvss_score if advisory.cvss_score is not None else -1.0
