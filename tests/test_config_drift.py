"""config_drift end to end: real files, a real HTTP server, real commands, a real store."""

from __future__ import annotations

import json
import shutil
import subprocess
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
from tests.support.debian_files import extract
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import free_port
from tests.support.store_dump import store_text

IMMEDIATE = HysteresisPolicy(open_after=1, resolve_after=1)
NGINX_SITE = "etc/nginx/sites-available/default"


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
    assert found["confd|c.conf"].rule_id == "DRIFT-ADDED"  # one finding for a new file
    assert found["confd|c.conf"].evidence.startswith("added block 'c.conf' (2 settings): {")


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
# secrets in directive forms: redis requirepass / masterauth / ACL `>pw`, haproxy `stats auth`
# and userlist passwords, nginx `env` and `auth_http_header`, an htpasswd user's password
DIRECTIVE_SECRETS_BEFORE = (
    *("rq-pass-b4", "mauth-b4", "acl-pw-b4", "stats-pw-b4", "ul-pw-b4", "awssec-b4"),
    *("xauth-b4", "htpw-b4"),
)
DIRECTIVE_SECRETS_AFTER = (
    *("rq-pass-af", "mauth-af", "acl-pw-af", "stats-pw-af", "ul-pw-af", "awssec-af"),
    *("xauth-af", "htpw-af"),
)


def _write_secret_sources(
    root: Path, web: ScriptedHttpServer, values: tuple[str, ...], directives: tuple[str, ...]
) -> list[str]:
    """The sources holding `values` and `directives`; the password hashes written."""
    password, token, client_secret, dsn_password = values
    requirepass, masterauth, acl, stats, userlist, aws, x_auth, web_user = directives
    (root / "redis.conf").write_text(
        f"port 6379\nrequirepass {requirepass}\nmasterauth {masterauth}\n"
        f"user alice on >{acl} ~cache:* +get\n"
    )
    (root / "haproxy.cfg").write_text(
        "global\n\tdaemon\n\nlisten stats\n\tbind 127.0.0.1:8404\n"
        f"\tstats auth admin:{stats}\n\nuserlist ops\n\tuser dev insecure-password {userlist}\n"
    )
    hashes = _htpasswd(root / "htpasswd", {"alice": web_user})
    (root / "app.yaml").write_text(
        f"database:\n  password: {password}\n  url: postgres://app:{dsn_password}@db/app\n"
        f"api_token: {token}\nlog_level: info\n"
    )
    (root / "nginx.conf").write_text(
        f"env AWS_SECRET_ACCESS_KEY={aws};\n"
        f'http {{ auth_http_header X-Auth-Key "{x_auth}"; '
        "server { location / { proxy_set_header Authorization "
        f'"Bearer {token}"; proxy_pass http://backend; }} '
        f"location /admin/ {{ auth_basic_user_file {root / 'htpasswd'}; }} }} }}"
    )
    (root / "env.txt").write_text(f"API_KEY={token}\nMODE=strict\n")
    web.replies["/config"] = Reply(
        200, {}, json.dumps({"oauth": {"client_secret": client_secret, "issuer": "x"}}).encode()
    )
    return hashes


@pytest.mark.e2e
def test_secret_values_never_reach_the_store_logs_findings_cli_output_or_notifications(
    tmp_path: Path, web: ScriptedHttpServer
) -> None:
    notifications: list[bytes] = []

    def receive(body: bytes) -> Reply:
        notifications.append(body)
        return Reply(200, {}, b"ok")

    web.post_handlers["/hook"] = receive
    hashes = _write_secret_sources(tmp_path, web, SECRETS_BEFORE, DIRECTIVE_SECRETS_BEFORE)
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
            {"name": "redis", "file": str(tmp_path / "redis.conf")},
            {"name": "haproxy", "file": str(tmp_path / "haproxy.cfg")},
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
        hashes += _write_secret_sources(tmp_path, web, SECRETS_AFTER, DIRECTIVE_SECRETS_AFTER)
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
        "redis|requirepass",
        "redis|masterauth",
        "redis|user alice",
        "haproxy|listen stats.stats auth",
        "haproxy|userlist ops.user dev",
        "nginx|env AWS_SECRET_ACCESS_KEY",
        "nginx|http.auth_http_header X-Auth-Key",
        "nginx|http.server.location /admin/.auth_basic_user_file#alice password",
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
    directive_secrets = (*DIRECTIVE_SECRETS_BEFORE, *DIRECTIVE_SECRETS_AFTER, *hashes)
    for secret in (*SECRETS_BEFORE, *SECRETS_AFTER, *directive_secrets):
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

    # Then the inserted rule is one finding naming it, the reordered ones none
    found = drift.findings()
    assert set(found) == {"fw|firewall[rule=c]"}
    assert found["fw|firewall[rule=c]"].evidence == (
        "added block 'firewall[rule=c]' (2 settings): {allow any; rule c}"
    )


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract(tmp_path_factory.mktemp("debian"))


