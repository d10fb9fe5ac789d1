"""The daemon's own API, hardened: rate limits, size limits, strict inputs, errors without
traces, security headers, no CORS, TLS; and apivigil's own checks run against it. A
worker's API (`apivigil worker --listen`) is the same API with the same hardening."""

from __future__ import annotations

import hashlib
import ssl
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.registry import CollectorRegistry

from checks.api_inventory.params import ApiInventoryParams
from checks.egress import EgressPolicy
from checks.tls_posture.params import TlsPostureParams
from monitor.api import ApiServer, Probes, create_app
from monitor.api_security import RateLimiter
from monitor.api_v1 import api_router
from monitor.clock import SystemClock
from monitor.model import CheckKind, RunStatus, Severity, Target
from monitor.runner import CheckJob, CheckRun, Runner
from monitor.settings import ApiRateLimit, ApiScope, ApiToken
from monitor.store.sql import SqlStore
from tests.support.api_daemon import ADMIN_TOKEN, READ_TOKEN, daemon_config
from tests.support.cluster_processes import WorkerProcess, cluster_config, redis_namespace
from tests.support.daemon_process import DaemonProcess
from tests.support.ports import free_port
from tests.support.tls_certs import TestPki
from tests.support.waiting import wait_for_200

SEVERE = {Severity.HIGH, Severity.CRITICAL}
HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def severe(run: CheckRun) -> list[str]:
    assert run.status is RunStatus.OK, f"{run.error_reason}: {run.error_message}"
    assert run.output is not None
    return [f"{f.rule_id} {f.subject}" for f in run.output.findings if f.severity in SEVERE]


def no_trace(response: httpx.Response) -> None:
    assert "Traceback" not in response.text
    assert 'File "' not in response.text


