"""Every dashboard query against a real Prometheus scraping a real daemon.

The daemon watches local targets, healthy and broken: HTTPS servers whose certificates are
valid, expiring and expired; a port nobody listens on (a failing check); nginx for a TLS
posture scan; a host whose software has known vulnerabilities (an OSV index built here); a
configuration file edited between runs and then approved as the new baseline; an OpenAPI spec
that gains an operation, with shadow and zombie traffic in its access log; and two alert
receivers, one answering 404 (notifications fail for good), one answering 500 (they wait).
Prometheus (Debian package) scrapes it every second. Then each panel expression of each
committed dashboard, with Grafana's variables substituted, must parse and return a series;
so must the annotation and variable queries, and the alert rules in deploy/prometheus must
evaluate without errors.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from checks.patch_level.advisories import build_index
from monitor.certmaker import write_server_files
from monitor.metric_names import FAMILIES, REQUESTED, MetricType
from monitor.tlsserver import HttpsServer
from tests.support.chains import Chain
from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.osv_records import CVSS3_CRITICAL, CVSS3_MEDIUM, affected, osv_range, record
from tests.support.osv_records import write_directory as write_osv
from tests.support.ports import free_port
from tests.support.prometheus_server import PrometheusServer
from tests.support.tls_certs import TestPki
from tests.support.tls_servers import MODERN_CIPHERS, NginxBlock, NginxTls

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "dashboards" / "json"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "apivigil.rules.yml"
# What Grafana substitutes, as the issue fixes it for this test
BUILTINS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
REQUESTED_NAMES = {family.name for family in REQUESTED}

DPKG_STATUS = """\
Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u1)
Version: 3.0.11-1~deb12u1
"""
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
OK = {"responses": {"200": {"description": "ok"}}}
CATALOG_V1 = {"/items": {"get": OK}, "/legacy": {"get": {**OK, "deprecated": True}}}
CATALOG_V2 = {**CATALOG_V1, "/items/{id}": {"delete": OK}}


def openapi(paths: dict[str, Any]) -> Reply:
    document = {"openapi": "3.0.3", "info": {"title": "Catalog", "version": "1"}, "paths": paths}
    return Reply(200, {"Content-Type": "application/json"}, json.dumps(document).encode())


def access_log(path: Path) -> Path:
    """Traffic to a documented, a deprecated (zombie) and an undocumented (shadow) path."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    path.write_text(
        "".join(
            f'127.0.0.1 - - [{stamp}] "GET {route} HTTP/1.1" 200 12 "-" "curl/8"\n'
            for route in ("/items", "/legacy", "/admin/export")
        )
    )
    return path


@dataclass
class World:
    daemon: DaemonProcess
    prometheus: PrometheusServer
    targets: tuple[str, ...]


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


# one Ed25519 signing key (RFC 8037 appendix A.2's public key) for auth_posture's key metrics
JWKS = json.dumps(
    {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "kid": "signing-1",
                "alg": "Ed25519",
                "use": "sig",
            }
        ]
    }
).encode()


def _https(directory: Path, chain: Chain, name: str, **lifetime: float) -> HttpsServer:
    leaf = chain.leaf(f"{name}.apivigil.test", **lifetime)
    cert, key = write_server_files(directory, name, leaf, chain.intermediate)
    return HttpsServer(cert, key).start()


def _patch_host(directory: Path) -> dict[str, Any]:
    directory.mkdir()
    (directory / "status").write_text(DPKG_STATUS)
    (directory / "os-release").write_text(OS_RELEASE)
    (directory / "requirements.txt").write_text("Django==4.2.1\n")
    records = [
        record(
            "PYSEC-2024-1",
            affected("PyPI", "django", osv_range(("introduced", "0"), ("fixed", "4.2.8"))),
            severity=(("CVSS_V3", CVSS3_CRITICAL),),
            published="2024-01-02T00:00:00Z",
        ),
        record(
            "DSA-5532-1",
            affected(
                "Debian:12",
                "openssl",
                osv_range(("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")),
            ),
            severity=(("CVSS_V3", CVSS3_MEDIUM),),
            published="2024-02-01T00:00:00Z",
        ),
    ]
    index = directory / "advisories.db"
    build_index([write_osv(directory / "osv", records)], index)
    return {
        "interval": "3s",
        "advisories": str(index),
        "os_release": str(directory / "os-release"),
        "sources": [
            {
                "name": "os",
                "dpkg_status": str(directory / "status"),
                "os_release": str(directory / "os-release"),
            },
            {"name": "python", "requirements": str(directory / "requirements.txt")},
        ],
    }


