"""From a finding in the store to a real Alertmanager and on to its webhook, and back when
the finding resolves: the whole path, engine and outbox included."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.alertmanager import AlertmanagerNotifier
from alerts.config import AlertsConfig
from alerts.outbox import Dispatcher
from monitor.alert_records import AlertRecords
from monitor.alerting import run_tick
from monitor.clock import SystemClock
from monitor.model import CheckKind, CheckOutput, CheckRun, Finding, RunStatus, Severity, Target
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.alertmanager_server import AlertmanagerServer, WebhookSink

pytestmark = pytest.mark.e2e


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as receiving:
        yield receiving


@pytest.fixture
def alertmanager(sink: WebhookSink) -> Iterator[AlertmanagerServer]:
    with AlertmanagerServer(sink.url) as server:
        yield server


def record(store: SqlStore, *findings: Finding) -> None:
    now = datetime.now(UTC)
    store.record(
        CheckRun(
            id=str(uuid.uuid4()),
            check=CheckKind.CERT_EXPIRY,
            target="payments",
            started_at=now,
            finished_at=now,
            status=RunStatus.OK,
            output=CheckOutput(findings=findings),
        ),
        HysteresisPolicy(open_after=1, resolve_after=1),
    )


def about(status: str) -> Any:
    return lambda payload: (
        payload["status"] == status
        and any(a["labels"].get("alertname") == "CERT-EXPIRED" for a in payload["alerts"])
    )


def test_a_finding_fires_in_alertmanager_and_resolves_after_the_finding_does(
    store: SqlStore, alertmanager: AlertmanagerServer, sink: WebhookSink
) -> None:
    config = AlertsConfig.model_validate(
        {
            "receivers": [{"name": "am", "alertmanager": {"url": alertmanager.url}}],
            "routes": [{"receivers": ["am"], "group_wait": "0s", "group_interval": "1s"}],
        }
    )
    clock = SystemClock()  # Alertmanager judges endsAt by its own clock: real time
    store.sync_targets([Target("payments", labels={"team": "pay"})], clock.now())
    notifier = AlertmanagerNotifier("am", config.receivers[0].alertmanager)  # type: ignore[arg-type]
    dispatcher = Dispatcher(AlertRecords(store), {"am": notifier}, config.dispatcher, clock)
    expired = Finding(
        "CERT-EXPIRED",
        Severity.CRITICAL,
        "certificate expired",
        "leaf sha256:ab",
        "not after",
        "renew",
    )

    record(store, expired)
    run_tick(store, config, clock)
    assert dispatcher.deliver_due().delivered == 1
    firing = sink.wait_for(about("firing"), timeout=15)
    assert firing["alerts"][0]["labels"]["team"] == "pay"
    assert not any(about("resolved")(p) for p in sink.payloads)

    record(store)  # the certificate was renewed: the finding resolves
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while datetime.now(UTC) < deadline and not run_tick(store, config, clock).notifications:
        pass
    assert dispatcher.deliver_due().delivered == 1
    resolved = sink.wait_for(about("resolved"), timeout=15)
    assert resolved["alerts"][0]["status"] == "resolved"
    dispatcher.close()
