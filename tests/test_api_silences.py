"""/api/v1 on the real daemon: bearer tokens with read and admin scopes; silences."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = "admin-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"


def test_silences_through_the_api_need_the_right_token_and_are_audited(tmp_path: Path) -> None:
    admin_file = tmp_path / "admin.token"
    admin_file.write_text(ADMIN_TOKEN + "\n")
    port = free_port()
    path = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": f"sqlite:///{tmp_path / 'apivigil.db'}",
            "listen": f"127.0.0.1:{port}",
            "api_tokens": [
                {"name": "ops", "scope": "admin", "token_file": str(admin_file)},
                {"name": "grafana", "sha256": hashlib.sha256(READ_TOKEN.encode()).hexdigest()},
            ],
        },
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    silence = {"matchers": {"target": "payments"}, "duration": "2h", "comment": "CHG-42"}
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        anonymous = httpx.post(f"{base}/silences", json=silence, timeout=5)
        wrong = httpx.get(f"{base}/silences", headers={"Authorization": "Bearer nope"}, timeout=5)
        reader = {"Authorization": f"Bearer {READ_TOKEN}"}
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        forbidden = httpx.post(f"{base}/silences", json=silence, headers=reader, timeout=5)
        created = httpx.post(f"{base}/silences", json=silence, headers=admin, timeout=5)
        listed = httpx.get(f"{base}/silences", headers=reader, timeout=5)
        invalid = httpx.post(
            f"{base}/silences", json={**silence, "duration": "-1h"}, headers=admin, timeout=5
        )
        silence_id = created.json()["id"]
        expired = httpx.delete(f"{base}/silences/{silence_id}", headers=admin, timeout=5)
        again = httpx.delete(f"{base}/silences/{silence_id}", headers=admin, timeout=5)
        assert daemon.stop() == 0

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert forbidden.status_code == 403
    assert created.status_code == 201
    assert created.json()["created_by"] == "api:ops"
    assert [s["id"] for s in listed.json()] == [silence_id]
    assert invalid.status_code == 422
    assert expired.status_code == 200
    assert again.status_code == 404
    history = run_cli("silence", "list", "--all", "--config", str(path))
    assert silence_id in history.stdout
    assert "CHG-42" in history.stdout


def test_without_tokens_the_api_is_not_served(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(
        tmp_path / "apivigil.yaml",
        {"store": f"sqlite:///{tmp_path / 'apivigil.db'}", "listen": f"127.0.0.1:{port}"},
    )
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/silences", timeout=5)
        assert daemon.stop() == 0

    assert answer.status_code == 404