@pytest.mark.e2e
def test_limits_strict_inputs_headers_and_no_cors(tmp_path: Path) -> None:
    port = free_port()
    limits = {"per_token_burst": 5, "per_token_rate": 0.1}
    limits |= {"per_address_burst": 3, "per_address_rate": 0.1}
    path = daemon_config(tmp_path, port, api_rate_limit=limits)
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    reader = {"Authorization": f"Bearer {READ_TOKEN}"}
    silence = {"matchers": {"target": "payments"}, "duration": "2h", "comment": "CHG-42"}
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        # Given a running daemon, when it is asked in many ways
        health = httpx.get(f"{base}/healthz", timeout=5)
        missing = httpx.get(f"{base}/nope", timeout=5)
        wrong_method = httpx.put(f"{base}/healthz", timeout=5)
        cross_origin = httpx.get(
            f"{base}/api/v1/silences", headers={**admin, "Origin": "https://evil.example"}
        )
        preflight = httpx.options(
            f"{base}/api/v1/silences",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        huge = httpx.post(
            f"{base}/api/v1/silences", content=b"{" + b" " * 100_000 + b"}", headers=admin
        )
        chunked = httpx.post(
            f"{base}/api/v1/silences",
            content=iter([b"{" + b" " * 30_000] * 4 + [b"}"]),  # no Content-Length
            headers={**admin, "Content-Type": "application/json"},
        )
        malformed = httpx.post(
            f"{base}/api/v1/silences",
            content=b'{"matchers": ',
            headers={**admin, "Content-Type": "application/json"},
        )
        mass_assignment = httpx.post(
            f"{base}/api/v1/silences",
            json={**silence, "created_by": "someone-else", "id": "chosen"},
            headers=admin,
        )
        spec = httpx.get(f"{base}/api/v1/openapi.json")
        burst = [httpx.get(f"{base}/api/v1/findings", headers=reader) for _ in range(6)]
        # failed attempts count against the address: then even good tokens wait
        bad = [
            httpx.get(f"{base}/api/v1/silences", headers={"Authorization": "Bearer guess"})
            for _ in range(4)
        ]
        locked_out = httpx.get(f"{base}/api/v1/silences", headers=admin)
        inventory = Runner(egress=EgressPolicy()).run(
            CheckJob(
                CheckKind.API_INVENTORY,
                Target("apivigil", url=base),
                ApiInventoryParams(spec_path="/api/v1/openapi.json"),
                timedelta(seconds=30),
            )
        )
        assert daemon.stop() == 0

    # Then every answer carries the security headers and no CORS grant
    for response in (health, missing, wrong_method, cross_origin, preflight, huge, burst[-1]):
        for name, value in HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
        assert "access-control-allow-origin" not in response.headers
        assert "strict-transport-security" not in response.headers  # plain HTTP
        assert "server" not in response.headers
    assert cross_origin.status_code == 200
    assert preflight.status_code == 405
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/json"
    # bodies over 64 KiB: refused by Content-Length, and while streaming
    assert huge.status_code == 413
    assert chunked.status_code == 413
    # strict input: malformed JSON and extra fields are 422, without traces
    assert malformed.status_code == 422
    assert mass_assignment.status_code == 422
    extra = {tuple(e["loc"]) for e in mass_assignment.json()["detail"]}
    assert extra == {("body", "created_by"), ("body", "id")}
    for response in (missing, malformed, mass_assignment, huge, chunked):
        no_trace(response)
    # the public document describes /api/v1 and the probes, each operation's bearer security
    document = spec.json()
    assert set(document["paths"]) == {
        "/healthz",
        "/readyz",
        "/api/v1/silences",
        "/api/v1/silences/{silence_id}",
        "/api/v1/findings",
    }
    for route, operations in document["paths"].items():
        for operation in operations.values():
            if route.startswith("/api/v1"):
                assert operation["security"] == [{"HTTPBearer": []}], route
    # rate limits: a burst of 5 per token, then 429 with Retry-After
    assert [r.status_code for r in burst] == [200] * 5 + [429]
    assert int(burst[-1].headers["retry-after"]) >= 1
    assert [r.status_code for r in bad] == [401, 401, 401, 429]
    assert locked_out.status_code == 429
    assert int(locked_out.headers["retry-after"]) >= 1
    # apivigil's own api_inventory check finds nothing high or critical
    assert severe(inventory) == []


@pytest.mark.e2e
def test_tls_is_modern_and_passes_apivigils_own_tls_posture_check(tmp_path: Path) -> None:
    pki = TestPki(tmp_path / "pki", host="127.0.0.1")
    cert = pki.good()
    port = free_port()
    tls = {"cert_file": str(cert.chain), "key_file": str(cert.key)}
    path = daemon_config(tmp_path, port, api_tls=tls)
    url = f"https://127.0.0.1:{port}"
    trusting = ssl.create_default_context(cafile=str(pki.root_pem))
    old_client = ssl.create_default_context(cafile=str(pki.root_pem))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deliberately old
        old_client.maximum_version = ssl.TLSVersion.TLSv1_1
    with DaemonProcess(path, port, tmp_path) as daemon:
        wait_for_200(f"{url}/healthz", daemon.process, daemon.log_text, 30, verify=trusting)
        health = httpx.get(f"{url}/healthz", verify=trusting, timeout=5)
        try:
            httpx.get(f"{url}/healthz", verify=old_client, timeout=5)
            old_refused = False
        except httpx.HTTPError:
            old_refused = True
        params = TlsPostureParams(
            trust_store=pki.root_pem, network_timeout=timedelta(seconds=5), network_retries=1
        )
        posture = Runner(egress=EgressPolicy()).run(
            CheckJob(
                CheckKind.TLS_POSTURE,
                Target("apivigil", url=url),
                params,
                timedelta(seconds=120),
            )
        )
        assert daemon.stop() == 0

    assert health.status_code == 200
    assert health.headers["strict-transport-security"].startswith("max-age=")
    assert old_refused
    assert posture.output is not None
    print(
        "tls_posture findings:",
        [(f.rule_id, f.severity.value, f.evidence) for f in posture.output.findings],
    )
    assert severe(posture) == []


@pytest.mark.e2e
@pytest.mark.hostile_peer
@pytest.mark.postgres
def test_a_workers_api_serves_only_tls_and_enforces_the_daemons_limits(
    tmp_path: Path, postgres_url: str
) -> None:
    # Given `apivigil worker --listen` with the daemon's api_tls, tokens and rate limits
    pki = TestPki(tmp_path / "pki", host="127.0.0.1")
    cert = pki.good()
    port = free_port()
    namespace_keys = redis_namespace()
    cluster = cluster_config(postgres_url, next(namespace_keys), port, targets=[])
    path = daemon_config(
        tmp_path,
        port,
        **{key: value for key, value in cluster.items() if key != "listen"},
        api_tls={"cert_file": str(cert.chain), "key_file": str(cert.key)},
        api_rate_limit={"per_token_burst": 3, "per_token_rate": 0.1},
    )
    url = f"https://127.0.0.1:{port}"
    trusting = ssl.create_default_context(cafile=str(pki.root_pem))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    reader = {"Authorization": f"Bearer {READ_TOKEN}"}
    worker = WorkerProcess(path, tmp_path, "--listen", f"127.0.0.1:{port}", "--migrate")
    try:
        wait_for_200(f"{url}/healthz", worker.process, worker.log_text, 30, verify=trusting)
        # When it is asked over plain HTTP, with oversized bodies and too often
        try:
            plain: httpx.Response | str = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        except httpx.HTTPError as error:
            plain = type(error).__name__
        with httpx.Client(base_url=url, verify=trusting, timeout=5) as client:
            ready = client.get("/readyz")
            huge = client.post(
                "/api/v1/silences", content=b"{" + b" " * 100_000 + b"}", headers=admin
            )
            chunked = client.post(
                "/api/v1/silences",
                content=iter([b"{" + b" " * 30_000] * 4 + [b"}"]),  # no Content-Length
                headers={**admin, "Content-Type": "application/json"},
            )
            burst = [client.get("/api/v1/findings", headers=reader) for _ in range(4)]
        assert worker.stop() == 0
    finally:
        if worker.process.poll() is None:
            worker.kill()
        next(namespace_keys, None)

    # Then plain HTTP gets no answer, and TLS answers carry HSTS and the daemon's limits
    assert isinstance(plain, str), f"plain HTTP answered {plain.status_code}"
    assert ready.json()["role"] == "worker"
    assert ready.headers["strict-transport-security"].startswith("max-age=")
    assert (huge.status_code, chunked.status_code) == (413, 413)
    assert [r.status_code for r in burst] == [200] * 3 + [429]
    assert int(burst[-1].headers["retry-after"]) >= 1


@pytest.mark.integration
def test_an_unhandled_error_is_answered_with_an_id_and_no_trace() -> None:
    app: FastAPI = create_app(
        CollectorRegistry(), Probes(scheduler_alive=lambda: True, store=_no_store)
    )

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail /etc/apivigil")

    answer = TestClient(app, raise_server_exceptions=False).get("/boom")

    assert answer.status_code == 500
    document = answer.json()
    assert document["error"] == "internal error"
    assert len(document["id"]) == 36
    assert "secret" not in answer.text
    assert answer.headers["x-frame-options"] == "DENY"


def _no_store() -> SqlStore:
    raise AssertionError("not used")


@pytest.mark.unit
def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, monotonic=lambda: now[0])

    spent = [limiter.take("ops") for _ in range(4)]
    now[0] += 0.5
    after_refill = limiter.take("ops")

    assert spent[:3] == [0.0, 0.0, 0.0]
    assert spent[3] == 0.5
    assert after_refill == 0.0
    assert limiter.take("other") == 0.0


