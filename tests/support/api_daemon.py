"""A daemon config with an admin token (from a file) and a read token (by its SHA-256), for the
API's tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tests.support.daemon_process import write_config

ADMIN_TOKEN = "admin-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"


def daemon_config(tmp_path: Path, port: int, **extra: Any) -> Path:
    admin_file = tmp_path / "admin.token"
    admin_file.write_text(ADMIN_TOKEN + "\n")
    return write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": f"sqlite:///{tmp_path / 'apivigil.db'}",
            "listen": f"127.0.0.1:{port}",
            "api_tokens": [
                {"name": "ops", "scope": "admin", "token_file": str(admin_file)},
                {"name": "grafana", "sha256": hashlib.sha256(READ_TOKEN.encode()).hexdigest()},
            ],
            **extra,
        },
    )
