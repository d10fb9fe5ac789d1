"""The `cluster:` section: broker, election, workers, politeness, per-kind limits.

Validated at the config edge like every section; `monitor.settings` reads it. Without a
broker the section is inert and apivigil runs as a single node.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from monitor.durations import Duration
from monitor.model import CheckKind
from monitor.secret_files import read_secret_file

_STRICT = ConfigDict(extra="forbid", frozen=True)
REDIS_SCHEMES = ("redis", "rediss")
RABBITMQ_SCHEMES = ("amqp", "amqps")


class ElectionConfig(BaseModel):
    model_config = _STRICT

    heartbeat: Duration = Field(
        default=timedelta(seconds=1), description="how often the leader confirms its lock"
    )
    fence_after: Duration = Field(
        default=timedelta(seconds=5),
        description="the leader stops scheduling when its lock went unconfirmed this long",
    )
    retry: Duration = Field(
        default=timedelta(seconds=1), description="how often a follower tries to take the lock"
    )
    lock_id: int | None = Field(
        default=None,
        ge=-(2**63),
        lt=2**63,
        description="PostgreSQL advisory lock key (default: derived from the namespace)",
    )

    @model_validator(mode="after")
    def _fence_after_heartbeats(self) -> Self:
        if self.fence_after < self.heartbeat * 2:
            raise ValueError("fence_after must be at least two heartbeats")
        return self


class WorkerConfig(BaseModel):
    model_config = _STRICT

    threads: int = Field(default=8, ge=1, le=256, description="checks one worker runs at once")
    heartbeat_timeout: Duration = Field(
        default=timedelta(seconds=60),
        description="Redis: a worker silent this long is dead and its messages are redelivered",
    )
    dead_worker_sweep: float = Field(
        default=0.001,
        gt=0,
        le=1,
        description="Redis: chance per broker command to look for dead workers' messages",
    )


class PolitenessConfig(BaseModel):
    model_config = _STRICT

    per_host: int | None = Field(
        default=4, ge=1, description="checks at once against one host, over all workers"
    )
    redis: SecretStr | None = Field(
        default=None, description="Redis URL of the limit (default: the broker, if Redis)"
    )
    redis_file: Path | None = None

    @model_validator(mode="after")
    def _read_file(self) -> Self:
        if self.redis is not None and self.redis_file is not None:
            raise ValueError("give redis or redis_file, not both")
        if self.redis_file is not None:
            object.__setattr__(self, "redis", read_secret_file(self.redis_file, "redis_file"))
            object.__setattr__(self, "redis_file", None)
        if self.redis is not None:
            _require_scheme(self.redis.get_secret_value(), REDIS_SCHEMES, "redis")
        return self


class KindLimits(BaseModel):
    """Time limit and retries of one check kind's messages."""

    model_config = _STRICT

    time_limit: Duration | None = Field(
        default=None, description="hard limit of one execution (default: its timeout + 30s)"
    )
    max_retries: int = Field(
        default=3, ge=0, le=100, description="retries when a run cannot be recorded"
    )
    min_backoff: Duration = timedelta(seconds=5)
    max_backoff: Duration = timedelta(minutes=5)


class ClusterConfig(BaseModel):
    model_config = _STRICT

    broker: SecretStr | None = Field(
        default=None, description="redis://... or amqp://...; unset: single node"
    )
    broker_file: Path | None = Field(default=None, description="file holding the broker URL")
    namespace: str = Field(
        default="apivigil",
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$",
        description="prefix of queue names and Redis keys; one per installation",
    )
    election: ElectionConfig = ElectionConfig()
    worker: WorkerConfig = WorkerConfig()
    politeness: PolitenessConfig = PolitenessConfig()
    checks: dict[CheckKind, KindLimits] = Field(
        default_factory=dict, description="per check kind: time limit and retries"
    )

    @model_validator(mode="after")
    def _broker(self) -> Self:
        if self.broker is not None and self.broker_file is not None:
            raise ValueError("give broker or broker_file, not both")
        if self.broker_file is not None:
            object.__setattr__(self, "broker", read_secret_file(self.broker_file, "broker_file"))
            object.__setattr__(self, "broker_file", None)
        if self.broker is None:
            return self
        url = self.broker.get_secret_value()
        _require_scheme(url, REDIS_SCHEMES + RABBITMQ_SCHEMES, "broker")
        if (
            self.politeness.per_host is not None
            and self.politeness.redis is None
            and not self.broker_is_redis
        ):
            raise ValueError(
                "politeness.per_host needs Redis: set politeness.redis, "
                "or per_host: null to run without a per-host limit"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.broker is not None

    @property
    def broker_url(self) -> str:
        assert self.broker is not None, "cluster mode is not configured"
        return self.broker.get_secret_value()

    @property
    def broker_is_redis(self) -> bool:
        return self.broker is not None and urlsplit(self.broker_url).scheme in REDIS_SCHEMES

    @property
    def politeness_redis_url(self) -> str | None:
        if self.politeness.redis is not None:
            return self.politeness.redis.get_secret_value()
        return self.broker_url if self.broker_is_redis else None

    def limits(self, kind: CheckKind) -> KindLimits:
        return self.checks.get(kind, KindLimits())


def _require_scheme(url: str, schemes: tuple[str, ...], key: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise ValueError(f"{key}: use a {' or '.join(s + '://' for s in schemes)} URL")