@contextmanager
def served_api(tmp_path: Path, trusted_proxies: Sequence[str] = (), **limits: Any) -> Iterator[str]:
    """The app with /api/v1 on a real uvicorn on 127.0.0.1; yields its base URL."""
    store = SqlStore(f"sqlite:///{tmp_path / 'api.db'}")
    store.upgrade_schema()
    app = create_app(CollectorRegistry(), Probes(scheduler_alive=lambda: True, store=lambda: store))
    tokens = [
        ApiToken(name="ops", scope=ApiScope.ADMIN, sha256=_sha256(ADMIN_TOKEN)),
        ApiToken(name="grafana", sha256=_sha256(READ_TOKEN)),
    ]
    app.include_router(api_router(store, tokens, SystemClock(), ApiRateLimit(**limits)))
    port = free_port()
    networks = [ip_network(cidr) for cidr in trusted_proxies]
    server = ApiServer(app, "127.0.0.1", port, trusted_proxies=networks)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        store.close()


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.integration
@pytest.mark.hostile_peer
def test_a_trailing_slash_never_redirects_to_the_host_the_caller_named(tmp_path: Path) -> None:
    reader = {"Authorization": f"Bearer {READ_TOKEN}"}
    with served_api(tmp_path) as base:
        answers = [
            httpx.get(f"{base}{path}", headers={**reader, "Host": "evil.example"}, timeout=5)
            for path in ("/api/v1/findings/", "/api/v1/silences/", "/healthz/", "/metrics/")
        ]

    for answer in answers:
        assert answer.status_code == 404, (answer.request.url, answer.headers)
        assert "location" not in answer.headers


