"""The report claims no posture it has no evidence for: a day before any evaluation is "no
data" (blank in charts, out of the averages), and every target the config schedules appears,
with 0 % coverage, before it ever ran. Real runs against a real local HTTPS server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.cert_expiry.params import CertExpiryParams
from checks.egress import EgressPolicy
from monitor.certmaker import issue, write_server_files
from monitor.model import CheckKind, RunStatus, Target
from monitor.report.build import build_report_data
from monitor.report.formats import ReportFormat
from monitor.report.model import Expectation, ReportPeriod
from monitor.report.render import render_report
from monitor.runner import CheckJob, Runner
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from monitor.tlsserver import HttpsServer
from tests.support.clocks import ManualClock
from tests.support.daemon_process import run_cli, write_config
from tests.support.ports import free_port

DAY = timedelta(days=1)
PERIOD = timedelta(days=5)


def expect(*names: str) -> list[Expectation]:
    return [Expectation(CheckKind.CERT_EXPIRY, name, DAY, timedelta(hours=1)) for name in names]


@pytest.mark.integration
def test_a_fresh_store_reports_every_configured_target_and_no_posture(store: SqlStore) -> None:
    period = ReportPeriod.ending(datetime.now(UTC), PERIOD)
    expectations = expect("api", "web")

    data = build_report_data(store, period, expectations)

    assert data.summary.targets == 2
    assert [t.name for t in data.targets] == ["api", "web"]
    assert all(t.covered is False and t.posture is None for t in data.targets)
    assert data.summary.coverage == 0.0
    assert data.summary.posture is None
    assert all(d.posture is None for d in data.days)
    for format in ReportFormat:
        text = render_report(data, format)
        assert "api" in text, format
    markdown = render_report(data, ReportFormat.MD)
    assert "mean of targets) | no data |" in markdown


@pytest.mark.integration
def test_days_before_the_first_evaluation_have_no_posture_and_errors_are_no_evidence(
    store: SqlStore, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=4)
    clock = ManualClock(start)
    runner = Runner(clock=clock, history=store, egress=EgressPolicy())
    leaf = issue("api.test", not_before=now - timedelta(days=30), not_after=now + DAY * 10)
    with HttpsServer(*write_server_files(tmp_path, "api", leaf)) as server:
        api = Target("api", server.url)
        down = Target("down", f"https://127.0.0.1:{free_port()}")  # nothing listens
        store.sync_targets([api, down], start)
        params = CertExpiryParams(server_name="api.test")
        for day in (0, 1, 2, 3, 4):
            clock.current = start + DAY * day + timedelta(minutes=1)
            failed = runner.run(CheckJob(CheckKind.CERT_EXPIRY, down, params, DAY / 24 / 60))
            assert failed.status is not RunStatus.OK
            store.record(failed, HysteresisPolicy(1, 1))
            if day >= 3:  # api is first evaluated on the fourth day
                ran = runner.run(CheckJob(CheckKind.CERT_EXPIRY, api, params, DAY / 24))
                assert ran.status is RunStatus.OK, ran.error_message
                store.record(ran, HysteresisPolicy(1, 1))

    data = build_report_data(
        store, ReportPeriod.ending(now + timedelta(minutes=5), PERIOD), expect("api", "down")
    )

    targets = {t.name: t for t in data.targets}
    assert targets["down"].posture is None  # only errors: nothing was ever judged
    assert targets["api"].posture is not None
    assert data.summary.posture == targets["api"].posture  # the mean leaves "down" out
    postures = [d.posture for d in data.days]
    evaluated = [d.day for d in data.days if d.day >= (start + DAY * 3).date()]
    assert all(
        p is None for d, p in zip(data.days, postures, strict=True) if d.day not in evaluated
    )
    assert all(
        p is not None for d, p in zip(data.days, postures, strict=True) if d.day in evaluated
    )
    assert data.days[-1].posture == data.summary.posture


@pytest.mark.e2e
def test_the_report_command_on_a_fresh_store_lists_the_configured_targets(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": f"sqlite:///{tmp_path / 'fresh.db'}",
            "targets": [
                {"name": "api", "url": "https://127.0.0.1:1", "checks": {"cert_expiry": {}}},
                {"name": "web", "url": "https://127.0.0.1:2", "checks": {"cert_expiry": {}}},
            ],
        },
    )
    assert run_cli("db", "upgrade", "--config", str(config)).returncode == 0

    reported = run_cli("report", "--config", str(config), "--format", "json")

    assert reported.returncode == 0, reported.stderr
    report = json.loads(reported.stdout)
    assert report["summary"]["targets"] == 2
    assert report["summary"]["posture_score"] is None
    assert report["summary"]["coverage"] == 0.0
    targets = {t["name"]: t for t in report["targets"]}
    assert targets["api"]["url"] == "https://127.0.0.1:1"
    assert targets["web"]["posture_score"] is None
