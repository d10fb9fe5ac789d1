"""Traffic over time: this run's summary added to what earlier runs saw, and the part of it
inside the traffic window. Pure."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from checks.api_inventory.traffic import (
    DEFAULT_MAX_SHADOW_ENDPOINTS,
    MAX_EXAMPLES,
    ShadowEndpoint,
    TrafficSummary,
    UnmatchedPath,
    ZombieEndpoint,
    top_unmatched,
)


def merge(
    previous: TrafficSummary | None,
    new: TrafficSummary,
    seen_at: datetime,
    *,
    since: datetime | None = None,
    max_shadow_endpoints: int = DEFAULT_MAX_SHADOW_ENDPOINTS,
) -> TrafficSummary:
    """Counts add up; an entry's last_seen is its newest request (or `seen_at` for logs
    without times). Shadow endpoints last seen before `since` are dropped (no longer
    reported); beyond `max_shadow_endpoints`, new ones are dropped least served and least
    recent first, and counted as evicted: the ones kept from `previous` were reported and
    stay."""
    if previous is None:
        previous = TrafficSummary(requests=0)
    shadows: dict[tuple[str, str], ShadowEndpoint] = {
        (s.method, s.path): s
        for s in previous.shadow
        if since is None or (s.last_seen is not None and s.last_seen >= since)
    }
    reported = set(shadows)
    for reported_now in new.shadow:
        key = (reported_now.method, reported_now.path)
        shadow = _stamped_shadow(reported_now, seen_at)
        known = shadows.get(key)
        shadows[key] = shadow if known is None else _added(known, shadow)
    evicted_served = 0
    if len(shadows) > max_shadow_endpoints:
        newcomers = sorted(
            (key for key in shadows if key not in reported),
            key=lambda key: _score(shadows[key]),
        )
        for key in newcomers[: len(shadows) - max_shadow_endpoints]:
            del shadows[key]
            evicted_served += 1
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
    documented = Counter(previous.documented)
    documented.update(new.documented)
    unmatched = Counter(previous.unmatched)
    unmatched.update(new.unmatched)
    refused = Counter({(u.method, u.path): u.count for u in previous.unmatched_top})
    refused.update({(u.method, u.path): u.count for u in new.unmatched_top})
    ranked = sorted(shadows.values(), key=lambda s: (-s.count, s.method, s.path))
    return TrafficSummary(
        requests=previous.requests + new.requests,
        documented=dict(documented),
        shadow=tuple(ranked),
        unmatched=dict(sorted(unmatched.items())),
        unmatched_top=top_unmatched(UnmatchedPath(m, p, n) for (m, p), n in refused.items()),
        evicted=previous.evicted + new.evicted + evicted_served,
        evicted_served=previous.evicted_served + new.evicted_served + evicted_served,
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
        unmatched=summary.unmatched,
        unmatched_top=summary.unmatched_top,
        evicted=summary.evicted,
        evicted_served=summary.evicted_served,
        zombie=tuple(z for z in summary.zombie if z.last_seen and z.last_seen >= since),
        first_seen=summary.first_seen,
        last_seen=summary.last_seen,
    )


def _added(known: ShadowEndpoint, new: ShadowEndpoint) -> ShadowEndpoint:
    return ShadowEndpoint(
        new.method,
        new.path,
        known.count + new.count,
        known.served_count + new.served_count,
        known.auth_count + new.auth_count,
        tuple(dict.fromkeys((*known.examples, *new.examples)))[:MAX_EXAMPLES],
        known.first_seen or new.first_seen,
        _latest(known.last_seen, new.last_seen),
    )


def _score(shadow: ShadowEndpoint) -> tuple[bool, float, int]:
    last = shadow.last_seen.timestamp() if shadow.last_seen else 0.0
    return (shadow.served, last, shadow.count)


def _stamped_shadow(shadow: ShadowEndpoint, seen_at: datetime) -> ShadowEndpoint:
    if shadow.last_seen is not None:
        return shadow
    return ShadowEndpoint(
        shadow.method,
        shadow.path,
        shadow.count,
        shadow.served_count,
        shadow.auth_count,
        shadow.examples,
        shadow.first_seen or seen_at,
        seen_at,
    )


def _replace_zombie(zombie: ZombieEndpoint, seen_at: datetime) -> ZombieEndpoint:
    return ZombieEndpoint(
        zombie.key, zombie.path, zombie.reason, zombie.count, zombie.success_count, seen_at
    )


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return max(first, second)
