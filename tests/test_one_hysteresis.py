"""One hysteresis: the store alone opens and resolves findings, so /metrics and the alert
channel cannot disagree whatever a route says (issue 20 §3)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from alerts.config import AlertsConfig
from alerts.model import NotificationKind
from monitor.alert_records import AlertRecords
from monitor.alerting import run_tick
from monitor.metrics import build_registry
from monitor.model import CheckKind, CheckOutput, CheckRun, Finding, RunStatus, Target
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.clocks import ManualClock
from tests.support.outbox_records import T0, tls10

pytestmark = pytest.mark.integration

GLOBAL = HysteresisPolicy(open_after=1, resolve_after=2)

# Any route config: none, a delay before notifying, and the deprecated route hysteresis at,
# below and above the global one (`config check` refuses the last; the engine ignores all).
ROUTES: list[dict[str, Any]] = [
    {},
    {"notify_after": 2},
    {"open_after": 1, "resolve_after": 1},
    {"resolve_after": 2},
    {"open_after": 3, "resolve_after": 5},
    {"resolve_after": 5, "send_resolved": False},
]


def config(route: dict[str, Any]) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "receivers": [
                {"name": "hook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"}}
            ],
            "routes": [
                {"receivers": ["hook"], "group_wait": "0s", "group_interval": "1m", **route}
            ],
        }
    )


def record(store: SqlStore, clock: ManualClock, *findings: Finding) -> None:
    clock.current += timedelta(minutes=10)  # more than any wait of the route
    store.record(
        CheckRun(
            id=str(uuid.uuid4()),
            check=CheckKind.TLS_POSTURE,
            target="payments",
            started_at=clock.now(),
            finished_at=clock.now(),
            status=RunStatus.OK,
            output=CheckOutput(findings=findings),
        ),
        GLOBAL,
    )


def open_in_metrics(store: SqlStore) -> float:
    families = {family.name: family for family in build_registry(store).collect()}
    return sum(sample.value for sample in families["apivigil_findings_open"].samples)


def firing_in_channel(store: SqlStore) -> set[str]:
    """What the receiver was last told fires (every group's notified alerts)."""
    with AlertRecords(store).tick_transaction() as records:
        return {fp for state in records.group_states() for fp in state.notified}


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: str(route) or "none")
def test_a_finding_resolved_in_metrics_is_resolved_in_the_alert_channel(
    store: SqlStore, route: dict[str, Any]
) -> None:
    store.sync_targets([Target("payments")], T0)
    clock, alerts = ManualClock(T0), config(route)
    fingerprint = tls10().fingerprint(CheckKind.TLS_POSTURE, "payments")
    told: list[NotificationKind] = []
    runs = [(tls10(),), (tls10(),), (), (), (), (), ()]  # seen twice, then gone for good
    for findings in runs:
        record(store, clock, *findings)
        told += [n.kind for n in run_tick(store, alerts, clock).notifications]
        clock.current += timedelta(minutes=2)  # past group_interval: nothing left to batch
        told += [n.kind for n in run_tick(store, alerts, clock).notifications]
        is_open = open_in_metrics(store) == 1
        assert firing_in_channel(store) <= ({fingerprint} if is_open else set())

    assert open_in_metrics(store) == 0
    assert firing_in_channel(store) == set()
    sent_resolved = route.get("send_resolved", True)
    assert told == [NotificationKind.FIRING] + ([NotificationKind.RESOLVED] * sent_resolved)


def test_the_channel_says_resolved_in_the_same_tick_the_store_resolves(store: SqlStore) -> None:
    store.sync_targets([Target("payments")], T0)
    clock, alerts = ManualClock(T0), config({"resolve_after": 5})
    record(store, clock, tls10())
    (fired,) = run_tick(store, alerts, clock).notifications
    record(store, clock)
    assert open_in_metrics(store) == 1
    assert run_tick(store, alerts, clock).notifications == ()

    record(store, clock)  # the second run without it: resolved (hysteresis.resolve_after 2)

    assert open_in_metrics(store) == 0
    (resolved,) = run_tick(store, alerts, clock).notifications
    assert (fired.kind, resolved.kind) == (NotificationKind.FIRING, NotificationKind.RESOLVED)
