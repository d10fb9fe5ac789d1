"""Which part an apivigil instance plays; /readyz and logs report it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SINGLE = "single"  # no cluster configured: this process schedules and runs checks
    LEADER = "leader"  # holds the election lock: schedules and enqueues
    FOLLOWER = "follower"  # waits to take over; serves metrics and the API meanwhile
    WORKER = "worker"  # `apivigil worker`: runs checks from the queue
