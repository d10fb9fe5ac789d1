"""Nine days of history in a store (runs, findings, drift and inventory changes, expectations)
for the report's tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from checks.api_inventory.params import ApiInventoryParams
from checks.cert_expiry.params import CertExpiryParams
from checks.config_drift.params import ConfigDriftParams
from checks.egress import EgressPolicy
from checks.interface import CheckParams
from checks.tls_posture.params import TlsPostureParams
from monitor.baselines import accept
from monitor.certmaker import issue, write_server_files
from monitor.model import (
    CheckKind,
    RunStatus,
    Target,
)
from monitor.report.build import build_report_data
from monitor.report.model import Expectation, ReportData, ReportPeriod
from monitor.runner import CheckJob, Runner
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from monitor.tlsserver import HttpsServer
from tests.support.clocks import ManualClock
from tests.support.ports import free_port

DAYS = 9
IMMEDIATE = HysteresisPolicy(open_after=1, resolve_after=1)
SPEC_V1 = '{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/orders": {"get": {"responses": {"200": {"description": "ok"}}}}}}'  # noqa: E501
SPEC_V2 = SPEC_V1.replace(
    '"/orders": {',
    '"/refunds": {"post": {"responses": {"201": {"description": "made"}}}}, "/orders": {',
)


@dataclass
class History:
    """Nine days of daily runs of four checks on four local targets, ending at `now`."""

    store: SqlStore
    now: datetime
    servers: list[HttpsServer]
    expectations: list[Expectation]

    @property
    def period(self) -> ReportPeriod:
        return ReportPeriod.ending(self.now, timedelta(days=DAYS + 1))

    def data(self, **options: Any) -> ReportData:
        return build_report_data(self.store, self.period, self.expectations, **options)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.store.close()

    @classmethod
    def record(cls, store: SqlStore, directory: Path) -> History:
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(days=DAYS)
        clock = ManualClock(start)
        runner = Runner(clock=clock, history=store, egress=EgressPolicy())
        root = issue("report root CA", ca=True, not_after=now + timedelta(days=3650))
        servers, jobs = [], {}
        for name, days_left in (("shop", 20), ("billing", 10)):
            leaf = issue(
                f"{name}.test",
                root,
                not_before=now - timedelta(days=60),
                not_after=now + timedelta(days=days_left),
            )
            cert, key = write_server_files(directory / "tls", name, leaf)
            servers.append(HttpsServer(cert, key).start())
            jobs[name] = servers[-1].url
        config = directory / "ledger.yaml"
        config.write_text("db:\n  host: db1\n  pool: 5\n")
        spec = directory / "catalog.json"
        spec.write_text(SPEC_V1)
        targets = [
            Target("shop", jobs["shop"], {"env": "prod"}),
            Target("billing", jobs["billing"], {"env": "prod"}),
            Target("ledger", labels={"env": "prod"}),
            Target("catalog", labels={"env": "dev"}),
            Target("legacy", f"https://127.0.0.1:{free_port()}"),  # nothing listens there
        ]
        store.sync_targets(targets, start)
        by_name = {t.name: t for t in targets}
        schedule: list[tuple[CheckKind, str, CheckParams]] = [
            (CheckKind.CERT_EXPIRY, "shop", CertExpiryParams(server_name="shop.test")),
            (CheckKind.CERT_EXPIRY, "billing", CertExpiryParams(server_name="billing.test")),
            (CheckKind.CONFIG_DRIFT, "ledger", ConfigDriftParams(sources=[{"file": str(config)}])),
            (CheckKind.API_INVENTORY, "catalog", ApiInventoryParams(spec=str(spec))),
            (CheckKind.CERT_EXPIRY, "legacy", CertExpiryParams()),
        ]
        for day in range(DAYS):
            if day == 3:
                config.write_text("db:\n  host: db2\n  pool: 5\n")  # drift ...
            if day == 6:
                config.write_text("db:\n  host: db1\n  pool: 5\n")  # ... reverted
            if day == 7:
                config.write_text("db:\n  host: db1\n  pool: 5\n  ssl: true\n")
            if day == 5:
                spec.write_text(SPEC_V2)  # an operation added
            for minute, (kind, name, params) in enumerate(schedule):
                clock.current = start + timedelta(days=day, minutes=minute)
                run = runner.run(CheckJob(kind, by_name[name], params, timedelta(seconds=20)))
                store.record(run, IMMEDIATE)
            if day == 8:
                clock.current = start + timedelta(days=day, minutes=30)
                accept(
                    store,
                    CheckKind.CONFIG_DRIFT,
                    "ledger",
                    [],
                    "TLS to the database is the new standard",
                    "alice",
                    clock.current,
                )
        clock.current = start + timedelta(days=DAYS - 1, hours=1)
        tls = TlsPostureParams(server_name="shop.test")  # the test root is not trusted
        run = runner.run(CheckJob(CheckKind.TLS_POSTURE, by_name["shop"], tls, timedelta(60)))
        assert run.status is RunStatus.OK, run.error_message
        store.record(run, IMMEDIATE)
        day = timedelta(days=1)
        expectations = [
            Expectation(kind, name, day, timedelta(hours=1)) for kind, name, _ in schedule
        ]
        expectations.append(Expectation(CheckKind.TLS_POSTURE, "shop", day * 7))
        return cls(store, now, servers, expectations)
