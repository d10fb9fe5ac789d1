"""config_drift end to end: real files, a real HTTP server, real commands, a real store."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from checks.config_drift.params import ConfigDriftParams
from checks.egress import EgressPolicy
from monitor.baselines import BaselineError, accept
from monitor.model import (
    FIRST_OBSERVATION,
    CheckKind,
    CheckRun,
    FindingStatus,
    RunStatus,
    Severity,
    StoredFinding,
    Target,
)
from monitor.runner import CheckJob, Runner
from monitor.store.interface import FindingQuery, HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.checks_for_tests import record_snapshot
from tests.support.clocks import ManualClock
from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import free_port
from tests.support.store_dump import store_text

IMMEDIATE = HysteresisPolicy(open_after=1, resolve_after=1)


class Drift:
    """Runs config_drift on one target through the real runner and store."""

    def __init__(self, store: SqlStore, target: Target, params: dict[str, Any]) -> None:
        self.store = store
        self.target = target
        self.params = ConfigDriftParams.model_validate(params)
        self.clock = ManualClock(datetime(2026, 11, 1, tzinfo=UTC))
        self.runner = Runner(clock=self.clock, history=store, egress=EgressPolicy())

    def run(self, policy: HysteresisPolicy = IMMEDIATE) -> CheckRun:
        self.clock.current += timedelta(minutes=10)
        run = self.runner.run(
            CheckJob(CheckKind.CONFIG_DRIFT, self.target, self.params, timedelta(seconds=30))
        )
        assert run.status is RunStatus.OK, run.error_message
        self.store.record(run, policy)
        return run

    def findings(self, *statuses: FindingStatus) -> dict[str, StoredFinding]:
        wanted = frozenset(statuses or (FindingStatus.OPEN,))
        return {
            f.subject: f
            for f in self.store.findings(
                FindingQuery(target=self.target.name, check=CheckKind.CONFIG_DRIFT, statuses=wanted)
            )
        }


@pytest.fixture
def web() -> Iterator[ScriptedHttpServer]:
    with ScriptedHttpServer() as server:
        yield server


@pytest.mark.integration
def test_first_observation_becomes_the_approved_baseline_without_findings(
    store: SqlStore, tmp_path: Path
) -> None:
    config = tmp_path / "app.yaml"
    config.write_text("server:\n  port: 8443\n  tls: true\n")
    drift = Drift(store, Target("payments"), {"sources": [{"file": str(config)}]})

    run = drift.run()

    assert run.output is not None
    assert run.output.findings == ()
    (baseline,) = store.baseline_history(CheckKind.CONFIG_DRIFT, "payments")
    assert baseline.version == 1
    assert baseline.approved_by == FIRST_OBSERVATION
    assert baseline.content == {f"file:{config}": {"server.port": "8443", "server.tls": "true"}}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "before", "after", "changed", "added", "removed"),
    [
        (
            "nginx.conf",
            "http { server { listen 443 ssl; server_tokens off; "
            "add_header X-Frame-Options DENY; } }",
            "http { server { listen 8443 ssl; add_header X-Frame-Options DENY; "
            "add_header X-Debug on; } }",
            "http.server.listen",
            "http.server.add_header X-Debug",
            "http.server.server_tokens",
        ),
        (
            "app.ini",
            "[db]\nhost = db1\npool = 5\n",
            "[db]\nhost = db2\n[cache]\nttl = 60\n",
            "db.host",
            "cache.ttl",
            "db.pool",
        ),
        (
            "app.json",
            json.dumps({"a": {"b": 1, "c": [1, 2]}, "gone": True}),
            json.dumps({"a": {"b": 2, "c": [1, 2], "d": None}}),
            "a.b",
            "a.d",
            "gone",
        ),
        (
            "app.toml",
            "[log]\nlevel = 'info'\nold = 1\n",
            "[log]\nlevel = 'debug'\nnew = 2\n",
            "log.level",
            "log.new",
            "log.old",
        ),
        (
            "sysctl.txt",
            "net.ipv4.ip_forward = 0\nkernel.kptr_restrict = 1\n",
            "net.ipv4.ip_forward = 1\nfs.suid_dumpable = 2\n",
            "net.ipv4.ip_forward",
            "fs.suid_dumpable",
            "kernel.kptr_restrict",
        ),
        (
            "httpd.conf",
            "<VirtualHost *:443>\n  ServerName api\n  SSLProtocol -all +TLSv1.2\n"
            "  Header always set X-Frame-Options DENY\n</VirtualHost>\n",
            "<VirtualHost *:443>\n  ServerName api\n  SSLProtocol all\n"
            "  Header always set X-Content-Type-Options nosniff\n</VirtualHost>\n",
            "VirtualHost *:443 api.SSLProtocol",
            "VirtualHost *:443 api.Header always set X-Content-Type-Options",
            "VirtualHost *:443 api.Header always set X-Frame-Options",
        ),
    ],
)
def test_an_edited_file_raises_added_removed_and_changed_then_resolves_when_restored(
    store: SqlStore,
    tmp_path: Path,
    name: str,
    before: str,
    after: str,
    changed: str,
    added: str,
    removed: str,
) -> None:
    path = tmp_path / name
    path.write_text(before)
    source = f"file:{path}"
    drift = Drift(store, Target("api"), {"sources": [{"file": str(path)}]})
    drift.run()

    path.write_text(after)
    drift.run()
    found = drift.findings()

    assert {f.rule_id for f in found.values()} == {"DRIFT-ADDED", "DRIFT-REMOVED", "DRIFT-CHANGED"}
    assert found[f"{source}|{changed}"].rule_id == "DRIFT-CHANGED"
    assert found[f"{source}|{added}"].rule_id == "DRIFT-ADDED"
    assert found[f"{source}|{removed}"].rule_id == "DRIFT-REMOVED"
    assert "before:" in found[f"{source}|{changed}"].evidence

    path.write_text(before)
    drift.run()
    assert drift.findings() == {}
    assert len(drift.findings(FindingStatus.RESOLVED)) == len(found)


@pytest.mark.integration
def test_http_headers_drift_hsts_removed_is_high_and_a_new_server_banner_is_found(
    store: SqlStore, web: ScriptedHttpServer
) -> None:
    secure = {
        "Strict-Transport-Security": "max-age=63072000",
        "X-Frame-Options": "DENY",
        "X-Request-Id": "a1",
        "Date-Like": "x",
    }
    web.replies["/"] = Reply(200, secure)
    drift = Drift(store, Target("api", url=web.url), {"sources": [{"http": {"path": "/"}}]})
    drift.run()

    web.replies["/"] = Reply(200, {"X-Frame-Options": "DENY", "Server": "nginx/1.18.0"})
    drift.run()
    found = drift.findings()

    hsts = found["http:/|header.strict-transport-security"]
    assert (hsts.rule_id, hsts.severity) == ("DRIFT-REMOVED", Severity.HIGH)
    assert "max-age=63072000" in hsts.evidence
    banner = found["http:/|header.server"]
    assert banner.rule_id == "DRIFT-ADDED"
    assert "nginx/1.18.0" in banner.evidence
    assert not any("x-request-id" in subject for subject in found)


@pytest.mark.integration
def test_volatile_headers_never_drift_even_when_every_header_is_kept(
    store: SqlStore, web: ScriptedHttpServer
) -> None:
    web.replies["/"] = Reply(200, {"ETag": '"1"', "X-Request-Id": "1", "Age": "1"})
    drift = Drift(store, Target("api", url=web.url), {"sources": [{"http": {"headers": ["*"]}}]})
    drift.run()
    web.replies["/"] = Reply(200, {"ETag": '"2"', "X-Request-Id": "2", "Age": "7"})
    drift.run()

    assert drift.findings() == {}


@pytest.mark.integration
def test_json_configuration_endpoint_keeps_only_the_selected_keys(
    store: SqlStore, web: ScriptedHttpServer
) -> None:
    def settings(cors: str, build: int) -> bytes:
        return json.dumps(
            {"cors": {"origins": cors, "credentials": False}, "build": build}
        ).encode()

    web.replies["/config"] = Reply(
        200, {"Content-Type": "application/json"}, settings("a.example", 1)
    )
    drift = Drift(
        store,
        Target("api", url=web.url),
        {"sources": [{"http": {"path": "/config", "json_keys": ["cors.*"]}}]},
    )
    drift.run()
    web.replies["/config"] = Reply(200, {}, settings("*", 2))
    drift.run()

    assert set(drift.findings()) == {"http:/config|body.cors.origins"}


@pytest.mark.integration
def test_a_command_source_runs_an_argument_list_and_its_output_drifts(
    store: SqlStore, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.write_text("mode=strict\n")
    argv = [sys.executable, "-c", f"print(open({str(state)!r}).read())"]
    drift = Drift(store, Target("api"), {"sources": [{"name": "mode", "command": {"argv": argv}}]})
    drift.run()
    state.write_text("mode=permissive\n")
    drift.run()

    finding = drift.findings()["mode|mode"]
    assert finding.rule_id == "DRIFT-CHANGED"
    assert "strict" in finding.evidence
    assert "permissive" in finding.evidence


@pytest.mark.integration
def test_a_directory_source_reports_files_added_removed_and_changed(
    store: SqlStore, tmp_path: Path
) -> None:
    root = tmp_path / "conf.d"
    root.mkdir()
    (root / "a.conf").write_text("x = 1\n")
    (root / "b.bin").write_bytes(b"\0\1\2")
    drift = Drift(store, Target("api"), {"sources": [{"name": "confd", "directory": str(root)}]})
    drift.run()
    (root / "a.conf").write_text("x = 2\n")
    (root / "b.bin").unlink()
    (root / "c.conf").write_text("y = 1\n")
    drift.run()

    found = drift.findings()
    assert found["confd|a.conf:x"].rule_id == "DRIFT-CHANGED"
    assert found["confd|a.conf#sha256"].rule_id == "DRIFT-CHANGED"
    assert found["confd|b.bin#sha256"].rule_id == "DRIFT-REMOVED"
    assert found["confd|c.conf:y"].rule_id == "DRIFT-ADDED"


@pytest.mark.integration
@pytest.mark.hostile_peer
def test_a_file_over_the_limit_in_a_watched_directory_is_named_unavailable_not_read_whole(
    store: SqlStore, tmp_path: Path
) -> None:
    # Given a watched directory where one file grows past max_bytes after the baseline
    root = tmp_path / "conf.d"
    root.mkdir()
    (root / "a.conf").write_text("x = 1\n")
    (root / "big.log").write_text("line\n")
    params = {"max_bytes": 1024, "sources": [{"name": "confd", "directory": str(root)}]}
    drift = Drift(store, Target("api"), params)
    drift.run()
    (root / "big.log").write_bytes(b"y" * 4096)
    (root / "a.conf").write_text("x = 2\n")

    run = drift.run()

    # Then that file is unavailable, by name and limit, and the rest still drifts
    assert run.output is not None
    [unavailable] = [f for f in run.output.findings if f.rule_id == "DRIFT-SOURCE-UNAVAILABLE"]
    assert unavailable.subject == "confd|big.log"
    assert "more than 1024 bytes" in unavailable.evidence
    assert drift.findings()["confd|a.conf:x"].rule_id == "DRIFT-CHANGED"


@pytest.mark.integration
@pytest.mark.hostile_peer
def test_a_symlink_to_a_directory_in_a_watched_directory_is_drift_like_any_entry(
    store: SqlStore, tmp_path: Path
) -> None:
    # Given a watched directory holding a link to a directory, and a link back to itself
    root = tmp_path / "conf.d"
    root.mkdir()
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "v1" / "inside.conf").write_text("z = 1\n")
    (root / "current").symlink_to(tmp_path / "v1")
    (root / "loop").symlink_to(root)
    drift = Drift(store, Target("api"), {"sources": [{"name": "confd", "directory": str(root)}]})
    first = drift.run()
    # When the link is pointed elsewhere and a new link appears
    (root / "current").unlink()
    (root / "current").symlink_to(tmp_path / "v2")
    (root / "added").symlink_to(tmp_path / "v1")
    drift.run()

    # Then each link is an entry holding its target, never walked into (no loop)
    assert first.output is not None
    assert first.output.snapshot is not None
    entries = first.output.snapshot["confd"]
    assert entries == {"current#link": str(tmp_path / "v1"), "loop#link": str(root)}
    found = drift.findings()
    assert found["confd|current#link"].rule_id == "DRIFT-CHANGED"
    assert found["confd|added#link"].rule_id == "DRIFT-ADDED"


@pytest.mark.integration
def test_tls_posture_snapshot_is_a_source(store: SqlStore) -> None:
    record_snapshot(store, CheckKind.TLS_POSTURE, "api", {"protocols": {"TLS 1.0": False}})
    drift = Drift(store, Target("api"), {"sources": [{"snapshot": "tls_posture"}]})
    drift.run()
    record_snapshot(store, CheckKind.TLS_POSTURE, "api", {"protocols": {"TLS 1.0": ["AES128-SHA"]}})
    drift.run()

    finding = drift.findings()['snapshot:tls_posture|protocols["TLS 1.0"]']
    assert finding.severity is Severity.HIGH


@pytest.mark.integration
def test_ignore_rules_hide_drift_until_they_expire(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text(json.dumps({"replicas": 3, "feature": "off"}))
    drift = Drift(
        store,
        Target("api"),
        {
            "sources": [{"name": "app", "file": str(path)}],
            "ignore": [
                {"path": "app|replicas", "reason": "autoscaled"},
                {"path": "feature", "reason": "rollout until Dec 1", "until": "2026-12-01"},
            ],
        },
    )
    drift.run()
    path.write_text(json.dumps({"replicas": 9, "feature": "on"}))
    drift.run()
    assert drift.findings() == {}

    drift.clock.current = datetime(2026, 12, 2, tzinfo=UTC)
    drift.run()
    assert set(drift.findings()) == {"app|feature"}


@pytest.mark.integration
def test_baseline_accept_resolves_findings_and_history_keeps_every_version(
    store: SqlStore, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text('{"a": 1}')
    second.write_text('{"b": 1}')
    drift = Drift(
        store,
        Target("api"),
        {
            "sources": [
                {"name": "first", "file": str(first)},
                {"name": "second", "file": str(second)},
            ]
        },
    )
    drift.run()
    first.write_text('{"a": 2}')
    second.write_text('{"b": 2}')
    drift.run()
    assert set(drift.findings()) == {"first|a", "second|b"}

    accepted_at = drift.clock.now()
    result = accept(
        store, CheckKind.CONFIG_DRIFT, "api", ["first"], "CHG-1234 raise a", "alice", accepted_at
    )

    assert [t.subject for t in result.transitions] == ["first|a"]
    assert set(drift.findings()) == {"second|b"}
    drift.run()
    assert set(drift.findings()) == {"second|b"}
    history = store.baseline_history(CheckKind.CONFIG_DRIFT, "api")
    assert [(b.version, b.approved_by, b.reason) for b in history] == [
        (1, FIRST_OBSERVATION, "first observation of first, second"),
        (2, "alice", "CHG-1234 raise a"),
    ]
    assert history[1].content == {"first": {"a": "2"}, "second": {"b": "1"}}
    assert history[1].approved_at == accepted_at
    (entry, *_) = store.audit_entries()
    assert (entry.actor, entry.action, entry.detail["reason"]) == (
        "alice",
        "baseline.approve",
        "CHG-1234 raise a",
    )


@pytest.mark.integration
def test_accept_without_an_observation_or_reason_is_refused(store: SqlStore) -> None:
    with pytest.raises(BaselineError, match="no config_drift run"):
        accept(store, CheckKind.CONFIG_DRIFT, "nobody", [], "why", "bob", datetime.now(UTC))
    with pytest.raises(BaselineError, match="reason"):
        accept(store, CheckKind.CONFIG_DRIFT, "nobody", [], "  ", "bob", datetime.now(UTC))


BILLION_LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}]"
        for i in range(9)
    ]
)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("directory", "a directory, not a regular file"),
        ("missing", "No such file"),
        ("billion-laughs", "more than"),
        ("binary", "binary content"),
        ("http-500", "HTTP 500"),
        ("http-timeout", "no answer"),
    ],
)
def test_a_broken_source_is_unavailable_and_never_reads_as_everything_removed(
    store: SqlStore,
    tmp_path: Path,
    web: ScriptedHttpServer,
    breakage: str,
    reason: str,
) -> None:
    config = tmp_path / "app.yaml"
    config.write_text("a: 1\nb: 2\n")
    other = tmp_path / "other.json"
    other.write_text('{"x": 1}')
    web.replies["/"] = Reply(200, {"X-Frame-Options": "DENY"})
    broken_http = breakage.startswith("http")
    broken: dict[str, Any] = (
        {"name": "broken", "http": {"url": web.url + "/", "timeout": "1s"}}
        if broken_http
        else {"name": "broken", "file": {"path": str(config), "format": "yaml"}}
    )
    drift = Drift(
        store, Target("api"), {"sources": [broken, {"name": "other", "file": str(other)}]}
    )
    drift.run()
    if broken_http:
        web.replies["/"] = Reply(200, {})  # X-Frame-Options removed: drift to keep
    else:
        config.write_text("a: 1\nb: 3\n")
    other.write_text('{"x": 2}')
    drift.run()
    before = drift.findings()
    assert "other|x" in before
    assert any(s.startswith("broken|") for s in before)

    if breakage == "directory":
        config.unlink()
        config.mkdir()
    elif breakage == "missing":
        config.unlink()
    elif breakage == "billion-laughs":
        config.write_text(BILLION_LAUGHS)
    elif breakage == "binary":
        config.write_bytes(b"\x7fELF\0\0\0binary")
    elif breakage == "http-500":
        web.replies["/"] = Reply(500, {}, b"oops")
    elif breakage == "http-timeout":
        web.replies["/"] = Reply(200, {}, delay=3)
    other.write_text('{"x": 3}')
    for _ in range(3):
        run = drift.run(HysteresisPolicy(open_after=1, resolve_after=2))

    after = drift.findings()
    unavailable = after["broken"]
    assert unavailable.rule_id == "DRIFT-SOURCE-UNAVAILABLE"
    assert reason in unavailable.evidence
    assert {s for s in before if s.startswith("broken|")} <= set(after), "drift was resolved"
    assert not any(
        f.rule_id == "DRIFT-REMOVED" and f.subject.startswith("broken|") and f.subject not in before
        for f in after.values()
    )
    assert (
        "before: 2; after: 3" in after["other|x"].evidence
        or "after: 3" in after["other|x"].evidence
    )
    assert run.output is not None
    assert "broken|" in run.output.undetermined


SECRETS_BEFORE = ("Hunter2-db-pass-5e1f", "tok-a1b2c3d4e5-before", "cs-9a8b7c-before", "dsnpw-x1")
SECRETS_AFTER = ("Hunter3-db-pass-77aa", "tok-f6e5d4c3b2-after", "cs-1q2w3e-after", "dsnpw-y2")


def _write_secret_sources(root: Path, web: ScriptedHttpServer, values: tuple[str, ...]) -> None:
    password, token, client_secret, dsn_password = values
    (root / "app.yaml").write_text(
        f"database:\n  password: {password}\n  url: postgres://app:{dsn_password}@db/app\n"
        f"api_token: {token}\nlog_level: info\n"
    )
    (root / "nginx.conf").write_text(
        "http { server { location / { proxy_set_header Authorization "
        f'"Bearer {token}"; proxy_pass http://backend; }} }} }}'
    )
    (root / "env.txt").write_text(f"API_KEY={token}\nMODE=strict\n")
    web.replies["/config"] = Reply(
        200, {}, json.dumps({"oauth": {"client_secret": client_secret, "issuer": "x"}}).encode()
    )


@pytest.mark.e2e
def test_secret_values_never_reach_the_store_logs_findings_cli_output_or_notifications(
    tmp_path: Path, web: ScriptedHttpServer
) -> None:
    notifications: list[bytes] = []

    def receive(body: bytes) -> Reply:
        notifications.append(body)
        return Reply(200, {}, b"ok")

    web.post_handlers["/hook"] = receive
    _write_secret_sources(tmp_path, web, SECRETS_BEFORE)
    database = tmp_path / "store" / "apivigil.db"
    store_url = f"sqlite:///{database}"
    port = free_port()
    argv = [sys.executable, "-c", f"print(open({str(tmp_path / 'env.txt')!r}).read())"]
    drift = {
        "interval": "1s",
        "jitter": "0s",
        "sources": [
            {"name": "app", "file": str(tmp_path / "app.yaml")},
            {"name": "nginx", "file": {"path": str(tmp_path / "nginx.conf"), "format": "nginx"}},
            {"name": "env", "command": {"argv": argv}},
            {"name": "oauth", "http": {"path": "/config", "json_keys": ["*"]}},
        ],
    }
    path = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": store_url,
            "listen": f"127.0.0.1:{port}",
            "log_level": "debug",
            "defaults": {"interval": "1h", "timeout": "10s", "jitter": "0s"},
            "targets": [{"name": "api", "url": web.url, "checks": {"config_drift": drift}}],
            "alerts": {
                "receivers": [
                    {"name": "hook", "webhook": {"url": f"{web.url}/hook", "secret": "k"}}
                ],
                "routes": [{"receivers": ["hook"], "group_wait": "0s"}],
            },
        },
    )
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        daemon.wait_for_event(lambda e: e.get("event") == "check run" and e.get("target") == "api")
        _write_secret_sources(tmp_path, web, SECRETS_AFTER)
        daemon.wait_for_event(
            lambda e: (
                e.get("event") == "finding opened"
                and e.get("subject") == "oauth|body.oauth.client_secret"
            )
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(b"client_secret" in n for n in notifications):
            time.sleep(0.2)
        metrics = daemon.metrics()
        assert daemon.stop() == 0
    log = daemon.log_path.read_text()
    assert any(b"client_secret" in n for n in notifications), "no notification arrived"

    findings = run_cli("findings", "--config", str(path), "--format", "json")
    assert findings.returncode == 0, findings.stderr
    changed = {f["subject"]: f for f in json.loads(findings.stdout)}
    expected = {
        "app|database.password",
        "app|database.url",
        "app|api_token",
        "nginx|http.server.location /.proxy_set_header Authorization",
        "env|API_KEY",
        "oauth|body.oauth.client_secret",
    }
    assert expected <= set(changed)
    assert all(
        "values are not shown" in changed[s]["evidence"] for s in expected - {"app|database.url"}
    )
    outputs = [
        findings.stdout,
        log,
        metrics,
        *(
            run_cli("baseline", command, "api", "--config", str(path)).stdout
            for command in ("show", "diff", "history")
        ),
        run_cli("baseline", "show", "api", "--config", str(path), "--format", "json").stdout,
        run_cli("scan", "--config", str(path), "--format", "json").stdout,
        store_text(store_url, database),
        *(n.decode() for n in notifications),
    ]
    everything = "\n".join(outputs)
    assert "body.oauth.client_secret" in everything  # the search sees real content ...
    assert "http://backend" in store_text(store_url, database)  # ... inside compressed blobs
    for secret in (*SECRETS_BEFORE, *SECRETS_AFTER):
        assert secret not in everything


@pytest.mark.e2e
def test_baseline_commands_accept_show_history_and_diff(tmp_path: Path, sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    path = tmp_path / "app.json"
    path.write_text('{"level": "info"}')
    drift = Drift(store, Target("api"), {"sources": [{"name": "app", "file": str(path)}]})
    drift.run()
    path.write_text('{"level": "debug"}')
    drift.run()
    store.close()

    diff = run_cli("baseline", "diff", "api", "--store", sqlite_url)
    assert diff.returncode == 0, diff.stderr
    assert "level" in diff.stdout
    assert "changed" in diff.stdout
    assert "debug" in diff.stdout
    refused = run_cli("baseline", "accept", "api", "--reason", " ", "--store", sqlite_url)
    assert refused.returncode == 2
    assert "reason is required" in refused.stderr
    accepted = run_cli(
        "baseline",
        "accept",
        "api",
        "--reason",
        "CHG-7 debug logging",
        "--by",
        "carol",
        "--store",
        sqlite_url,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert "version 2 approved by carol" in accepted.stdout
    assert "1 drift finding(s) resolved" in accepted.stdout
    history = run_cli("baseline", "history", "api", "--store", sqlite_url)
    assert "first observation" in history.stdout
    assert "CHG-7 debug logging" in history.stdout
    versions = run_cli("baseline", "diff", "api", "--from", "1", "--to", "2", "--store", sqlite_url)
    assert "info" in versions.stdout
    assert "debug" in versions.stdout
    shown = run_cli("baseline", "show", "api", "--store", sqlite_url, "--format", "json")
    assert json.loads(shown.stdout) == {"version": 2, "content": {"app": {"level": "debug"}}}
    again = run_cli("baseline", "accept", "api", "--reason", "no-op", "--store", sqlite_url)
    assert "already is the approved baseline" in again.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"ignore": [{"path": "a", "value": "~(", "reason": "r"}]}, "ignore[0].value: not a valid"),
        ({"severity": [{"path": "a", "value": "[", "severity": "high"}]}, "severity[0].value: not"),
        (
            {"ignore": [{"path": "a", "value": "a" * 1001, "reason": "r"}]},
            "ignore[0].value: String should have at most 1000 characters",
        ),
    ],
    ids=["ignore", "severity", "too-long"],
)
@pytest.mark.hostile_peer
def test_a_bad_drift_regex_is_a_clear_config_error(
    tmp_path: Path, rule: dict[str, Any], problem: str
) -> None:
    drift = {"sources": [{"name": "app", "file": str(tmp_path / "app.yaml")}], **rule}
    path = write_config(
        tmp_path / "apivigil.yaml",
        {"targets": [{"name": "api", "checks": {"config_drift": drift}}]},
    )
    completed = run_cli("config", "check", str(path))
    assert completed.returncode == 2, completed
    assert f"targets[0].checks.config_drift.{problem}" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.e2e
def test_text_keys_that_look_like_rich_markup_print_literally_in_baseline_and_findings_tables(
    tmp_path: Path, sqlite_url: str
) -> None:
    # Given a text config whose lines look like rich markup, drifted since the baseline
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    path = tmp_path / "rules.txt"
    path.write_text("[bold red]alarm[/] on\nline[x] keep\n")
    drift = Drift(store, Target("api"), {"sources": [{"name": "t", "file": str(path)}]})
    drift.run()
    path.write_text("[bold red]alarm[/] off\nline[x] keep\n")
    drift.run()
    store.close()

    # When the baseline and the findings are shown as tables
    outputs = {
        "baseline diff": run_cli("baseline", "diff", "api", "--store", sqlite_url),
        "baseline show": run_cli("baseline", "show", "api", "--store", sqlite_url),
        "findings": run_cli("findings", "--store", sqlite_url),
    }

    # Then every key prints as it is, brackets and all
    for name, shown in outputs.items():
        assert shown.returncode == 0, (name, shown.stderr)
    assert "line[[bold red]alarm[/] off]" in outputs["baseline diff"].stdout
    assert "line[[bold red]alarm[/] on]" in outputs["baseline diff"].stdout
    assert "line[line[x] keep]" in outputs["baseline show"].stdout
    assert "t|line[[bold red]alarm[/] off]" in outputs["findings"].stdout


@pytest.mark.integration
def test_a_file_broken_in_its_detected_format_is_compared_as_text_with_a_finding_saying_so(
    store: SqlStore, tmp_path: Path
) -> None:
    site = tmp_path / "sites-enabled" / "api"
    site.parent.mkdir()
    site.write_text("server {\n  listen 80;\n  root /srv/www;\n}\n")
    drift = Drift(store, Target("api"), {"sources": [{"name": "site", "file": str(site)}]})
    drift.run()

    site.write_text("server {\n  listen 80;\n  root /srv/www;\n")  # the closing brace lost
    run = drift.run()

    assert run.output is not None
    (note,) = [f for f in run.output.findings if f.rule_id == "DRIFT-READ-AS-TEXT"]
    assert "not valid nginx" in note.evidence
    assert "never closed" in note.evidence
    assert "site" in drift.findings()  # an open finding, not an unavailable source
    assert not [f for f in run.output.findings if f.rule_id == "DRIFT-SOURCE-UNAVAILABLE"]


@pytest.mark.integration
def test_a_list_of_mappings_is_keyed_by_the_identity_field_configured_for_its_path(
    store: SqlStore, tmp_path: Path
) -> None:
    path = tmp_path / "rules.json"
    rules = [{"rule": "a", "allow": "10.0.0.0/8"}, {"rule": "b", "allow": "any"}]
    path.write_text(json.dumps({"firewall": rules}))
    source = {"name": "fw", "file": {"path": str(path), "list_keys": {"firewall": "rule"}}}
    drift = Drift(store, Target("api"), {"sources": [source]})
    drift.run()

    path.write_text(json.dumps({"firewall": [rules[1], {"rule": "c", "allow": "any"}, rules[0]]}))
    drift.run()

    assert set(drift.findings()) == {"fw|firewall[rule=c].allow", "fw|firewall[rule=c].rule"}
