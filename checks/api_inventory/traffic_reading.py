"""The I/O half of traffic: stream each access log's new lines into one bounded tally, merge
it with earlier runs' traffic, and say where the logs cannot be trusted (a rotation that lost
lines, a log that stopped growing, a log in another format, answered templates evicted)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from checks.api_inventory import traffic_json
from checks.api_inventory.access_log import LogCursor, ReadStats, read_stream
from checks.api_inventory.facts import LogHealth, Unreliable
from checks.api_inventory.history import merge
from checks.api_inventory.params import AccessLogConfig, ApiInventoryParams
from checks.api_inventory.routes import RouteMatcher
from checks.api_inventory.traffic import TrafficAggregator, TrafficSummary
from checks.interface import CheckError
from checks.openapi.inventory import ApiInventory, Operation, from_json

TEMPLATES = "templates"  # the LogHealth.log of the tally's bound


@dataclass(frozen=True, slots=True)
class TrafficRead:
    traffic: TrafficSummary | None
    cursors: dict[str, Mapping[str, object]]
    failures: tuple[tuple[str, str], ...]
    health: tuple[LogHealth, ...]
    retired: tuple[Operation, ...]


def retired_operations(
    snapshot: Mapping[str, Any] | None,
    current: ApiInventory | None,
    *earlier: ApiInventory | None,
) -> tuple[Operation, ...]:
    """Operations of any earlier or approved document that `current` no longer has: the ones
    earlier runs remembered, plus the ones the `earlier` inventories have."""
    keys = current.by_key() if current else {}
    remembered = (snapshot or {}).get("retired")
    found: dict[str, Operation] = {}
    sources = [from_json(remembered)] if remembered else []
    sources.extend(inventory for inventory in earlier if inventory is not None)
    for inventory in sources:
        for key, operation in inventory.by_key().items():
            if key not in keys:
                found.setdefault(key, operation)
    return tuple(found.values())


def zombie_candidates(
    current: ApiInventory | None, retired: tuple[Operation, ...]
) -> dict[str, Operation]:
    """Deprecated operations of the spec, and retired ones it does not have again."""
    keys = current.by_key() if current else {}
    candidates = {key: op for key, op in keys.items() if op.deprecated}
    candidates.update((op.key, op) for op in retired if op.key not in keys)
    return candidates


def base_paths(inventory: ApiInventory) -> list[str]:
    """Every path prefix the spec's servers add (`/v1`, `/api/v2` ...)."""
    paths = [inventory.base_path] if inventory.base_path else []
    for server in inventory.servers:
        try:
            path = urlsplit(server).path
        except ValueError:
            continue
        if path.strip("/") and "{" not in path:
            paths.append(path)
    return paths


def read_traffic(
    params: ApiInventoryParams,
    snapshot: Mapping[str, Any] | None,
    known: ApiInventory | None,
    retired: tuple[Operation, ...],
    now: datetime,
) -> TrafficRead:
    earlier = snapshot or {}
    traffic = traffic_json.from_json(earlier["traffic"]) if earlier.get("traffic") else None
    cursors: dict[str, Mapping[str, object]] = dict(earlier.get("cursors", {}))
    if not params.access_logs or known is None:
        return TrafficRead(traffic, cursors, (), (), retired)
    since = now - params.traffic_window
    matcher = RouteMatcher(known.operations, base_paths(known))
    aggregator = TrafficAggregator(
        matcher,
        zombie_candidates(known, retired),
        max_templates=params.max_templates,
        pinned=[(s.method, s.path) for s in traffic.shadow] if traffic else (),
    )
    failures: list[tuple[str, str]] = []
    health: list[LogHealth] = []
    for log in params.access_logs:
        name = str(log.path)
        previous = cursors.get(name)
        cursor = LogCursor.from_json(previous) if previous else None
        try:
            new_cursor, stats = read_stream(
                log.path, aggregator.add, cursor, log.max_bytes, log_format=log.log_format()
            )
        except CheckError as error:
            failures.append((name, str(error)))
            continue
        state = _log_state(previous or {}, new_cursor, stats, _rotated_identity(name), now)
        cursors[name] = {**new_cursor.to_json(), **state}
        health.append(LogHealth(name, _problems(log, state, since, now)))
    summary = aggregator.summary()
    merged = merge(traffic, summary, now, since=since)
    lost = merged.evicted_served - (traffic.evicted_served if traffic else 0)
    evicted = (
        ((Unreliable.EVICTED, f"{lost} answered endpoint template(s) dropped at the bound"),)
        if lost
        else ()
    )
    health.append(LogHealth(TEMPLATES, evicted))
    return TrafficRead(merged, cursors, tuple(failures), tuple(health), retired)


def _rotated_identity(name: str) -> list[int] | None:
    """(inode, size, mtime) of `name.1`, or None when there is none."""
    try:
        status = os.stat(name + ".1")
    except OSError:
        return None
    return [status.st_ino, status.st_size, status.st_mtime_ns]


def _log_state(
    previous: Mapping[str, object],
    cursor: LogCursor,
    stats: ReadStats,
    rotated: list[int] | None,
    now: datetime,
) -> dict[str, object]:
    """What the snapshot remembers of a log beyond its cursor: when it last grew, when a
    rotation lost lines, the unparsed share of the last read that had lines, and which
    `.1` file was there. A new, non-empty `.1` that this read did not take its rest from
    is a rotation the cursor could not see (copytruncate of a log read to its empty start):
    lines were lost."""
    moved = (previous.get("inode"), previous.get("offset")) != (cursor.inode, cursor.offset)
    grew_at = now.isoformat() if moved or "grew_at" not in previous else previous["grew_at"]
    unseen = (
        "rotated" in previous
        and rotated is not None
        and rotated[1] > 0
        and rotated != previous["rotated"]
        and not stats.rotated_rest_read
    )
    gap = stats.rotated_rest_missing or unseen
    gap_at = now.isoformat() if gap else previous.get("gap_at")
    share = stats.malformed / stats.lines if stats.lines else previous.get("unparsed_share", 0.0)
    return {
        "grew_at": grew_at,
        "gap_at": gap_at,
        "unparsed_share": share,
        "rotated": rotated,
    }


def _problems(
    log: AccessLogConfig, state: Mapping[str, object], since: datetime, now: datetime
) -> tuple[tuple[Unreliable, str], ...]:
    problems: list[tuple[Unreliable, str]] = []
    gap_at = _moment(state.get("gap_at"))
    if gap_at is not None and gap_at >= since:
        problems.append(
            (
                Unreliable.ROTATION_GAP,
                f"at {gap_at:%Y-%m-%d %H:%M} UTC the log had been rotated or truncated and the "
                "rest of the file last read was not found: lines were lost",
            )
        )
    grew_at = _moment(state.get("grew_at"))
    if log.stale_after is not None and grew_at is not None and now - grew_at > log.stale_after:
        problems.append(
            (
                Unreliable.STALE,
                f"no new line since {grew_at:%Y-%m-%d %H:%M} UTC ({_ago(now - grew_at)})",
            )
        )
    share = state.get("unparsed_share")
    if isinstance(share, float | int) and share > log.max_unparsed_share:
        problems.append(
            (
                Unreliable.UNPARSEABLE,
                f"{share:.0%} of the lines last read are not {log.format.value} log lines",
            )
        )
    return tuple(problems)


def _moment(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _ago(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
