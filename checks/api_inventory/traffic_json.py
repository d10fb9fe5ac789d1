"""A TrafficSummary as the snapshot stores it, and back. Snapshots written before shadow
endpoints meant served templates only are read too: their entries nothing answered are left
out (they were refused noise)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from checks.api_inventory.traffic import (
    ShadowEndpoint,
    TrafficSummary,
    UnmatchedPath,
    ZombieEndpoint,
    ZombieReason,
)


def to_json(summary: TrafficSummary) -> dict[str, Any]:
    return {
        "requests": summary.requests,
        "documented": dict(summary.documented),
        "shadow": [
            {
                "method": s.method,
                "path": s.path,
                "count": s.count,
                "served_count": s.served_count,
                "auth_count": s.auth_count,
                "examples": list(s.examples),
                "first_seen": _time_json(s.first_seen),
                "last_seen": _time_json(s.last_seen),
            }
            for s in summary.shadow
        ],
        "unmatched": dict(summary.unmatched),
        "unmatched_top": [
            {"method": u.method, "path": u.path, "count": u.count} for u in summary.unmatched_top
        ],
        "evicted": summary.evicted,
        "evicted_served": summary.evicted_served,
        "zombie": [
            {
                "key": z.key,
                "path": z.path,
                "reason": z.reason.value,
                "count": z.count,
                "success_count": z.success_count,
                "last_seen": _time_json(z.last_seen),
            }
            for z in summary.zombie
        ],
        "first_seen": _time_json(summary.first_seen),
        "last_seen": _time_json(summary.last_seen),
    }


def from_json(document: Mapping[str, Any]) -> TrafficSummary:
    return TrafficSummary(
        requests=document["requests"],
        documented=dict(document["documented"]),
        shadow=tuple(
            ShadowEndpoint(
                method=s["method"],
                path=s["path"],
                count=s["count"],
                served_count=s.get("served_count", s.get("success_count", 0)),
                auth_count=s.get("auth_count", 0),
                examples=tuple(s["examples"]),
                first_seen=_time(s.get("first_seen")),
                last_seen=_time(s["last_seen"]),
            )
            for s in document["shadow"]
            if s.get("served_count", s.get("success_count", 0)) or s.get("auth_count", 0)
        ),
        unmatched=dict(document.get("unmatched", {})),
        unmatched_top=tuple(
            UnmatchedPath(u["method"], u["path"], u["count"])
            for u in document.get("unmatched_top", ())
        ),
        evicted=document.get("evicted", 0),
        evicted_served=document.get("evicted_served", 0),
        zombie=tuple(
            ZombieEndpoint(
                key=z["key"],
                path=z["path"],
                reason=ZombieReason(z["reason"]),
                count=z["count"],
                success_count=z["success_count"],
                last_seen=_time(z["last_seen"]),
            )
            for z in document["zombie"]
        ),
        first_seen=_time(document["first_seen"]),
        last_seen=_time(document["last_seen"]),
    )


def _time_json(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