def _config(
    directory: Path,
    port: int,
    https: dict[str, HttpsServer],
    nginx: NginxTls,
    pki: TestPki,
    web: ScriptedHttpServer,
    drift_file: Path,
) -> Path:
    tls = {
        "interval": "1h",
        "timeout": "90s",
        "server_name": pki.host,
        "trust_store": str(pki.root_pem),
        "network_timeout": "3s",
    }
    targets: list[dict[str, Any]] = [
        {
            "name": name,
            "url": server.url,
            "labels": {"env": "test", "team": "edge"},
            "checks": {"cert_expiry": {"server_name": f"{name}.apivigil.test", "interval": "2s"}},
        }
        for name, server in https.items()
    ]
    targets += [
        {
            "name": "unreachable",
            "url": f"https://127.0.0.1:{free_port()}",
            "checks": {"cert_expiry": {"interval": "2s", "connect_timeout": "1s"}},
        },
        {
            "name": "tls-modern",
            "url": f"https://127.0.0.1:{nginx.port('modern')}",
            "checks": {
                "tls_posture": tls,
                "http_posture": {"trust_store": str(pki.root_pem), "security_txt": False},
            },
        },
        {
            "name": "tls-legacy",
            "url": f"https://127.0.0.1:{nginx.port('legacy')}",
            "checks": {"tls_posture": tls},
        },
        {
            "name": "catalog",
            "url": web.url,
            "labels": {"env": "test", "team": "catalog"},
            "checks": {
                "api_inventory": {
                    "interval": "2s",
                    "spec_path": "/openapi.json",
                    "access_logs": [{"path": str(access_log(directory / "access.log"))}],
                },
                "auth_posture": {
                    "interval": "2s",
                    "spec_path": "/openapi.json",
                    "jwks_url": f"{web.url}/jwks.json",
                },
            },
        },
        {
            "name": "shop",
            "url": web.url,
            "labels": {"env": "test", "team": "shop"},
            "checks": {
                "patch_level": _patch_host(directory / "shop"),
                "config_drift": {
                    "interval": "2s",
                    "sources": [{"name": "app", "file": str(drift_file)}],
                },
            },
        },
    ]
    return write_config(
        directory / "apivigil.yaml",
        {
            "store": f"sqlite:///{directory / 'apivigil.db'}",
            "listen": f"127.0.0.1:{port}",
            "defaults": {"interval": "1h", "timeout": "20s", "jitter": "0s"},
            "scheduler": {"initial_spread": "1s"},
            "targets": targets,
            "alerts": {
                "receivers": [
                    {"name": "gone", "webhook": {"url": f"{web.url}/gone", "secret": "s"}},
                    {"name": "flaky", "webhook": {"url": f"{web.url}/flaky", "secret": "s"}},
                ],
                "routes": [
                    {"receivers": ["gone", "flaky"], "group_wait": "0s", "group_interval": "1s"}
                ],
                "dispatcher": {"initial_backoff": "1h", "max_backoff": "1h"},
            },
        },
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, chain: Chain) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("dashboards-e2e")
    pki = TestPki(directory / "pki")
    good = pki.good()
    blocks = [
        NginxBlock("modern", good.chain, good.key, hsts_max_age=63072000),
        NginxBlock(
            "legacy",
            good.chain,
            good.key,
            protocols="TLSv1 TLSv1.2",
            ciphers="ECDHE-RSA-AES128-SHA:" + MODERN_CIPHERS + ":@SECLEVEL=0",
        ),
    ]
    drift_file = directory / "app.ini"
    drift_file.write_text("[server]\nport = 8443\ndebug = false\n")
    https = {
        "healthy": _https(directory / "certs", chain, "healthy", days_left=90),
        "expiring": _https(directory / "certs", chain, "expiring", days_left=5, days_old=85),
        "expired": _https(directory / "certs", chain, "expired", days_left=-3, days_old=93),
    }
    port = free_port()
    try:
        with NginxTls(blocks, directory / "nginx") as nginx, ScriptedHttpServer() as web:
            web.replies["/"] = Reply(200, {"Server": "nginx"}, b"ok")
            web.replies["/openapi.json"] = openapi(CATALOG_V1)
            web.replies["/jwks.json"] = Reply(200, {"Content-Type": "application/json"}, JWKS)
            web.post_handlers["/gone"] = lambda _body: Reply(404, {}, b"no such hook")
            web.post_handlers["/flaky"] = lambda _body: Reply(500, {}, b"try later")
            config = _config(directory, port, https, nginx, pki, web, drift_file)
            with DaemonProcess(config, port, directory) as daemon:
                daemon.wait_healthy()
                with PrometheusServer([f"127.0.0.1:{port}"], rule_files=[RULES]) as prometheus:
                    _drive(prometheus, config, drift_file, web)
                    targets = (*https, "unreachable", "tls-modern", "tls-legacy", "catalog", "shop")
                    yield World(daemon, prometheus, targets)
                assert daemon.stop() == 0, daemon.log_text()[-3000:]
    finally:
        for server in https.values():
            server.stop()


