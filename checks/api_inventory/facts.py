"""Raw data of an api_inventory run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from checks.api_inventory.traffic import TrafficSummary
from checks.openapi.inventory import ApiInventory, Operation

# The baseline's POSTURE part: UNREVIEWED in an automatic first observation, ACCEPTED once a
# person approved it (`inventory accept` copies it from the snapshot). Until then the
# inventory's standing risks are reported.
POSTURE = "posture"
UNREVIEWED = "unreviewed"
ACCEPTED = "accepted"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    key: str  # operation key (removed) or "GET /v1/..." (an older version)
    path: str  # the path requested
    status: int | None  # None: no answer
    older_version: bool


class Unreliable(StrEnum):
    """Why the traffic read from a log may be incomplete or wrong."""

    ROTATION_GAP = "rotation_gap"  # rotated twice, or truncated, between reads: lines lost
    STALE = "stale"  # the log has not grown for longer than its stale_after
    UNPARSEABLE = "unparseable"  # too many lines not in the configured format
    EVICTED = "evicted"  # answered endpoint templates dropped to stay within the bound


@dataclass(frozen=True, slots=True)
class LogHealth:
    log: str  # the log's path, or "templates" for the tally's bound
    problems: tuple[tuple[Unreliable, str], ...]  # (reason, what was seen)


@dataclass(frozen=True, slots=True)
class InventoryRaw:
    target: str
    current: ApiInventory | None  # None: this run could not read the spec
    unparseable: str | None  # why the spec could not be read as OpenAPI
    previous: ApiInventory | None  # the inventory of the latest earlier run
    baseline: ApiInventory | None  # the approved inventory
    baseline_approved_at: datetime | None
    traffic: TrafficSummary | None  # every run's traffic so far
    cursors: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    log_failures: tuple[tuple[str, str], ...] = ()  # (log path, reason)
    log_health: tuple[LogHealth, ...] = ()  # one per configured log read, and the tally's
    retired: tuple[Operation, ...] = ()  # removed in any earlier or approved document
    probes: tuple[ProbeResult, ...] = ()
    changes_total: Mapping[str, int] = field(default_factory=dict)  # kind -> count, all runs
    # False while the baseline is only the automatic first observation: its standing risks
    # (public operations, plain HTTP, deprecated ones) are reported until someone accepts
    baseline_reviewed: bool = True
