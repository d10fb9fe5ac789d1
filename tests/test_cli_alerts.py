"""`apivigil silence`, `apivigil alerts outbox` and `apivigil notify test` from the shell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.model import NotificationKind
from alerts.templates import render
from monitor.settings import load_settings
from tests.support.daemon_process import run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.notifications import make_notification


@pytest.mark.e2e
def test_silence_add_list_expire_round_trip(tmp_path: Path) -> None:
    path = write_config(tmp_path / "apivigil.yaml", {"store": f"sqlite:///{tmp_path / 'a.db'}"})
    assert run_cli("db", "upgrade", "--config", str(path)).returncode == 0

    added = run_cli(
        "silence",
        "add",
        "--match",
        "target=payments",
        "--match",
        "rule_id=~TLS-.*",
        "--duration",
        "90m",
        "--comment",
        "cert rotation",
        "--by",
        "dana",
        "--config",
        str(path),
    )
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[1]
    listed = run_cli("silence", "list", "--config", str(path))
    assert silence_id in listed.stdout
    assert "rule_id=~TLS-.*" in listed.stdout
    assert "dana" in listed.stdout
    assert run_cli("silence", "expire", silence_id, "--config", str(path)).returncode == 0
    assert silence_id not in run_cli("silence", "list", "--config", str(path)).stdout
    assert run_cli("silence", "expire", silence_id, "--config", str(path)).returncode == 2
    bad = run_cli("silence", "add", "--match", "nolabel", "--comment", "x", "--config", str(path))
    assert bad.returncode == 2
    assert "label=value" in bad.stderr


@pytest.mark.e2e
def test_notify_test_reports_delivery_and_failure(tmp_path: Path) -> None:
    with ScriptedHttpServer() as web:
        received: list[bytes] = []

        def accept(body: bytes) -> Reply:
            received.append(body)
            return Reply(200, {}, b"ok")

        web.post_handlers["/ok"] = accept
        web.post_handlers["/gone"] = lambda _body: Reply(410, {}, b"gone")
        path = write_config(
            tmp_path / "apivigil.yaml",
            {
                "alerts": {
                    "receivers": [
                        {"name": "good", "webhook": {"url": f"{web.url}/ok", "secret": "k"}},
                        {"name": "gone", "webhook": {"url": f"{web.url}/gone", "secret": "k"}},
                    ]
                }
            },
        )
        good = run_cli("notify", "test", "good", "--config", str(path))
        gone = run_cli("notify", "test", "gone", "--config", str(path))
        unknown = run_cli("notify", "test", "nobody", "--config", str(path))

    assert good.returncode == 0, good.stderr
    assert "delivered" in good.stdout
    assert json.loads(received[0])["kind"] == "test"
    assert gone.returncode == 1
    assert "permanent" in gone.stderr
    assert "410" in gone.stderr
    assert unknown.returncode == 2
    assert "good, gone" in unknown.stderr


@pytest.mark.unit
def test_templates_beside_the_config_override_the_built_in_ones(tmp_path: Path) -> None:

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "email_subject.txt.j2").write_text(
        "[ACME SOC] {{ notification.title }}"
    )
    path = write_config(tmp_path / "apivigil.yaml", {})

    settings = load_settings(path)
    subject = render(
        "email_subject.txt.j2",
        settings.alerts.templates_dir,
        notification=make_notification(kind=NotificationKind.FIRING),
    )

    assert settings.alerts.templates_dir == tmp_path / "templates"
    assert subject.startswith("[ACME SOC] [FIRING")
    assert "email_body.txt.j2" not in str(list((tmp_path / "templates").iterdir()))


@pytest.mark.e2e
def test_silence_add_warns_about_a_label_no_alert_can_carry(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": f"sqlite:///{tmp_path / 'a.db'}",
            "targets": [
                {"name": "api", "url": "https://127.0.0.1:1", "labels": {"env": "prod"},
                 "checks": {"cert_expiry": {}}}
            ],
        },
    )  # fmt: skip
    assert run_cli("db", "upgrade", "--config", str(path)).returncode == 0
    add = ("silence", "add", "--comment", "x", "--config", str(path))

    typo = run_cli(*add, "--match", "rule=TLS-X")
    assert typo.returncode == 0, typo.stderr  # added, but the operator is told
    warning = " ".join(typo.stderr.split())
    assert "no alert carries the label 'rule'" in warning, warning
    assert "rule_id" in warning, warning
    assert "env" in warning, warning

    fine = run_cli(*add, "--match", "env=prod", "--match", "rule_id=~TLS-.*")
    assert fine.returncode == 0, fine.stderr
    assert "no alert carries" not in fine.stderr
