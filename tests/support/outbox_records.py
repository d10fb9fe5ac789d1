"""What the alerting tests record and deliver through: a recording receiver, an alerts config
with a fast route, and check runs with findings recorded at a manual clock's time."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from alerts.config import AlertsConfig
from alerts.interface import NotifierError
from alerts.model import Notification
from monitor.model import (
    CheckKind,
    CheckOutput,
    CheckRun,
    ErrorReason,
    Finding,
    RunStatus,
    Severity,
)
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.clocks import ManualClock

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


class RecordingNotifier:
    """A receiver that accepts, or fails the way it is told to."""

    def __init__(self, name: str = "hook") -> None:
        self.name = name
        self.received: list[Notification] = []
        self.failure: NotifierError | None = None
        self.lock = threading.Lock()

    def close(self) -> None:
        """Nothing to release."""

    def send(self, notification: Notification) -> None:
        if self.failure is not None:
            raise self.failure
        with self.lock:
            self.received.append(notification)


CONFIG = AlertsConfig.model_validate(
    {
        "receivers": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"}}],
        "routes": [{"receivers": ["hook"], "group_wait": "0s", "group_interval": "1m"}],
        "check_failing_after": 3,
        "dispatcher": {"initial_backoff": "10s", "max_backoff": "5m", "max_age": "1h"},
    }
)


def record(
    store: SqlStore,
    clock: ManualClock,
    target: str,
    *findings: Finding,
    status: RunStatus = RunStatus.OK,
) -> None:
    clock.current += timedelta(seconds=1)
    ok = status is RunStatus.OK
    store.record(
        CheckRun(
            id=str(uuid.uuid4()),
            check=CheckKind.TLS_POSTURE,
            target=target,
            started_at=clock.now(),
            finished_at=clock.now(),
            status=status,
            error_reason=None if ok else ErrorReason.UNREACHABLE,
            error_message=None if ok else "connection refused",
            output=CheckOutput(findings=findings) if ok else None,
        ),
        HysteresisPolicy(open_after=1, resolve_after=1),
    )


def tls10(subject: str = "payments:443") -> Finding:
    return Finding(
        "TLS-PROTOCOL-TLS10", Severity.HIGH, "TLS 1.0 enabled", subject, "accepted", "disable it"
    )