def _read_as(run: CheckRun) -> dict[str, Any]:
    assert run.output is not None
    return {f.subject: f for f in run.output.findings if f.rule_id.startswith("DRIFT-READ-AS")}


@pytest.mark.integration
def test_a_watched_directory_names_each_file_it_could_not_read_in_a_format_of_its_own(
    store: SqlStore, tmp_path: Path, debian: Path
) -> None:
    # Given Debian's /etc/nginx as shipped, with one site broken, a logrotate file (a format
    # of its own that apivigil does not read) and a text file too long to read key by key
    root = tmp_path / "etc"
    shutil.copytree(debian / "etc/nginx", root / "nginx")
    (root / "logrotate.d").mkdir()
    shutil.copy(debian / "etc/logrotate.d/nginx", root / "logrotate.d/nginx")
    site = (root / "nginx/sites-available/default").read_text()
    (root / "nginx/sites-available/broken").write_text(site.replace("=404;\n\t}", "=404;\n"))
    (root / "nginx/conf.d/huge.conf").write_text("client_max_body_size 1m;\n" * 50_000)
    source = {"name": "etc", "directory": str(root)}

    # When it is watched as a directory
    run = Drift(store, Target("web"), {"sources": [source]}).run()

    # Then each file not read in a format of its own is a finding naming it and why
    notes = _read_as(run)
    assert set(notes) == {
        "etc|nginx/sites-available/broken#format",
        "etc|logrotate.d/nginx#format",
        "etc|nginx/conf.d/huge.conf#format",
    }
    broken = notes["etc|nginx/sites-available/broken#format"]
    assert broken.rule_id == "DRIFT-READ-AS-TEXT"
    assert "not valid nginx" in broken.evidence
    assert "never closed" in broken.evidence
    assert "format not recognised" in notes["etc|logrotate.d/nginx#format"].evidence
    huge = notes["etc|nginx/conf.d/huge.conf#format"]
    assert huge.rule_id == "DRIFT-READ-AS-DIGEST"
    assert "over 1048576 bytes" in huge.evidence
    # and every other shipped file was read in its format (nginx.conf's keys, not lines)
    assert run.output is not None
    assert run.output.snapshot is not None
    entries = run.output.snapshot["etc"]
    assert entries["nginx/nginx.conf:http.ssl_protocols"] == "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"
    assert not [
        key
        for key in entries
        if key.startswith("nginx/") and ":line[" in key and "broken" not in key
    ]

    # When the user says which format the logrotate file is in, that note goes
    explicit = {"path": str(root), "formats": {"logrotate.d/*": "text"}}
    again = Drift(
        store, Target("web2"), {"sources": [{"name": "etc", "directory": explicit}]}
    ).run()
    assert set(_read_as(again)) == {
        "etc|nginx/sites-available/broken#format",
        "etc|nginx/conf.d/huge.conf#format",
    }