@pytest.mark.integration
@pytest.mark.hostile_peer
def test_x_forwarded_for_from_an_untrusted_peer_does_not_escape_the_rate_limit(
    tmp_path: Path,
) -> None:
    limits = {"per_address_burst": 3, "per_address_rate": 0.01}
    bad = {"Authorization": "Bearer guess"}
    with served_api(tmp_path, **limits) as base:
        # Given a client that claims a new address on every failed attempt
        spoofed = [
            httpx.get(
                f"{base}/api/v1/findings",
                headers={**bad, "X-Forwarded-For": f"203.0.113.{n}"},
                timeout=5,
            ).status_code
            for n in range(6)
        ]

    # then its own (loopback) address is what the rate limit counts
    assert spoofed == [401, 401, 401, 429, 429, 429]


@pytest.mark.integration
def test_x_forwarded_for_is_believed_from_a_configured_proxy(tmp_path: Path) -> None:
    limits = {"per_address_burst": 3, "per_address_rate": 0.01}
    bad = {"Authorization": "Bearer guess"}
    with served_api(tmp_path, trusted_proxies=["127.0.0.0/8"], **limits) as base:
        # Given clients behind a configured proxy, each with its own address
        distinct = [
            httpx.get(
                f"{base}/api/v1/findings",
                headers={**bad, "X-Forwarded-For": f"203.0.113.{n}"},
                timeout=5,
            ).status_code
            for n in range(6)
        ]
        # when one of them keeps failing
        same = [
            httpx.get(
                f"{base}/api/v1/findings",
                headers={**bad, "X-Forwarded-For": "198.51.100.7"},
                timeout=5,
            ).status_code
            for _ in range(4)
        ]

    assert distinct == [401] * 6
    assert same == [401, 401, 401, 429]


SILENCE_BODY = '{"matchers": {"target": "payments"}, "comment": "CHG-42", '
BAD_NUMBERS = {
    "NaN duration": SILENCE_BODY + '"duration": NaN}',
    "Infinity duration": SILENCE_BODY + '"duration": Infinity}',
    "1e308 duration": SILENCE_BODY + '"duration": 1e308}',
    "1e400 duration": SILENCE_BODY + '"duration": 1e400}',
    "999999999999d": SILENCE_BODY + '"duration": "999999999999d"}',
    "999999999d": SILENCE_BODY + '"duration": "999999999d"}',
    "huge seconds": SILENCE_BODY + '"duration": "' + "9" * 400 + '"}',
    "NaN ends_at": SILENCE_BODY + '"ends_at": NaN}',
    "1e308 ends_at": SILENCE_BODY + '"ends_at": 1e308}',
    "NaN matcher": '{"matchers": {"target": NaN}, "comment": "c", "duration": "1h"}',
    "-Infinity comment": '{"matchers": {"target": "a"}, "comment": -Infinity, "duration": "1h"}',
}


@pytest.mark.integration
@pytest.mark.hostile_peer
@pytest.mark.parametrize("body", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_a_non_finite_or_overflowing_number_in_a_silence_is_422(tmp_path: Path, body: str) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    with served_api(tmp_path) as base:
        answer = httpx.post(f"{base}/api/v1/silences", content=body, headers=admin, timeout=10)

    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["msg"]
    no_trace(answer)