def _drive(
    prometheus: PrometheusServer, config: Path, drift_file: Path, web: ScriptedHttpServer
) -> None:
    """Make every kind of series exist, transitions and an approval included."""
    prometheus.wait_for('apivigil_inventory_operations{state="shadow"} > 0', 60, "an inventory")
    web.replies["/openapi.json"] = openapi(CATALOG_V2)  # an operation added: a change
    drift = 'apivigil_findings_open{target="shop", check="config_drift"}'
    prometheus.wait_for(f"apivigil_baseline_age_seconds and on () {drift}", 60, "a baseline")
    drift_file.write_text("[server]\nport = 8443\ndebug = true\n")  # drift: debug changed
    prometheus.wait_for(f"sum({drift}) > 0", 90, "the drift finding")
    accepted = run_cli(
        "baseline", "accept", "shop", "--reason", "debug on for CHG-1", "--by", "test",
        "--config", str(config),
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    prometheus.wait_for("resets(apivigil_baseline_age_seconds[2m]) > 0", 90, "the approval")
    # the drift notification failed while Prometheus watched: the failure counter rose
    prometheus.wait_for("increase(apivigil_notifications_failed_total[1m]) > 0", 60, "a failure")
    for expr in (
        "apivigil_tls_grade_score",
        "apivigil_patch_vulnerabilities",
        "apivigil_notifications_failed_total",
        "apivigil_notifications_pending",
        "apivigil_inventory_changes_total",
        "apivigil_auth_operations",
        "apivigil_jwks_key_age_seconds",
        'apivigil_check_up{target="unreachable"} == 0',
    ):
        prometheus.wait_for(expr, 120, expr)
    # two samples of everything, so rate() and increase() over a window have an answer
    time.sleep(3)


def _dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, json.loads(path.read_text())) for path in sorted(DASHBOARD_DIR.glob("*.json"))
    ]


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def substitute(expr: str, dashboard: dict[str, Any]) -> str:
    """`expr` as Grafana would send it with every variable at its default ("All" -> `.*`)."""
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "datasource":
            continue
        if variable["type"] == "custom":
            value = str(variable["current"]["value"])
        else:
            value = variable.get("allValue") or ".*"
        expr = expr.replace("${" + variable["name"] + "}", value)
        expr = re.sub(rf"\${variable['name']}\b", lambda _m, v=value: v, expr)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