def _htpasswd(path: Path, users: dict[str, str]) -> list[str]:
    """An htpasswd file made by openssl (`$apr1$` hashes, as `htpasswd -m` writes them);
    the hashes it wrote."""
    hashes = []
    for password in users.values():
        made = subprocess.run(
            ["openssl", "passwd", "-apr1", password],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        hashes.append(made.stdout.strip())
    path.write_text("".join(f"{u}:{h}\n" for u, h in zip(users, hashes, strict=True)))
    return hashes


@pytest.mark.integration
def test_the_users_of_a_referenced_password_file_drift_by_name_and_no_hash_is_stored(
    tmp_path: Path, debian: Path
) -> None:
    # Given Debian's default nginx site with a location guarded by auth_basic_user_file,
    # and its key's passphrases in an ssl_password_file
    users = tmp_path / "htpasswd"
    hashes = _htpasswd(users, {"alice": "alice-pw-1"})
    passphrases = tmp_path / "passphrases"
    passphrases.write_text("keypass-one-1\n")
    site = tmp_path / "sites-enabled" / "default"
    site.parent.mkdir()
    guarded = (
        '\tlocation /admin/ {\n\t\tauth_basic "Restricted";\n'
        f"\t\tauth_basic_user_file {users};\n\t}}\n\n"
        f"\tssl_password_file {passphrases};\n\n\tlocation / {{"
    )
    site.write_text((debian / NGINX_SITE).read_text().replace("\tlocation / {", guarded, 1))
    database = tmp_path / "apivigil.db"
    store = SqlStore(f"sqlite:///{database}")
    store.upgrade_schema()
    drift = Drift(store, Target("web"), {"sources": [{"name": "site", "file": str(site)}]})
    first = drift.run()
    key = "server _.location /admin/.auth_basic_user_file"
    assert first.output is not None
    assert first.output.snapshot is not None
    assert first.output.snapshot["site"][key] == str(users)  # the path is shown

    # When a user is added, alice's password changes and so does the key's passphrase
    hashes += _htpasswd(users, {"alice": "alice-pw-2", "bob": "bob-pw-1"})
    passphrases.write_text("keypass-two-2\n")
    drift.run()

    # Then each is one finding naming the user or the file, with no hash or secret in it
    found = drift.findings()
    passphrase = "site|server _.ssl_password_file#secret"
    assert set(found) == {f"site|{key}#alice password", f"site|{key}#bob password", passphrase}
    assert "a secret value changed" in found[passphrase].evidence
    assert found[f"site|{key}#bob password"].rule_id == "DRIFT-ADDED"
    assert found[f"site|{key}#alice password"].rule_id == "DRIFT-CHANGED"
    assert "values are not shown" in found[f"site|{key}#alice password"].evidence

    # When the file it names is gone, that is said (its users are not judged meanwhile)
    users.unlink()
    gone = drift.run()
    assert gone.output is not None
    [unavailable] = [f for f in gone.output.findings if f.rule_id == "DRIFT-SOURCE-UNAVAILABLE"]
    assert unavailable.subject == f"site|{key}"
    assert "the secret file it names" in unavailable.evidence
    assert str(users) in unavailable.evidence

    # and no hash nor password ever reached the store
    stored = store_text(f"sqlite:///{database}", database)
    store.close()
    assert "alice password" in stored
    for secret in (*hashes, "alice-pw-1", "alice-pw-2", "bob-pw-1", "keypass-one-1", "keypass-two"):
        assert secret not in stored


@pytest.mark.integration
def test_a_server_added_among_others_is_one_finding_as_serious_as_its_weakest_setting(
    store: SqlStore, tmp_path: Path, debian: Path
) -> None:
    # Given Debian's default site, watched with and without an ignore rule for ssl_protocols
    site = tmp_path / "default"
    site.write_text((debian / NGINX_SITE).read_text())
    ignore = [{"path": "*.ssl_protocols", "reason": "TLS is judged by tls_posture"}]
    plain = Drift(store, Target("a"), {"sources": [{"name": "site", "file": str(site)}]})
    ignoring = Drift(
        store, Target("b"), {"sources": [{"name": "site", "file": str(site)}], "ignore": ignore}
    )
    plain.run()
    ignoring.run()

    # When a server with a weak protocol is added after it
    site.write_text(
        site.read_text() + "\nserver {\n\tlisten 443 ssl;\n\tserver_name api.example.test;\n"
        "\tssl_protocols TLSv1 TLSv1.2;\n\troot /srv/api;\n}\n"
    )
    plain.run()
    ignoring.run()

    # Then it is one finding naming the block, high because of its weak protocol ...
    subject = 'site|["server api.example.test"]'
    [found] = plain.findings().values()
    assert (found.subject, found.rule_id, found.severity) == (subject, "DRIFT-ADDED", "high")
    assert found.evidence == (
        "added block 'server api.example.test' (4 settings): {listen 443 ssl; root /srv/api; "
        "server_name api.example.test; ssl_protocols TLSv1 TLSv1.2}"
    )
    # ... and an ignored setting leaves the block, with the severity of what is left
    [rest] = ignoring.findings().values()
    assert (rest.subject, rest.severity) == (subject, "medium")
    assert "(3 settings)" in rest.evidence
    assert "ssl_protocols" not in rest.evidence
