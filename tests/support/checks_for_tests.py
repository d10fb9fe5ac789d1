"""Real Check subclasses with controllable behaviour, for runner, scheduler and daemon tests."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import ClassVar

from checks.interface import (
    BadInput,
    Check,
    CheckContext,
    CheckMisconfigured,
    CheckParams,
    TargetUnreachable,
)
from monitor.model import (
    CheckKind,
    CheckOutput,
    CheckRun,
    Finding,
    RunStatus,
    Severity,
    Target,
)
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore


class Behaviour(CheckParams):
    sleep_seconds: float = 0.0
    fail_with: str | None = None  # unreachable | misconfigured | bad_input | crash
    block_on: str | None = None  # host:port to read from with no timeout (a stuck check)


class ScriptedCheck(Check[Behaviour, str]):
    """Sleeps, then fails as told or reports one finding; counts concurrency per target."""

    kind: ClassVar[CheckKind] = CheckKind.CERT_EXPIRY
    params_model: ClassVar[type[CheckParams]] = Behaviour

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[str, int] = defaultdict(int)
        self.max_running: dict[str, int] = defaultdict(int)
        self.max_running_overall = 0
        self.calls: dict[str, int] = defaultdict(int)

    def collect(self, target: Target, params: Behaviour, context: CheckContext) -> str:
        with self.lock:
            self.calls[target.name] += 1
            self.running[target.name] += 1
            self.max_running[target.name] = max(
                self.max_running[target.name], self.running[target.name]
            )
            self.max_running_overall = max(self.max_running_overall, sum(self.running.values()))
        try:
            time.sleep(params.sleep_seconds)
            if params.block_on is not None:
                host, port = params.block_on.rsplit(":", 1)
                with socket.create_connection((host, int(port))) as stuck:
                    stuck.recv(1)  # until the server says something or hangs up
            match params.fail_with:
                case "unreachable":
                    raise TargetUnreachable("nobody home", subject=target.name)
                case "misconfigured":
                    raise CheckMisconfigured("cannot work like this")
                case "bad_input":
                    raise BadInput("garbage", subject="file.pem")
                case "crash":
                    raise ZeroDivisionError("division by zero")
            return target.name
        finally:
            with self.lock:
                self.running[target.name] -= 1

    def evaluate(self, raw: str, params: Behaviour, now: datetime) -> CheckOutput:
        return CheckOutput(findings=(Finding("TEST-RULE", Severity.HIGH, "t", raw, "e", "r"),))


def record_snapshot(
    store: SqlStore, check: CheckKind, target: str, snapshot: dict[str, object]
) -> None:
    """Record an ok run of `check` on `target` that kept `snapshot` (newest so far)."""
    started = datetime.now(UTC)
    store.record(
        CheckRun(
            id=str(uuid.uuid4()),
            check=check,
            target=target,
            started_at=started,
            finished_at=started,
            status=RunStatus.OK,
            output=CheckOutput(snapshot=snapshot),
        ),
        HysteresisPolicy(),
    )
