"""The Dramatiq side: the broker from config, and the one actor that carries check runs.

Each message names a (check, target, slot); the worker looks the job up in its own copy
of the config, so no parameter or secret travels through the broker. The actor is
declared explicitly on a broker built here (never on Dramatiq's global broker at import).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from monitor.cluster.config import ClusterConfig
from monitor.cluster.slots import run_slot
from monitor.model import CheckKind
from monitor.runner import CheckJob
from monitor.store.interface import RunSlot

ACTOR_NAME = "apivigil_run_check"
TIME_LIMIT_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class CheckMessage:
    """Run `check` on `target` for the slot due at `slot_at`."""

    check: CheckKind
    target: str
    slot_at: datetime
    enqueued_at: datetime

    @property
    def slot(self) -> RunSlot:
        return run_slot(self.check, self.target, self.slot_at)

    def to_args(self) -> tuple[str, str, str, str]:
        return (
            self.check.value,
            self.target,
            self.slot_at.isoformat(),
            self.enqueued_at.isoformat(),
        )

    @classmethod
    def from_args(cls, check: str, target: str, slot_at: str, enqueued_at: str) -> CheckMessage:
        """Raises ValueError for a message this apivigil cannot read."""
        return cls(
            check=CheckKind(check),
            target=target,
            slot_at=_utc(slot_at),
            enqueued_at=_utc(enqueued_at),
        )


Handler = Callable[[str, str, str, str], None]


class CheckQueue:
    """Sends check messages (the leader) and declares the actor that runs them (workers)."""

    def __init__(self, config: ClusterConfig, handler: Handler | None = None) -> None:
        self._config = config
        self.broker = build_broker(config)
        self.queue_name = f"{config.namespace}.checks"
        self.actor: dramatiq.Actor[[str, str, str, str], None] = dramatiq.Actor(
            handler or _not_here,
            broker=self.broker,
            actor_name=ACTOR_NAME,
            queue_name=self.queue_name,
            priority=0,
            options={},
        )

    def send(self, message: CheckMessage, job: CheckJob, delay: timedelta | None = None) -> None:
        """Enqueue one execution. Raises dramatiq.errors.DramatiqError (e.g. ConnectionError)
        or the broker client's error when the broker cannot be reached."""
        limits = self._config.limits(job.check)
        time_limit = limits.time_limit or job.timeout + TIME_LIMIT_MARGIN
        self.actor.send_with_options(
            args=message.to_args(),
            delay=_ms(delay) if delay else None,
            time_limit=_ms(time_limit),
            max_retries=limits.max_retries,
            min_backoff=_ms(limits.min_backoff),
            max_backoff=_ms(limits.max_backoff),
        )

    def close(self) -> None:
        self.broker.close()


def build_broker(config: ClusterConfig) -> dramatiq.Broker:
    """A Redis or RabbitMQ broker with Dramatiq's default middleware (time limits, retries)."""
    if config.broker_is_redis:
        return RedisBroker(  # type: ignore[no-untyped-call]
            url=config.broker_url,
            namespace=config.namespace,
            heartbeat_timeout=_ms(config.worker.heartbeat_timeout),
            maintenance_chance=max(1, round(config.worker.dead_worker_sweep * 1_000_000)),
        )
    from dramatiq.brokers.rabbitmq import RabbitmqBroker  # noqa: PLC0415  (pika is optional)

    broker: dramatiq.Broker = RabbitmqBroker(url=config.broker_url)
    return broker


def _not_here(*_args: Any) -> None:
    raise RuntimeError("check messages are run by `apivigil worker`, not by the scheduler")


def _ms(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds() * 1000))


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"naive time {text!r} in a check message")
    return moment.astimezone(UTC)
