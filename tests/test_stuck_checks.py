"""A check stuck on its target keeps later runs from starting: those runs count as failing,
so CHECK-FAILING fires instead of monitoring stopping without a word."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.config import AlertsConfig
from checks.egress import EgressPolicy
from monitor.alerting import run_tick
from monitor.model import CheckKind, RunStatus, Target
from monitor.runner import CheckJob, Runner
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.checks_for_tests import Behaviour, ScriptedCheck
from tests.support.clocks import ManualClock
from tests.support.hostile_servers import Tarpit

pytestmark = [pytest.mark.integration, pytest.mark.hostile_peer]

CONFIG = AlertsConfig.model_validate(
    {
        "receivers": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"}}],
        "routes": [{"receivers": ["hook"], "group_wait": "0s", "group_interval": "1m"}],
        "check_failing_after": 3,
    }
)


def stuck_runs(store: SqlStore, tarpit: Tarpit, *, abandon_after_first: bool) -> list[RunStatus]:
    """Three runs of a check that blocks on `tarpit` with no timeout of its own, each
    recorded; with `abandon_after_first` the runner is shutting down after the first."""
    store.sync_targets([Target("stuck")], datetime.now(UTC))
    runner = Runner(checks={CheckKind.CERT_EXPIRY: ScriptedCheck()}, egress=EgressPolicy())
    job = CheckJob(
        CheckKind.CERT_EXPIRY,
        Target("stuck"),
        Behaviour(block_on=tarpit.address),
        timedelta(seconds=0.3),
    )
    statuses = []
    for number in range(3):
        run = runner.run(job)
        store.record(run, HysteresisPolicy())
        statuses.append(run.status)
        if abandon_after_first and number == 0:
            runner.abandon_running()
    return statuses


def failing_alerts(store: SqlStore) -> list[str]:
    clock = ManualClock(datetime.now(UTC) + timedelta(seconds=1))
    notifications = run_tick(store, CONFIG, clock).notifications
    return [alert.rule_id for n in notifications for alert in n.firing]


def test_a_check_stuck_on_its_target_fires_check_failing_after_the_threshold(
    store: SqlStore,
) -> None:
    # Given a check that never returns: its first run times out, the next two find it
    # still running
    with Tarpit() as tarpit:
        statuses = stuck_runs(store, tarpit, abandon_after_first=False)
        assert statuses == [RunStatus.TIMEOUT, RunStatus.SKIPPED, RunStatus.SKIPPED]
        # Then the third failed run in a row raises the check-failing alert
        assert failing_alerts(store) == ["CHECK-FAILING"]


def test_runs_abandoned_at_shutdown_do_not_count_as_failing(store: SqlStore) -> None:
    with Tarpit() as tarpit:
        statuses = stuck_runs(store, tarpit, abandon_after_first=True)
        assert statuses == [RunStatus.TIMEOUT, RunStatus.SKIPPED, RunStatus.SKIPPED]
        assert failing_alerts(store) == []