@pytest.mark.parametrize(("name", "dashboard"), _dashboards(), ids=lambda value: str(value)[:40])
def test_every_panel_query_returns_series(
    world: World, name: str, dashboard: dict[str, Any]
) -> None:
    empty = []
    checked = 0
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            expr = substitute(target["expr"], dashboard)
            if not world.prometheus.query(expr):
                empty.append(f"{panel['title']}: {expr}")
            checked += 1
    assert checked > 0
    assert not empty, f"{name}: queries without a series:\n" + "\n".join(empty)


def test_annotation_queries_mark_finding_transitions_and_baseline_approvals(
    world: World,
) -> None:
    """Grafana runs annotation queries as range queries; each must parse, and the config
    drift dashboard (whose finding opened, resolved and was approved while Prometheus
    watched) must mark both the transitions and the approval."""
    marked: dict[tuple[str, str], bool] = {}
    for name, dashboard in _dashboards():
        for annotation in dashboard["annotations"]["list"]:
            if "expr" not in annotation:
                continue  # Grafana's own annotations, not a Prometheus query
            expr = substitute(annotation["expr"], dashboard)
            marks = world.prometheus.query_range(expr, seconds=300, step="15s")
            marked[(name, annotation["name"])] = bool(marks)
    drift = "apivigil-config-drift.json"
    assert marked[(drift, "Finding transitions")]
    assert marked[(drift, "Baseline approvals")]
    assert marked[("apivigil-overview.json", "Finding transitions")]


def test_variable_queries_offer_the_targets_receivers_and_frameworks(world: World) -> None:
    for name, dashboard in _dashboards():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = substitute(variable["query"], dashboard)
            values = _variable_values(world.prometheus, query, variable.get("regex", ""))
            metric = re.search(r"label_values\((\w+)", query)
            if metric and metric.group(1) in REQUESTED_NAMES:
                assert values == set(), "a requested family is exported now: move it to FAMILIES"
                continue
            assert values, f"{name}: variable {variable['name']} offers nothing: {query}"
            if variable["name"] == "target":
                assert values == set(world.targets)
            if variable["name"] == "receiver":
                assert values == {"gone", "flaky"}


def _variable_values(prometheus: PrometheusServer, query: str, regex: str) -> set[str]:
    """What Grafana's Prometheus data source offers for a variable query."""
    if query.startswith("query_result(") and query.endswith(")"):
        lines = []
        for series in prometheus.query(query[len("query_result(") : -1]):
            labels = ",".join(f'{key}="{value}"' for key, value in series["metric"].items())
            lines.append(f"{{{labels}}} {series['value'][1]} {series['value'][0]}")
        pattern = re.compile(regex.strip("/"))
        return {match.group(1) for line in lines if (match := pattern.search(line))}
    found = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
    assert found, f"unexpected variable query {query}"
    selector, label = found.groups()
    return {series[label] for series in prometheus.series(selector) if label in series}


def test_the_scrape_carries_exactly_the_families_of_the_metric_table(world: World) -> None:
    scraped = {}
    for family in text_string_to_metric_families(world.daemon.metrics()):
        labels = {key for sample in family.samples for key in sample.labels} - {"le"}
        scraped[family.name] = (family.type, labels)
    table = {}
    for family in FAMILIES:
        name = (
            family.name.removesuffix("_total") if family.type is MetricType.COUNTER else family.name
        )
        table[name] = (family.type.value, set(family.labels))
        if family.open_labels and name in scraped:
            kind, labels = scraped[name]
            assert set(family.labels) <= labels, name
            scraped[name] = (kind, set(family.labels))  # its extra labels are the targets'
    assert scraped == table


def test_alert_rules_evaluate_cleanly_on_real_metrics(world: World) -> None:
    answer = httpx.get(f"{world.prometheus.base}/api/v1/rules", timeout=10).json()
    rules = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
    assert rules
    broken = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert not broken
    active = {
        series["metric"]["alertname"]
        for series in world.prometheus.query("ALERTS")
        if series["metric"].get("alertstate") in ("pending", "firing")
    }
    assert {
        "ApivigilCertificateExpiringCritical",
        "ApivigilCheckFailing",
        "ApivigilNotificationsFailing",
    } <= active
