"""One measured apivigil run of the alerts benchmark, as its own process (run.py).

    worker.py SINK_URL DB_DIRECTORY FINDINGS TARGETS BATCH_SIZE WORKERS

Setup (timed, reported apart): a fresh SQLite store in DB_DIRECTORY (`upgrade_schema`),
TARGETS targets (`sync_targets`) and one ok cert_expiry run per target (`record`, hysteresis
open_after 1), together holding FINDINGS open `CERT-EXPIRES-SOON` findings. Then what the
daemon's alert loop does:

1. tick: `monitor.alerting.run_tick`, one transaction that reads the candidates, groups them
   (one route, group_by target, group_wait 0s) and writes group states and outbox rows;
2. drain: `alerts.outbox.Dispatcher.deliver_due()` with the real `WebhookNotifier` posting to
   SINK_URL, called until no undelivered row is left.

Logs go to stderr as the daemon's defaults (JSON, info). Prints one JSON line: seconds and
CPU seconds per phase, notifications and alerts, and the peak RSS (VmHWM) after each phase.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from findings import REMEDIATION, RULE_ID, TITLE, plan

from alerts.config import AlertsConfig
from alerts.outbox import Dispatcher
from alerts.webhook import WebhookNotifier
from monitor.alert_records import AlertRecords
from monitor.alerting import run_tick
from monitor.clock import SystemClock
from monitor.logs import configure_logging
from monitor.model import CheckKind, CheckOutput, CheckRun, Finding, RunStatus, Severity, Target
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore


def vm_hwm_bytes() -> int:
    """This process's own peak RSS so far (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def alerts_config(sink_url: str, batch_size: int, workers: int) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "receivers": [{"name": "hook", "webhook": {"url": sink_url, "secret": "bench-secret"}}],
            "routes": [
                {
                    "receivers": ["hook"],
                    "group_by": ["target"],
                    "group_wait": "0s",
                    "group_interval": "1m",
                }
            ],
            "dispatcher": {"batch_size": batch_size, "workers": workers},
        }
    )


def setup(store: SqlStore, findings: int, targets: int) -> None:
    clock = SystemClock()
    planned = plan(findings, targets)
    store.upgrade_schema()
    store.sync_targets(
        [Target(name, url=f"https://{name}.bench.apivigil.test") for name in planned], clock.now()
    )
    policy = HysteresisPolicy(open_after=1, resolve_after=1)
    for name, items in planned.items():
        now = clock.now()
        output = CheckOutput(
            findings=tuple(
                Finding(RULE_ID, Severity.CRITICAL, TITLE, i.subject, i.evidence, REMEDIATION)
                for i in items
            )
        )
        store.record(
            CheckRun(
                id=str(uuid.uuid4()),
                check=CheckKind.CERT_EXPIRY,
                target=name,
                started_at=now,
                finished_at=now,
                status=RunStatus.OK,
                output=output,
            ),
            policy,
        )


def run(
    sink_url: str, directory: Path, findings: int, targets: int, batch_size: int, workers: int
) -> dict[str, Any]:
    configure_logging("info", "json")  # the daemon's defaults, to stderr
    hwm_imports = vm_hwm_bytes()
    store = SqlStore(f"sqlite:///{directory / 'apivigil.db'}")
    config = alerts_config(sink_url, batch_size, workers)
    clock = SystemClock()

    started = time.perf_counter()
    setup(store, findings, targets)
    setup_seconds = time.perf_counter() - started
    hwm_setup = vm_hwm_bytes()

    cpu = time.process_time()
    started = time.perf_counter()
    result = run_tick(store, config, clock)
    tick_seconds = time.perf_counter() - started
    tick_cpu = time.process_time() - cpu
    hwm_tick = vm_hwm_bytes()

    assert config.receivers[0].webhook is not None
    notifier = WebhookNotifier("hook", config.receivers[0].webhook, clock)
    dispatcher = Dispatcher(AlertRecords(store), {"hook": notifier}, config.dispatcher, clock)
    delivered = passes = 0
    cpu = time.process_time()
    started = time.perf_counter()
    try:
        while AlertRecords(store).outbox_entries(pending_only=True, limit=1):
            report = dispatcher.deliver_due()
            passes += 1
            if report.retried or report.failed:
                failed = AlertRecords(store).outbox_entries(failed_only=True, limit=3)
                pending = AlertRecords(store).outbox_entries(pending_only=True, limit=3)
                errors = [e.last_error for e in failed + pending if e.last_error]
                raise RuntimeError(f"delivery failed in pass {passes}: {report}; {errors}")
            if report.delivered == 0:
                raise RuntimeError(f"pass {passes} delivered nothing, yet rows are pending")
            delivered += report.delivered
        drain_seconds = time.perf_counter() - started
        drain_cpu = time.process_time() - cpu
    finally:
        dispatcher.close()
    hwm_end = vm_hwm_bytes()
    outbox_rows = len(AlertRecords(store).outbox_entries(limit=10 * (targets + 1)))
    store.close()

    notifications = result.notifications
    return {
        "findings": findings,
        "targets": targets,
        "setup_seconds": setup_seconds,
        "tick_seconds": tick_seconds,
        "tick_cpu_seconds": tick_cpu,
        "drain_seconds": drain_seconds,
        "drain_cpu_seconds": drain_cpu,
        "total_seconds": tick_seconds + drain_seconds,
        "notifications": len(notifications),
        "groups": len({n.group_key for n in notifications}),
        "alerts": sum(len(n.firing) for n in notifications),
        "outbox_rows": outbox_rows,
        "delivered": delivered,
        "passes": passes,
        "hwm_imports_bytes": hwm_imports,
        "hwm_setup_bytes": hwm_setup,
        "hwm_tick_bytes": hwm_tick,
        "hwm_end_bytes": hwm_end,
        "finished_at": datetime.now(UTC).isoformat(),
    }


def main(argv: list[str]) -> int:
    sink_url, directory, findings, targets, batch_size, workers = argv
    report = run(
        sink_url, Path(directory), int(findings), int(targets), int(batch_size), int(workers)
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
