"""A per-host concurrency limit shared by every worker: a leased semaphore in Redis.

Each holder is a member of a sorted set scored by its lease's end (Redis server time,
so workers' clocks do not matter). Expired leases are dropped before counting, so a
worker killed while holding a place frees it when its lease ends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import redis

# KEYS[1] semaphore; ARGV: limit, lease ms, token. Returns 1 when a place was taken.
_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class HostPlace:
    """A place taken under a host's limit; give it back with `release`."""

    host: str
    token: str


class HostLimiter(Protocol):
    def try_acquire(self, host: str, lease: timedelta) -> HostPlace | None:
        """A place for one check against `host`, held at most `lease`; None when the host
        is at its limit. Raises redis.RedisError when the limit cannot be consulted."""
        ...

    def release(self, place: HostPlace) -> None:
        """Give the place back (errors are the caller's to log; the lease ends anyway)."""
        ...


class UnlimitedHosts:
    """No per-host limit (`politeness.per_host: null`)."""

    def try_acquire(self, host: str, lease: timedelta) -> HostPlace | None:
        return HostPlace(host, "")

    def release(self, place: HostPlace) -> None:
        return None


class RedisHostLimiter:
    def __init__(self, client: redis.Redis, namespace: str, per_host: int) -> None:
        self._client = client
        self._prefix = f"{namespace}:politeness:"
        self._per_host = per_host
        self._acquire = client.register_script(_ACQUIRE)

    @classmethod
    def from_url(cls, url: str, namespace: str, per_host: int) -> RedisHostLimiter:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, namespace, per_host)

    def try_acquire(self, host: str, lease: timedelta) -> HostPlace | None:
        token = uuid.uuid4().hex
        lease_ms = max(1, round(lease.total_seconds() * 1000))
        taken = self._acquire(keys=[self._prefix + host], args=[self._per_host, lease_ms, token])
        return HostPlace(host, token) if taken == 1 else None

    def release(self, place: HostPlace) -> None:
        self._client.zrem(self._prefix + place.host, place.token)

    def holders(self, host: str) -> int:
        """Places currently taken for `host` (expired leases included until the next take)."""
        return int(self._client.zcard(self._prefix + host))

    def close(self) -> None:
        self._client.close()
