"""Traffic over time: this run's summary added to what earlier runs saw, and the part of it
inside the traffic window. Pure."""

from __future__ import annotations

from datetime import datetime

from checks.api_inventory.traffic import (
    DEFAULT_MAX_SHADOW_ENDPOINTS,
    MAX_EXAMPLES,
    ShadowEndpoint,
    TrafficSummary,
    ZombieEndpoint,
)


def merge(
    previous: TrafficSummary | None, new: TrafficSummary, seen_at: datetime
) -> TrafficSummary:
    """Counts add up; an entry's last_seen is its newest request (or `seen_at` for logs
    without times)."""
    if previous is None:
        previous = TrafficSummary(requests=0)
    shadows: dict[tuple[str, str], ShadowEndpoint] = {
        (s.method, s.path): s for s in previous.shadow
    }
    for reported in new.shadow:
        key = (reported.method, reported.path)
        shadow = _stamped_shadow(reported, seen_at)
        known = shadows.get(key)
        shadows[key] = (
            shadow
            if known is None
            else ShadowEndpoint(
                shadow.method,
                shadow.path,
                known.count + shadow.count,
                known.success_count + shadow.success_count,
                tuple(dict.fromkeys((*known.examples, *shadow.examples)))[:MAX_EXAMPLES],
                _latest(known.last_seen, shadow.last_seen),
            )
        )
    zombies: dict[str, ZombieEndpoint] = {z.key: z for z in previous.zombie}
    for zombie in new.zombie:
        stamped = zombie if zombie.last_seen else _replace_zombie(zombie, seen_at)
        known_zombie = zombies.get(zombie.key)
        zombies[zombie.key] = (
            stamped
            if known_zombie is None
            else ZombieEndpoint(
                zombie.key,
                zombie.path,
                zombie.reason,
                known_zombie.count + zombie.count,
                known_zombie.success_count + zombie.success_count,
                _latest(known_zombie.last_seen, stamped.last_seen),
            )
        )
    documented = dict(previous.documented)
    for operation_key, count in new.documented.items():
        documented[operation_key] = documented.get(operation_key, 0) + count
    ranked = sorted(shadows.values(), key=lambda s: (-s.count, s.method, s.path))
    return TrafficSummary(
        requests=previous.requests + new.requests,
        documented=documented,
        shadow=tuple(ranked[:DEFAULT_MAX_SHADOW_ENDPOINTS]),
        shadow_omitted=max(0, len(ranked) - DEFAULT_MAX_SHADOW_ENDPOINTS),
        zombie=tuple(sorted(zombies.values(), key=lambda z: (-z.count, z.key))),
        first_seen=previous.first_seen or new.first_seen,
        last_seen=_latest(previous.last_seen, new.last_seen),
    )


def recent(summary: TrafficSummary, since: datetime) -> TrafficSummary:
    """Only the shadow and zombie endpoints seen at or after `since`."""
    return TrafficSummary(
        requests=summary.requests,
        documented=summary.documented,
        shadow=tuple(s for s in summary.shadow if s.last_seen and s.last_seen >= since),
        shadow_omitted=summary.shadow_omitted,
        zombie=tuple(z for z in summary.zombie if z.last_seen and z.last_seen >= since),
        first_seen=summary.first_seen,
        last_seen=summary.last_seen,
    )


def _stamped_shadow(shadow: ShadowEndpoint, seen_at: datetime) -> ShadowEndpoint:
    if shadow.last_seen is not None:
        return shadow
    return ShadowEndpoint(
        shadow.method, shadow.path, shadow.count, shadow.success_count, shadow.examples, seen_at
    )


def _replace_zombie(zombie: ZombieEndpoint, seen_at: datetime) -> ZombieEndpoint:
    return ZombieEndpoint(
        zombie.key, zombie.path, zombie.reason, zombie.count, zombie.success_count, seen_at
    )


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return max(first, second)
