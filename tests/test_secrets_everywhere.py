"""Secrets never leave their files: every output of a real daemon is searched for each value.

Tokens, webhook URLs, the SMTP and webhook-signing secrets and a secret in a monitored config
file are given to a daemon at log level debug; once notifications went out (and an e-mail
failed), the log, the store, the CLI, the notifications and /metrics must hold none of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.chains import Chain
from tests.support.config_errors import (
    CONFIG_ERRORS_WITH_SECRETS,
    SLACK_PATH_TOKEN,
)
from tests.support.daemon_process import APIVIGIL, DaemonProcess, run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import free_port
from tests.support.store_dump import store_text

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = "admintok-Pq81zz02mmKL-7c1e"
READ_TOKEN = "readtok-Vb55nm21xxQR-90d2"
WEBHOOK_SECRET = "whsec-Lk82hd71Tt0p"
SMTP_PASSWORD = "smtppw-Gh27skW9a3"
DRIFT_SECRET_BEFORE = "driftpw-Ab12Xy90-before"
DRIFT_SECRET_AFTER = "driftpw-Cd34Uv78-after"
# secrets of a text config whose lines are not all `key = value`, and of keys not named
# password: each must stay out of keys as well as values
TEXT_SECRETS_BEFORE = {
    "export_password": "exportpw-Qe61Lm-before",
    "curl_bearer": "curlbearer-Wx38Fd-before",
    "auth": "authval-Rt52Kp",
    "bearer": "bearerval-Yu73Nb",
    "jwt": "jwtval-Io84Mv",
    "x_auth": "xauthval-Pa95Cx",
    "requirepass": "redispw-Sd16Zq",
}
TEXT_SECRET_AFTER = "curlbearer-Gh49Jk-after"
# secrets that are a directive's arguments, in the formats config_drift parses by meaning
DIRECTIVE_SECRETS_BEFORE = {
    "requirepass": "redisreq-Vf28Hn-before",
    "masterauth": "redismaster-Lp63Dw",
    "acl": "redisacl-Qz47Ty",
    "stats_auth": "hastats-Mk92Rb",
    "userlist": "hauser-Xe15Ju",
    "nginx_env": "nginxenv-Cw84Gs",
    "auth_http_header": "nginxauth-Bh36Nq",
    "proxy_authorization": "nginxbasic-Wt71Fe",
}
DIRECTIVE_SECRET_AFTER = "redisreq-Ns50Kc-after"


def _directive_configs(root: Path, requirepass: str) -> None:
    s = DIRECTIVE_SECRETS_BEFORE
    (root / "redis.conf").write_text(
        f'port 6379\nrequirepass {requirepass}\nmasterauth "{s["masterauth"]}"\n'
        f"user alice on >{s['acl']} ~cache:* +get\n"
    )
    (root / "haproxy.cfg").write_text(
        f"global\n\tdaemon\nlisten stats\n\tbind 127.0.0.1:8404\n"
        f"\tstats auth admin:{s['stats_auth']}\n"
        f"userlist ops\n\tuser dev insecure-password {s['userlist']}\n"
    )
    (root / "nginx.conf").write_text(
        f"env AWS_SECRET_ACCESS_KEY={s['nginx_env']};\nhttp {{\n"
        f'\tauth_http_header X-Auth-Key "{s["auth_http_header"]}";\n'
        f"\tserver {{ location / {{ proxy_set_header Authorization "
        f'"Basic {s["proxy_authorization"]}"; }} }}\n}}\n'
    )


def _text_config(curl_bearer: str) -> str:
    s = TEXT_SECRETS_BEFORE
    return (
        f"export DB_PASSWORD={s['export_password']}\n"
        f'curl -H "Authorization: Bearer {curl_bearer}" http://127.0.0.1/\n'
        f"auth = {s['auth']}\nbearer = {s['bearer']}\njwt: {s['jwt']}\n"
        f"x-auth = {s['x_auth']}\nrequirepass {s['requirepass']}\nmode = strict\n"
    )


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _outbox(path: Path) -> tuple[str, list[dict[str, Any]]]:
    listed = run_cli("alerts", "outbox", "--config", str(path), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout + listed.stderr, list(json.loads(listed.stdout))


def _secret_files(root: Path, slack_url: str) -> dict[str, Path]:
    secrets = root / "secrets"
    secrets.mkdir()
    files = {
        "admin_token": ADMIN_TOKEN,
        "slack_webhook": slack_url,
        "smtp": SMTP_PASSWORD,
        "hook": WEBHOOK_SECRET,
        "store": f"sqlite:///{root / 'store' / 'apivigil.db'}",
    }
    for name, value in files.items():
        (secrets / name).write_text(value + "\n")
    return {name: secrets / name for name in files}


def _config(root: Path, chain: Chain, web: ScriptedHttpServer, port: int) -> Path:
    slack_url = f"{web.url}/services/{SLACK_PATH_TOKEN}"
    files = _secret_files(root, slack_url)
    expiring = root / "expiring.pem"
    expiring.write_bytes(chain.leaf("api.test", days_left=3).pem)
    (root / "app.yaml").write_text(
        f"database:\n  host: db1\n  password: {DRIFT_SECRET_BEFORE}\nlog_level: info\n"
    )
    (root / "app.env").write_text(_text_config(TEXT_SECRETS_BEFORE["curl_bearer"]))
    _directive_configs(root, DIRECTIVE_SECRETS_BEFORE["requirepass"])
    return write_config(
        root / "apivigil.yaml",
        {
            "store_file": str(files["store"]),
            "listen": f"127.0.0.1:{port}",
            "log_level": "debug",
            "defaults": {"interval": "1s", "timeout": "10s", "jitter": "0s"},
            "scheduler": {"initial_spread": "1s"},
            "targets": [
                {
                    "name": "api",
                    "checks": {
                        "cert_expiry": {"files": [str(expiring)], "interval": "1h"},
                        "config_drift": {
                            "sources": [
                                {"name": "app", "file": str(root / "app.yaml")},
                                {"name": "env", "file": str(root / "app.env")},
                                {"name": "redis", "file": str(root / "redis.conf")},
                                {"name": "haproxy", "file": str(root / "haproxy.cfg")},
                                {"name": "nginx", "file": str(root / "nginx.conf")},
                            ]
                        },
                    },
                }
            ],
            "api_tokens": [
                {"name": "ops", "scope": "admin", "token_file": str(files["admin_token"])},
                {
                    "name": "grafana",
                    "scope": "read",
                    "sha256": hashlib.sha256(READ_TOKEN.encode()).hexdigest(),
                },
            ],
            "alerts": {
                "receivers": [
                    {"name": "chat", "slack": {"webhook_url_file": str(files["slack_webhook"])}},
                    {
                        "name": "mail",
                        "email": {
                            "smtp": f"smtp://127.0.0.1:{free_port()}",  # nobody listens
                            "from": "apivigil@example.test",
                            "to": ["secops@example.test"],
                            "username": "apivigil",
                            "password_file": str(files["smtp"]),
                            "timeout": "2s",
                        },
                    },
                    {
                        "name": "hook",
                        "webhook": {"url": f"{web.url}/hook", "secret_file": str(files["hook"])},
                    },
                ],
                "routes": [{"receivers": ["chat", "mail", "hook"], "group_wait": "0s"}],
                "dispatcher": {"initial_backoff": "1s", "max_backoff": "2s"},
            },
        },
    )


def test_secret_values_appear_in_no_log_store_finding_notification_cli_output_or_metric(
    tmp_path: Path, chain: Chain
) -> None:
    slack_bodies: list[bytes] = []
    hook_bodies: list[bytes] = []

    def slack(body: bytes) -> Reply:
        slack_bodies.append(body)
        return Reply(200, {"Content-Type": "text/plain"}, b"ok")

    def hook(body: bytes) -> Reply:
        hook_bodies.append(body)
        return Reply(200, {}, b"ok")

    port = free_port()
    with ScriptedHttpServer() as web:
        web.post_handlers[f"/services/{SLACK_PATH_TOKEN}"] = slack
        web.post_handlers["/hook"] = hook
        path = _config(tmp_path, chain, web, port)
        checked = run_cli("config", "check", str(path))
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # Given a daemon that notified Slack and the webhook, and failed to send an e-mail
        with DaemonProcess(path, port, tmp_path) as daemon:
            daemon.wait_healthy()
            daemon.wait_for_event(
                lambda e: e.get("event") == "check run" and e.get("check") == "config_drift"
            )
            (tmp_path / "app.yaml").write_text(
                (tmp_path / "app.yaml").read_text().replace(DRIFT_SECRET_BEFORE, DRIFT_SECRET_AFTER)
            )
            (tmp_path / "app.env").write_text(_text_config(TEXT_SECRET_AFTER))
            _directive_configs(tmp_path, DIRECTIVE_SECRET_AFTER)
            daemon.wait_for_event(
                lambda e: (
                    e.get("event") == "finding opened"
                    and "database.password" in str(e.get("subject"))
                )
            )
            daemon.wait_for_event(
                lambda e: (
                    e.get("event") == "finding opened" and "Authorization" in str(e.get("subject"))
                )
            )
            daemon.wait_for_event(
                lambda e: (
                    e.get("event") == "finding opened" and e.get("subject") == "redis|requirepass"
                )
            )
            _wait_until(lambda: bool(slack_bodies and hook_bodies), 30, "Slack and webhook")
            _wait_until(
                lambda: any(
                    e["receiver"] == "mail" and e["attempts"] >= 1 and e["last_error"]
                    for e in _outbox(path)[1]
                ),
                30,
                "a failed e-mail attempt",
            )
            # ... and whose API was used with the admin and the read token
            api = f"{daemon.base}/api/v1/silences"
            added = httpx.post(
                api,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                json={"matchers": {"target": "nothing"}, "comment": "drill", "duration": "1h"},
                timeout=10,
            )
            assert added.status_code == 201, added.text
            listed = httpx.get(api, headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=10)
            assert listed.status_code == 200, listed.text
            metrics = daemon.metrics()
            assert daemon.stop() == 0
        log = daemon.log_path.read_text()

    # When every output is gathered
    findings = run_cli("findings", "--config", str(path), "--format", "json")
    assert findings.returncode == 0, findings.stderr
    outbox_text, outbox = _outbox(path)
    baseline_show = run_cli("baseline", "show", "api", "--config", str(path), "--format", "json")
    outputs = {
        "daemon log": log,
        "store": store_text(f"sqlite:///{tmp_path / 'store' / 'apivigil.db'}", tmp_path / "store"),
        "findings": findings.stdout + findings.stderr,
        "outbox": outbox_text,
        "config check": checked.stdout + checked.stderr,
        "slack notifications": "\n".join(b.decode() for b in slack_bodies),
        "webhook notifications": "\n".join(b.decode() for b in hook_bodies),
        "email errors": "\n".join(str(e["last_error"]) for e in outbox),
        "metrics": metrics,
        "api answers": added.text + listed.text,
        "baseline show": baseline_show.stdout + baseline_show.stderr,
    }

    # Then the search sees real content in each ...
    markers = {
        "daemon log": "check run",
        "store": "database.password",
        "baseline show": "stats auth",
        "findings": "Authorization: Bearer",
        "outbox": "mail",
        "config check": str(path),
        "slack notifications": "api",
        "webhook notifications": "dedup_key",
        "email errors": "127.0.0.1",
        "metrics": "apivigil_check_runs_total",
        "api answers": "drill",
    }
    for name, marker in markers.items():
        assert marker in outputs[name], f"{name} lacks {marker!r}: the search would see nothing"
    # ... and no secret value in any
    secrets = (
        ADMIN_TOKEN,
        READ_TOKEN,
        SLACK_PATH_TOKEN,
        f"{web.url}/services/{SLACK_PATH_TOKEN}",
        WEBHOOK_SECRET,
        SMTP_PASSWORD,
        DRIFT_SECRET_BEFORE,
        DRIFT_SECRET_AFTER,
        *TEXT_SECRETS_BEFORE.values(),
        TEXT_SECRET_AFTER,
        *DIRECTIVE_SECRETS_BEFORE.values(),
        DIRECTIVE_SECRET_AFTER,
    )
    found = [
        (secret, name) for secret in secrets for name, text in outputs.items() if secret in text
    ]
    print(
        f"\nsecret values searched: {len(secrets)} in {len(outputs)} outputs, found: {len(found)}"
    )
    assert found == []


@pytest.mark.hostile_peer
@pytest.mark.parametrize("case", CONFIG_ERRORS_WITH_SECRETS)
def test_config_errors_name_the_key_but_never_show_its_secret(tmp_path: Path, case: str) -> None:
    config, environment, key, secret = CONFIG_ERRORS_WITH_SECRETS[case]
    path = write_config(tmp_path / "apivigil.yaml", config)
    env = {**os.environ, **environment}

    for command in (["config", "check"], ["run"]):
        completed = subprocess.run(
            [*APIVIGIL, *command, "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
            check=False,
        )
        output = completed.stdout + completed.stderr
        assert completed.returncode == 2, (command, output)
        assert key in output, (command, output)
        assert "Traceback" not in output, (command, output)
        assert secret not in output, (command, output)


URL_PASSWORD = "urlpw-Qs81Vn27Ha"


@pytest.mark.hostile_peer
def test_credentials_in_a_check_url_never_reach_a_run_error_or_a_finding(tmp_path: Path) -> None:
    # Given check parameters whose URLs carry credentials, to a port where nothing listens
    closed = f"http://ops:{URL_PASSWORD}@127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "targets": [
                {
                    "name": "api",
                    "url": "http://127.0.0.1:9",
                    "checks": {
                        "config_drift": {"sources": [{"http": {"url": f"{closed}/status"}}]},
                        "api_inventory": {"spec": f"{closed}/openapi.json"},
                    },
                }
            ]
        },
    )

    # When both checks run once from the CLI
    scanned = run_cli("scan", "--config", str(config), "--format", "json")

    # Then each failed, saying where, and the password is nowhere in what it printed
    output = scanned.stdout + scanned.stderr
    runs = {run["check"]: run for run in json.loads(scanned.stdout)["runs"]}
    assert runs["api_inventory"]["status"] == "error", output
    assert "127.0.0.1" in runs["api_inventory"]["error"]["message"]
    [unavailable] = runs["config_drift"]["findings"]
    assert "127.0.0.1" in unavailable["evidence"]
    assert URL_PASSWORD not in output
