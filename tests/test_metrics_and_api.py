"""/metrics, /healthz and /readyz read the store; values are checked through the registry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from monitor.api import ApiServer, Probes, create_app
from monitor.metrics import build_registry
from monitor.model import (
    CheckKind,
    CheckOutput,
    CheckRun,
    Finding,
    Observation,
    RunStatus,
    Severity,
    Target,
)
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.ports import free_port

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record_cert_run(store: SqlStore, target: str, not_after: float) -> None:
    labels = {
        "address": "127.0.0.1",
        "subject": "CN=a",
        "issuer": "CN=ca",
        "serial": "1",
        "position": "leaf",
    }
    run = CheckRun(
        id=str(uuid.uuid4()),
        check=CheckKind.CERT_EXPIRY,
        target=target,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=0.3),
        status=RunStatus.OK,
        output=CheckOutput(
            observations=(Observation("cert_not_after_timestamp_seconds", not_after, labels),),
            findings=(Finding("CERT-EXPIRED", Severity.CRITICAL, "t", "CN=a", "e", "r"),),
        ),
    )
    store.record(run, HysteresisPolicy())


@pytest.mark.integration
def test_collector_exposes_runs_findings_and_certificates(store: SqlStore) -> None:
    store.sync_targets([Target("api")], T0)
    record_cert_run(store, "api", 1_800_000_000.0)
    registry = build_registry(store)
    labels = {"check": "cert_expiry", "target": "api"}
    assert registry.get_sample_value("apivigil_check_runs_total", {**labels, "status": "ok"}) == 1
    assert registry.get_sample_value("apivigil_check_up", labels) == 1
    assert (
        registry.get_sample_value("apivigil_findings_open", {**labels, "severity": "critical"}) == 1
    )
    assert registry.get_sample_value("apivigil_findings_open", {**labels, "severity": "low"}) == 0
    assert (
        registry.get_sample_value(
            "apivigil_check_last_run_timestamp_seconds", {**labels, "status": "ok"}
        )
        == (T0 + timedelta(seconds=0.3)).timestamp()
    )
    assert (
        registry.get_sample_value(
            "apivigil_cert_not_after_timestamp_seconds",
            {
                "target": "api",
                "address": "127.0.0.1",
                "subject": "CN=a",
                "issuer": "CN=ca",
                "serial": "1",
                "position": "leaf",
            },
        )
        == 1_800_000_000.0
    )
    assert (
        registry.get_sample_value(
            "apivigil_check_duration_seconds_bucket", {"check": "cert_expiry", "le": "0.5"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("apivigil_check_duration_seconds_count", {"check": "cert_expiry"})
        == 1
    )
    assert registry.get_sample_value("apivigil_store_up") == 1


@pytest.mark.unit
def test_store_outage_is_a_metric_not_a_failed_scrape(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)  # schema never created: every query fails
    registry = build_registry(store)
    assert registry.get_sample_value("apivigil_store_up") == 0
    assert (
        registry.get_sample_value(
            "apivigil_build_info", {"version": __import__("monitor").__version__}
        )
        == 1
    )


def serve_api(store: SqlStore, alive: dict[str, bool]) -> tuple[ApiServer, str]:
    app = create_app(
        build_registry(store), Probes(scheduler_alive=lambda: alive["value"], store=lambda: store)
    )
    port = free_port()
    server = ApiServer(app, "127.0.0.1", port)
    server.start()
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.integration
def test_http_endpoints(store: SqlStore) -> None:
    alive = {"value": True}
    server, base = serve_api(store, alive)
    try:
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").json() == {"store": "ok", "schema": "current"}
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "apivigil_build_info" in metrics.text
        alive["value"] = False
        assert httpx.get(f"{base}/healthz").status_code == 503
    finally:
        server.stop()


@pytest.mark.integration
def test_readyz_is_false_when_the_schema_is_not_current(sqlite_url: str) -> None:
    server, base = serve_api(SqlStore(sqlite_url), {"value": True})
    try:
        response = httpx.get(f"{base}/readyz")
        assert (response.status_code, response.json()["schema"]) == (503, "empty")
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.hostile_peer
def test_readyz_tells_an_anonymous_caller_only_that_the_store_is_unavailable() -> None:
    # Given a PostgreSQL store on a loopback port where nothing listens
    closed = free_port()
    store = SqlStore(f"postgresql+psycopg://vigil_reader:pw-Xq81@127.0.0.1:{closed}/evidence")
    server, base = serve_api(store, {"value": True})
    try:
        response = httpx.get(f"{base}/readyz", timeout=30)
    finally:
        server.stop()
        store.close()

    assert response.status_code == 503
    assert response.json() == {"store": "unavailable"}
    for detail in ("vigil_reader", "127.0.0.1", str(closed), "evidence", "pw-Xq81", "psycopg"):
        assert detail not in response.text
